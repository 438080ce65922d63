/* json: a recursive-descent reader for RFC 8259 JSON into a small tree,
 * bounded in depth, never reading past the given length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "io.h"
#include "json.h"

struct parser {
	const char *s;
	size_t n, at;
	char *err;
	size_t errcap;
};

static int fail(struct parser *p, const char *what)
{
	if (p->errcap)
		snprintf(p->err, p->errcap, "%s at byte %zu", what, p->at);
	return -1;
}

static void skip_ws(struct parser *p)
{
	while (p->at < p->n && (p->s[p->at] == ' ' || p->s[p->at] == '\t' ||
	                        p->s[p->at] == '\n' || p->s[p->at] == '\r'))
		p->at++;
}

static int hex4(struct parser *p, unsigned *v)
{
	*v = 0;
	if (p->n - p->at < 4)
		return fail(p, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->at++];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad \\u escape");
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* At the opening quote.  The decoded string is never longer than its
 * source, so one allocation of the source length suffices. */
static int decode_string(struct parser *p, char **bufp, size_t *cap, size_t *len)
{
	size_t start = ++p->at, end = start, o = 0;
	char *buf;

	while (end < p->n && p->s[end] != '"')
		end += p->s[end] == '\\' ? 2 : 1;
	if (end >= p->n)
		return fail(p, "unterminated string");
	if (*cap < end - start + 1) {
		*cap = end - start + 1;
		*bufp = xrealloc(*bufp, *cap);
	}
	buf = *bufp;
	while (p->at < end) {
		unsigned char c = (unsigned char)p->s[p->at++];
		unsigned cp, lo;
		if (c < 0x20) {
			return fail(p, "control character in string");
		}
		if (c != '\\') {
			buf[o++] = (char)c;
			continue;
		}
		switch (p->s[p->at++]) {
		case '"': buf[o++] = '"'; break;
		case '\\': buf[o++] = '\\'; break;
		case '/': buf[o++] = '/'; break;
		case 'b': buf[o++] = '\b'; break;
		case 'f': buf[o++] = '\f'; break;
		case 'n': buf[o++] = '\n'; break;
		case 'r': buf[o++] = '\r'; break;
		case 't': buf[o++] = '\t'; break;
		case 'u':
			if (hex4(p, &cp) < 0 || p->at > end) {
				return -1;
			}
			if (cp >= 0xD800 && cp < 0xDC00 && end - p->at >= 6 && p->s[p->at] == '\\' &&
			    p->s[p->at + 1] == 'u') {
				size_t save = p->at;
				p->at += 2;
				if (hex4(p, &lo) < 0) {
					return -1;
				}
				if (lo >= 0xDC00 && lo < 0xE000)
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				else
					p->at = save;
			}
			if (cp >= 0xD800 && cp < 0xE000)
				cp = 0xFFFD;
			o += put_utf8(buf + o, cp);
			break;
		default:
			return fail(p, "bad escape");
		}
	}
	p->at = end + 1;
	buf[o] = 0;
	*len = o;
	return 0;
}

