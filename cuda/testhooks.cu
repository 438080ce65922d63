/* testhooks: single kernels and layers of the CUDA engine on host
 * arrays (gpt_cuda_test.h), each on its own stream, for
 * tests/cuda/cuda_test.c to compare with float64 references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpt_cuda_test.h"
#include "internal.h"

/* Host floats to a new device buffer, as bf16 or float32. */
static bf16 *up16(struct gctx *x, const float *h, size_t n)
{
	float *tmp = (float *)dalloc(x, n * sizeof(float), "test");
	bf16 *d = (bf16 *)dalloc(x, n * sizeof(bf16), "test");
	CUDA_CHECK(cudaMemcpyAsync(tmp, h, n * sizeof(float), cudaMemcpyHostToDevice, x->s));
	k_f32_to_bf16(d, tmp, n, x->s);
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, tmp, n * sizeof(float));
	return d;
}

static float *up32(struct gctx *x, const float *h, size_t n)
{
	float *d = (float *)dalloc(x, n * sizeof(float), "test");
	if (h)
		CUDA_CHECK(cudaMemcpyAsync(d, h, n * sizeof(float), cudaMemcpyHostToDevice, x->s));
	else
		CUDA_CHECK(cudaMemsetAsync(d, 0, n * sizeof(float), x->s));
	return d;
}

static void down16(struct gctx *x, float *h, bf16 *d, size_t n)
{
	float *tmp = (float *)dalloc(x, n * sizeof(float), "test");
	k_bf16_to_f32(tmp, d, n, x->s);
	CUDA_CHECK(cudaMemcpyAsync(h, tmp, n * sizeof(float), cudaMemcpyDeviceToHost, x->s));
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, tmp, n * sizeof(float));
	dfree(x, d, n * sizeof(bf16));
}

static void down32(struct gctx *x, float *h, float *d, size_t n)
{
	CUDA_CHECK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, x->s));
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, d, n * sizeof(float));
}

static void free16(struct gctx *x, const bf16 *d, size_t n)
{
	dfree(x, (void *)d, n * sizeof(bf16));
}

/* Filled with NaN, so an element a kernel forgets to write shows. */
static bf16 *new16(struct gctx *x, size_t n)
{
	bf16 *d = (bf16 *)dalloc(x, n * sizeof(bf16), "test");
	CUDA_CHECK(cudaMemsetAsync(d, 0xff, n * sizeof(bf16), x->s));
	return d;
}

extern "C" void gcuda_test_layernorm(int N, int C, const float *inp, const float *w,
                                     const float *b, const float *dout, float *out,
                                     float *mean, float *rstd, float *dres, float *dw,
                                     float *db)
{
	struct gctx x;
	size_t nc = (size_t)N * C;
	ctx_init(&x);
	bf16 *di = up16(&x, inp, nc), *dwt = up16(&x, w, C), *dbs = up16(&x, b, C);
	bf16 *ddo = up16(&x, dout, nc), *dout16 = new16(&x, nc), *dres16 = new16(&x, nc);
	float *dm = up32(&x, NULL, N), *dr = up32(&x, NULL, N), *dres32 = up32(&x, dres, nc);
	float *ddw = up32(&x, dw, C), *ddb = up32(&x, db, C);
	float *part = up32(&x, NULL, (size_t)GK_PARTS * 2 * C);
	k_layernorm_fwd(dout16, dm, dr, di, dwt, dbs, N, C, x.s);
	k_layernorm_bwd(dres32, dres16, ddw, ddb, part, ddo, di, dwt, dm, dr, N, C, x.s);
	down16(&x, out, dout16, nc);
	down32(&x, mean, dm, N);
	down32(&x, rstd, dr, N);
	down32(&x, dres, dres32, nc);
	down32(&x, dw, ddw, C);
	down32(&x, db, ddb, C);
	dfree(&x, part, (size_t)GK_PARTS * 2 * C * sizeof(float));
	free16(&x, di, nc);
	free16(&x, dwt, C);
	free16(&x, dbs, C);
	free16(&x, ddo, nc);
	free16(&x, dres16, nc);
	ctx_free(&x);
}

extern "C" void gcuda_test_gelu(size_t n, const float *inp, const float *dout, float *out,
                                float *dinp)
{
	struct gctx x;
	ctx_init(&x);
	bf16 *di = up16(&x, inp, n), *dd = up16(&x, dout, n), *dout16 = new16(&x, n);
	k_gelu_fwd(dout16, di, n, x.s);
	k_gelu_bwd(dd, di, n, x.s);
	down16(&x, out, dout16, n);
	down16(&x, dinp, dd, n);
	free16(&x, di, n);
	ctx_free(&x);
}

