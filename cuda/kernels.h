/* kernels: the CUDA engine's element-wise, normalisation, attention-softmax,
 * loss and optimizer kernels, behind host launchers that queue work on a
 * stream and check the launch.  Internal to cuda/ (C++ linkage); the
 * public API is gpt_cuda.h.  Activations are bf16, statistics, gradients
 * and optimizer state float32; buffers are owned by the caller. */
#ifndef GPT_CUDA_KERNELS_H
#define GPT_CUDA_KERNELS_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "dropout.h"

typedef __nv_bfloat16 bf16;

/* Report a failed CUDA call with its place and exit 1. */
void gcuda_fail(const char *what, const char *file, int line) __attribute__((noreturn));
#define CUDA_CHECK(call) do { \
	cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) gcuda_fail(cudaGetErrorString(e_), __FILE__, __LINE__); \
} while (0)
/* After a kernel launch: the launch configuration was accepted.  With
 * GPT_CUDA_DEBUG=1 in the environment every launch is also waited for, so
 * a fault inside a kernel is reported at the line that launched it. */
extern int gcuda_debug;
#define LAUNCH_CHECK() do { \
	CUDA_CHECK(cudaGetLastError()); \
	if (gcuda_debug) CUDA_CHECK(cudaDeviceSynchronize()); \
} while (0)

/* Column-sum scratch: partial sums of up to GK_PARTS row chunks. */
#define GK_PARTS 64

void k_f32_to_bf16(bf16 *dst, const float *src, size_t n, cudaStream_t s);
void k_bf16_to_f32(float *dst, const bf16 *src, size_t n, cudaStream_t s);
/* Logits rows to float with the padding columns at -inf. */
void k_logits_to_f32(float *dst, const bf16 *src, int rows, int V, int Vp, cudaStream_t s);

void k_embed_fwd(bf16 *out, const uint32_t *inputs, const bf16 *wte, const bf16 *wpe,
                 int BT, int T, int C, cudaStream_t s);
/* dwte[tok] += sum of dres rows of the positions order[seg[k]..seg[k+1])
 * (all holding token tok), in position order; dwpe[t] += sum over b. */
void k_embed_bwd(float *dwte, float *dwpe, const float *dres, const uint32_t *inputs,
                 const uint32_t *order, const uint32_t *seg, int nseg, int B, int T, int C,
                 cudaStream_t s);

void k_layernorm_fwd(bf16 *out, float *mean, float *rstd, const bf16 *inp, const bf16 *w,
                     const bf16 *b, int N, int C, cudaStream_t s);
/* dres += d/dinp (float32), dres_bf = bf16(dres); dw, db += column sums.
 * part: GK_PARTS * 2C floats of scratch. */
void k_layernorm_bwd(float *dres, bf16 *dres_bf, float *dw, float *db, float *part,
                     const bf16 *dout, const bf16 *inp, const bf16 *w, const float *mean,
                     const float *rstd, int N, int C, cudaStream_t s);
/* dbias[OC] += column sums of dout[N,OC]; part: GK_PARTS * OC floats. */
void k_bias_bwd(float *dbias, float *part, const bf16 *dout, int N, int OC, cudaStream_t s);

void k_gelu_fwd(bf16 *out, const bf16 *inp, size_t n, cudaStream_t s);
/* d *= gelu'(inp), in place. */
void k_gelu_bwd(bf16 *d, const bf16 *inp, size_t n, cudaStream_t s);

/* qkv[B,T,3C] -> q, k, v [B*H, T, hs]. */
void k_qkv_split(bf16 *q, bf16 *k, bf16 *v, const bf16 *qkv, int B, int T, int C, int H,
                 cudaStream_t s);
/* dq, dk, dv [B*H,T,hs] -> dqkv[B,T,3C]. */
void k_qkv_merge(bf16 *dqkv, const bf16 *dq, const bf16 *dk, const bf16 *dv, int B, int T,
                 int C, int H, cudaStream_t s);
/* y[B,T,C] <-> yh[B*H,T,hs]. */
void k_heads_merge(bf16 *y, const bf16 *yh, int B, int T, int C, int H, cudaStream_t s);
void k_heads_split(bf16 *yh, const bf16 *y, int B, int T, int C, int H, cudaStream_t s);
/* Dropout of the attention weights of one layer (libcommon/dropout.h):
 * made on the host by make_att_drop (on 0 when d is NULL or d->p is 0),
 * passed to the kernels by value. */
struct att_drop {
	struct gpt_dropout d;
	uint64_t s;          /* the site's seed */
	uint64_t rowH0;      /* row0 * H */
	int n_ctx, on;
};
struct att_drop make_att_drop(const struct gpt_dropout *d, int site, int H, int n_ctx);

/* Causal softmax of scale * S over rows of [nrows/T, T, T]: P (zero above
 * the diagonal) and the row log-sum-exp; with have_lse the given lse is
 * used instead of computed (the backward's recomputation).  With ad on,
 * P is the dropped weights P Z (Z the mask times 1/(1-p)); lse stays the
 * softmax's. */
