/* pretok: hand-written equivalents of the GPT-2 and GPT-4 split patterns.
 * Each alternative of the regular expression is tried in its order, so
 * the leftmost-first semantics of the regex engine are kept exactly. */
#include "pretok.h"
#include "unicode.h"

#include <string.h>

unsigned char pretok_byte_cls[256];
#define ascii_cls pretok_byte_cls

__attribute__((constructor)) static void ascii_init(void)
{
	int c;

	for (c = 0; c < 256; c++)
		ascii_cls[c] = c < 0x80 ? (unsigned char)unicode_class((uint32_t)c) :
			       PRETOK_NONASCII;
}

int pretok_parse(const char *name)
{
	if (strcmp(name, "gpt2") == 0)
		return PRETOK_GPT2;
	if (strcmp(name, "gpt4") == 0 || strcmp(name, "cl100k") == 0)
		return PRETOK_GPT4;
	return -1;
}

const char *pretok_name(enum pretok_pattern p)
{
	return p == PRETOK_GPT4 ? "gpt4" : "gpt2";
}

static inline int cls_at(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	uint32_t cp;

	if (s[i] < 0x80) {
		*len = 1;
		return ascii_cls[s[i]];
	}
	*len = utf8_next(s + i, n - i, &cp);
	return cp == UINT32_MAX ? UC_OTHER : unicode_class(cp);
}

/* End of the run of class c starting at i. */
static inline size_t run_of(const unsigned char *s, size_t n, size_t i, int c)
{
	size_t l;

	while (i < n) {
		if (s[i] < 0x80) {
			if (ascii_cls[s[i]] != c)
				break;
			i++;
			continue;
		}
		if (cls_at(s, n, i, &l) != c)
			break;
		i += l;
	}
	return i;
}

/* \s+(?!\S) then \s+, for a white-space character at pos of length l. */
static size_t space_run(const unsigned char *s, size_t n, size_t pos, size_t l)
{
	size_t last = pos, j = pos + l;

	while (j < n) {
		if (cls_at(s, n, j, &l) != UC_SPACE)
			break;
		last = j;
		j += l;
	}
	if (j == n)
		return n;          /* the run reaches the end: take it all */
	return last > pos ? last : j; /* leave the last one to the next piece */
}

static size_t next_gpt2(const unsigned char *s, size_t n, size_t pos)
{
	size_t l;
	int c;

	if (s[pos] == '\'' && pos + 1 < n) {
		unsigned a = s[pos + 1];

		if (a == 's' || a == 't' || a == 'm' || a == 'd')
			return pos + 2;
		if (pos + 2 < n) {
			unsigned b = s[pos + 2];

			if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
			    (a == 'l' && b == 'l'))
				return pos + 3;
		}
	}
	if (s[pos] == ' ' && pos + 1 < n) {
		c = cls_at(s, n, pos + 1, &l);
		if (c != UC_SPACE)
			return run_of(s, n, pos + 1 + l, c);
	}
	c = cls_at(s, n, pos, &l);
	if (c != UC_SPACE)
		return run_of(s, n, pos + l, c);
	return space_run(s, n, pos, l);
}

