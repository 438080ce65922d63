/* sampler: picks the next token from a row of logits, and streams the
 * decoded bytes of tokens as valid UTF-8.
 *
 *   sampler_init(s, vocab, temperature, top_k, top_p, seed)
 *       temperature 0 (or top_k 1) is greedy: the largest logit, the
 *       lowest id among equals.  Otherwise the logits are divided by the
 *       temperature, cut to the top_k largest (0: no cut; ties broken by
 *       the lower id), then to the smallest set of those, in that order,
 *       whose probability reaches top_p (1: no cut), renormalised, and
 *       one is drawn with a gpt_rng seeded by seed: same seed, same
 *       tokens.  Only the first vocab logits are candidates.
 *   sampler_next(s, logits)  the chosen id
 *   sampler_free(s)
 *
 *   struct utf8_stream  holds back the bytes of an incomplete trailing
 *       UTF-8 sequence until it completes or can no longer complete.
 *       utf8_push(u, p, n, o) writes the complete characters to o;
 *       utf8_finish(u, o) flushes at the end of a text.  A byte sequence
 *       that is not UTF-8 (and one cut off by the end) is written as
 *       U+FFFD, one per offending byte, so the output is always valid
 *       UTF-8.  No allocation. */
#ifndef GPT_SAMPLER_H
#define GPT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "model.h"

struct sampler {
	int vocab;
	double temperature;
	int top_k;               /* 0: all */
	double top_p;            /* 1: all */
	struct gpt_rng rng;
	uint32_t *idx;           /* vocab candidate ids */
	double *prob;            /* vocab probabilities */
};

void sampler_init(struct sampler *s, int vocab, double temperature, int top_k,
                  double top_p, uint64_t seed);
uint32_t sampler_next(struct sampler *s, const float *logits);
/* The greedy choice: the first id with the largest logit. */
uint32_t sampler_argmax(const float *logits, int vocab);
void sampler_free(struct sampler *s);

struct utf8_stream {
	unsigned char pend[4];
	int n;                   /* bytes held back */
	int need;                /* bytes the held sequence needs in all */
};

void utf8_init(struct utf8_stream *u);
void utf8_push(struct utf8_stream *u, const unsigned char *p, size_t n, struct out *o);
void utf8_finish(struct utf8_stream *u, struct out *o);

#endif
