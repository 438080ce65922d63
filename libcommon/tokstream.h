/* tokstream: token-id streams in the three pipe forms (decimal text, raw
 * little-endian u16, raw little-endian u32), read and written the same way
 * by every gpt-* program.
 *
 * struct tokstream_in   reader over a path ("-" is stdin).
 *                tokstream_in_read fills up to max ids and returns 0 only
 *                at the end of the input.  Malformed input dies with one
 *                line naming the input: a non-id byte in text form (its
 *                byte offset and the character), a number over 4294967295,
 *                binary input that ends mid-token, and binary input that is
 *                plainly decimal text (so a forgotten -f text is reported,
 *                not misread).  Text form is decimal ids separated by any
 *                ASCII white space.
 * struct tokstream_out  writer onto a caller-owned struct out.  Text form
 *                writes ids separated by one space, a newline after each
 *                eot id and a final newline when the last line is not
 *                empty; u16 dies on an id over 65535, naming it and its
 *                position.
 *
 * tokstream_pack / tokstream_unpack  ids to and from little-endian bytes of
 *                width 2 or 4, quickly (8 at a time); packing to width 2
 *                keeps the low 16 bits.  Shards store tokens this way too.
 *
 * Memory: a tokstream_in owns its buffer (freed by tokstream_in_close); a
 * tokstream_out owns nothing; the struct out stays the caller's
 * (flush/free it yourself after tokstream_out_finish). */
#ifndef GPT_TOKSTREAM_H
#define GPT_TOKSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "io.h"

struct tokstream_in {
	struct in in;
	enum tok_format fmt;
	unsigned char *buf;     /* owned */
	size_t len, pos;        /* valid bytes in buf, next unread byte */
	uint64_t offset;        /* input byte offset of buf[0] */
	uint64_t count;         /* ids returned so far */
	uint64_t val;           /* text form: number being parsed */
	int digits;             /* text form: val holds at least one digit */
	int checked;            /* binary form: the looks-like-text check ran */
};

void tokstream_in_open(struct tokstream_in *t, const char *path, enum tok_format f);
/* Up to max ids into ids[]; 0 only at the end of the input. */
size_t tokstream_in_read(struct tokstream_in *t, uint32_t *ids, size_t max);
/* Ids returned so far. */
uint64_t tokstream_in_count(const struct tokstream_in *t);
/* Name of the input for messages ("stdin" for "-"). */
const char *tokstream_in_name(const struct tokstream_in *t);
void tokstream_in_close(struct tokstream_in *t);

struct tokstream_out {
	struct out *o;          /* not owned */
	enum tok_format fmt;
	uint32_t eot;           /* text form: newline after this id; UINT32_MAX none */
	int line_open;          /* text form: the current line has ids */
	uint64_t count;         /* ids written so far */
};

void tokstream_out_init(struct tokstream_out *t, struct out *o, enum tok_format f,
			uint32_t eot);
void tokstream_out_write(struct tokstream_out *t, const uint32_t *ids, size_t n);
/* Ends the last line in text form; does not flush o. */
void tokstream_out_finish(struct tokstream_out *t);

void tokstream_pack(unsigned char *d, const uint32_t *ids, size_t n, int width);
void tokstream_unpack(uint32_t *ids, const unsigned char *b, size_t n, int width);

#endif
