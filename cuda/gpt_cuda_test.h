/* gpt_cuda_test: single kernels of the CUDA engine on host arrays, for
 * tests/cuda/cuda_test.c to compare with CPU references.  Each call makes
 * its own stream and cuBLASLt handle, uploads the float inputs rounded to
 * bf16 where the engine keeps bf16 (activations, weights) and float32
 * where it keeps float32 (statistics, gradients), runs the same code the
 * model runs, and copies the results back as floats.  Outputs marked "+="
 * are accumulated into, as the engine accumulates gradients.  Arrays are
 * the caller's; needs gcuda_available(). */
#ifndef GPT_CUDA_TEST_H
#define GPT_CUDA_TEST_H

#include <stddef.h>
#include <stdint.h>

struct adamw_config; /* optim.h */

#ifdef __cplusplus
extern "C" {
#endif

/* Forward: out, mean, rstd from inp[N,C], w, b.  Backward: dres += dinp,
 * dw += , db += from dout and the forward's statistics. */
void gcuda_test_layernorm(int N, int C, const float *inp, const float *w, const float *b,
                          const float *dout, float *out, float *mean, float *rstd,
                          float *dres, float *dw, float *db);
/* out = gelu(inp); dinp = dout * gelu'(inp). */
void gcuda_test_gelu(size_t n, const float *inp, const float *dout, float *out, float *dinp);
/* out[N,OC] = inp W^T + bias (+ resid when not NULL); dinp = dout W;
 * dW += dout^T inp; dbias += column sums (bias may be NULL). */
void gcuda_test_matmul(int N, int C, int OC, const float *inp, const float *W,
                       const float *bias, const float *resid, const float *dout, float *out,
                       float *dinp, float *dW, float *dbias);
/* y[B,T,C], lse[B*H*T] from qkv[B,T,3C]; dqkv from dy and those.  flash
 * 1 asks for flash.cu's kernels; returns 1 when they ran (head size 64),
 * 0 when the batched products did. */
int gcuda_test_attention(int B, int T, int C, int H, int flash, const float *qkv,
                         const float *dy, float *y, float *lse, float *dqkv);
/* row_loss[BT] and dlogits[BT*Vp] = (softmax - onehot) * dscale. */
void gcuda_test_xent(int BT, int V, int Vp, const float *logits, const uint32_t *targets,
                     float dscale, float *row_loss, float *dlogits);
/* The same by the fused classifier of training (k_xent_fused). */
void gcuda_test_xent_fused(int BT, int V, int Vp, const float *logits, const uint32_t *targets,
                           float dscale, float *row_loss, float *dlogits);
/* One optimizer step as gcuda_adamw_step makes it: norm = the gradient
 * norm of grads[n]; then AdamW (step, lr, clipped to max_norm) over nt
 * tensors starting at off[k] (off[0] = 0), decayed where decay[k]: params,
 * m, v updated, and pb[n_bf16] the bf16 copies at boff[k] (elsewhere
 * left as it was). */
void gcuda_test_adamw(size_t n, int nt, const size_t *off, const size_t *boff,
                      const int *decay, const struct adamw_config *cfg, long step, float lr,
                      float max_norm, float *params, const float *grads, float *m, float *v,
                      size_t n_bf16, float *pb, float *norm);
/* out[B*T,C] = wte[in] + wpe[t]; dwte +=, dwpe += from dres[B*T,C]. */
void gcuda_test_embedding(int B, int T, int C, int V, const uint32_t *inputs,
                          const float *wte, const float *wpe, const float *dres, float *out,
                          float *dwte, float *dwpe);

#ifdef __cplusplus
}
#endif

#endif
