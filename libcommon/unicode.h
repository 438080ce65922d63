/* unicode: the character classes of the GPT split patterns and a strict
 * UTF-8 decoder.  Offers unicode_class (code point -> UC_*) and utf8_next. */
#ifndef GPT_UNICODE_H
#define GPT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { UC_OTHER = 0, UC_LETTER = 1, UC_NUMBER = 2, UC_SPACE = 3 };

extern const unsigned short unicode_stage1[0x110000 >> 8];
extern const unsigned char unicode_stage2[][256];

static inline int unicode_class(uint32_t cp)
{
	return unicode_stage2[unicode_stage1[cp >> 8]][cp & 255];
}

/* Decodes the character at s[0..n) (n >= 1).  Returns its length in bytes
 * and stores the code point; an invalid or truncated sequence (overlong,
 * surrogate, over U+10FFFF) is one byte long and gets *cp = UINT32_MAX. */
static inline size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		if (n >= 2 && (s[1] & 0xC0) == 0x80) {
			*cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
			return 2;
		}
	} else if (c >= 0xE0 && c <= 0xEF) {
		if (n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
			uint32_t v = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) |
				     (s[2] & 0x3Fu);
			if (v >= 0x800 && (v < 0xD800 || v > 0xDFFF)) {
				*cp = v;
				return 3;
			}
		}
	} else if (c >= 0xF0 && c <= 0xF4) {
		if (n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
		    (s[3] & 0xC0) == 0x80) {
			uint32_t v = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) |
				     ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
			if (v >= 0x10000 && v <= 0x10FFFF) {
				*cp = v;
				return 4;
			}
		}
	}
	*cp = UINT32_MAX;
	return 1;
}

#endif
