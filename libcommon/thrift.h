/* thrift: a decoder for the Thrift compact protocol, the encoding of
 * parquet's metadata.  It reads from a caller-owned buffer and allocates
 * nothing; every length and count is checked against the bytes left.
 *
 * Errors are sticky: the first problem sets t->err (with a short reason
 * in t->msg), moves the cursor to the end, and every later read returns
 * zero, so a caller's loop ends and it checks t->err once afterwards.
 *
 * Reading a struct:
 *     int16_t id = 0; int type;
 *     thrift_struct_begin(t);
 *     while (thrift_field(t, &id, &type))
 *         switch (id) { case 1: x = thrift_i32(t, type); break;
 *                       default: thrift_skip(t, type); }
 *     thrift_struct_end(t);
 */
#ifndef GPT_THRIFT_H
#define GPT_THRIFT_H

#include <stddef.h>
#include <stdint.h>

/* Compact protocol type codes (low nibble of a field header). */
enum {
	THRIFT_STOP = 0, THRIFT_TRUE = 1, THRIFT_FALSE = 2, THRIFT_BYTE = 3,
	THRIFT_I16 = 4, THRIFT_I32 = 5, THRIFT_I64 = 6, THRIFT_DOUBLE = 7,
	THRIFT_BINARY = 8, THRIFT_LIST = 9, THRIFT_SET = 10, THRIFT_MAP = 11,
	THRIFT_STRUCT = 12
};

/* Structs nested deeper than this are refused (a bound on recursion). */
#define THRIFT_MAX_DEPTH 32

struct thrift {
	const uint8_t *p, *end;
	int depth;
	int err;
	char msg[80];
};

void thrift_init(struct thrift *t, const void *buf, size_t len);
/* Bytes consumed since buf, for callers that read a header of unknown
 * length (a parquet page header) and need to know where it ended. */
size_t thrift_used(const struct thrift *t, const void *buf);

void thrift_struct_begin(struct thrift *t);
void thrift_struct_end(struct thrift *t);
/* Next field of the current struct: returns 1 and sets *id and *type, or
 * 0 at the struct's end (or on error).  *id carries the previous field id
 * between calls (start it at 0 for each struct). */
int thrift_field(struct thrift *t, int16_t *id, int *type);

/* Values of the given wire type; a mismatching type is an error.
 * thrift_i32 also accepts BYTE and I16; thrift_i64 any integer type. */
int thrift_bool(struct thrift *t, int type);
int32_t thrift_i32(struct thrift *t, int type);
int64_t thrift_i64(struct thrift *t, int type);
double thrift_double(struct thrift *t, int type);
/* Binary/string: pointer into the buffer (not NUL-terminated) and length. */
const uint8_t *thrift_binary(struct thrift *t, int type, size_t *len);
/* List or set header: returns the element count (bounded by the bytes
 * left) and sets *elem to the element type. */
uint32_t thrift_list(struct thrift *t, int type, int *elem);
/* An element of a list of bool (one byte each, unlike struct fields). */
int thrift_list_bool(struct thrift *t);

/* Skip a value of any type, nested structs included. */
void thrift_skip(struct thrift *t, int type);

/* Set the error (sticky; the first reason wins). */
void thrift_fail(struct thrift *t, const char *why);

#endif
