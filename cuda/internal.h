/* internal: what the CUDA engine's files share, private to cuda/ (C++
 * linkage; the C API is gpt_cuda.h, gpt_cuda_infer.h and engine.h).
 *
 *   runtime.cu  struct gctx (a stream, a cuBLASLt handle, counted device
 *               memory: dalloc/dfree) and mm(), the row-major matrix
 *               product through cuBLASLt
 *   layers.cu   linear and attention layers on device pointers
 *   model.cu    struct gcuda_model: the training engine
 *   decode.cu   the decoder, over a gcuda_model's bf16 weights
 *   testhooks.cu single kernels for tests
 * Errors print one line and exit 1 (gcuda_fail, kernels.h). */
#ifndef GPT_CUDA_INTERNAL_H
#define GPT_CUDA_INTERNAL_H

#include <cublasLt.h>

extern "C" {
#include "err.h"
#include "model.h"
#include "optim.h"
}
#include "kernels.h"

#define WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLASLt's, one per gctx */
#define BF16_ALIGN 128 /* elements: each tensor's bf16 copy starts 256-byte aligned */

/* ---- runtime.cu ---- */

struct algo_entry; /* runtime.cu's cache of cuBLASLt's choices */

/* One stream and everything queued on it: a model, or a test hook. */
struct gctx {
	cudaStream_t s;
	int flash; /* attention by flash.cu (gcuda_attention_flash) */
	int gelu_kernel; /* GPT_CUDA_GELU=kernel: no GELU epilogue in cuBLASLt */
	cublasLtHandle_t lt;
	void *ws;
	size_t bytes, peak; /* held now, most held */
	struct algo_entry *algo;
	int n_algo;
	struct gphases *ph; /* phase marks, NULL unless timing (phase_on) */
};

/* Dies with gcuda_why_not() when there is no usable GPU. */
void need_device(void);
/* A stream, a cuBLASLt handle and its workspace; reads GPT_CUDA_ATTENTION,
 * GPT_CUDA_GELU and GPT_CUDA_DEBUG.  Needs a device (dies otherwise). */
void ctx_init(struct gctx *x);
void ctx_free(struct gctx *x);
/* n bytes of device memory, counted in x; out of memory dies saying what
 * for.  dfree takes the same n back. */
void *dalloc(struct gctx *x, size_t n, const char *what);
void dfree(struct gctx *x, void *p, size_t n);

/* Row-major products of contiguous bf16 matrices, batched with strides
 * sa, sb, sd (elements), float32 accumulation:
 *   nt: D[M,N] = A[M,K] B[N,K]^T      nn: D[M,N] = A[M,K] B[K,N]
 *   tn: D[M,N] = A[K,M]^T B[K,N]
 * D = product (+ bias[N]) + beta Cm (Cm NULL: D itself); D is bf16, or
 * float32 with d_f32.  With gelu_pre (MM_NT, one bf16 product, no Cm, N
 * divisible by 8): D = GELU(product + bias) and gelu_pre[M,N] the GELU's
 * input, in cuBLASLt's epilogue; with dgelu_pre (no bias or Cm, N
 * divisible by 8): D = product * GELU'(dgelu_pre[M,N]), the gradient
 * through a GELU.  With bgrad (MM_TN, float32 D, no other epilogue):
 * bgrad[M] = the sums over K of A[K,M], overwritten (a linear layer's
 * bias gradient, A its output's gradient).  mm returns 0, having queued
 * nothing, where cuBLASLt offers no algorithm for an epilogue asked for
 * (else 1). */
enum mm_kind { MM_NT, MM_NN, MM_TN };

struct mm_opt {
	int d_f32;
	const void *Cm;
	float beta;
	const bf16 *bias;
	bf16 *gelu_pre;
	const bf16 *dgelu_pre;
	float *bgrad;
	int batch;
	long long sa, sb, sd;
};

/* Phase marks (gcuda_phases_on): each names the phase that starts here on
 * x's stream and ends at the next mark, recorded as a CUDA event; without
 * phase_on a mark costs one test.  name must be a static string. */
