/* layers: the linear and attention layers of the GPT-2 block on device
 * pointers, as cuBLASLt products (mm, runtime.cu) and kernels
 * (kernels.cu, flash.cu); shared by the training engine, the decoder and
 * the test hooks (internal.h). */
#include <math.h>
#include <string.h>

#include "internal.h"

void linear_fwd(struct gctx *x, bf16 *out, const bf16 *inp, const bf16 *W, const bf16 *bias,
                const bf16 *resid, int N, int C, int OC)
{
	struct mm_opt o;
	memset(&o, 0, sizeof o);
	o.bias = bias;
	o.Cm = resid;
	o.beta = resid ? 1.0f : 0.0f;
	mm(x, MM_NT, out, inp, W, N, OC, C, &o);
}

void linear_gelu_fwd(struct gctx *x, bf16 *out, bf16 *pre, const bf16 *inp, const bf16 *W,
                     const bf16 *bias, int N, int C, int OC)
{
	struct mm_opt o;
	memset(&o, 0, sizeof o);
	o.bias = bias;
	if (!x->gelu_kernel && OC % 8 == 0) {
		o.gelu_pre = pre;
		if (mm(x, MM_NT, out, inp, W, N, OC, C, &o))
			return;
		o.gelu_pre = NULL;
	}
	mm(x, MM_NT, pre, inp, W, N, OC, C, &o);
	k_gelu_fwd(out, pre, (size_t)N * OC, x->s);
}

/* acc[i] += add[i]: a bias gradient from cuBLASLt's epilogue, which
 * overwrites, into the accumulated one. */
static __global__ void add_kernel(float *acc, const float *add, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		acc[i] += add[i];
}

void linear_bwd(struct gctx *x, bf16 *dinp, float *dW, float *dbias, float *part,
                const bf16 *dout, const bf16 *inp, const bf16 *W, int N, int C, int OC)
{
	linear_bwd_gelu(x, dinp, NULL, dW, dbias, part, dout, inp, W, N, C, OC);
}

void linear_bwd_gelu(struct gctx *x, bf16 *dinp, const bf16 *gelu_pre, float *dW, float *dbias,
                     float *part, const bf16 *dout, const bf16 *inp, const bf16 *W, int N, int C,
                     int OC)
{
	struct mm_opt o;
	memset(&o, 0, sizeof o);
	if (dinp) {
		int fused = 0;
		if (gelu_pre && !x->gelu_kernel && C % 8 == 0) {
			o.dgelu_pre = gelu_pre;
			fused = mm(x, MM_NN, dinp, dout, W, N, C, OC, &o);
			o.dgelu_pre = NULL;
		}
		if (!fused) {
			mm(x, MM_NN, dinp, dout, W, N, C, OC, &o);
			if (gelu_pre)
				k_gelu_bwd(dinp, gelu_pre, (size_t)N * C, x->s);
		}
	}
	o.d_f32 = 1;
	o.beta = 1.0f;
	if (dbias) {
		o.bgrad = part;
		if (mm(x, MM_TN, dW, dout, inp, OC, C, N, &o)) {
			add_kernel<<<(OC + 255) / 256, 256, 0, x->s>>>(dbias, part, OC);
			LAUNCH_CHECK();
			return;
		}
		o.bgrad = NULL; /* no algorithm with the epilogue */
	}
	mm(x, MM_TN, dW, dout, inp, OC, C, N, &o);
	if (dbias)
		k_bias_bwd(dbias, part, dout, N, OC, x->s);
}

static void attn_mm_opt(struct mm_opt *o, int BH, long long sa, long long sb, long long sd,
                        int d_f32)
{
	memset(o, 0, sizeof *o);
	o->batch = BH;
	o->sa = sa;
	o->sb = sb;
	o->sd = sd;
	o->d_f32 = d_f32;
}

void attention_fwd(struct gctx *x, const struct attn_buf *a, bf16 *y, float *lse,
                   const bf16 *qkv, int B, int T, int C, int H, const struct att_drop *ad)
{
	int hs = C / H, BH = B * H;
	long long th = (long long)T * hs, tt = (long long)T * T;
	struct mm_opt o;
	if (a->flash) {
		if (ad && ad->on)
			die("gpu model: internal error: dropout with flash attention");
		k_flash_fwd(y, lse, qkv, B, T, C, H, x->s);
		return;
	}
	k_qkv_split(a->q, a->k, a->v, qkv, B, T, C, H, x->s);
	attn_mm_opt(&o, BH, th, th, tt, 1);
	mm(x, MM_NT, a->S, a->q, a->k, T, T, hs, &o);
	k_attn_softmax(a->P, lse, a->S, 1.0f / sqrtf((float)hs), BH * T, T, 0, x->s, ad);
	attn_mm_opt(&o, BH, tt, th, th, 0);
	mm(x, MM_NN, a->y, a->P, a->v, T, hs, T, &o);
	k_heads_merge(y, a->y, B, T, C, H, x->s);
}

