/* utf8out: streams the decoded bytes of tokens as valid UTF-8.
 *
 *   struct utf8out  holds back the bytes of an incomplete trailing UTF-8
 *       sequence until it completes or can no longer complete.
 *   utf8out_init(u)
 *   utf8out_push(u, p, n, o)  writes the complete characters of p[0..n)
 *       to o, keeping an incomplete tail for the next push
 *   utf8out_finish(u, o)  flushes at the end of a text
 * A byte sequence that is not UTF-8 (and one cut off by the end) is
 * written as U+FFFD, one per offending byte, so the output is always
 * valid UTF-8.  No allocation; o stays the caller's. */
#ifndef GPT_UTF8OUT_H
#define GPT_UTF8OUT_H

#include <stddef.h>

#include "io.h"

struct utf8out {
	unsigned char pend[4];
	int n;                   /* bytes held back */
	int need;                /* bytes the held sequence needs in all */
};

void utf8out_init(struct utf8out *u);
void utf8out_push(struct utf8out *u, const unsigned char *p, size_t n, struct out *o);
void utf8out_finish(struct utf8out *u, struct out *o);

#endif
