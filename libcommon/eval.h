/* eval: what gpt-eval measures, on any engine (engine.h).
 *
 * Language-model loss over windows of tokens (from shards or a text):
 *   eval_lm_loss(e, v, src, ctx, T, B, res, pm)  scores every window src gives:
 *       window k is tokens ids[0..len) with len <= T + 1; each of its
 *       tokens after the first is predicted from those before it in the
 *       window.  res gets the summed loss (nats) and count of predicted
 *       tokens, and for bits per byte the loss and decoded byte count of
 *       the predicted tokens that are not special tokens (<|endoftext|>
 *       has no text bytes, so it is left out of bits per byte).
 *
 * HellaSwag (the canonical JSONL: "ctx", "endings" [4 strings], "label"):
 *   each ending e is scored by the loss of tokens(" " + e) after
 *   tokens(ctx); acc picks the ending with the least summed loss,
 *   acc_norm the least mean loss per token (length-normalised by TOKENS,
 *   as Karpathy's llm.c/nanoGPT HellaSwag eval does; lm-eval-harness
 *   normalises by bytes instead).  Ties go to the lower index.
 * LAMBADA (JSONL with "text"): the context is the text before its last
 *   space, the target tokens(" " + last word); a hit when every target
 *   token is the greedy (argmax) prediction given the context and the
 *   target tokens before it, i.e. greedy decoding yields the whole word.
 *   ppl is exp(mean over examples of the target's summed loss).
 * Both: when context + continuation exceeds the model's context, the
 *   context loses tokens from its start.  limit > 0 scores only the first
 *   limit examples.  A malformed line dies naming the file and line; a
 *   file without an example (empty, or blank lines only) dies too.
 *   detail, when not NULL, receives one line per example
 *   (HellaSwag: "index label pred pred_norm sum... mean...", LAMBADA:
 *   "index hit loss").
 * The model is read, never changed; memory is freed before returning.
 *
 * Where the HellaSwag file comes from:
 *   eval_hellaswag_locate(spec, offline, quiet)  the path to read (malloc'd):
 *       spec itself when it is a file name; a URL's file in the download
 *       cache (http.h: fetched once, then reused, offline too); "val" the
 *       canonical validation split (HellaSwag's authors' GitHub file, or
 *       $GPT_HELLASWAG_URL) checked by the git blob id recorded in eval.c
 *       ($GPT_HELLASWAG_BLOB replaces it).  A file that fails the check is
 *       deleted, not cached, and the program dies.
 *
 * The engine: e, opened for the model, is planned for B x T inference
 * by eval_lm_loss (its loss per position, engine_losses); the benchmarks
 * open a decoder on it (its key/value cache). */
#ifndef GPT_EVAL_H
#define GPT_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "progress.h"
#include "vocab.h"

struct eval_loss {
	double nats;            /* summed loss of predicted tokens */
	uint64_t tokens;        /* predicted tokens */
	double text_nats;       /* the same over the non-special tokens */
	uint64_t bytes;         /* their decoded bytes */
};

/* Fills ids with window k (at most cap ids) and returns its length, or 0
 * when there is no window k. */
typedef size_t (*eval_window_fn)(void *ctx, uint64_t k, uint32_t *ids, size_t cap);

void eval_lm_loss(struct engine *e, const struct vocab *v, eval_window_fn src, void *ctx, int T,
                  int B, struct eval_loss *res, enum progress_mode pm);

struct eval_bench {
	uint64_t n;             /* examples scored */
	uint64_t hits;          /* acc (HellaSwag: by summed loss) */
	uint64_t hits_norm;     /* HellaSwag: by mean loss per token */
	double loss;            /* LAMBADA: summed target loss over examples */
};

void eval_hellaswag(struct engine *e, const struct vocab *v, const char *path, uint64_t limit,
                    struct eval_bench *r, FILE *detail, enum progress_mode pm);
char *eval_hellaswag_locate(const char *spec, int offline, int quiet);
void eval_lambada(struct engine *e, const struct vocab *v, const char *path, uint64_t limit,
                  struct eval_bench *r, FILE *detail, enum progress_mode pm);

#endif
