/* thrift: the Thrift compact protocol, read defensively.  Parquet files
 * come from strangers, so every varint, length and count is bounded by
 * the bytes that remain, and nesting by THRIFT_MAX_DEPTH. */
#include "thrift.h"
#include "le.h"

#include <string.h>

void thrift_init(struct thrift *t, const void *buf, size_t len)
{
	t->p = buf;
	t->end = t->p + len;
	t->depth = 0;
	t->err = 0;
	t->msg[0] = 0;
}

size_t thrift_used(const struct thrift *t, const void *buf)
{
	return (size_t)(t->p - (const uint8_t *)buf);
}

void thrift_fail(struct thrift *t, const char *why)
{
	if (!t->err) {
		t->err = 1;
		strncpy(t->msg, why, sizeof t->msg - 1);
		t->msg[sizeof t->msg - 1] = 0;
	}
	t->p = t->end;
}

static uint8_t thrift_byte(struct thrift *t)
{
	if (t->p >= t->end) {
		thrift_fail(t, "truncated metadata");
		return 0;
	}
	return *t->p++;
}

static uint64_t thrift_varint(struct thrift *t)
{
	uint64_t v = 0;
	int shift;

	for (shift = 0; shift < 64; shift += 7) {
		uint8_t b = thrift_byte(t);

		if (t->err)
			return 0;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	thrift_fail(t, "varint too long");
	return 0;
}

static int64_t thrift_zigzag(struct thrift *t)
{
	uint64_t v = thrift_varint(t);

	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

void thrift_struct_begin(struct thrift *t)
{
	if (++t->depth > THRIFT_MAX_DEPTH)
		thrift_fail(t, "metadata nested too deeply");
}

void thrift_struct_end(struct thrift *t)
{
	t->depth--;
}

int thrift_field(struct thrift *t, int16_t *id, int *type)
{
	uint8_t b;
	int delta;

	if (t->err)
		return 0;
	b = thrift_byte(t);
	if (t->err || b == THRIFT_STOP)
		return 0;
	*type = b & 0x0f;
	delta = b >> 4;
	if (delta)
		*id = (int16_t)(*id + delta);
	else {
		int64_t v = thrift_zigzag(t);

		if (v < INT16_MIN || v > INT16_MAX) {
			thrift_fail(t, "bad field id");
			return 0;
		}
		*id = (int16_t)v;
	}
	if (*type > THRIFT_STRUCT) {
		thrift_fail(t, "bad field type");
		return 0;
	}
	return !t->err;
}

int thrift_bool(struct thrift *t, int type)
{
	if (type == THRIFT_TRUE)
		return 1;
	if (type == THRIFT_FALSE)
		return 0;
	thrift_fail(t, "expected a bool");
	return 0;
}

int thrift_list_bool(struct thrift *t)
{
	/* Writers disagree on false in lists (0 or 2); only 1 is true. */
	return thrift_byte(t) == 1;
}

int64_t thrift_i64(struct thrift *t, int type)
{
	if (type == THRIFT_BYTE)
		return (int8_t)thrift_byte(t);
	if (type == THRIFT_I16 || type == THRIFT_I32 || type == THRIFT_I64)
		return thrift_zigzag(t);
	thrift_fail(t, "expected an integer");
	return 0;
}

int32_t thrift_i32(struct thrift *t, int type)
{
	int64_t v;

	if (type == THRIFT_I64) {
		thrift_fail(t, "expected a 32-bit integer");
		return 0;
	}
	v = thrift_i64(t, type);
	if (v < INT32_MIN || v > INT32_MAX) {
		thrift_fail(t, "integer out of range");
		return 0;
	}
	return (int32_t)v;
}

double thrift_double(struct thrift *t, int type)
{
	double d = 0;

	if (type != THRIFT_DOUBLE) {
		thrift_fail(t, "expected a double");
		return 0;
	}
	if (t->end - t->p < 8) {
		thrift_fail(t, "truncated metadata");
		return 0;
	}
	d = le_get_f64(t->p);
	t->p += 8;
	return d;
}

const uint8_t *thrift_binary(struct thrift *t, int type, size_t *len)
{
	uint64_t n;
	const uint8_t *s;

	*len = 0;
	if (type != THRIFT_BINARY) {
		thrift_fail(t, "expected a string");
		return NULL;
	}
	n = thrift_varint(t);
	if (t->err)
		return NULL;
	if (n > (uint64_t)(t->end - t->p)) {
		thrift_fail(t, "string longer than the metadata");
		return NULL;
	}
	s = t->p;
	t->p += n;
	*len = (size_t)n;
	return s;
}

uint32_t thrift_list(struct thrift *t, int type, int *elem)
{
	uint8_t b;
	uint64_t n;

	*elem = 0;
	if (type != THRIFT_LIST && type != THRIFT_SET) {
		thrift_fail(t, "expected a list");
		return 0;
	}
	b = thrift_byte(t);
	n = b >> 4;
	*elem = b & 0x0f;
	if (n == 15)
		n = thrift_varint(t);
	if (t->err)
		return 0;
	if (*elem == THRIFT_STOP || *elem > THRIFT_STRUCT) {
		thrift_fail(t, "bad list element type");
		return 0;
	}
	/* Every element takes at least one byte. */
	if (n > (uint64_t)(t->end - t->p)) {
		thrift_fail(t, "list longer than the metadata");
		return 0;
	}
	return (uint32_t)n;
}

static void thrift_skip_elem(struct thrift *t, int type)
{
	/* Inside lists and maps a bool is a whole byte. */
	if (type == THRIFT_TRUE || type == THRIFT_FALSE)
		thrift_byte(t);
	else
		thrift_skip(t, type);
}

void thrift_skip(struct thrift *t, int type)
{
	size_t len;
	uint32_t n, i;
	int elem;

	if (t->err)
		return;
	switch (type) {
	case THRIFT_TRUE:
	case THRIFT_FALSE:
		break;
	case THRIFT_BYTE:
		thrift_byte(t);
		break;
	case THRIFT_I16:
	case THRIFT_I32:
	case THRIFT_I64:
		thrift_varint(t);
		break;
	case THRIFT_DOUBLE:
		thrift_double(t, type);
		break;
	case THRIFT_BINARY:
		thrift_binary(t, type, &len);
		break;
	case THRIFT_LIST:
	case THRIFT_SET:
		thrift_struct_begin(t);
		n = thrift_list(t, type, &elem);
		for (i = 0; i < n && !t->err; i++)
			thrift_skip_elem(t, elem);
		thrift_struct_end(t);
		break;
	case THRIFT_MAP: {
		uint64_t m = thrift_varint(t);
		uint8_t kv;
		uint64_t k;

		if (t->err || m == 0)
			break;
		if (m > (uint64_t)(t->end - t->p)) {
			thrift_fail(t, "map longer than the metadata");
			break;
		}
		kv = thrift_byte(t);
		if ((kv >> 4) == 0 || (kv >> 4) > THRIFT_STRUCT ||
		    (kv & 15) == 0 || (kv & 15) > THRIFT_STRUCT) {
			thrift_fail(t, "bad map types");
			break;
		}
		thrift_struct_begin(t);
		for (k = 0; k < m && !t->err; k++) {
			thrift_skip_elem(t, kv >> 4);
			thrift_skip_elem(t, kv & 15);
		}
		thrift_struct_end(t);
		break;
	}
	case THRIFT_STRUCT: {
		int16_t id = 0;
		int ft;

		thrift_struct_begin(t);
		while (thrift_field(t, &id, &ft))
			thrift_skip(t, ft);
		thrift_struct_end(t);
		break;
	}
	default:
		thrift_fail(t, "bad type");
	}
}
