/* http: URLs (https://, hf://) turned into complete local files through a
 * cache, with resume, retries and verification, so that a flaky network
 * never leaves a corrupt file where a program will read it (see http.h). */
#include "http.h"
#include "err.h"
#include "progress.h"
#include "sha256.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT "https://huggingface.co"
#define DEFAULT_RETRIES 6
#define MAX_BACKOFF_UNITS 30        /* exponential backoff cap, in units */
#define MAX_RETRY_AFTER_S 300
#define MAX_SIZE (UINT64_C(1) << 50) /* no real file is a petabyte */
#define FIELD 256                   /* ETag and friends, truncated beyond */
#define HASH_CHARS 16               /* URL hash added to unsafe names */

/* ---------- small helpers ---------- */

static int env_on(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("cannot format a string");
	s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Decimal u64 no larger than MAX_SIZE; -1 when malformed. */
static int parse_size(const char *s, uint64_t *out)
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

static void copy_field(char dst[FIELD], const char *src, size_t n)
{
	if (n >= FIELD)
		n = FIELD - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int mkdir_p(const char *path)
{
	char *p, *s;
	int rc = 0;

	if (!*path) {
		errno = ENOENT;
		return -1;
	}
	p = xstrdup(path);
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0755) != 0 && errno != EEXIST) {
				rc = -1;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	if (rc == 0) {
		struct stat st;

		if (stat(path, &st) != 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
	}
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long backoff_unit_ms(void)
{
	const char *v = getenv("GPT_HTTP_BACKOFF_MS");
	uint64_t ms;

	if (v && *v && parse_size(v, &ms) == 0 && ms <= 60000)
		return (long)ms;
	return 1000;
}

/* ---------- URLs ---------- */

int http_is_url(const char *s)
{
	return s && (strncasecmp(s, "http://", 7) == 0 ||
		     strncasecmp(s, "https://", 8) == 0 ||
		     strncasecmp(s, "hf://", 5) == 0);
}

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

char *http_resolve(const char *url)
{
	const char *p, *org, *name, *name_end, *path, *rev = NULL;
	const char *kind = "";
	size_t rev_len = 0, path_len, len = 0;
	char *endpoint, *out = NULL, *revbuf;

	if (strncasecmp(url, "hf://", 5) != 0) {
		if (!http_is_url(url))
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
	out = str_printf("%s%s/%.*s/resolve/", endpoint, kind,
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

static int is_hub_url(const char *url)
{
	char *e = hub_endpoint();
	size_t n = strlen(e);
	int yes = strncasecmp(url, e, n) == 0 && url[n] == '/';

	free(e);
	return yes;
}

/* ---------- the cache layout ---------- */

static char *cache_root(const struct http_opts *o)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (o && o->cache_dir && *o->cache_dir)
		return xstrdup(o->cache_dir);
	if (x && x[0] == '/')
		return str_printf("%s/gpt", x);
	if (home && *home)
		return str_printf("%s/.cache/gpt", home);
	die("no cache folder: set XDG_CACHE_HOME or HOME, or give a cache folder");
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
	buf = str_printf("%s/http", root);
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
		buf = str_printf("%s/http/.by-hash/%s-%s", root, h, name + 1);
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
	ok = mkdir_p(dir) == 0;
	free(dir);
	if (ok && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		ok = 0;
	return ok;
}

char *http_cache_path(const char *url, const struct http_opts *o)
{
	char *u = http_resolve(url), *root = cache_root(o);
	char *path = cache_path_of(u, root, 0);

	if (!path_usable(path)) {
		free(path);
		path = cache_path_of(u, root, 1);
		if (!path_usable(path))
			die_errno("cannot create the cache folder for '%s'", path);
	}
	free(u);
	free(root);
	return path;
}

/* Beside the cached file NAME: ".NAME~meta", ".NAME~part",
 * ".NAME~partmeta", ".NAME~lock".  '~' never occurs in names from URLs. */
static char *side_path(const char *path, const char *what)
{
	const char *slash = strrchr(path, '/');

	return str_printf("%.*s.%s~%s", (int)(slash - path + 1), path,
			  slash + 1, what);
}

/* ---------- metadata of a cached or partial file ---------- */

struct meta {
	uint64_t size;
	int has_size;
	char etag[FIELD];         /* the serving response's ETag (If-Range) */
	char linked_etag[FIELD];  /* the hub's X-Linked-Etag */
	char lastmod[FIELD];
	char sha256[SHA256_HEX_LEN + 1];
};

static int meta_read(const char *path, struct meta *m)
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
			m->has_size = parse_size(v, &m->size) == 0;
		else if (strcmp(line, "etag") == 0)
			copy_field(m->etag, v, strlen(v));
		else if (strcmp(line, "linked-etag") == 0)
			copy_field(m->linked_etag, v, strlen(v));
		else if (strcmp(line, "last-modified") == 0)
			copy_field(m->lastmod, v, strlen(v));
		else if (strcmp(line, "sha256") == 0 && strlen(v) == SHA256_HEX_LEN)
			memcpy(m->sha256, v, SHA256_HEX_LEN + 1);
	}
	return 0;
}

/* Written under a temporary name and renamed, so a reader sees the old
 * or the new record, never half of one. */
static void meta_write(const char *path, const struct meta *m, const char *url)
{
	char *tmp = str_printf("%s.tmp", path), *text;
	size_t cap = strlen(url) + 4 * FIELD + 256, n = 0;
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

/* ---------- one transfer ---------- */

/* Headers of the response being received.  Per-response fields reset at
 * every status line (redirects); the hub's X-Linked-* come from its
 * redirect and are kept across the chain. */
struct resp {
	long status;
	uint64_t clen;
	int has_clen;
	uint64_t range_start, range_total;
	int has_range, has_range_total;
	char etag[FIELD], lastmod[FIELD];
	uint64_t linked_size;
	int has_linked_size;
	char linked_etag[FIELD];
	long retry_after_s;       /* -1 when absent */
};

static void resp_reset(struct resp *r, int keep_linked)
{
	uint64_t ls = r->linked_size;
	int hls = r->has_linked_size;
	char le[FIELD];

	memcpy(le, r->linked_etag, FIELD);
	memset(r, 0, sizeof *r);
	r->retry_after_s = -1;
	if (keep_linked) {
		r->linked_size = ls;
		r->has_linked_size = hls;
		memcpy(r->linked_etag, le, FIELD);
	}
}

struct xfer {
	const char *url;
	const char *part;         /* for messages */
	int fd;                   /* the partial file */
	uint64_t offset;          /* bytes in it */
	uint64_t asked;           /* Range start requested, 0 for all */
	struct sha256 sha;        /* digest of bytes [0, offset) */
	struct resp r;
	int started;              /* the body of this attempt has begun */
	int restart;              /* abort: the reply does not continue us */
	int write_errno;          /* abort: the disk failed */
	struct meta *cur;         /* what we believe we are downloading */
	const char *partmeta;
	struct progress prog;
	int body_ok;              /* status 200/206 */
};

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct resp *r = &x->r;
	size_t n = size * nmemb, k;
	char line[1024], *v;

	k = n < sizeof line - 1 ? n : sizeof line - 1;
	memcpy(line, data, k);
	line[k] = '\0';
	while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == '\n'))
		line[--k] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		char *sp = strchr(line, ' ');

		resp_reset(r, 1);
		if (sp)
			r->status = strtol(sp + 1, NULL, 10);
		return n;
	}
	v = strchr(line, ':');
	if (!v)
		return n;
	*v++ = '\0';
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(line, "content-length") == 0) {
		r->has_clen = parse_size(v, &r->clen) == 0;
	} else if (strcasecmp(line, "etag") == 0) {
		copy_field(r->etag, v, strlen(v));
	} else if (strcasecmp(line, "last-modified") == 0) {
		copy_field(r->lastmod, v, strlen(v));
	} else if (strcasecmp(line, "x-linked-size") == 0) {
		r->has_linked_size = parse_size(v, &r->linked_size) == 0;
	} else if (strcasecmp(line, "x-linked-etag") == 0) {
		copy_field(r->linked_etag, v, strlen(v));
	} else if (strcasecmp(line, "content-range") == 0) {
		/* bytes START-END/TOTAL, TOTAL may be '*' */
		uint64_t a, b;
		char *dash, *slash;

		if (strncasecmp(v, "bytes ", 6) == 0 && parse_size(v + 6, &a) == 0 &&
		    (dash = strchr(v, '-')) && parse_size(dash + 1, &b) == 0 &&
		    b >= a) {
			r->range_start = a;
			r->has_range = 1;
			slash = strchr(dash, '/');
			if (slash && parse_size(slash + 1, &r->range_total) == 0 &&
			    r->range_total > b)
				r->has_range_total = 1;
		}
	} else if (strcasecmp(line, "retry-after") == 0) {
		uint64_t s;

		if (parse_size(v, &s) == 0) {
			r->retry_after_s = s > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : (long)s;
		} else {
			time_t t = curl_getdate(v, NULL), now = time(NULL);

			if (t > 0)
				r->retry_after_s = t <= now ? 0 :
					t - now > MAX_RETRY_AFTER_S ?
					MAX_RETRY_AFTER_S : (long)(t - now);
		}
	}
	return n;
}

