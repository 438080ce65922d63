/* cache: where downloads rest (one folder for every program, URL paths
 * kept readable), the records that let a later run reuse or resume them,
 * and the offline switch (see cache.h). */
#include "cache.h"
#include "err.h"
#include "io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SIZE (UINT64_C(1) << 50) /* no real file is a petabyte */
#define HASH_CHARS 16               /* URL hash added to unsafe names */

static int env_on(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

int cache_offline(int flag)
{
	return flag || env_on("GPT_OFFLINE") || env_on("HF_HUB_OFFLINE");
}

int cache_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > MAX_SIZE)
			return -1;
	}
	*out = v;
	return 0;
}

char *cache_root_try(const char *dir)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (dir && *dir)
		return xstrdup(dir);
	if (x && x[0] == '/')
		return xasprintf("%s/gpt", x);
	if (home && *home)
		return xasprintf("%s/.cache/gpt", home);
	return NULL;
}

char *cache_root(const char *dir)
{
	char *root = cache_root_try(dir);

	if (!root)
		die("no cache folder: set XDG_CACHE_HOME or HOME, or give a cache folder");
	return root;
}

static int name_char(int c)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_' || c == '+' ||
	       c == '=' || c == ',' || c == '@' || c == '%';
}

/* Appends one sanitised path component; returns 1 when it had to change
 * it (so that the name no longer identifies the URL by itself). */
static int append_component(char **buf, size_t *len, const char *s, size_t n)
{
	int changed = 0;
	size_t i;

	if (n > 120) {
		n = 120;
		changed = 1;
	}
	*buf = xrealloc(*buf, *len + n + 2);
	(*buf)[(*len)++] = '/';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* Names from URLs never start with a dot: hidden names in
		 * the cache are ours, and "." and ".." stay harmless. */
		if (!name_char(c) || (i == 0 && c == '.')) {
			c = '_';
			changed = 1;
		}
		(*buf)[(*len)++] = (char)c;
	}
	(*buf)[*len] = '\0';
	return changed;
}

static void url_hash(const char *url, size_t n, char out[HASH_CHARS + 1])
{
	unsigned char d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];

	sha256(url, n, d);
	sha256_hex(d, hex);
	memcpy(out, hex, HASH_CHARS);
	out[HASH_CHARS] = '\0';
}

/* The cache path of an http(s) URL: ROOT/http/HOST/PATH, with the hash
 * of the URL spliced into the last component ("name-HASH.ext") when the
 * name alone would be ambiguous.  With flat set, the path is instead
 * ROOT/http/.by-hash/HASH-NAME, for URLs whose natural path collides
 * with a folder. */
static char *cache_path_of(const char *url, const char *root, int flat)
{
	const char *p = strstr(url, "://"), *auth, *auth_end, *at, *q;
	size_t len, urllen, last = 0;
	char *buf, h[HASH_CHARS + 1];
	int changed = 0, any = 0;

	if (!p)
		die("not a URL: '%s'", url);
	urllen = strcspn(url, "#");
	url_hash(url, urllen, h);
	auth = p + 3;
	auth_end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(auth_end - auth));
	while (at) {  /* user:password@ never names the file */
		auth = at + 1;
		at = memchr(auth, '@', (size_t)(auth_end - auth));
	}
	buf = xasprintf("%s/http", root);
	len = strlen(buf);
	if (auth_end == auth)
		die("URL without a host: '%s'", url);
	{
		/* host:port -> host_port; a host name has no '_' of its own */
		char *host = xmalloc((size_t)(auth_end - auth) + 1), *c;

		memcpy(host, auth, (size_t)(auth_end - auth));
		host[auth_end - auth] = '\0';
		for (c = host; *c; c++)
			if (*c == ':')
				*c = '_';
		changed |= append_component(&buf, &len, host, strlen(host));
		free(host);
	}
	{
		/* host names compare without case */
		char *hs = strrchr(buf, '/');

		for (; *hs; hs++)
			*hs = (char)tolower((unsigned char)*hs);
	}
	if (flat) {
		const char *end = auth_end + strcspn(auth_end, "?#"), *base = end;
		char *name = NULL;
		size_t nlen = 0;

		while (base > auth_end && base[-1] != '/')
			base--;
		append_component(&name, &nlen, base, (size_t)(end - base));
		free(buf);
		buf = xasprintf("%s/http/.by-hash/%s-%s", root, h, name + 1);
		free(name);
		return buf;
	}
	p = auth_end;
	q = p + strcspn(p, "?#");
	while (p < q) {
		const char *s = p + (*p == '/');
		const char *e = s;

		while (e < q && *e != '/')
			e++;
		p = e;
		if (e == s || (e - s == 1 && *s == '.'))
			continue;
		last = len + 1;
		changed |= append_component(&buf, &len, s, (size_t)(e - s));
		any = 1;
	}
	if (!any) {
		last = len + 1;
		append_component(&buf, &len, "index", 5);
		changed = 1;
	}
	if (*q == '?')
		changed = 1;
	if (changed) {
		/* name-HASH.ext keeps the extension for readers that look */
		char *name = buf + last, *dot = strrchr(name, '.');
		size_t at_pos = dot && dot != name ? (size_t)(dot - buf) : len;

		buf = xrealloc(buf, len + HASH_CHARS + 2);
		memmove(buf + at_pos + HASH_CHARS + 1, buf + at_pos, len - at_pos + 1);
		buf[at_pos] = '-';
		memcpy(buf + at_pos + 1, h, HASH_CHARS);
		len += HASH_CHARS + 1;
	}
	return buf;
}

