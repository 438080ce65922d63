/* pretok: the pre-tokenizers that cut text into pieces before BPE,
 * equivalent to the regular expressions of OpenAI's encodings but written
 * by hand for speed:
 *   PRETOK_GPT2  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   PRETOK_GPT4  cl100k's pattern: case-insensitive contractions, one
 *                non-letter glued before a letter run, digits in groups of
 *                at most 3, punctuation runs with trailing newlines, ...
 * Invalid UTF-8 bytes count as one-byte "other" characters, so any byte
 * string is cut into pieces and nothing is lost.
 *
 * pretok_next(p, s, n, pos) returns the end of the piece starting at pos
 * (pos < n); the pieces of s are found by calling it until the end.
 * pretok_next_gpt2 is the same for PRETOK_GPT2, inline for the common
 * case of an ASCII word or number (with its leading space) that ends in
 * ASCII, and pretok_next otherwise.
 * pretok_starts_gpt2 finds the PRETOK_GPT2 pieces of 64 bytes at once
 * (a bit mask; a vector compare per 16 bytes where SSE2 exists), for
 * text that is mostly ASCII.
 * pretok_safe_split finds a cut point in a prefix of a longer text such
 * that encoding the two sides separately gives the same pieces as encoding
 * the whole (see pretok.c for the argument). */
#ifndef GPT_PRETOK_H
#define GPT_PRETOK_H

#include <stddef.h>

#include "unicode.h"

enum pretok_pattern { PRETOK_GPT2 = 0, PRETOK_GPT4 = 1 };

/* "gpt2" / "gpt4" (also "cl100k"); returns -1 when unknown. */
int pretok_parse(const char *name);
const char *pretok_name(enum pretok_pattern p);

size_t pretok_next(enum pretok_pattern p, const unsigned char *s, size_t n,
		   size_t pos);

/* The class (UC_* of unicode.h) of each ASCII byte; PRETOK_NONASCII for
 * the bytes of longer UTF-8 sequences.  Filled before main runs. */
#define PRETOK_NONASCII 4
extern unsigned char pretok_byte_cls[256];

static inline size_t pretok_next_gpt2(const unsigned char *s, size_t n, size_t pos)
{
	/* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' over ASCII: the run
	 * ends at the first byte of another class; when that byte is ASCII
	 * (or the text ends) no later alternative or Unicode class can
	 * change the piece.  A leading apostrophe may start a contraction. */
	size_t i = pos + (s[pos] == ' ');
	unsigned c;

	if (i < n && s[pos] != '\'' && (c = pretok_byte_cls[s[i]]) != UC_SPACE &&
	    c != PRETOK_NONASCII) {
		for (i++; i < n && pretok_byte_cls[s[i]] == c; i++)
			;
		if (i == n || s[i] < 0x80)
			return i;
	}
	return pretok_next(PRETOK_GPT2, s, n, pos);
}

/* The starts of the PRETOK_GPT2 pieces in s[0..64): s[0] starts a piece
 * and the 64 bytes are text (what follows them does not matter).  Bit i of
 * the result, 1 <= i <= 62, is set when a piece starts at s[i]; the mask
 * stops before the first byte whose piece may depend on what the bit rules
 * do not see: the bits from the one just before the first character that
 * is not valid UTF-8, is non-ASCII white space or runs past s[63] are
 * clear.  0 when no start is settled: the piece at s[0] is then found with
 * pretok_next_gpt2, and *skip is 0, or, where such a character was the
 * cause, 1 + its offset (a call for a start before s + *skip is not worth
 * making: the pieces up to that character are for pretok_next_gpt2). */
uint64_t pretok_starts_gpt2(const unsigned char *s, size_t *skip);

/* s[0..n) is a prefix of the text (n < the text's length unless at_end),
 * and 0 is a piece boundary.  Returns a position q with min <= q < n at
 * which the text may be cut, or 0 when none is found in [min, n). */
size_t pretok_safe_split(enum pretok_pattern p, const unsigned char *s,
			 size_t n, size_t min);

#endif