static inline unsigned lower(unsigned c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static size_t next_gpt4(const unsigned char *s, size_t n, size_t pos)
{
	size_t l, l2, j, i;
	unsigned b = s[pos];
	int c, c2, k;
	long lastnl;

	if (b == '\'' && pos + 1 < n) {
		unsigned a = lower(s[pos + 1]);

		if (a == 's' || a == 'd' || a == 'm' || a == 't')
			return pos + 2;
		/* (?i) folds U+017F LONG S to s */
		if (a == 0xC5 && pos + 2 < n && s[pos + 2] == 0xBF)
			return pos + 3;
		if (pos + 2 < n) {
			unsigned z = lower(s[pos + 2]);

			if ((a == 'l' && z == 'l') || (a == 'v' && z == 'e') ||
			    (a == 'r' && z == 'e'))
				return pos + 3;
		}
	}
	c = cls_at(s, n, pos, &l);
	/* [^\r\n\p{L}\p{N}]?+\p{L}+ */
	if (c == UC_LETTER)
		return run_of(s, n, pos + l, UC_LETTER);
	if ((c == UC_OTHER || (c == UC_SPACE && b != '\r' && b != '\n')) &&
	    pos + l < n) {
		c2 = cls_at(s, n, pos + l, &l2);
		if (c2 == UC_LETTER)
			return run_of(s, n, pos + l + l2, UC_LETTER);
	}
	/* \p{N}{1,3} */
	if (c == UC_NUMBER) {
		j = pos + l;
		for (k = 1; k < 3 && j < n; k++) {
			if (cls_at(s, n, j, &l2) != UC_NUMBER)
				break;
			j += l2;
		}
		return j;
	}
	/*  ?[^\s\p{L}\p{N}]++[\r\n]* */
	i = pos;
	if (b == ' ' && pos + 1 < n && cls_at(s, n, pos + 1, &l2) == UC_OTHER)
		i = pos + 1;
	if (cls_at(s, n, i, &l2) == UC_OTHER) {
		j = run_of(s, n, i + l2, UC_OTHER);
		while (j < n && (s[j] == '\r' || s[j] == '\n'))
			j++;
		return j;
	}
	/* \s*[\r\n]: up to the last CR or LF of the white-space run */
	lastnl = -1;
	for (j = pos; j < n; j += l2) {
		if (cls_at(s, n, j, &l2) != UC_SPACE)
			break;
		if (s[j] == '\r' || s[j] == '\n')
			lastnl = (long)j;
	}
	if (lastnl >= 0)
		return (size_t)lastnl + 1;
	return space_run(s, n, pos, l);
}

size_t pretok_next(enum pretok_pattern p, const unsigned char *s, size_t n,
		   size_t pos)
{
	return p == PRETOK_GPT4 ? next_gpt4(s, n, pos) : next_gpt2(s, n, pos);
}

static inline int ascii_nonspace(unsigned c)
{
	return c < 0x80 && ascii_cls[c] != UC_SPACE;
}

/*
 * Why a cut is safe.  The patterns have no look-behind, so the piece that
 * starts at q depends only on the text from q on; a cut at q is safe when
 * (1) the whole text has a piece boundary at q, and (2) the piece that
 * ends at q is found the same with or without the text after q.
 *   (a) "x\nY" with x, Y non-space ASCII: x's piece cannot swallow the
 *       newline (GPT-2) or swallows it either way (GPT-4 punctuation run);
 *       a lone newline before a non-space is its own piece, and at the end
 *       of the text it is a piece too.  Cut before Y.
 *   (b) GPT-2 only: ASCII x, y non-space of different classes (letter,
 *       digit, other), x not an apostrophe: runs stop at a class change and
 *       the piece at y cannot take a leading space.
 *   (c) Otherwise: run the pre-tokenizer from 0 and cut after a piece with
 *       no white space that ends 4 or more bytes before n: its end and the
 *       alternatives tried for it (contractions look 2 bytes ahead, runs 1
 *       character) lie inside s.
 */
size_t pretok_safe_split(enum pretok_pattern p, const unsigned char *s,
			 size_t n, size_t min)
{
	size_t q, pos, e, k;

	if (min < 2)
		min = 2;
	for (q = min; q < n; q++) {
		unsigned x = s[q - 1], y = s[q];

		if (x == '\n' && ascii_nonspace(y) && ascii_nonspace(s[q - 2]))
			return q;
		if (p == PRETOK_GPT2 && ascii_nonspace(x) && ascii_nonspace(y) &&
		    x != '\'' && ascii_cls[x] != ascii_cls[y])
			return q;
		if (q - min > 4096)
			break;
	}
	for (pos = 0; pos < n;) {
		int has_space = 0;
		size_t l;

		e = pretok_next(p, s, n, pos);
		if (e + 4 > n)
			break;
		for (k = pos; k < e && !has_space; k += l)
			has_space = cls_at(s, e, k, &l) == UC_SPACE;
		if (e >= min && !has_space)
			return e;
		pos = e;
	}
	return 0;
}
