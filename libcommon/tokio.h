/* tokio: token-id streams in the three pipe forms (decimal text, raw
 * little-endian u16, raw little-endian u32), read and written the same way
 * by every gpt-* program.
 *
 * struct tokin   reader over a path ("-" is stdin).  tokin_read fills up
 *                to max ids and returns 0 only at the end of the input.
 *                Malformed input dies with one line naming the input:
 *                a non-id byte in text form (its byte offset and the
 *                character), a number over 4294967295, binary input that
 *                ends mid-token, and binary input that is plainly decimal
 *                text (so a forgotten -f text is reported, not misread).
 *                Text form is decimal ids separated by any ASCII white space.
 * struct tokout  writer onto a caller-owned struct out.  Text form writes
 *                ids separated by one space, a newline after each eot id
 *                and a final newline when the last line is not empty;
 *                u16 dies on an id over 65535, naming it and its position.
 *
 * tok_widen16 / tok_narrow16  convert between little-endian u16 bytes and
 *                ids quickly (8 at a time); narrow keeps the low 16 bits.
 *
 * Memory: tokin owns its buffer (freed by tokin_close); tokout owns
 * nothing; the struct out stays the caller's (flush/free it yourself
 * after tokout_finish). */
#ifndef GPT_TOKIO_H
#define GPT_TOKIO_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "io.h"

struct tokin {
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

void tokin_open(struct tokin *t, const char *path, enum tok_format f);
/* Up to max ids into ids[]; 0 only at the end of the input. */
size_t tokin_read(struct tokin *t, uint32_t *ids, size_t max);
/* Ids returned so far. */
uint64_t tokin_count(const struct tokin *t);
/* Name of the input for messages ("stdin" for "-"). */
const char *tokin_name(const struct tokin *t);
void tokin_close(struct tokin *t);

struct tokout {
	struct out *o;          /* not owned */
	enum tok_format fmt;
	uint32_t eot;           /* text form: newline after this id; UINT32_MAX none */
	int line_open;          /* text form: the current line has ids */
	uint64_t count;         /* ids written so far */
};

void tokout_init(struct tokout *t, struct out *o, enum tok_format f, uint32_t eot);
void tokout_write(struct tokout *t, const uint32_t *ids, size_t n);
/* Ends the last line in text form; does not flush o. */
void tokout_finish(struct tokout *t);

void tok_widen16(uint32_t *ids, const unsigned char *b, size_t n);
void tok_narrow16(unsigned char *d, const uint32_t *ids, size_t n);

#endif
