/* cache: the download cache every program shares, and the one switch that
 * keeps a program off the network.
 *
 *   cache_root(dir)         the cache folder (malloc'd): dir when given
 *                           (--cache DIR), else $XDG_CACHE_HOME/gpt when
 *                           that is an absolute path, else ~/.cache/gpt;
 *                           dies when there is none (no HOME)
 *   cache_root_try(dir)     the same, NULL instead of dying
 *   cache_offline(flag)     1 when flag (--offline) is set or $GPT_OFFLINE
 *                           or $HF_HUB_OFFLINE is set to anything but ""
 *                           or "0": then nothing may be downloaded
 *   cache_path(url, dir)    where an http(s):// URL lives in cache_root(dir)
 *                           (malloc'd); its folder is created, the file
 *                           need not exist
 *   cache_side_path(path, what)   ".NAME~what" beside the cached NAME
 *                           (malloc'd): "meta", "part", "partmeta", "lock"
 *   cache_meta_read/_write  the record of a cached or partial file: size,
 *                           validators and digest, as the server sent them
 *   cache_sha_ok(path, want)   the cached file's SHA-256 is want (64 hex;
 *                           NULL: always), by its record when it has one
 *
 * Layout: a URL lives at ROOT/http/HOST[_PORT]/PATH (readable, with a
 * short hash of the URL added when it has a query or characters that are
 * not safe in file names, or under ROOT/http/.by-hash/ when its natural
 * path collides with a folder).  Hidden files beside it hold its record,
 * a partial download and a lock; names from URLs never start with a dot.
 * The GPT-2 vocabulary lives in ROOT/gpt2 (vocab.h). */
#ifndef GPT_CACHE_H
#define GPT_CACHE_H

#include <stdint.h>

#include "sha256.h"

#define CACHE_FIELD 256         /* ETag and friends, truncated beyond */

struct cache_meta {
	uint64_t size;
	int has_size;
	char etag[CACHE_FIELD];         /* the serving response's ETag (If-Range) */
	char linked_etag[CACHE_FIELD];  /* the hub's X-Linked-Etag */
	char lastmod[CACHE_FIELD];
	char sha256[SHA256_HEX_LEN + 1];
};

char *cache_root(const char *dir);
char *cache_root_try(const char *dir);
int cache_offline(int flag);
char *cache_path(const char *url, const char *dir);
char *cache_side_path(const char *path, const char *what);
/* 0, or -1 (m zeroed) when there is no readable record. */
int cache_meta_read(const char *path, struct cache_meta *m);
/* Atomically (temporary name, fsync, rename); dies when it cannot. */
void cache_meta_write(const char *path, const struct cache_meta *m, const char *url);
int cache_sha_ok(const char *path, const char *want);
/* A size as records and HTTP headers write it: decimal after optional
 * blanks, at most 2^50; -1 when malformed. */
int cache_parse_size(const char *s, uint64_t *out);

#endif