static int parse_string(struct parser *p, char **out, size_t *len)
{
	size_t cap = 0;

	*out = NULL;
	if (decode_string(p, out, &cap, len) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int parse_number(struct parser *p, double *v)
{
	size_t st = p->at;
	char tmp[64], *e;

	if (p->at < p->n && p->s[p->at] == '-')
		p->at++;
	if (p->at >= p->n || p->s[p->at] < '0' || p->s[p->at] > '9')
		return fail(p, "bad number");
	while (p->at < p->n && (unsigned)(p->s[p->at] - '0') < 10)
		p->at++;
	/* Whole numbers of up to 15 digits (ids, counts: most numbers in
	 * the files read here) are exact as a double; no strtod. */
	if (p->at - st <= 15 && (p->at == p->n || !p->s[p->at] || !strchr(".eE+-", p->s[p->at]))) {
		size_t i = st + (p->s[st] == '-');
		double x = 0;

		for (; i < p->at; i++)
			x = x * 10 + (p->s[i] - '0');
		*v = p->s[st] == '-' ? -x : x;
		return 0;
	}
	while (p->at < p->n && p->s[p->at] && strchr("0123456789.eE+-", p->s[p->at]))
		p->at++;
	if (p->at - st >= sizeof tmp)
		return fail(p, "number too long");
	memcpy(tmp, p->s + st, p->at - st);
	tmp[p->at - st] = 0;
	*v = strtod(tmp, &e);
	if (*e)
		return fail(p, "bad number");
	return 0;
}

static int parse_value(struct parser *p, struct json *j, int depth);

static int parse_container(struct parser *p, struct json *j, int depth, int obj)
{
	size_t cap = 0;
	char close = obj ? '}' : ']';

	j->type = obj ? JSON_OBJ : JSON_ARR;
	p->at++;
	skip_ws(p);
	if (p->at < p->n && p->s[p->at] == close) {
		p->at++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;
		if (obj) {
			skip_ws(p);
			if (p->at >= p->n || p->s[p->at] != '"')
				return fail(p, "expected a key");
			if (parse_string(p, &key, &klen) < 0)
				return -1;
			skip_ws(p);
			if (p->at >= p->n || p->s[p->at] != ':') {
				free(key);
				return fail(p, "expected ':'");
			}
			p->at++;
		}
		if (j->n == cap) {
			cap = cap ? 2 * cap : 8;
			j->items = xrealloc(j->items, xmul(cap, sizeof *j->items));
			if (obj)
				j->keys = xrealloc(j->keys, xmul(cap, sizeof *j->keys));
		}
		memset(&j->items[j->n], 0, sizeof j->items[j->n]);
		if (obj)
			j->keys[j->n] = key;
		j->n++;
		if (parse_value(p, &j->items[j->n - 1], depth + 1) < 0)
			return -1;
		skip_ws(p);
		if (p->at < p->n && p->s[p->at] == ',') {
			p->at++;
			continue;
		}
		if (p->at < p->n && p->s[p->at] == close) {
			p->at++;
			return 0;
		}
		return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int literal(struct parser *p, const char *word)
{
	size_t k = strlen(word);
	if (p->n - p->at < k || memcmp(p->s + p->at, word, k) != 0)
		return fail(p, "unexpected character");
	p->at += k;
	return 0;
}

static int parse_value(struct parser *p, struct json *j, int depth)
{
	memset(j, 0, sizeof *j);
	if (depth > JSON_MAX_DEPTH)
		return fail(p, "nested too deeply");
	skip_ws(p);
	if (p->at >= p->n)
		return fail(p, "unexpected end");
	switch (p->s[p->at]) {
	case '{': return parse_container(p, j, depth, 1);
	case '[': return parse_container(p, j, depth, 0);
	case '"':
		j->type = JSON_STR;
		return parse_string(p, &j->str, &j->len);
	case 't':
		j->type = JSON_BOOL;
		j->boolean = 1;
		return literal(p, "true");
	case 'f':
		j->type = JSON_BOOL;
		return literal(p, "false");
	case 'n':
		j->type = JSON_NULL;
		return literal(p, "null");
	default:
		j->type = JSON_NUM;
		return parse_number(p, &j->num);
	}
}

int json_parse(const char *s, size_t n, struct json *j, char *err, size_t errcap)
{
	struct parser p = {s, n, 0, err, errcap};

	if (parse_value(&p, j, 0) < 0) {
		json_free(j);
		return -1;
	}
	skip_ws(&p);
	if (p.at != n) {
		json_free(j);
		return fail(&p, "trailing characters");
	}
	return 0;
}

int json_each_member(const char *s, size_t n,
		     int (*fn)(void *ctx, const char *key, size_t klen, const struct json *val),
		     void *ctx, char *err, size_t errcap)
{
	struct parser p = {s, n, 0, err, errcap};
	char *key = NULL;
	size_t cap = 0, klen;
	int rc = -1;

	skip_ws(&p);
	if (p.at >= n || s[p.at] != '{')
		return fail(&p, "expected an object");
	p.at++;
	skip_ws(&p);
	if (p.at < n && s[p.at] == '}') {
		p.at++;
		goto tail;
	}
	for (;;) {
		struct json val;
		int r;

		skip_ws(&p);
		if (p.at >= n || s[p.at] != '"') {
			fail(&p, "expected a key");
			goto out;
		}
		if (decode_string(&p, &key, &cap, &klen) < 0)
			goto out;
		skip_ws(&p);
		if (p.at >= n || s[p.at] != ':') {
			fail(&p, "expected ':'");
			goto out;
		}
		p.at++;
		if (parse_value(&p, &val, 1) < 0) {
			json_free(&val);
			goto out;
		}
		r = fn(ctx, key, klen, &val);
		json_free(&val);
		if (r) {
			rc = r;
			goto out;
		}
		skip_ws(&p);
		if (p.at < n && s[p.at] == ',') {
			p.at++;
			continue;
		}
		if (p.at < n && s[p.at] == '}') {
			p.at++;
			break;
		}
		fail(&p, "expected ',' or '}'");
		goto out;
	}
tail:
	skip_ws(&p);
	if (p.at != n) {
		fail(&p, "trailing characters");
		goto out;
	}
	rc = 0;
out:
	free(key);
	return rc;
}

const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (obj->keys[i] && strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}

void json_free(struct json *j)
{
	for (size_t i = 0; i < j->n; i++) {
		json_free(&j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->str);
	memset(j, 0, sizeof *j);
}

void json_put_str(struct out *o, const char *s, size_t n)
{
	out_putc(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out_putc(o, '\\');
			out_putc(o, c);
		} else if (c == '\n') {
			out_write(o, "\\n", 2);
		} else if (c == '\t') {
			out_write(o, "\\t", 2);
		} else if (c == '\r') {
			out_write(o, "\\r", 2);
		} else if (c < 0x20) {
			char e[8];

			snprintf(e, sizeof e, "\\u%04x", c);
			out_write(o, e, 6);
		} else {
			out_putc(o, c);
		}
	}
	out_putc(o, '"');
}
