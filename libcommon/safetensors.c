/* safetensors: reads the format with every size checked against the file
 * (a header may claim anything), converts half-precision kinds to float32,
 * and writes float32 files that the reference loader accepts. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "io.h"
#include "json.h"
#include "le.h"
#include "safetensors.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place: little-endian hosts only"
#endif

static int fail(struct safetensors *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct safetensors *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->err, sizeof f->err, fmt, ap);
	va_end(ap);
	return -1;
}

static int dtype_of(const char *s, enum st_dtype *d, unsigned *bytes)
{
	static const struct { const char *name; enum st_dtype d; unsigned b; } kinds[] = {
		{"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2},
		{"F64", ST_OTHER, 8}, {"I64", ST_OTHER, 8}, {"I32", ST_OTHER, 4},
		{"I16", ST_OTHER, 2}, {"I8", ST_OTHER, 1}, {"U8", ST_OTHER, 1},
		{"U16", ST_OTHER, 2}, {"U32", ST_OTHER, 4}, {"U64", ST_OTHER, 8},
		{"BOOL", ST_OTHER, 1}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(s, kinds[i].name) == 0) {
			*d = kinds[i].d;
			*bytes = kinds[i].b;
			return 0;
		}
	return -1;
}

/* A JSON number that is an exact non-negative integer up to max. */
static int as_u64(const struct json *j, uint64_t max, uint64_t *v)
{
	if (!j || j->type != JSON_NUM || !(j->num >= 0) || j->num > (double)max ||
	    j->num != floor(j->num))
		return -1;
	*v = (uint64_t)j->num;
	return 0;
}

static int check_entry(struct safetensors *f, const char *name, const struct json *e,
                       struct st_tensor *t, uint64_t data_size)
{
	const struct json *dt = json_get(e, "dtype"), *sh = json_get(e, "shape");
	const struct json *off = json_get(e, "data_offsets");
	uint64_t count = 1, bytes;
	unsigned esize;

	if (e->type != JSON_OBJ || !dt || dt->type != JSON_STR || !sh || sh->type != JSON_ARR ||
	    !off || off->type != JSON_ARR || off->n != 2)
		return fail(f, "bad safetensors entry for tensor '%s'", name);
	if (dtype_of(dt->str, &t->dtype, &esize) < 0)
		return fail(f, "unknown dtype '%.15s' of tensor '%s'", dt->str, name);
	snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->str);
	if (sh->n > ST_MAX_DIMS)
		return fail(f, "tensor '%s' has %zu dimensions", name, sh->n);
	t->ndim = (int)sh->n;
	for (size_t i = 0; i < sh->n; i++) {
		if (as_u64(&sh->items[i], 1ull << 40, &t->shape[i]) < 0)
			return fail(f, "tensor '%s' has a bad shape", name);
		if (t->shape[i] && count > (1ull << 50) / t->shape[i])
			return fail(f, "tensor '%s' is impossibly large", name);
		count *= t->shape[i];
	}
	if (as_u64(&off->items[0], data_size, &t->begin) < 0 ||
	    as_u64(&off->items[1], data_size, &t->end) < 0 || t->begin > t->end)
		return fail(f, "tensor '%s' lies outside the file", name);
	bytes = count * esize;
	if (t->end - t->begin != bytes)
		return fail(f, "tensor '%s' holds %llu bytes, its shape needs %llu", name,
		            (unsigned long long)(t->end - t->begin), (unsigned long long)bytes);
	return 0;
}