void k_attn_softmax(bf16 *P, float *lse, const float *S, float scale, int nrows, int T,
                    int have_lse, cudaStream_t s, const struct att_drop *ad = NULL);
/* Pd = P Z, zero above the diagonal (the backward's dropped weights). */
void k_attn_dropout(bf16 *Pd, const bf16 *P, int nrows, int T, const struct att_drop *ad,
                    cudaStream_t s);
/* In place: P becomes dS = P (dP - rowsum(P dP)) scale, zero above the
 * diagonal; with ad on, dP is the gradient of P Z and dS = P (Z dP -
 * rowsum(P Z dP)) scale. */
void k_attn_softmax_bwd(bf16 *P, const float *dP, float scale, int nrows, int T,
                        cudaStream_t s, const struct att_drop *ad = NULL);
/* A classifier's head (model.h): logits[B, K] (float) from the final
 * hidden states lnf at each row's last position, and each row's loss
 * (0 where labels[b] is GPT_IGNORE); the backward leaves in logits the
 * logits' gradient, adds to dW [K, C] and db [K], and writes dlnf at the
 * last positions (the rest must be zero). */
void k_cls_fwd(float *logits, float *loss, const bf16 *lnf, const int *last,
               const uint32_t *labels, const float *W, const float *bias, int B, int T, int C,
               int K, cudaStream_t s);
void k_cls_bwd(bf16 *dlnf, float *dW, float *db, float *logits, const uint32_t *labels,
               const bf16 *lnf, const int *last, const float *W, float dscale, int B, int T,
               int C, int K, cudaStream_t s);
/* out = add + mask * in over [BT, C] (add may be NULL, out may be in),
 * rows of T positions numbered from d->row0: dropout.h's site `site`. */
void k_drop_rows(bf16 *out, const bf16 *in, const bf16 *add, const struct gpt_dropout *d,
                 int site, int BT, int T, int C, int n_ctx, cudaStream_t s);
/* x = mask * x in place, float32. */
void k_drop_rows_f32(float *x, const struct gpt_dropout *d, int site, int BT, int T, int C,
                     int n_ctx, cudaStream_t s);

/* Flash-style causal attention (flash.cu), head size 64 only:
 * k_flash_supported says whether C, H qualify.  Forward: y[B,T,C] and
 * lse[B*H*T] from qkv[B,T,3C].  Backward: dqkv[B,T,3C] (overwritten) from
 * dy, the forward's y and lse; D: B*H*T floats of scratch. */
int k_flash_supported(int C, int H);
void k_flash_fwd(bf16 *y, float *lse, const bf16 *qkv, int B, int T, int C, int H,
                 cudaStream_t s);
void k_flash_bwd(bf16 *dqkv, float *D, const bf16 *dy, const bf16 *y, const bf16 *qkv,
                 const float *lse, int B, int T, int C, int H, cudaStream_t s);

/* The classifier's kernels need Vp a multiple of 8 and logits 16-byte
 * aligned (they die saying so otherwise).
 * Per row: lse over the first V logits, loss = lse - logit[target]; rows
 * whose target is GPT_IGNORE get loss 0. */
void k_xent_fwd(float *row_loss, float *row_lse, const bf16 *logits, const uint32_t *targets,
                int BT, int V, int Vp, cudaStream_t s);
/* In place: logits become dlogits = (softmax - onehot) dscale, zero on
 * the padding and on ignored rows. */
void k_xent_bwd(bf16 *logits, const float *row_lse, const uint32_t *targets, float dscale,
                int BT, int V, int Vp, cudaStream_t s);
/* Both in one pass, for training: row_loss and row_lse as k_xent_fwd,
 * the logits overwritten by their gradient as k_xent_bwd, each row read
 * once (held in registers up to 65536 entries; longer rows take the two
 * kernels). */
void k_xent_fused(bf16 *logits, float *row_loss, float *row_lse, const uint32_t *targets,
                  float dscale, int BT, int V, int Vp, cudaStream_t s);
/* *out = sum of x[0..n) in a fixed order (one block). */
void k_sum(float *out, const float *x, int n, cudaStream_t s);

/* *norm = sqrt(sum g^2) in a fixed order; part: GK_NORM_PARTS doubles;
 * g 16-byte aligned (dies otherwise). */
#define GK_NORM_PARTS 1024
void k_grad_norm(float *norm, double *part, const float *g, size_t n, cudaStream_t s);

/* AdamW over n parameters.  Tensor k covers [t_off[k], t_off[k+1]) of the
 * float32 buffers, its bf16 copy starts at t_boff[k], t_decay[k] says
 * whether weight decay applies.  The clip factor comes from *norm on the
 * device (max_norm <= 0: none).  p, pb, g, m, v 16-byte aligned (dies
 * otherwise); tensors of any size. */
struct adamw_args {
	float one_b1, b2, one_b2, eps, step_size, bc2_sqrt, keep, max_norm;
};
void k_adamw(float *p, bf16 *pb, const float *g, float *m, float *v, size_t n,
             const size_t *t_off, const size_t *t_boff, const int *t_decay, int nt,
             const float *norm, struct adamw_args a, cudaStream_t s);

#endif
