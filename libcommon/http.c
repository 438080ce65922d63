/* http: the transfer.  URLs (https://, hf://) turned into complete local
 * files in the cache, with resume, retries and verification, so that a
 * flaky network never leaves a corrupt file where a program will read it
 * (see http.h; names in hub.c, the cache's layout in cache.c). */
#include "http.h"
#include "cache.h"
#include "err.h"
#include "hub.h"
#include "io.h"
#include "progress.h"
#include "sha1.h"
#include "sha256.h"

/* the calls below go through lc, whose pointers typecheck-gcc.h's macros
 * would not take */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* libcurl is opened by the first transfer, not when the program starts:
 * every tool that may download a vocabulary has this file, and loading
 * libcurl with the thirty libraries it needs cost 3 ms of CPU at each
 * start, a twentieth of gpt-tokenize's run over a 14 MB text. */
static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	time_t (*getdate)(const char *, const time_t *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} lc;
#undef curl_easy_setopt
#define curl_global_init lc.global_init
#define curl_easy_init lc.easy_init
#define curl_easy_setopt lc.easy_setopt
#define curl_easy_perform lc.easy_perform
#define curl_easy_cleanup lc.easy_cleanup
#define curl_easy_strerror lc.easy_strerror
#define curl_getdate lc.getdate
#define curl_slist_append lc.slist_append
#define curl_slist_free_all lc.slist_free_all

#define DEFAULT_RETRIES 6
#define MAX_BACKOFF_UNITS 30        /* exponential backoff cap, in units */
#define MAX_RETRY_AFTER_S 300

/* ---------- small helpers ---------- */

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

	if (v && *v && cache_parse_size(v, &ms) == 0 && ms <= 60000)
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
	char etag[CACHE_FIELD], lastmod[CACHE_FIELD];
	uint64_t linked_size;
	int has_linked_size;
	char linked_etag[CACHE_FIELD];
	long retry_after_s;       /* -1 when absent */
};

