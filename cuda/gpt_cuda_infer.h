/* gpt_cuda_infer: inference on the GPU, C-callable: a decoder that feeds
 * tokens through a key/value cache kept in GPU memory (the GPU twin of
 * libcommon's infer.h, for gpt-sample and gpt-eval's benchmarks), and the
 * per-position losses of a forward pass (for gpt-eval's bits per byte).
 *
 *   gcuda_decoder_init(g, max_T)   a decoder over engine g's weights (g
 *                                  must have them uploaded; it is borrowed:
 *                                  keep it alive, and do not train it while
 *                                  the decoder is in use); a cache of max_T
 *                                  positions (1 <= max_T <= n_ctx)
 *   gcuda_decoder_step(d, ids, n, last)
 *                                  run n tokens at positions pos..pos+n-1
 *                                  (a prompt in one call, then one at a
 *                                  time), append them to the cache, and
 *                                  write the last position's logits into
 *                                  last (padded_vocab floats, padding
 *                                  -INFINITY; NULL: not wanted)
 *   gcuda_decoder_step_all(d, ids, n, all)
 *                                  the same, with the logits of all n
 *                                  positions into all (n x padded_vocab)
 *   gcuda_decoder_rewind(d, pos)   forget the cache beyond pos tokens
 *   gcuda_decoder_reset(d)         the same as rewind to 0
 *   gcuda_decoder_pos(d)           tokens in the cache
 *   gcuda_decoder_free(d)          its GPU memory back to the engine
 * Feeding beyond max_T, or token ids outside the vocabulary, dies.  The
 * arithmetic is the engine's (bf16 weights and activations, float32
 * accumulation; keys and values cached in bf16), so the logits equal
 * gcuda_model_forward's on the whole sequence within bf16 rounding.
 *
 *   gcuda_model_row_loss(g, r0, n, dst)
 *                                  after gcuda_model_forward with targets:
 *                                  the loss of rows r0..r0+n of its B*T
 *                                  rows (0 where the target was GPT_IGNORE)
 *
 * Errors print one line on stderr and exit 1, as gpt_cuda.h says. */
#ifndef GPT_CUDA_INFER_H
#define GPT_CUDA_INFER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gcuda_model;
struct gcuda_decoder; /* private */

struct gcuda_decoder *gcuda_decoder_init(struct gcuda_model *g, int max_T);
void gcuda_decoder_step(struct gcuda_decoder *d, const uint32_t *tokens, int n, float *last);
void gcuda_decoder_step_all(struct gcuda_decoder *d, const uint32_t *tokens, int n,
                            float *all);
void gcuda_decoder_rewind(struct gcuda_decoder *d, int pos);
void gcuda_decoder_reset(struct gcuda_decoder *d);
int gcuda_decoder_pos(const struct gcuda_decoder *d);
void gcuda_decoder_free(struct gcuda_decoder *d);

void gcuda_model_row_loss(struct gcuda_model *g, int r0, int n, float *dst);

#ifdef __cplusplus
}
#endif

#endif