extern "C" void gcuda_test_matmul(int N, int C, int OC, const float *inp, const float *W,
                                  const float *bias, const float *resid, const float *dout,
                                  float *out, float *dinp, float *dW, float *dbias)
{
	struct gctx x;
	size_t nc = (size_t)N * C, no = (size_t)N * OC, wc = (size_t)OC * C;
	ctx_init(&x);
	bf16 *di = up16(&x, inp, nc), *dwt = up16(&x, W, wc), *ddo = up16(&x, dout, no);
	bf16 *db = bias ? up16(&x, bias, OC) : NULL, *dr = resid ? up16(&x, resid, no) : NULL;
	bf16 *o16 = new16(&x, no), *din16 = new16(&x, nc);
	float *ddw = up32(&x, dW, wc), *ddb = bias ? up32(&x, dbias, OC) : NULL;
	float *part = up32(&x, NULL, (size_t)GK_PARTS * OC);
	linear_fwd(&x, o16, di, dwt, db, dr, N, C, OC);
	linear_bwd(&x, din16, ddw, ddb, part, ddo, di, dwt, N, C, OC);
	down16(&x, out, o16, no);
	down16(&x, dinp, din16, nc);
	down32(&x, dW, ddw, wc);
	if (bias)
		down32(&x, dbias, ddb, OC);
	dfree(&x, part, (size_t)GK_PARTS * OC * sizeof(float));
	free16(&x, di, nc);
	free16(&x, dwt, wc);
	free16(&x, ddo, no);
	if (db)
		free16(&x, db, OC);
	if (dr)
		free16(&x, dr, no);
	ctx_free(&x);
}

extern "C" int gcuda_test_attention(int B, int T, int C, int H, int flash,
                                    const float *qkv, const float *dy, float *y, float *lse,
                                    float *dqkv)
{
	struct gctx x;
	struct attn_buf a;
	size_t n3 = (size_t)B * T * 3 * C, n1 = (size_t)B * T * C, nl = (size_t)B * H * T;
	int used;
	ctx_init(&x);
	x.flash = flash;
	attn_alloc(&x, &a, B, T, C, H);
	bf16 *dq = up16(&x, qkv, n3), *ddy = up16(&x, dy, n1);
	bf16 *y16 = new16(&x, n1), *dqkv16 = new16(&x, n3);
	float *dl = up32(&x, NULL, nl);
	attention_fwd(&x, &a, y16, dl, dq, B, T, C, H);
	attention_bwd(&x, &a, dqkv16, ddy, y16, dq, dl, B, T, C, H);
	down16(&x, y, y16, n1);
	down16(&x, dqkv, dqkv16, n3);
	down32(&x, lse, dl, nl);
	free16(&x, dq, n3);
	free16(&x, ddy, n1);
	used = a.flash;
	attn_free(&x, &a, B, T, C, H);
	ctx_free(&x);
	return used;
}

static void xent_case(int fused, int BT, int V, int Vp, const float *logits,
                      const uint32_t *targets, float dscale, float *row_loss, float *dlogits)
{
	struct gctx x;
	size_t n = (size_t)BT * Vp;
	ctx_init(&x);
	bf16 *lg = up16(&x, logits, n);
	uint32_t *dt = (uint32_t *)dalloc(&x, (size_t)BT * sizeof(uint32_t), "test");
	float *dl = up32(&x, NULL, BT), *dlse = up32(&x, NULL, BT);
	CUDA_CHECK(cudaMemcpyAsync(dt, targets, (size_t)BT * sizeof(uint32_t),
	                           cudaMemcpyHostToDevice, x.s));
	CUDA_CHECK(cudaMemsetAsync(dl, 0xff, (size_t)BT * sizeof(float), x.s)); /* NaN */
	if (fused) {
		k_xent_fused(lg, dl, dlse, dt, dscale, BT, V, Vp, x.s);
	} else {
		k_xent_fwd(dl, dlse, lg, dt, BT, V, Vp, x.s);
		k_xent_bwd(lg, dlse, dt, dscale, BT, V, Vp, x.s);
	}
	down32(&x, row_loss, dl, BT);
	down16(&x, dlogits, lg, n);
	dfree(&x, dlse, (size_t)BT * sizeof(float));
	dfree(&x, dt, (size_t)BT * sizeof(uint32_t));
	ctx_free(&x);
}

extern "C" void gcuda_test_xent(int BT, int V, int Vp, const float *logits,
                                const uint32_t *targets, float dscale, float *row_loss,
                                float *dlogits)
{
	xent_case(0, BT, V, Vp, logits, targets, dscale, row_loss, dlogits);
}

extern "C" void gcuda_test_xent_fused(int BT, int V, int Vp, const float *logits,
                                      const uint32_t *targets, float dscale, float *row_loss,
                                      float *dlogits)
{
	xent_case(1, BT, V, Vp, logits, targets, dscale, row_loss, dlogits);
}