static void resp_reset(struct resp *r, int keep_linked)
{
	uint64_t ls = r->linked_size;
	int hls = r->has_linked_size;
	char le[CACHE_FIELD];

	memcpy(le, r->linked_etag, CACHE_FIELD);
	memset(r, 0, sizeof *r);
	r->retry_after_s = -1;
	if (keep_linked) {
		r->linked_size = ls;
		r->has_linked_size = hls;
		memcpy(r->linked_etag, le, CACHE_FIELD);
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
	struct cache_meta *cur;         /* what we believe we are downloading */
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
		r->has_clen = cache_parse_size(v, &r->clen) == 0;
	} else if (strcasecmp(line, "etag") == 0) {
		snprintf(r->etag, CACHE_FIELD, "%s", v);
	} else if (strcasecmp(line, "last-modified") == 0) {
		snprintf(r->lastmod, CACHE_FIELD, "%s", v);
	} else if (strcasecmp(line, "x-linked-size") == 0) {
		r->has_linked_size = cache_parse_size(v, &r->linked_size) == 0;
	} else if (strcasecmp(line, "x-linked-etag") == 0) {
		snprintf(r->linked_etag, CACHE_FIELD, "%s", v);
	} else if (strcasecmp(line, "content-range") == 0) {
		/* bytes START-END/TOTAL, TOTAL may be '*' */
		uint64_t a, b;
		char *dash, *slash;

		if (strncasecmp(v, "bytes ", 6) == 0 && cache_parse_size(v + 6, &a) == 0 &&
		    (dash = strchr(v, '-')) && cache_parse_size(dash + 1, &b) == 0 &&
		    b >= a) {
			r->range_start = a;
			r->has_range = 1;
			slash = strchr(dash, '/');
			if (slash && cache_parse_size(slash + 1, &r->range_total) == 0 &&
			    r->range_total > b)
				r->has_range_total = 1;
		}
	} else if (strcasecmp(line, "retry-after") == 0) {
		uint64_t s;

		if (cache_parse_size(v, &s) == 0) {
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
	struct cache_meta *m = x->cur;

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
	memcpy(m->etag, r->etag, CACHE_FIELD);
	memcpy(m->lastmod, r->lastmod, CACHE_FIELD);
	memcpy(m->linked_etag, r->linked_etag, CACHE_FIELD);
	if (r->has_linked_size && !m->has_size) {
		m->has_size = 1;
		m->size = r->linked_size;
	}
	cache_meta_write(x->partmeta, m, x->url);
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

static void *curl_sym(void *lib, const char *name)
{
	void *f = dlsym(lib, name);

	if (!f)
		die("libcurl has no %s: %s", name, dlerror());
	return f;
}

static void curl_start(void)
{
	/* Debian's OpenSSL build, its GnuTLS one, then whatever is there */
	static const char *const names[] = { "libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so" };
	void *lib = NULL;
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
		lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		die("cannot load libcurl (libcurl.so.4), needed to download: %s", dlerror());
	*(void **)&lc.global_init = curl_sym(lib, "curl_global_init");
	*(void **)&lc.easy_init = curl_sym(lib, "curl_easy_init");
	*(void **)&lc.easy_setopt = curl_sym(lib, "curl_easy_setopt");
	*(void **)&lc.easy_perform = curl_sym(lib, "curl_easy_perform");
	*(void **)&lc.easy_cleanup = curl_sym(lib, "curl_easy_cleanup");
	*(void **)&lc.easy_strerror = curl_sym(lib, "curl_easy_strerror");
	*(void **)&lc.getdate = curl_sym(lib, "curl_getdate");
	*(void **)&lc.slist_append = curl_sym(lib, "curl_slist_append");
	*(void **)&lc.slist_free_all = curl_sym(lib, "curl_slist_free_all");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		die("cannot initialise libcurl");
}

static CURL *easy_new(const char *url, struct xfer *x, struct curl_slist **hdrs,
		      char *errbuf)
{
	CURL *c;
	char *auth = hub_auth_header(url);

	pthread_once(&curl_once, curl_start);
	c = curl_easy_init();
	if (!c)
		die("cannot initialise libcurl");
	*hdrs = NULL;
	if (auth) {
		*hdrs = curl_slist_append(*hdrs, auth);
		free(auth);
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
	if ((s == 401 || s == 403) && hub_owns(url))
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

/* Downloads url into path (via its partial file), checked. */
static void download(const char *url, const char *path,
		     const struct http_opts *o)
{
	char *part = cache_side_path(path, "part"), *partmeta = cache_side_path(path, "partmeta");
	char *metap = cache_side_path(path, "meta");
	const char *label;
	struct cache_meta cur, fin;
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
	if (st.st_size > 0 && cache_meta_read(partmeta, &cur) == 0 &&
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
				char *h = xasprintf("If-Range: %s", v);

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
	if (o && o->git_blob) {
		char blob[SHA1_HEX_LEN + 1];

		if (sha1_git_blob_file_hex(part, blob) != 0)
			die_errno("cannot read '%s'", part);
		if (strcasecmp(blob, o->git_blob) != 0) {
			snprintf(msg, sizeof msg, "git blob id mismatch: got %s, expected %.40s",
				 blob, o->git_blob);
			fail_verify(&x, msg);
		}
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
	cache_meta_write(metap, &fin, url);
	unlink(partmeta);
	io_sync_dir(path);
	free(part);
	free(partmeta);
	free(metap);
}

/* Is the cached file what the server offers now? */
static int cached_fresh(const char *url, const char *path, const char *metap,
			const struct http_opts *o)
{
	struct resp r;
	struct cache_meta m;
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
	if (cache_meta_read(metap, &m) != 0)
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

static int is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return s[n] == '\0';
}

/* Does the cached file have the git blob id asked for (none asked: yes)?
 * Hashed again each time: the record keeps a SHA-256, not this. */
static int blob_ok(const char *path, const struct http_opts *o)
{
	char got[SHA1_HEX_LEN + 1];

	if (!o || !o->git_blob)
		return 1;
	return sha1_git_blob_file_hex(path, got) == 0 && strcasecmp(got, o->git_blob) == 0;
}

char *http_fetch(const char *url, const struct http_opts *o)
{
	char *u = hub_resolve(url), *path = cache_path(u, o ? o->cache_dir : NULL);
	char *metap = cache_side_path(path, "meta"), *lockp;
	struct stat st;
	int lock, have;

	if (o && o->sha256) {
		char tmp[SHA256_HEX_LEN + 1];

		if (!is_sha256_hex(o->sha256, tmp) || strlen(o->sha256) != SHA256_HEX_LEN)
			die("not a sha256 digest (64 hex digits): '%s'", o->sha256);
	}
	if (o && o->git_blob && !is_hex(o->git_blob, SHA1_HEX_LEN))
		die("not a git blob id (40 hex digits): '%s'", o->git_blob);
	have = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (cache_offline(o && o->offline)) {
		if (!have)
			die("not in the cache, and offline (unset GPT_OFFLINE or drop --offline): '%s'",
			    url);
		if (!blob_ok(path, o))
			die("cached file does not have the expected git blob id: '%s'", path);
		if (!cache_sha_ok(path, o ? o->sha256 : NULL))
			die("cached file does not match the expected sha256: '%s'", path);
		goto out;
	}
	lockp = cache_side_path(path, "lock");
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
	if (!have || !blob_ok(path, o) || !cached_fresh(u, path, metap, o) ||
	    !cache_sha_ok(path, o ? o->sha256 : NULL))
		download(u, path, o);
	close(lock);   /* releases the lock */
	free(lockp);
out:
	free(u);
	free(metap);
	return path;
}
