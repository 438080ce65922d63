/* model_kern: what the CPU model's families share (model.c defines it,
 * lstm.c uses it too).  Private to libcommon's model: tools include
 * model.h.
 *
 *   model_gemm        C = A . B (each maybe transposed) + beta C, row-major,
 *                     split among nthreads threads by the model itself (one
 *                     CBLAS call per slice, so results do not depend on
 *                     OpenBLAS's own threading)
 *   model_loss_rows   each row's log-sum-exp and loss over the first V of
 *                     Vp logits (padding set to -INFINITY); rows whose
 *                     target is GPT_IGNORE (or no targets) get loss 0
 *   model_dlogits_rows  the logits become dscale * (softmax - one-hot),
 *                     0 on rows that do not count and on the padding
 *   model_flush_subnormals  flush-to-zero in each of the threads
 *   model_normal_at, model_uniform_at  the initialisation's draws of
 *                     buffer offset k (model.h)
 * And the LSTM's entry points, which model.c calls for arch LSTM. */
#ifndef GPT_MODEL_KERN_H
#define GPT_MODEL_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* exp(x) for x <= 88, to about 2 ulp, in plain float arithmetic the
 * compiler can vectorise (glibc's expf is a scalar call).  x = n ln2 + r
 * with |r| <= ln2/2, exp(r) by a degree-7 Taylor polynomial (error below
 * 6e-9), 2^n put into the exponent bits. */
static inline float exp_fast(float x)
{
	union { float f; int32_t i; } u;
	float n, r, p;
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
	r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
	p = 1.0f / 5040;
	p = p * r + 1.0f / 720;
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	u.i = ((int32_t)n + 127) << 23;
	return p * u.f;
}

void model_gemm(int nthreads, int ta, int tb, int M, int N, int K, const float *A, int lda,
                const float *Bm, int ldb, float beta, float *C, int ldc);
void model_loss_rows(int nthreads, float *logits, float *row_lse, float *row_loss,
                     const uint32_t *targets, int BT, int V, int Vp);
void model_dlogits_rows(int nthreads, float *logits, const float *row_lse,
                        const uint32_t *targets, float dscale, int BT, int V, int Vp);
void model_flush_subnormals(int nthreads);
double model_normal_at(uint64_t seed, size_t k);
double model_uniform_at(uint64_t seed, size_t k);

/* lstm.c */
void lstm_init(struct gpt_model *m);
void lstm_init_weights(struct gpt_model *m, uint64_t seed);
void lstm_plan(struct gpt_model *m, int B, int T, int training);
float lstm_forward(struct gpt_model *m, const uint32_t *inputs, const uint32_t *targets, int B,
                   int T);
float *lstm_logits(struct gpt_model *m);
void lstm_backward(struct gpt_model *m, float scale);
void lstm_free(struct gpt_model *m);

#endif