void phase(struct gctx *x, const char *name);
void phase_on(struct gctx *x, int on);
/* Wait for the stream; the phases marked since the last take, up to max
 * (dies beyond), with their milliseconds between marks, the last one ending
 * now; marks start over. */
int phase_take(struct gctx *x, int max, const char **names, float *ms);

int mm(struct gctx *x, enum mm_kind kind, void *D, const bf16 *A, const bf16 *B, int M, int N,
        int K, const struct mm_opt *o);

/* Row-major float32 products with leading dimensions (the LSTM's):
 * D[M,N] = op(A)[M,K] op(B)[K,N] + beta D, op transposing when ta or tb
 * (A stored [K,M], B stored [N,K]); float32 accumulation. */
void mm32(struct gctx *x, int ta, int tb, int M, int N, int K, const float *A, int lda,
          const float *B, int ldb, float beta, float *D, int ldd);

/* ---- layers.cu ---- */

/* out[N,OC] = inp[N,C] W[OC,C]^T + bias (+ resid[N,OC] when given). */
void linear_fwd(struct gctx *x, bf16 *out, const bf16 *inp, const bf16 *W, const bf16 *bias,
                const bf16 *resid, int N, int C, int OC);
/* out[N,OC] = GELU(pre), pre[N,OC] = inp W^T + bias: in one cuBLASLt call
 * with the GELU epilogue where it can (not with GPT_CUDA_GELU=kernel),
 * else the product then k_gelu_fwd. */
void linear_gelu_fwd(struct gctx *x, bf16 *out, bf16 *pre, const bf16 *inp, const bf16 *W,
                     const bf16 *bias, int N, int C, int OC);
/* dinp = dout W (overwritten, when dinp); dW += dout^T inp; dbias +=
 * column sums of dout.  part: bias scratch (kernels.h).  With gelu_pre
 * (the input of the GELU that made inp), dinp is the gradient of that
 * input, dout W times GELU': in cuBLASLt's DGELU epilogue where it can
 * (not with GPT_CUDA_GELU=kernel), else the product then k_gelu_bwd.  The
 * bias gradient comes from the weight product's BGRADB epilogue (into
 * part, then added) where cuBLASLt offers it, else from k_bias_bwd. */
void linear_bwd(struct gctx *x, bf16 *dinp, float *dW, float *dbias, float *part,
                const bf16 *dout, const bf16 *inp, const bf16 *W, int N, int C, int OC);
void linear_bwd_gelu(struct gctx *x, bf16 *dinp, const bf16 *gelu_pre, float *dW, float *dbias,
                     float *part, const bf16 *dout, const bf16 *inp, const bf16 *W, int N, int C,
                     int OC);

/* Scratch for attention: per-head copies and the T x T matrices. */
struct attn_buf {
	bf16 *q, *k, *v, *y, *dq, *dk, *dv; /* [B*H, T, hs] */
	float *S;                           /* [B*H, T, T] scores, then dP */
	bf16 *P;                            /* [B*H, T, T] weights, then dS */
	float *D;                           /* [B*H*T] flash backward scratch */
	int flash;                          /* flash.cu instead of the above */
};

/* Flash attention when x asks for it and the head size allows, else the
 * batched products with their T x T scratch. */
void attn_alloc(struct gctx *x, struct attn_buf *a, int B, int T, int C, int H);
void attn_free(struct gctx *x, struct attn_buf *a, int B, int T, int C, int H);
/* y[B,T,C] and lse[B*H*T] from qkv[B,T,3C]; with ad on, the weights
 * dropped (kernels.h; not with flash, which dies). */
void attention_fwd(struct gctx *x, const struct attn_buf *a, bf16 *y, float *lse,
                   const bf16 *qkv, int B, int T, int C, int H,
                   const struct att_drop *ad = NULL);
/* dqkv[B,T,3C] (overwritten) from dy[B,T,C], qkv, the forward's output y
 * and the saved lse; ad as the forward's. */