/* A path is usable when its folder can exist and it is not a folder. */
static int path_usable(const char *path)
{
	char *dir = xstrdup(path);
	struct stat st;
	int ok;

	*strrchr(dir, '/') = '\0';
	ok = io_try_mkdirs(dir) == 0;
	free(dir);
	if (ok && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		ok = 0;
	return ok;
}

char *cache_path(const char *url, const char *dir)
{
	char *root = cache_root(dir);
	char *path = cache_path_of(url, root, 0);

	if (!path_usable(path)) {
		free(path);
		path = cache_path_of(url, root, 1);
		if (!path_usable(path))
			die_errno("cannot create the cache folder for '%s'", path);
	}
	free(root);
	return path;
}

/* Beside the cached file NAME: ".NAME~meta", ".NAME~part",
 * ".NAME~partmeta", ".NAME~lock".  '~' never occurs in names from URLs. */
char *cache_side_path(const char *path, const char *what)
{
	const char *slash = strrchr(path, '/');

	return xasprintf("%.*s.%s~%s", (int)(slash - path + 1), path,
			  slash + 1, what);
}

int cache_meta_read(const char *path, struct cache_meta *m)
{
	char buf[4096], *line, *save = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(m, 0, sizeof *m);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');

		if (!v)
			continue;
		*v++ = '\0';
		if (strcmp(line, "size") == 0)
			m->has_size = cache_parse_size(v, &m->size) == 0;
		else if (strcmp(line, "etag") == 0)
			snprintf(m->etag, CACHE_FIELD, "%s", v);
		else if (strcmp(line, "linked-etag") == 0)
			snprintf(m->linked_etag, CACHE_FIELD, "%s", v);
		else if (strcmp(line, "last-modified") == 0)
			snprintf(m->lastmod, CACHE_FIELD, "%s", v);
		else if (strcmp(line, "sha256") == 0 && strlen(v) == SHA256_HEX_LEN)
			memcpy(m->sha256, v, SHA256_HEX_LEN + 1);
	}
	return 0;
}

/* Written under a temporary name and renamed, so a reader sees the old
 * or the new record, never half of one. */
void cache_meta_write(const char *path, const struct cache_meta *m, const char *url)
{
	char *tmp = xasprintf("%s.tmp", path), *text;
	size_t cap = strlen(url) + 4 * CACHE_FIELD + 256, n = 0;
	int fd;

	text = xmalloc(cap);
	n += (size_t)snprintf(text + n, cap - n, "url %s\n", url);
	if (m->has_size)
		n += (size_t)snprintf(text + n, cap - n, "size %llu\n",
				      (unsigned long long)m->size);
	if (m->etag[0])
		n += (size_t)snprintf(text + n, cap - n, "etag %s\n", m->etag);
	if (m->linked_etag[0])
		n += (size_t)snprintf(text + n, cap - n, "linked-etag %s\n",
				      m->linked_etag);
	if (m->lastmod[0])
		n += (size_t)snprintf(text + n, cap - n, "last-modified %s\n",
				      m->lastmod);
	if (m->sha256[0])
		n += (size_t)snprintf(text + n, cap - n, "sha256 %s\n", m->sha256);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0 ||
	    close(fd) != 0 || rename(tmp, path) != 0)
		die_errno("cannot write '%s'", tmp);
	free(text);
	free(tmp);
}

/* Does the cached file match the expected digest?  Uses the recorded
 * digest when there is one. */
int cache_sha_ok(const char *path, const char *want)
{
	struct cache_meta m;
	char got[SHA256_HEX_LEN + 1], *metap;
	int have;

	if (!want)
		return 1;
	metap = cache_side_path(path, "meta");
	have = cache_meta_read(metap, &m) == 0 && m.sha256[0];
	free(metap);
	if (have)
		return strcasecmp(m.sha256, want) == 0;
	return sha256_file_hex(path, got) == 0 && strcasecmp(got, want) == 0;
}
