/* decode: the kernels of the GPU decoder (gpt_cuda_infer.h), which feeds
 * tokens one at a time (or a prompt at once) through a key/value cache:
 * embeddings at a position offset, appending keys and values to the
 * cache, and causal attention of a few queries over the cache.  Internal
 * to cuda/ (C++ linkage); launchers queue work on a stream and check the
 * launch.  Buffers are the caller's.
 *
 * The cache of one layer is two bf16 arrays, keys and values, each
 * [H][max_T][hs]: a head's keys are contiguous, so a query reads them in
 * order. */
#ifndef GPT_CUDA_DECODE_H
#define GPT_CUDA_DECODE_H

#include "kernels.h"

/* Largest head size k_dec_attention takes (its query and accumulator
 * live in shared memory). */
#define DEC_MAX_HS 4096

/* out[n,C] = wte[tokens[i]] + wpe[pos0 + i], rounded as k_embed_fwd. */
void k_dec_embed(bf16 *out, const uint32_t *tokens, const bf16 *wte, const bf16 *wpe, int n,
                 int pos0, int C, cudaStream_t s);
/* Keys and values of qkv[n,3C] into the cache at positions pos0..pos0+n. */
void k_dec_kv_append(bf16 *kc, bf16 *vc, const bf16 *qkv, int n, int pos0, int C, int H,
                     int max_T, cudaStream_t s);
/* y[n,C]: query i (row i of qkv[n,3C], at position pos0 + i) attends to
 * cached positions 0..pos0+i with softmax(q.k / sqrt(hs)), in float32,
 * online over tiles of keys, in a fixed order. */
void k_dec_attention(bf16 *y, const bf16 *qkv, const bf16 *kc, const bf16 *vc, int n, int pos0,
                     int C, int H, int max_T, cudaStream_t s);

#endif