void attention_bwd(struct gctx *x, const struct attn_buf *a, bf16 *dqkv, const bf16 *dy,
                   const bf16 *y, const bf16 *qkv, const float *lse, int B, int T, int C,
                   int H, const struct att_drop *ad = NULL);

/* ---- model.cu ---- */

struct glayer_acts {
	bf16 *ln1, *qkv, *atty, *res2, *ln2, *fch, *fch_gelu, *res3;
	float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;
};

/* The engine of gpt_cuda.h.  Its tensor table is model.h's (L: names,
 * float32 offsets, the indices of each block's tensors); the engine adds
 * each tensor's offset in the bf16 copies (boff). */
struct gcuda_model {
	struct gpt_config cfg;
	struct gctx x;
	struct gpt_layout L;
	size_t *boff;           /* L.n_tensors bf16 offsets */
	size_t n_bf16;
	float *params, *grads;  /* float32 master weights and gradients */
	bf16 *wb;               /* bf16 copies, tensors BF16_ALIGN aligned */
	/* optimizer */
	float *m, *v, *norm;
	int norm_fresh;         /* norm is of the gradients as they are now */
	double *norm_part;
	size_t *t_off, *t_boff;
	int *t_decay;
	struct adamw_config acfg;
	long step;
	int have_opt;
	/* plan */
	int B, T, training, recompute;
	struct glayer_acts *layer;
	void *act_mem;
	size_t act_bytes;
	bf16 *encoded, *lnf, *logits, *dres_bf, *dC, *dC2, *d4C;
	float *lnf_mean, *lnf_rstd, *row_loss, *row_lse, *dres, *part, *loss;
	struct attn_buf att;
	uint32_t *d_stage, *h_stage; /* inputs, targets, order, seg */
	float *h_loss;
	int *counts;                 /* host, vocab_size: the counting sort */
	/* last forward */
	int fB, fT, has_targets, nseg;
	long counted;
	struct gpt_dropout drop;     /* gcuda_model_dropout's */
	/* a classifier's (n_classes > 0): per row its last position, label,
	 * logits (then their gradient) and loss, for plan_B rows */
	int *d_last;
	uint32_t *d_labels;
	float *cls_logits, *cls_loss;
	int dropping;                /* the pass being queued drops */
	/* data parallel: the next backward sums each layer's gradients on
	 * cs as soon as they are made (overlap), then pending until waited */
	struct gcuda_comm *overlap, *pending;
	cudaStream_t cs;
	cudaEvent_t *cev;       /* n_layer + 1 */
};

/* Tensor t's gradient and bf16 weight; NULL for GPT_NO_TENSOR. */
static inline float *G32(struct gcuda_model *g, int t)
{
	return t == GPT_NO_TENSOR ? NULL : g->grads + g->L.tensors[t].offset;
}

static inline bf16 *W16(struct gcuda_model *g, int t)
{
	return t == GPT_NO_TENSOR ? NULL : g->wb + g->boff[t];
}

/* Positions of inputs[n] grouped by token (a stable counting sort over
 * V ids, cnt: V ints of scratch): order[n] and the nseg group starts
 * seg[nseg + 1] (seg[nseg] = n), for the embedding backward.  Returns
 * nseg. */
int group_by_token(const uint32_t *inputs, size_t n, int V, int *cnt, uint32_t *order,
                   uint32_t *seg);

/* ---- nccl.cu ---- */

/* buf[0..n) summed over the ranks, on stream s, waited for (gpt_cuda.h);
 * or queued only, and everything queued on s waited for with the same
 * deadline (a rank that does not take part aborts the communicator). */
void gcuda_comm_allreduce(struct gcuda_comm *k, float *buf, size_t n, cudaStream_t s);
void gcuda_comm_enqueue(struct gcuda_comm *k, float *buf, size_t n, cudaStream_t s);
void gcuda_comm_wait(struct gcuda_comm *k, cudaStream_t s);

#endif
