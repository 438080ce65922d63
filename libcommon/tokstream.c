/* tokstream: reading and writing token ids in text, u16 and u32 form, with
 * every malformed input reported as one line that says where and why, so
 * no tool ever reads garbage ids from a wrong -f. */
#include "tokstream.h"
#include "err.h"
#include "le.h"

#include <stdlib.h>
#include <string.h>

#define IN_BUFSZ (1u << 17)

#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TOK_VECTOR 1
/* Generic vectors: the compiler's own SIMD at -O2, on any target. */
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));
#endif

static void widen16(uint32_t *ids, const unsigned char *b, size_t n)
{
	size_t k = 0;

#ifdef TOK_VECTOR
	for (; k + 8 <= n; k += 8) {
		u16x8 v;
		u32x8 w;

		memcpy(&v, b + 2 * k, 16);
		w = __builtin_convertvector(v, u32x8);
		memcpy(ids + k, &w, 32);
	}
#endif
	for (; k < n; k++)
		ids[k] = le_get_u16(b + 2 * k);
}

static void narrow16(unsigned char *d, const uint32_t *ids, size_t n)
{
	size_t k = 0;

#ifdef TOK_VECTOR
	for (; k + 8 <= n; k += 8) {
		u32x8 w;
		u16x8 v;

		memcpy(&w, ids + k, 32);
		v = __builtin_convertvector(w, u16x8);
		memcpy(d + 2 * k, &v, 16);
	}
#endif
	for (; k < n; k++)
		le_put_u16(d + 2 * k, (uint16_t)ids[k]);
}

