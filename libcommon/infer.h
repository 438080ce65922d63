/* infer: GPT-2 inference on the CPU with a key/value cache, so that each
 * new token costs one pass over the weights plus O(context) attention,
 * not a forward pass over the whole sequence.  Same arithmetic as
 * gpt_model_forward (model.h): its logits agree to about 1e-5.
 *
 *   infer_init(s, m)        cache and scratch for model m (m's parameters
 *                           are borrowed: keep m alive, and unchanged)
 *   infer_feed(s, ids, n, all)  run n tokens at positions pos..pos+n-1
 *                           (a prompt in one call: prefill), append them to
 *                           the cache; returns the logits after the last
 *                           one (padded_vocab floats, padding -INFINITY,
 *                           valid until the next feed); when all is not
 *                           NULL it also receives n rows of padded_vocab
 *   infer_rewind(s, pos)    forget the cache beyond pos tokens (pos 0:
 *                           empty), e.g. to score several endings of one
 *                           context
 *   infer_free(s)
 * The cache holds at most n_ctx tokens; feeding beyond dies, so callers
 * that run longer slide the window themselves (infer_rewind(s, 0) and
 * feed the tail again).
 *
 * Loading a model from a checkpoint file is modelio.h's. */
#ifndef GPT_INFER_H
#define GPT_INFER_H

#include <stdint.h>

#include "model.h"

struct infer_layer {
	const float *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb;
	const float *ln2w, *ln2b, *fcw, *fcb, *mprojw, *mprojb;
};

struct infer {
	const struct gpt_model *m;
	int pos;                  /* tokens in the cache */
	int rows;                 /* rows per internal chunk */
	const float *wte, *wpe, *lnfw, *lnfb, *head;
	struct infer_layer *layer;
	float *kc, *vc;           /* [n_layer][n_ctx][n_embd] */
	float *x, *ln, *qkv, *att, *fch, *scores;
	float *logits;            /* rows x padded_vocab */
};

void infer_init(struct infer *s, const struct gpt_model *m);
const float *infer_feed(struct infer *s, const uint32_t *ids, int n, float *all);
void infer_rewind(struct infer *s, int pos);
/* log-sum-exp of the first V logits, in double: a position's loss is
 * infer_lse(row, V) - row[target]. */
double infer_lse(const float *logits, int V);
void infer_free(struct infer *s);

#endif
