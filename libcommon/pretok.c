/* pretok: hand-written equivalents of the GPT-2 and GPT-4 split patterns.
 * Each alternative of the regular expression is tried in its order, so
 * the leftmost-first semantics of the regex engine are kept exactly. */
#include "pretok.h"
#include "unicode.h"

#include <string.h>

unsigned char pretok_byte_cls[256];
#define ascii_cls pretok_byte_cls
/* The class of each two-byte character (U+0080 to U+07FF: Latin
 * supplements, Greek, Cyrillic, Armenian, Hebrew, Arabic), by its 11 bits:
 * one load where unicode_class makes two. */
static unsigned char cls2[2048];

__attribute__((constructor)) static void ascii_init(void)
{
	int c;

	for (c = 0; c < 256; c++)
		ascii_cls[c] = c < 0x80 ? (unsigned char)unicode_class((uint32_t)c) :
			       PRETOK_NONASCII;
	for (c = 0; c < 2048; c++)
		cls2[c] = (unsigned char)unicode_class((uint32_t)c);
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
	unsigned b = s[i];

	if (b < 0x80) {
		*len = 1;
		return ascii_cls[b];
	}
	if (b - 0xC2 < 0x1E && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
		*len = 2;
		return cls2[(b & 0x1F) << 6 | (s[i + 1] & 0x3F)];
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

/*
 * 64 bytes at a time.  Over ASCII the GPT-2 pattern's pieces follow from
 * each byte's class (L letter, N digit, O other, S white space, SP the
 * space itself) and its neighbours':
 *   a non-space byte starts a piece unless the byte before is a space (a
 *   space before a letter, digit or other byte always starts that
 *   piece: ' ?\p{L}+' and its like) or of its own class (the run goes
 *   on);
 *   a white-space byte starts a piece after a non-space byte, and as the
 *   last of a run of two or more before a non-space byte (\s+(?!\S)
 *   leaves that one out: it joins the next piece if it is a space, and is
 *   a piece of its own, by \s+, if not);
 *   an apostrophe that starts a piece (one after a letter, a digit or
 *   white space other than the space) and is followed by s, t, m, d, re,
 *   ve or ll is a contraction: the 2 or 3 bytes are the piece and the
 *   next byte starts one whatever its class.
 * Bit i's answer needs the bytes from i - 4 to i + 1, so it holds for
 * i <= 62 and up to two bytes before the first character the rules do not
 * cover.  They cover the other characters of 2 to 4 bytes but white space
 * (see below): Cyrillic, Greek, CJK and the like, 27% of the bench corpus.
 */
#if defined(__SSE2__)
#include <emmintrin.h>

struct cls16 {
	unsigned l, d, s, sp, ap, hi;
};

static inline struct cls16 classify16(const unsigned char *p)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i lo = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
	__m128i dg = _mm_sub_epi8(x, _mm_set1_epi8('0'));
	__m128i ws = _mm_sub_epi8(x, _mm_set1_epi8('\t'));
	__m128i sp = _mm_cmpeq_epi8(x, _mm_set1_epi8(' '));
	struct cls16 c;

	/* unsigned x - lo <= k, as min(x - lo, k) == x - lo */
	c.l = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(lo, _mm_set1_epi8(25)), lo));
	c.d = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(dg, _mm_set1_epi8(9)), dg));
	c.s = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		_mm_cmpeq_epi8(_mm_min_epu8(ws, _mm_set1_epi8(4)), ws), sp));
	c.sp = (unsigned)_mm_movemask_epi8(sp);
	c.ap = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('\'')));
	c.hi = (unsigned)_mm_movemask_epi8(x);
	return c;
}
#endif

uint64_t pretok_starts_gpt2(const unsigned char *s, size_t *skip)
{
	uint64_t L = 0, N = 0, S = 0, SP = 0, AP = 0, HI = 0, MO = 0, CONT = 0, rest;
	uint64_t O, NS, st, cand, lim;
	int i, h;

#if defined(__SSE2__)
	for (i = 0; i < 64; i += 16) {
		struct cls16 c = classify16(s + i);

		L |= (uint64_t)c.l << i;
		N |= (uint64_t)c.d << i;
		S |= (uint64_t)c.s << i;
		SP |= (uint64_t)c.sp << i;
		AP |= (uint64_t)c.ap << i;
		HI |= (uint64_t)c.hi << i;
	}
#else
	for (i = 0; i < 64; i++) {
		uint64_t bit = 1ull << i;
		int c = ascii_cls[s[i]];

		if (c == UC_LETTER)
			L |= bit;
		else if (c == UC_NUMBER)
			N |= bit;
		else if (c == UC_SPACE)
			S |= bit;
		else if (c == PRETOK_NONASCII)
			HI |= bit;
		SP |= s[i] == ' ' ? bit : 0;
		AP |= s[i] == '\'' ? bit : 0;
	}
#endif
	/* The other characters, each one of 2 to 4 bytes, get their class
	 * on all their bytes, so a run goes on across them as it does across
	 * ASCII, and starts nowhere but at their first byte (CONT clears the
	 * others).  The first that is not valid UTF-8, is white space (its
	 * pieces need the look-ahead of more than a byte) or runs past s[63]
	 * stops the block there, as the first non-ASCII byte did before. */
	rest = HI;
	while (rest) {
		int q = __builtin_ctzll(rest), c;
		uint32_t cp;
		size_t len = utf8_next(s + q, (size_t)(64 - q), &cp);
		uint64_t m;

		if (cp == UINT32_MAX)
			break;
		c = cp < 2048 ? cls2[cp] : unicode_class(cp);
		if (c == UC_SPACE)
			break;
		m = ((1ull << len) - 1) << q;
		if (c == UC_LETTER)
			L |= m;
		else if (c == UC_NUMBER)
			N |= m;
		else
			MO |= m;
		CONT |= m & ~(1ull << q);
		rest &= ~m;
	}
	O = ~(L | N | S | HI) | MO;
	NS = L | N | O;
	st = (NS & ~(SP << 1) & ~(L & L << 1) & ~(N & N << 1) & ~(O & O << 1)) |
	     (S & ((NS << 1) | (S << 1 & NS >> 1)));
	/* Contractions, rare: a scalar look at each apostrophe that starts a
	 * piece, in order (one may end where the next starts). */
	cand = AP & ~(SP << 1) & ~(O << 1) & ((1ull << 62) - 1);
	while (cand) {
		int q = __builtin_ctzll(cand);
		unsigned a = s[q + 1], b = s[q + 2];

		cand &= cand - 1;
		if (a == 's' || a == 't' || a == 'm' || a == 'd') {
			st = (st & ~(1ull << (q + 1))) | 1ull << (q + 2);
		} else if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l')) {
			st = (st & ~(3ull << (q + 1))) | (q + 3 < 64 ? 1ull << (q + 3) : 0);
		}
	}
	h = rest ? __builtin_ctzll(rest) : 64;
	lim = h >= 64 ? (1ull << 63) - 1 : h < 2 ? 0 : (1ull << (h - 1)) - 1;
	st &= lim & ~CONT & ~1ull; /* bits 1 to min(62, h - 2) */
	*skip = st || !rest ? 0 : (size_t)h + 1;
	return st;
}
