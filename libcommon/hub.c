/* hub: hf:// names to the URLs the Hugging Face Hub serves them at, and
 * the endpoint and token that go with them (see hub.h). */
#include "hub.h"
#include "err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_ENDPOINT "https://huggingface.co"

static char *hub_endpoint(void)
{
	const char *e = getenv("HF_ENDPOINT");
	char *s = xstrdup(e && *e ? e : DEFAULT_ENDPOINT);
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

static int url_safe(int c, int keep_slash)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
	       c == '%' || (keep_slash && c == '/');
}

/* Appends s[0..n) percent-encoded; '%' passes through, so input that is
 * already encoded stays as it is. */
static void append_encoded(char **buf, size_t *len, const char *s, size_t n,
			   int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	*buf = xrealloc(*buf, *len + 3 * n + 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (url_safe(c, keep_slash)) {
			(*buf)[(*len)++] = (char)c;
		} else {
			(*buf)[(*len)++] = '%';
			(*buf)[(*len)++] = hex[c >> 4];
			(*buf)[(*len)++] = hex[c & 15];
		}
	}
	(*buf)[*len] = '\0';
}

char *hub_resolve(const char *url)
{
	const char *p, *org, *name, *name_end, *path, *rev = NULL;
	const char *kind = "";
	size_t rev_len = 0, path_len, len = 0;
	char *endpoint, *out = NULL, *revbuf;

	if (strncasecmp(url, "hf://", 5) != 0) {
		if (strncasecmp(url, "http://", 7) != 0 &&
		    strncasecmp(url, "https://", 8) != 0)
			die("not a URL: '%s'", url);
		return xstrdup(url);
	}
	p = url + 5;
	if (strncmp(p, "datasets/", 9) == 0) {
		kind = "/datasets";
		p += 9;
	} else if (strncmp(p, "spaces/", 7) == 0) {
		kind = "/spaces";
		p += 7;
	} else if (strncmp(p, "models/", 7) == 0) {
		p += 7;
	}
	org = p;
	name = strchr(org, '/');
	if (!name || name == org)
		goto bad;
	name++;
	name_end = strchr(name, '/');
	if (!name_end || name_end == name)
		goto bad;
	path = name_end + 1;
	/* NAME@REV/PATH, huggingface_hub's form */
	for (p = name; p < name_end; p++)
		if (*p == '@') {
			rev = p + 1;
			rev_len = (size_t)(name_end - rev);
			name_end = p;
			break;
		}
	path_len = strlen(path);
	if (!rev) {
		/* PATH@REV: an @ in the last component */
		const char *last = strrchr(path, '/');
		const char *at = strrchr(last ? last : path, '@');

		if (at) {
			rev = at + 1;
			rev_len = strlen(rev);
			path_len = (size_t)(at - path);
		}
	}
	if (name_end == name || path_len == 0 || path[path_len - 1] == '/' ||
	    (rev && rev_len == 0))
		goto bad;
	if (!rev) {
		rev = "main";
		rev_len = 4;
	}
	endpoint = hub_endpoint();
	out = xasprintf("%s%s/%.*s/resolve/", endpoint, kind,
			 (int)(name_end - org), org);
	len = strlen(out);
	free(endpoint);
	/* A revision such as refs/convert/parquet is one path segment, its
	 * slashes encoded, as the hub expects. */
	revbuf = xmalloc(rev_len + 1);
	memcpy(revbuf, rev, rev_len);
	revbuf[rev_len] = '\0';
	append_encoded(&out, &len, revbuf, rev_len, 0);
	free(revbuf);
	out = xrealloc(out, len + 2);
	out[len++] = '/';
	out[len] = '\0';
	append_encoded(&out, &len, path, path_len, 1);
	return out;
bad:
	die("malformed hub URL (want hf://datasets/ORG/NAME[@REV]/PATH): '%s'", url);
}

int hub_owns(const char *url)
{
	char *e = hub_endpoint();
	size_t n = strlen(e);
	int yes = strncasecmp(url, e, n) == 0 && url[n] == '/';

	free(e);
	return yes;
}

char *hub_auth_header(const char *url)
{
	const char *tok = getenv("HF_TOKEN");

	if (!tok || !*tok || !hub_owns(url))
		return NULL;
	return xasprintf("Authorization: Bearer %s", tok);
}