void attention_bwd(struct gctx *x, const struct attn_buf *a, bf16 *dqkv, const bf16 *dy,
                   const bf16 *y, const bf16 *qkv, const float *lse, int B, int T, int C, int H,
                   const struct att_drop *ad)
{
	int hs = C / H, BH = B * H;
	long long th = (long long)T * hs, tt = (long long)T * T;
	float scale = 1.0f / sqrtf((float)hs);
	struct mm_opt o;
	if (a->flash) {
		if (ad && ad->on)
			die("gpu model: internal error: dropout with flash attention");
		k_flash_bwd(dqkv, a->D, dy, y, qkv, lse, B, T, C, H, x->s);
		return;
	}
	k_qkv_split(a->q, a->k, a->v, qkv, B, T, C, H, x->s);
	k_heads_split(a->y, dy, B, T, C, H, x->s); /* a->y holds dY */
	attn_mm_opt(&o, BH, th, th, tt, 1);
	mm(x, MM_NT, a->S, a->q, a->k, T, T, hs, &o);
	k_attn_softmax(a->P, (float *)lse, a->S, scale, BH * T, T, 1, x->s);
	attn_mm_opt(&o, BH, tt, th, th, 0);
	if (ad && ad->on) {
		/* dV = P'^T dY with the dropped weights P' = P Z, made in the
		 * scores' storage (free until dP; bf16 takes half of it) */
		bf16 *Pd = (bf16 *)a->S;
		k_attn_dropout(Pd, a->P, BH * T, T, ad, x->s);
		mm(x, MM_TN, a->dv, Pd, a->y, T, hs, T, &o);
	} else {
		mm(x, MM_TN, a->dv, a->P, a->y, T, hs, T, &o);  /* dV = P^T dY */
	}
	attn_mm_opt(&o, BH, th, th, tt, 1);
	mm(x, MM_NT, a->S, a->y, a->v, T, T, hs, &o);         /* dP = dY V^T */
	k_attn_softmax_bwd(a->P, a->S, scale, BH * T, T, x->s, ad); /* P -> dS */
	attn_mm_opt(&o, BH, tt, th, th, 0);
	mm(x, MM_NN, a->dq, a->P, a->k, T, hs, T, &o);        /* dQ = dS K */
	mm(x, MM_TN, a->dk, a->P, a->q, T, hs, T, &o);        /* dK = dS^T Q */
	k_qkv_merge(dqkv, a->dq, a->dk, a->dv, B, T, C, H, x->s);
}

void attn_alloc(struct gctx *x, struct attn_buf *a, int B, int T, int C, int H)
{
	size_t btc = (size_t)B * T * C, tt = (size_t)B * H * T * T;
	bf16 **v[] = {&a->q, &a->k, &a->v, &a->y, &a->dq, &a->dk, &a->dv};
	memset(a, 0, sizeof *a);
	a->D = (float *)dalloc(x, (size_t)B * H * T * sizeof(float), "attention rows");
	a->flash = x->flash && k_flash_supported(C, H);
	if (a->flash)
		return;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		*v[i] = (bf16 *)dalloc(x, btc * sizeof(bf16), "attention heads");
	a->S = (float *)dalloc(x, tt * sizeof(float), "attention scores");
	a->P = (bf16 *)dalloc(x, tt * sizeof(bf16), "attention weights");
}

void attn_free(struct gctx *x, struct attn_buf *a, int B, int T, int C, int H)
{
	size_t btc = (size_t)B * T * C, tt = (size_t)B * H * T * T;
	bf16 *v[] = {a->q, a->k, a->v, a->y, a->dq, a->dk, a->dv};
	dfree(x, a->D, (size_t)B * H * T * sizeof(float));
	if (a->flash) {
		memset(a, 0, sizeof *a);
		return;
	}
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		dfree(x, v[i], btc * sizeof(bf16));
	dfree(x, a->S, tt * sizeof(float));
	dfree(x, a->P, tt * sizeof(bf16));
	memset(a, 0, sizeof *a);
}

