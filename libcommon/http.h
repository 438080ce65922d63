/* http: the transfer.  Downloads into the local cache (cache.h), so that
 * programs can read URLs as files.
 *
 *   http_is_url(s)        1 when s starts with http://, https:// or hf://
 *   http_fetch(url, o)    malloc'd path of the complete cached file; dies
 *                         with one clear line when it cannot produce one
 *
 * hf:// URLs are resolved by hub_resolve (hub.h); where a URL lives in the
 * cache is cache_path's (cache.h).
 *
 * Behaviour of http_fetch:
 * - The cache is cache_root(o->cache_dir): o->cache_dir, else
 *   $XDG_CACHE_HOME/gpt, else ~/.cache/gpt.
 * - Offline (cache_offline(o->offline): o->offline, or $GPT_OFFLINE or
 *   $HF_HUB_OFFLINE set to anything but "" or "0"): a cached file is
 *   returned with no request; otherwise it dies ("not in the cache").
 *   Tests that talk to a local server must unset GPT_OFFLINE, which
 *   tests/run.sh sets.
 * - Online with a cached file: one HEAD request; the file is reused when
 *   the size and ETag (or the hub's X-Linked-Size / X-Linked-Etag) agree
 *   with what was recorded at download time.  A failed HEAD (network down,
 *   an error status) reuses the cached file with a warning.
 * - Otherwise a GET into ".NAME~part".  A dropped connection resumes with
 *   Range (and If-Range when a validator is known); a server that answers
 *   200 instead of 206 restarts the file from zero.  408, 429, 5xx and
 *   network errors are retried with exponential backoff (1 s doubling, at
 *   most 30 s; Retry-After honoured up to 300 s); any advance beyond the
 *   furthest byte reached so far resets the retry count.  A partial file
 *   with a validator also survives an interrupted run and is resumed by
 *   the next one.  $GPT_HTTP_BACKOFF_MS (tests) replaces the 1 s unit,
 *   Retry-After seconds included.
 * - The result is checked: size against Content-Length / Content-Range /
 *   X-Linked-Size, SHA-256 against X-Linked-Etag when it is a SHA-256
 *   (Hugging Face LFS files) and against o->sha256 when given, and the git
 *   blob id (sha1.h) against o->git_blob when given; a cached file whose
 *   blob id is not o->git_blob is fetched again (offline: refused).  A
 *   failed check deletes the partial file and dies.  Only a complete, checked
 *   file is fsynced and renamed into place: no corrupt cache entry.
 * - $HF_TOKEN is sent as "Authorization: Bearer" only to URLs under the
 *   hub endpoint (curl drops it on redirects to another host).
 * - Progress (bytes, rate, ETA) on stderr when it is a terminal, unless
 *   quiet; forced with force_progress.  Retries are reported with warnx.
 * - Two processes fetching one URL: the second waits for the first (lock
 *   file) and then reuses its result.
 * o may be NULL for all defaults.
 * Thread-safe: -j N download-ahead may call http_fetch from threads. */
#ifndef GPT_HTTP_H
#define GPT_HTTP_H

struct http_opts {
	const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/gpt or ~/.cache/gpt */
	int offline;            /* never touch the network */
	int quiet_progress;     /* no progress line even on a terminal */
	int force_progress;     /* progress line even when not a terminal */
	int max_retries;        /* 0: default (6); < 0: no retries */
	const char *sha256;     /* NULL, or the expected 64-hex SHA-256 */
	const char *git_blob;   /* NULL, or the expected 40-hex git blob id */
	const char *label;      /* progress label; NULL: the file's name */
};

int http_is_url(const char *s);
char *http_fetch(const char *url, const struct http_opts *o);

#endif