static void part_truncate(struct xfer *x)
{
	if (ftruncate(x->fd, 0) != 0)
		die_errno("cannot truncate '%s'", x->part);
	x->offset = 0;
	sha256_init(&x->sha);
}

static int weak_etag(const char *e)
{
	return e[0] == 'W' && e[1] == '/';
}

/* The first bytes of a body: decide whether they continue our file. */
static int body_begin(struct xfer *x)
{
	struct resp *r = &x->r;
	struct meta *m = x->cur;

	x->started = 1;
	x->body_ok = r->status == 200 || r->status == 206;
	if (!x->body_ok)
		return 1;
	if (r->status == 206) {
		/* A range that is not the one we asked for, or a file that
		 * changed under us, cannot be appended. */
		if (!x->asked || !r->has_range || r->range_start != x->offset ||
		    (m->etag[0] && r->etag[0] && strcmp(m->etag, r->etag) != 0) ||
		    (m->has_size && r->has_range_total && m->size != r->range_total)) {
			x->restart = 1;
			return 0;
		}
		return 1;
	}
	/* 200: the whole file, whatever we asked; start it afresh. */
	if (x->offset)
		part_truncate(x);
	memset(m, 0, sizeof *m);
	m->has_size = r->has_clen;
	m->size = r->clen;
	memcpy(m->etag, r->etag, FIELD);
	memcpy(m->lastmod, r->lastmod, FIELD);
	memcpy(m->linked_etag, r->linked_etag, FIELD);
	if (r->has_linked_size && !m->has_size) {
		m->has_size = 1;
		m->size = r->linked_size;
	}
	meta_write(x->partmeta, m, x->url);
	x->prog.total = m->has_size ? m->size : 0;
	return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, done = 0;

	if (!x->started && !body_begin(x))
		return 0;
	if (!x->body_ok)
		return n;   /* an error page: read and forget */
	while (done < n) {
		ssize_t w = pwrite(x->fd, data + done, n - done,
				   (off_t)(x->offset + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->write_errno = w < 0 ? errno : EIO;
			return 0;
		}
		done += (size_t)w;
	}
	sha256_update(&x->sha, data, n);
	x->offset += n;
	progress_update(&x->prog, x->offset);
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		die("cannot initialise libcurl");
}

static CURL *easy_new(const char *url, struct xfer *x, struct curl_slist **hdrs,
		      char *errbuf)
{
	CURL *c;
	const char *tok = getenv("HF_TOKEN");

	pthread_once(&curl_once, curl_start);
	c = curl_easy_init();
	if (!c)
		die("cannot initialise libcurl");
	*hdrs = NULL;
	if (tok && *tok && is_hub_url(url)) {
		char *h = str_printf("Authorization: Bearer %s", tok);

		*hdrs = curl_slist_append(*hdrs, h);
		free(h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gpt/" GPT_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A stalled connection counts as dropped: under 1 KB/s for 60 s. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	errbuf[0] = '\0';
	return c;
}

static int retryable_status(long s)
{
	return s == 408 || s == 429 || (s >= 500 && s <= 599);
}

static int retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* curl's message for rc, first letter lowered to match ours. */
static void curl_why(char *why, size_t n, const char *errbuf, CURLcode rc)
{
	snprintf(why, n, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	why[0] = (char)tolower((unsigned char)why[0]);
}

static int max_retries(const struct http_opts *o)
{
	if (!o || o->max_retries == 0)
		return DEFAULT_RETRIES;
	return o->max_retries < 0 ? 0 : o->max_retries;
}

/* Waits before retry number fails (1-based), reporting why. */
static void backoff(const struct http_opts *o, const char *url, int fails,
		    const char *why, long retry_after_s)
{
	long unit = backoff_unit_ms(), ms = unit;
	int i;

	for (i = 1; i < fails && ms < MAX_BACKOFF_UNITS * unit; i++)
		ms *= 2;
	if (ms > MAX_BACKOFF_UNITS * unit)
		ms = MAX_BACKOFF_UNITS * unit;
	if (retry_after_s >= 0 && retry_after_s * unit > ms)
		ms = retry_after_s * unit;
	warnx("%s, retry %d of %d in %.3g s: '%s'", why, fails, max_retries(o),
	      (double)ms / 1000.0, url);
	sleep_ms(ms);
}

static const char *status_hint(const char *url, long s)
{
	if ((s == 401 || s == 403) && is_hub_url(url))
		return " (a private or gated repository? set HF_TOKEN)";
	if (s == 404)
		return " (not found)";
	return "";
}

/* HEAD the URL: fills r and returns 0, or -1 when no answer came (after
 * retries for transient failures). */
static int http_head(const char *url, const struct http_opts *o, struct resp *r)
{
	struct xfer x;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	int fails = 0;

	for (;;) {
		CURL *c;
		CURLcode rc;
		char why[CURL_ERROR_SIZE + 64];

		memset(&x, 0, sizeof x);
		resp_reset(&x.r, 0);
		c = easy_new(url, &x, &hdrs, errbuf);
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		if (hdrs)
			curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		rc = curl_easy_perform(c);
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		if (rc == CURLE_OK && !retryable_status(x.r.status)) {
			*r = x.r;
			return 0;
		}
		/* A host that cannot be reached at all: use the cache now
		 * rather than after a minute of backoff. */
		if ((rc != CURLE_OK && !retryable_curl(rc)) ||
		    rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
		    ++fails > max_retries(o))
			return -1;
		if (rc != CURLE_OK)
			curl_why(why, sizeof why, errbuf, rc);
		else
			snprintf(why, sizeof why, "HTTP %ld", x.r.status);
		backoff(o, url, fails, why, x.r.retry_after_s);
	}
}

static int is_sha256_hex(const char *s, char out[SHA256_HEX_LEN + 1])
{
	size_t i, n;

	if (weak_etag(s))
		s += 2;
	if (*s == '"')
		s++;
	n = strcspn(s, "\"");
	if (n != SHA256_HEX_LEN)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return 0;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[n] = '\0';
	return 1;
}

/* Re-reads the partial file to rebuild the digest of its first offset
 * bytes (resuming a download left by an earlier run). */
static void rehash_part(struct xfer *x)
{
	unsigned char buf[1 << 16];
	uint64_t done = 0;

	sha256_init(&x->sha);
	while (done < x->offset) {
		size_t want = x->offset - done < sizeof buf ?
			(size_t)(x->offset - done) : sizeof buf;
		ssize_t r = pread(x->fd, buf, want, (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die_errno("cannot read '%s'", x->part);
		sha256_update(&x->sha, buf, (size_t)r);
		done += (size_t)r;
	}
}

/* A finished download that fails a check is deleted, never cached. */
static void fail_verify(struct xfer *x, const char *what) __attribute__((noreturn));
static void fail_verify(struct xfer *x, const char *what)
{
	close(x->fd);
	unlink(x->part);
	unlink(x->partmeta);
	die("%s: '%s'", what, x->url);
}

/* Before dying of a failed download: keep a partial file worth resuming,
 * remove an empty one. */
static void give_up(struct xfer *x)
{
	progress_end(&x->prog);
	close(x->fd);
	if (x->offset == 0) {
		unlink(x->part);
		unlink(x->partmeta);
	}
}

static void sync_dir(const char *path)
{
	char *dir = xstrdup(path);
	int fd;

	*strrchr(dir, '/') = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* Downloads url into path (via its partial file), checked. */
static void download(const char *url, const char *path,
		     const struct http_opts *o)
{
	char *part = side_path(path, "part"), *partmeta = side_path(path, "partmeta");
	char *metap = side_path(path, "meta");
	const char *label;
	struct meta cur, fin;
	struct xfer x;
	struct stat st;
	uint64_t high = 0;
	int fails = 0;
	unsigned char digest[SHA256_LEN];
	char got[SHA256_HEX_LEN + 1], want[SHA256_HEX_LEN + 1], msg[512];

	memset(&x, 0, sizeof x);
	x.url = url;
	x.part = part;
	x.partmeta = partmeta;
	x.cur = &cur;
	x.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (x.fd < 0 || fstat(x.fd, &st) != 0)
		die_errno("cannot open '%s'", part);
	/* A partial file from an earlier run continues only when we can
	 * ask the server whether it is still the same file. */
	if (st.st_size > 0 && meta_read(partmeta, &cur) == 0 &&
	    ((cur.etag[0] && !weak_etag(cur.etag)) || cur.lastmod[0]) &&
	    (!cur.has_size || (uint64_t)st.st_size <= cur.size)) {
		x.offset = (uint64_t)st.st_size;
		rehash_part(&x);
	} else {
		memset(&cur, 0, sizeof cur);
		part_truncate(&x);
	}
	high = x.offset;
	label = o && o->label ? o->label : strrchr(path, '/') + 1;
	progress_init(&x.prog, o && o->quiet_progress ? PROGRESS_QUIET :
		      o && o->force_progress ? PROGRESS_FORCE : PROGRESS_AUTO,
		      label, "B", cur.has_size ? cur.size : 0);
	for (;;) {
		struct curl_slist *hdrs;
		char errbuf[CURL_ERROR_SIZE], why[CURL_ERROR_SIZE + 64];
		char range[48];
		CURL *c;
		CURLcode rc;
		int done = 0;

		x.started = x.restart = x.write_errno = x.body_ok = 0;
		resp_reset(&x.r, 0);
		x.asked = x.offset;
		c = easy_new(url, &x, &hdrs, errbuf);
		if (x.offset) {
			const char *v = cur.etag[0] && !weak_etag(cur.etag) ?
				cur.etag : cur.lastmod[0] ? cur.lastmod : NULL;

			snprintf(range, sizeof range, "%llu-",
				 (unsigned long long)x.offset);
			curl_easy_setopt(c, CURLOPT_RANGE, range);
			if (v) {
				char *h = str_printf("If-Range: %s", v);

				hdrs = curl_slist_append(hdrs, h);
				free(h);
			}
		}
		if (hdrs)
			curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		rc = curl_easy_perform(c);
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		if (x.write_errno) {
			errno = x.write_errno;
			die_errno("cannot write '%s'", part);
		}
		/* A body-less 200/206 (an empty file) never called on_body. */
		if (rc == CURLE_OK && !x.started &&
		    (x.r.status == 200 || x.r.status == 206))
			body_begin(&x);
		why[0] = '\0';
		if (x.restart) {
			snprintf(why, sizeof why, "the server's range does not continue the file");
			part_truncate(&x);
		} else if (rc == CURLE_OK && (x.r.status == 200 || x.r.status == 206)) {
			uint64_t want_size = cur.has_size ? cur.size : 0;

			if (x.r.status == 206 && x.r.has_range_total)
				want_size = x.r.range_total;
			if ((cur.has_size || x.r.has_range_total) && x.offset != want_size)
				snprintf(why, sizeof why, "incomplete: %llu of %llu bytes",
					 (unsigned long long)x.offset,
					 (unsigned long long)want_size);
			else
				done = 1;
		} else if (rc == CURLE_OK && x.r.status == 416) {
			if (cur.has_size && x.offset == cur.size) {
				done = 1;
			} else {
				snprintf(why, sizeof why, "HTTP 416 for bytes %llu-",
					 (unsigned long long)x.offset);
				part_truncate(&x);
			}
		} else if (rc == CURLE_OK && !retryable_status(x.r.status)) {
			give_up(&x);
			die("cannot download: HTTP %ld%s: '%s'", x.r.status,
			    status_hint(url, x.r.status), url);
		} else if (rc == CURLE_OK) {
			snprintf(why, sizeof why, "HTTP %ld", x.r.status);
		} else if (retryable_curl(rc)) {
			curl_why(why, sizeof why, errbuf, rc);
		} else {
			give_up(&x);
			curl_why(why, sizeof why, errbuf, rc);
			die("cannot download: %s: '%s'", why, url);
		}
		if (done)
			break;
		if (x.offset > high) {
			high = x.offset;
			fails = 0;
		}
		if (++fails > max_retries(o)) {
			give_up(&x);
			die("cannot download after %d attempts (%s): '%s'", fails,
			    why, url);
		}
		progress_end(&x.prog);
		backoff(o, url, fails, why, x.r.retry_after_s);
	}
	progress_end(&x.prog);

	/* Verify before anything takes the final name. */
	if (cur.has_size && x.offset != cur.size) {
		snprintf(msg, sizeof msg, "size mismatch: got %llu bytes, expected %llu",
			 (unsigned long long)x.offset, (unsigned long long)cur.size);
		fail_verify(&x, msg);
	}
	if (x.r.has_linked_size && x.offset != x.r.linked_size) {
		snprintf(msg, sizeof msg, "size mismatch: got %llu bytes, the hub says %llu",
			 (unsigned long long)x.offset,
			 (unsigned long long)x.r.linked_size);
		fail_verify(&x, msg);
	}
	sha256_final(&x.sha, digest);
	sha256_hex(digest, got);
	if (is_sha256_hex(cur.linked_etag, want) && strcmp(got, want) != 0) {
		snprintf(msg, sizeof msg, "sha256 mismatch: got %s, the hub says %s",
			 got, want);
		fail_verify(&x, msg);
	}
	if (o && o->sha256 && strcasecmp(got, o->sha256) != 0) {
		snprintf(msg, sizeof msg, "sha256 mismatch: got %s, expected %.64s",
			 got, o->sha256);
		fail_verify(&x, msg);
	}
	if (fsync(x.fd) != 0 || close(x.fd) != 0)
		die_errno("cannot write '%s'", part);

	fin = cur;
	fin.has_size = 1;
	fin.size = x.offset;
	memcpy(fin.sha256, got, sizeof got);
	/* Remove the old record first: a crash between the steps leaves a
	 * file without a record (checked by size) rather than a file with
	 * another file's record. */
	unlink(metap);
	if (rename(part, path) != 0)
		die_errno("cannot rename '%s' to '%s'", part, path);
	meta_write(metap, &fin, url);
	unlink(partmeta);
	sync_dir(path);
	free(part);
	free(partmeta);
	free(metap);
}

/* Does the cached file match the expected digest?  Uses the recorded
 * digest when there is one. */
static int cached_sha_ok(const char *path, const char *metap, const char *want)
{
	struct meta m;
	char got[SHA256_HEX_LEN + 1];

	if (!want)
		return 1;
	if (meta_read(metap, &m) == 0 && m.sha256[0])
		return strcasecmp(m.sha256, want) == 0;
	return sha256_file_hex(path, got) == 0 && strcasecmp(got, want) == 0;
}

/* Is the cached file what the server offers now? */
static int cached_fresh(const char *url, const char *path, const char *metap,
			const struct http_opts *o)
{
	struct resp r;
	struct meta m;
	struct stat st;
	uint64_t size;
	int has_size;
	const char *etag, *mine;

	if (stat(path, &st) != 0)
		return 0;
	if (http_head(url, o, &r) != 0) {
		warnx("cannot check for a newer version, using the cached file: '%s'", url);
		return 1;
	}
	if (r.status == 405 || r.status == 501)
		return 1;   /* no HEAD here: trust the cache */
	if (r.status < 200 || r.status > 299) {
		warnx("HTTP %ld when checking for a newer version, using the cached file: '%s'",
		      r.status, url);
		return 1;
	}
	if (meta_read(metap, &m) != 0)
		memset(&m, 0, sizeof m);
	has_size = r.has_linked_size || r.has_clen;
	size = r.has_linked_size ? r.linked_size : r.clen;
	if (has_size && size != (uint64_t)st.st_size)
		return 0;
	etag = r.linked_etag[0] ? r.linked_etag : r.etag;
	mine = r.linked_etag[0] ? m.linked_etag : m.etag;
	if (etag[0] && mine[0] && strcmp(etag, mine) != 0)
		return 0;
	return 1;
}

static int is_offline(const struct http_opts *o)
{
	return (o && o->offline) || env_on("GPT_OFFLINE") || env_on("HF_HUB_OFFLINE");
}

char *http_fetch(const char *url, const struct http_opts *o)
{
	char *u = http_resolve(url), *path = http_cache_path(url, o);
	char *metap = side_path(path, "meta"), *lockp;
	struct stat st;
	int lock, have;

	if (o && o->sha256) {
		char tmp[SHA256_HEX_LEN + 1];

		if (!is_sha256_hex(o->sha256, tmp) || strlen(o->sha256) != SHA256_HEX_LEN)
			die("not a sha256 digest (64 hex digits): '%s'", o->sha256);
	}
	have = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (is_offline(o)) {
		if (!have)
			die("not in the cache, and offline (unset GPT_OFFLINE or drop --offline): '%s'",
			    url);
		if (!cached_sha_ok(path, metap, o ? o->sha256 : NULL))
			die("cached file does not match the expected sha256: '%s'", path);
		goto out;
	}
	lockp = side_path(path, "lock");
	lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock < 0)
		die_errno("cannot open '%s'", lockp);
	if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			die_errno("cannot lock '%s'", lockp);
		warnx("waiting for another download of '%s'", url);
		if (flock(lock, LOCK_EX) != 0)
			die_errno("cannot lock '%s'", lockp);
		/* It may have just finished: look again. */
	}
	have = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (!have || !cached_fresh(u, path, metap, o) ||
	    !cached_sha_ok(path, metap, o ? o->sha256 : NULL))
		download(u, path, o);
	close(lock);   /* releases the lock */
	free(lockp);
out:
	free(u);
	free(metap);
	return path;
}