int st_open(struct safetensors *f, const char *path)
{
	struct stat st;
	struct json h;
	uint64_t hlen = 0;
	char jerr[128];
	int fd;
	void *map;

	memset(f, 0, sizeof *f);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(f, "cannot open: '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(f, "not a regular file: '%s'", path);
	}
	if (st.st_size < 8) {
		close(fd);
		return fail(f, "too short for safetensors: '%s'", path);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return fail(f, "cannot map: '%s': %s", path, strerror(errno));
	f->map = map;
	f->size = (size_t)st.st_size;
	hlen = le_get_u64(f->map);
	if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > f->size - 8) {
		fail(f, "bad safetensors header length %llu: '%s'", (unsigned long long)hlen, path);
		goto bad;
	}
	f->data_off = 8 + (size_t)hlen;
	if (json_parse((const char *)f->map + 8, (size_t)hlen, &h, jerr, sizeof jerr) < 0) {
		fail(f, "bad safetensors header (%s): '%s'", jerr, path);
		goto bad;
	}
	if (h.type != JSON_OBJ) {
		json_free(&h);
		fail(f, "safetensors header is not an object: '%s'", path);
		goto bad;
	}
	f->t = xcalloc(h.n ? h.n : 1, sizeof *f->t);
	for (size_t i = 0; i < h.n; i++) {
		if (strcmp(h.keys[i], "__metadata__") == 0)
			continue;
		if (check_entry(f, h.keys[i], &h.items[i], &f->t[f->n],
		                (uint64_t)(f->size - f->data_off)) < 0) {
			size_t k = strlen(f->err);
			snprintf(f->err + k, sizeof f->err - k, ": '%s'", path);
			json_free(&h);
			goto bad;
		}
		f->t[f->n++].name = xstrdup(h.keys[i]);
	}
	json_free(&h);
	return 0;
bad:
	{
		char keep[sizeof f->err];
		memcpy(keep, f->err, sizeof keep);
		st_close(f);
		memcpy(f->err, keep, sizeof keep);
	}
	return -1;
}

const struct st_tensor *st_find(const struct safetensors *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->t[i].name, name) == 0)
			return &f->t[i];
	return NULL;
}

uint64_t st_count(const struct st_tensor *t)
{
	uint64_t c = 1;
	for (int i = 0; i < t->ndim; i++)
		c *= t->shape[i];
	return c;
}

static float half_to_f32(uint16_t h)
{
	unsigned sign = h >> 15, ex = h >> 10 & 0x1F, man = h & 0x3FF;
	float v;

	if (ex == 0)
		v = ldexpf((float)man, -24);
	else if (ex == 31)
		v = man ? NAN : INFINITY;
	else
		v = ldexpf((float)(man | 0x400), (int)ex - 25);
	return sign ? -v : v;
}

int st_read_f32(struct safetensors *f, const struct st_tensor *t, float *dst)
{
	const unsigned char *p = f->map + f->data_off + t->begin;
	uint64_t n = st_count(t);

	switch (t->dtype) {
	case ST_F32:
		memcpy(dst, p, n * 4);
		return 0;
	case ST_F16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = half_to_f32(le_get_u16(p + 2 * i));
		return 0;
	case ST_BF16:
		for (uint64_t i = 0; i < n; i++) {
			uint32_t u = (uint32_t)le_get_u16(p + 2 * i) << 16;
			memcpy(&dst[i], &u, 4);
		}
		return 0;
	default:
		return fail(f, "tensor '%s' has dtype %s, not a floating-point kind we read",
		            t->name, t->dtype_name);
	}
}

void st_close(struct safetensors *f)
{
	if (f->map)
		munmap((void *)f->map, f->size);
	for (size_t i = 0; i < f->n; i++)
		free(f->t[i].name);
	free(f->t);
	memset(f, 0, sizeof *f);
}

/* Appends to a growing string. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (k < 0)
			die("safetensors: formatting failed");
		if ((size_t)k < b->cap - b->len)
			break;
		b->cap = (b->cap + (size_t)k + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	b->len += (size_t)k;
}

void st_write(const char *path, const struct st_write_tensor *ts, size_t n)
{
	struct sbuf h = {xmalloc(256), 0, 256};
	struct afile a;
	uint64_t at = 0;
	unsigned char len8[8];

	sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (size_t i = 0; i < n; i++) {
		uint64_t count = ts[i].shape[0] * (ts[i].ndim == 2 ? ts[i].shape[1] : 1);
		sb_printf(&h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu", ts[i].name,
		          (unsigned long long)ts[i].shape[0]);
		if (ts[i].ndim == 2)
			sb_printf(&h, ",%llu", (unsigned long long)ts[i].shape[1]);
		sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
		          (unsigned long long)(at + count * 4));
		at += count * 4;
	}
	sb_printf(&h, "}");
	/* pad with spaces so the data starts 8-byte aligned */
	while (h.len % 8)
		sb_printf(&h, " ");
	le_put_u64(len8, h.len);
	afile_open(&a, path);
	out_write(&a.out, len8, 8);
	out_write(&a.out, h.s, h.len);
	for (size_t i = 0; i < n; i++) {
		uint64_t count = ts[i].shape[0] * (ts[i].ndim == 2 ? ts[i].shape[1] : 1);
		out_write(&a.out, ts[i].data, (size_t)count * 4);
	}
	afile_commit(&a);
	free(h.s);
}
