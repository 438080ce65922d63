/* utf8out: decoded token bytes to output that is always valid UTF-8.  A
 * token may end inside a character, so a sequence is held back until its
 * last byte arrives; bytes that can never be UTF-8 become U+FFFD. */
#include "utf8out.h"

#include <string.h>

static const unsigned char replacement[3] = {0xEF, 0xBF, 0xBD};

void utf8out_init(struct utf8out *u)
{
	memset(u, 0, sizeof *u);
}

/* Length of the sequence a lead byte starts, 0 when it cannot lead. */
static int lead_len(unsigned b)
{
	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF)
		return 2;
	if (b >= 0xE0 && b <= 0xEF)
		return 3;
	if (b >= 0xF0 && b <= 0xF4)
		return 4;
	return 0;
}

/* Whether b may follow the held bytes (RFC 3629's table: the second byte
 * excludes overlong forms, surrogates and code points above U+10FFFF). */
static int continues(const struct utf8out *u, unsigned b)
{
	unsigned lo = 0x80, hi = 0xBF;

	if (u->n == 1) {
		switch (u->pend[0]) {
		case 0xE0: lo = 0xA0; break;
		case 0xED: hi = 0x9F; break;
		case 0xF0: lo = 0x90; break;
		case 0xF4: hi = 0x8F; break;
		default: break;
		}
	}
	return b >= lo && b <= hi;
}

static void flush_bad(struct utf8out *u, struct out *o)
{
	for (int i = 0; i < u->n; i++)
		out_write(o, replacement, sizeof replacement);
	u->n = 0;
}

void utf8out_push(struct utf8out *u, const unsigned char *p, size_t n,
		  struct out *o)
{
	for (size_t i = 0; i < n; i++) {
		unsigned b = p[i];

		if (u->n) {
			if (continues(u, b)) {
				u->pend[u->n++] = (unsigned char)b;
				if (u->n == u->need) {
					out_write(o, u->pend, (size_t)u->n);
					u->n = 0;
				}
				continue;
			}
			flush_bad(u, o);
		}
		u->need = lead_len(b);
		if (u->need == 1)
			out_putc(o, (int)b);
		else if (u->need == 0)
			out_write(o, replacement, sizeof replacement);
		else
			u->pend[u->n++] = (unsigned char)b;
	}
}

void utf8out_finish(struct utf8out *u, struct out *o)
{
	flush_bad(u, o);
}
