/* json: a small, strict JSON reader for the files the toolchain reads
 * (safetensors headers, config.json, benchmark JSONL lines).
 *
 *   json_parse(s, n, j, err, errcap)  parse s[0..n) as exactly one value
 *                           (white space around it allowed) into the tree
 *                           j; 0, or -1 with a short reason in err
 *   json_each_member(s, n, fn, ctx, err, errcap)  parse s[0..n) as one
 *                           object, calling fn(ctx, key, klen, value) for
 *                           each member in order, with no tree of the
 *                           whole (the key's buffer and the value live
 *                           until fn returns); 0, fn's non-zero return,
 *                           or -1 with the reason in err
 *   json_get(obj, key)      member of an object, or NULL
 *   json_free(j)            releases everything json_parse allocated
 *   json_put_str(o, s, n)   writes s[0..n) as a JSON string
 * Strings are decoded to UTF-8 (\u escapes, surrogate pairs; a lone
 * surrogate becomes U+FFFD), NUL-terminated, and may hold NUL bytes (use
 * len).  Nesting is limited to JSON_MAX_DEPTH.  The tree owns its memory. */
#ifndef GPT_JSON_H
#define GPT_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 64

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	int boolean;
	double num;
	char *str;              /* JSON_STR */
	size_t len;
	struct json *items;     /* JSON_ARR and JSON_OBJ values */
	char **keys;            /* JSON_OBJ keys, NUL-terminated */
	size_t n;
};

int json_parse(const char *s, size_t n, struct json *j, char *err, size_t errcap);
int json_each_member(const char *s, size_t n,
		     int (*fn)(void *ctx, const char *key, size_t klen, const struct json *val),
		     void *ctx, char *err, size_t errcap);
const struct json *json_get(const struct json *obj, const char *key);
void json_free(struct json *j);
/* s[0..n) as a JSON string, quotes included, into o: '"', '\\' and
 * control bytes escaped, every other byte as it is (UTF-8 stays UTF-8). */
struct out;
void json_put_str(struct out *o, const char *s, size_t n);

#endif