extern "C" void gcuda_test_embedding(int B, int T, int C, int V, const uint32_t *inputs,
                                     const float *wte, const float *wpe, const float *dres,
                                     float *out, float *dwte, float *dwpe)
{
	struct gctx x;
	size_t BT = (size_t)B * T, nc = BT * C;
	uint32_t *h = (uint32_t *)xcalloc(3 * BT + 1, sizeof(uint32_t));
	uint32_t *order = h + BT, *seg = order + BT;
	int *cnt = (int *)xcalloc((size_t)V, sizeof(int)), nseg;
	/* the same grouping as the model's */
	memcpy(h, inputs, BT * sizeof *h);
	nseg = group_by_token(h, BT, V, cnt, order, seg);
	ctx_init(&x);
	uint32_t *d = (uint32_t *)dalloc(&x, (3 * BT + 1) * sizeof(uint32_t), "test");
	CUDA_CHECK(cudaMemcpyAsync(d, h, (3 * BT + 1) * sizeof(uint32_t), cudaMemcpyHostToDevice,
	                           x.s));
	bf16 *te = up16(&x, wte, (size_t)V * C), *pe = up16(&x, wpe, (size_t)T * C);
	bf16 *o16 = new16(&x, nc);
	float *dr = up32(&x, dres, nc), *dte = up32(&x, dwte, (size_t)V * C);
	float *dpe = up32(&x, dwpe, (size_t)T * C);
	k_embed_fwd(o16, d, te, pe, (int)BT, T, C, x.s);
	k_embed_bwd(dte, dpe, dr, d, d + BT, d + 2 * BT, nseg, B, T, C, x.s);
	down16(&x, out, o16, nc);
	down32(&x, dwte, dte, (size_t)V * C);
	down32(&x, dwpe, dpe, (size_t)T * C);
	dfree(&x, dr, nc * sizeof(float));
	free16(&x, te, (size_t)V * C);
	free16(&x, pe, (size_t)T * C);
	dfree(&x, d, (3 * BT + 1) * sizeof(uint32_t));
	ctx_free(&x);
	free(h);
	free(cnt);
}

extern "C" void gcuda_test_adamw(size_t n, int nt, const size_t *off, const size_t *boff,
                                 const int *decay, const struct adamw_config *cfg, long step,
                                 float lr, float max_norm, float *params, const float *grads,
                                 float *m, float *v, size_t n_bf16, float *pb, float *norm)
{
	struct gctx x;
	struct adamw_args a;
	/* the scalars as gcuda_adamw_step computes them */
	double bc1 = 1.0 - pow(cfg->beta1, (double)step), bc2 = 1.0 - pow(cfg->beta2, (double)step);
	a.one_b1 = (float)(1.0 - cfg->beta1);
	a.b2 = (float)cfg->beta2;
	a.one_b2 = (float)(1.0 - cfg->beta2);
	a.eps = (float)cfg->eps;
	a.step_size = (float)((double)lr / bc1);
	a.bc2_sqrt = (float)sqrt(bc2);
	a.keep = (float)(1.0 - (double)lr * cfg->weight_decay);
	a.max_norm = max_norm;
	ctx_init(&x);
	float *dp = up32(&x, params, n), *dg = up32(&x, grads, n), *dm = up32(&x, m, n);
	float *dv = up32(&x, v, n), *dn = up32(&x, NULL, 1);
	double *part = (double *)dalloc(&x, GK_NORM_PARTS * sizeof(double), "test");
	bf16 *db = up16(&x, pb, n_bf16);
	size_t *doff = (size_t *)dalloc(&x, (size_t)nt * sizeof(size_t), "test");
	size_t *dboff = (size_t *)dalloc(&x, (size_t)nt * sizeof(size_t), "test");
	int *ddec = (int *)dalloc(&x, (size_t)nt * sizeof(int), "test");
	CUDA_CHECK(cudaMemcpyAsync(doff, off, (size_t)nt * sizeof(size_t), cudaMemcpyHostToDevice,
	                           x.s));
	CUDA_CHECK(cudaMemcpyAsync(dboff, boff, (size_t)nt * sizeof(size_t), cudaMemcpyHostToDevice,
	                           x.s));
	CUDA_CHECK(cudaMemcpyAsync(ddec, decay, (size_t)nt * sizeof(int), cudaMemcpyHostToDevice,
	                           x.s));
	k_grad_norm(dn, part, dg, n, x.s);
	k_adamw(dp, db, dg, dm, dv, n, doff, dboff, ddec, nt, dn, a, x.s);
	down32(&x, params, dp, n);
	down32(&x, m, dm, n);
	down32(&x, v, dv, n);
	down32(&x, norm, dn, 1);
	down16(&x, pb, db, n_bf16);
	dfree(&x, dg, n * sizeof(float));
	dfree(&x, part, GK_NORM_PARTS * sizeof(double));
	dfree(&x, doff, (size_t)nt * sizeof(size_t));
	dfree(&x, dboff, (size_t)nt * sizeof(size_t));
	dfree(&x, ddec, (size_t)nt * sizeof(int));
	ctx_free(&x);
}
