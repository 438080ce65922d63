/* train: the training loop, as a library.  gpt-train parses options and
 * calls train_run; tests and benchmarks call train_step for one optimizer
 * step on an engine (engine.h) without a run folder.
 *
 *   train_grads(e, in, tg, A, B, T)
 *       zero the gradients, then forward and backward A micro-batches of
 *       B x T (in and tg hold A*B*T ids each, micro-batch a at a*B*T),
 *       each scaled 1/A; returns the mean of the micro-batch losses, or
 *       the first loss that is not finite (the rest are then not run).
 *   train_step(e, in, tg, A, B, T, lr, clip, &norm)
 *       train_grads, then the gradient norm (into *norm when not NULL)
 *       and one AdamW step at lr clipped to clip; returns the loss.  No
 *       step is taken when the loss or the norm is not finite. */
#ifndef GPT_TRAIN_H
#define GPT_TRAIN_H

#include <stdint.h>

#include "engine.h"

double train_grads(struct engine *e, const uint32_t *in, const uint32_t *tg, int accum, int B,
                   int T);
double train_step(struct engine *e, const uint32_t *in, const uint32_t *tg, int accum, int B,
                  int T, float lr, float clip, float *norm);

#endif