void tokstream_pack(unsigned char *d, const uint32_t *ids, size_t n, int width)
{
	size_t i;

	if (width == 2) {
		narrow16(d, ids, n);
		return;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	(void)i;
	memcpy(d, ids, n * 4);
#else
	for (i = 0; i < n; i++)
		le_put_u32(d + 4 * i, ids[i]);
#endif
}

void tokstream_unpack(uint32_t *ids, const unsigned char *b, size_t n, int width)
{
	size_t i;

	if (width == 2) {
		widen16(ids, b, n);
		return;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	(void)i;
	memcpy(ids, b, n * 4);
#else
	for (i = 0; i < n; i++)
		ids[i] = le_get_u32(b + 4 * i);
#endif
}

void tokstream_in_open(struct tokstream_in *t, const char *path, enum tok_format f)
{
	memset(t, 0, sizeof *t);
	in_open(&t->in, path);
	t->fmt = f;
	t->buf = xmalloc(IN_BUFSZ);
}

const char *tokstream_in_name(const struct tokstream_in *t)
{
	return t->in.name;
}

uint64_t tokstream_in_count(const struct tokstream_in *t)
{
	return t->count;
}

void tokstream_in_close(struct tokstream_in *t)
{
	in_close(&t->in);
	free(t->buf);
	t->buf = NULL;
}

/* Moves the unread tail to the front and reads more; returns 0 at end. */
static size_t reader_fill(struct tokstream_in *t)
{
	size_t keep = t->len - t->pos, got;

	if (keep && t->pos)
		memmove(t->buf, t->buf + t->pos, keep);
	t->offset += t->pos;
	t->pos = 0;
	t->len = keep;
	got = in_read(&t->in, t->buf + keep, IN_BUFSZ - keep);
	t->len += got;
	return got;
}

static int is_space(unsigned c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* A binary stream whose first bytes are all digits and white space is
 * decimal text read with the wrong -f: real ids almost never look so. */
static void reader_check_binary(struct tokstream_in *t)
{
	size_t n = t->len < 64 ? t->len : 64, i, spaces = 0;

	t->checked = 1;
	if (n < 16)
		return;
	for (i = 0; i < n; i++) {
		unsigned c = t->buf[i];

		if (is_space(c))
			spaces++;
		else if (c < '0' || c > '9')
			return;
	}
	if (spaces)
		die("input looks like decimal text, not %s ids; use -f text: '%s'",
		    cli_format_name(t->fmt), t->in.name);
}

static size_t read_binary(struct tokstream_in *t, uint32_t *ids, size_t max)
{
	size_t w = t->fmt == FMT_U16 ? 2 : 4, n = 0;

	while (n < max) {
		size_t avail = (t->len - t->pos) / w, k;

		if (avail == 0) {
			if (reader_fill(t) == 0) {
				if (t->len - t->pos)
					die("input ends mid-token (%zu of %zu bytes): '%s'",
					    t->len - t->pos, w, t->in.name);
				break;
			}
			if (!t->checked)
				reader_check_binary(t);
			continue;
		}
		k = avail < max - n ? avail : max - n;
		tokstream_unpack(ids + n, t->buf + t->pos, k, (int)w);
		t->pos += k * w;
		n += k;
		/* Hand back what we have rather than block on a pipe. */
		if (n && t->pos == t->len)
			break;
	}
	return n;
}

static size_t read_text(struct tokstream_in *t, uint32_t *ids, size_t max)
{
	size_t n = 0;

	while (n < max) {
		const unsigned char *p;
		size_t i, len;

		if (t->pos == t->len) {
			if (n)
				break;  /* hand back what we have before blocking */
			if (reader_fill(t) == 0) {
				if (t->digits) {
					ids[n++] = (uint32_t)t->val;
					t->digits = 0;
					t->val = 0;
				}
				break;
			}
		}
		p = t->buf;
		len = t->len;
		for (i = t->pos; i < len && n < max; i++) {
			unsigned c = p[i];

			if (c - '0' < 10u) {
				t->val = t->val * 10 + (c - '0');
				if (t->val > UINT32_MAX)
					die("token id over 4294967295 at byte %llu: '%s'",
					    (unsigned long long)(t->offset + i),
					    t->in.name);
				t->digits = 1;
			} else if (is_space(c)) {
				if (t->digits)
					ids[n++] = (uint32_t)t->val;
				t->val = 0;
				t->digits = 0;
			} else if (c >= 0x21 && c < 0x7f) {
				die("not a token id at byte %llu ('%c'); binary input needs -f u16 or -f u32: '%s'",
				    (unsigned long long)(t->offset + i), (int)c,
				    t->in.name);
			} else {
				die("not a token id at byte %llu (byte 0x%02x); binary input needs -f u16 or -f u32: '%s'",
				    (unsigned long long)(t->offset + i), c,
				    t->in.name);
			}
		}
		t->pos = i;
	}
	return n;
}

size_t tokstream_in_read(struct tokstream_in *t, uint32_t *ids, size_t max)
{
	size_t n;

	if (max == 0)
		return 0;
	n = t->fmt == FMT_TEXT ? read_text(t, ids, max)
			       : read_binary(t, ids, max);
	t->count += n;
	return n;
}

void tokstream_out_init(struct tokstream_out *t, struct out *o, enum tok_format f,
			uint32_t eot)
{
	t->o = o;
	t->fmt = f;
	t->eot = eot;
	t->line_open = 0;
	t->count = 0;
}

static void write_text(struct tokstream_out *t, const uint32_t *ids, size_t n)
{
	struct out *o = t->o;
	size_t i;

	for (i = 0; i < n; i++) {
		char tmp[12];
		int k = 11;
		uint32_t x = ids[i];

		/* One id needs at most 12 bytes: a separator and 10 digits,
		 * or 10 digits and a newline. */
		if (o->cap - o->len < 12)
			out_flush(o);
		tmp[11] = '\n';
		do {
			tmp[--k] = (char)('0' + x % 10);
			x /= 10;
		} while (x);
		if (t->line_open)
			o->buf[o->len++] = ' ';
		if (ids[i] == t->eot) {
			memcpy(o->buf + o->len, tmp + k, (size_t)(12 - k));
			o->len += (size_t)(12 - k);
			t->line_open = 0;
		} else {
			memcpy(o->buf + o->len, tmp + k, (size_t)(11 - k));
			o->len += (size_t)(11 - k);
			t->line_open = 1;
		}
	}
}

void tokstream_out_write(struct tokstream_out *t, const uint32_t *ids, size_t n)
{
	struct out *o = t->o;
	int width = t->fmt == FMT_U16 ? 2 : 4;
	size_t i;

	if (t->fmt == FMT_TEXT) {
		write_text(t, ids, n);
		t->count += n;
		return;
	}
	if (t->fmt == FMT_U16) {
		uint32_t m = 0;

		for (i = 0; i < n; i++)
			m |= ids[i];
		if (m > 0xffff)
			for (i = 0; i < n; i++)
				if (ids[i] > 0xffff)
					die("token id %u at position %llu does not fit u16; use -f u32",
					    ids[i], (unsigned long long)(t->count + i));
	}
	t->count += n;
	while (n > 0) {
		size_t k;

		if (o->cap - o->len < (size_t)width)
			out_flush(o);
		k = (o->cap - o->len) / (size_t)width;
		if (k > n)
			k = n;
		tokstream_pack(o->buf + o->len, ids, k, width);
		o->len += k * (size_t)width;
		ids += k;
		n -= k;
	}
}

void tokstream_out_finish(struct tokstream_out *t)
{
	if (t->fmt == FMT_TEXT && t->line_open)
		out_putc(t->o, '\n');
	t->line_open = 0;
}
