/* cuda_test: the CUDA engine checked against the CPU engine, on a GPU
 * (make cuda-test).  Every kernel on fresh random inputs against a plain
 * float64 reference, a full forward/backward and AdamW step of tiny models
 * against libcommon's model, the CUDA engine's table (engine.h) against the
 * CPU engine's, and 100 training steps on tinyshakespeare (train.h's
 * train_step on both engines) whose loss must follow the CPU engine's.
 * Prints one line per comparison, "pass NAME" / "fail NAME: why" per
 * test, exits non-zero on any mismatch.  CUDA_TEST_SEED=N repeats a run's
 * random draws; CUDA_TEST_ONLY (or test.h's TEST_ONLY)="name ..." runs
 * only the tests named.
 *
 * Tolerances, as ||gpu - ref|| / ||ref|| over a whole tensor.  Inputs are
 * rounded to bf16 before the reference sees them, so these measure the
 * engine's own rounding:
 *   1e-2  bf16 outputs of one operation (bf16 keeps 8 significant bits,
 *         one rounding is at most 2^-9 = 0.2% of a value)
 *   1e-4  float32 outputs computed from bf16 inputs (statistics, the
 *         loss rows, gradients accumulated in float32)
 *   2e-2  attention gradients (the weights P and their gradient dS are
 *         bf16 matrices between two products)
 *   1e-6  the gradient norm (summed in double); AdamW's params, m, v
 *         1e-5, its bf16 copies exactly the params rounded
 *   model forward: loss within 1e-2 absolute, logits 2e-2; backward:
 *   each tensor's gradient within 5e-2 and all gradients together 3e-2
 *   (bf16 activations through every layer); AdamW from the same gradients
 *   1e-5; recomputation changes nothing (1e-6); training's fused
 *   classifier gives the gradients of forward + backward (1e-3);
 *   per-position losses 1e-2;
 *   training: each of 100 losses within 2% of the CPU engine's.
 * Attention runs through the batched products unless GPT_CUDA_ATTENTION=
 * flash is set (the engine's default is flash: main sets matmul when the
 * variable is unset, so that one run checks both paths);
 * test_attention_flash and test_model_flash check flash.cu either way. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "err.h"
#include "gpt_cuda.h"
#include "gpt_cuda_infer.h"
#include "gpt_cuda_test.h"
#include "infer.h"
#include "modelio.h"
#include "model.h"
#include "optim.h"
#include "test.h"
#include "train.h"

static struct gpt_rng rng;

static float bf16r(float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	if ((u & 0x7f800000u) == 0x7f800000u)
		return x;
	u += 0x7fffu + ((u >> 16) & 1u);
	u &= 0xffff0000u;
	memcpy(&x, &u, 4);
	return x;
}

static double normal(void)
{
	double u1 = gpt_rng_uniform(&rng), u2 = gpt_rng_uniform(&rng);
	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* n floats, normal(0, std), rounded to bf16. */
static float *randn(size_t n, double std)
{
	float *p = xmalloc(xmul(n ? n : 1, sizeof(float)));
	for (size_t i = 0; i < n; i++)
		p[i] = bf16r((float)(std * normal()));
	return p;
}

static float *zeros(size_t n)
{
	return xcalloc(n ? n : 1, sizeof(float));
}

static float *copyf(const float *a, size_t n)
{
	float *p = xmalloc(xmul(n ? n : 1, sizeof(float)));
	memcpy(p, a, n * sizeof(float));
	return p;
}

/* ||a - b|| / ||b|| (||a - b|| when b is zero); infinity on NaN. */
static double rel(const float *a, const float *b, size_t n)
{
	double d = 0, r = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(a[i]) || !isfinite(b[i])) {
			if (a[i] == b[i]) /* both -inf: padding logits */
				continue;
			return INFINITY;
		}
		d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		r += (double)b[i] * b[i];
	}
	return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* Print and check one comparison. */
#define CMP(name, a, b, n, tol) do { \
	double e_ = rel((a), (b), (n)); \
	printf("  %-28s rel %.2e (tol %.0e)%s\n", (name), e_, (double)(tol), \
	       e_ <= (tol) ? "" : "  MISMATCH"); \
	CHECK(e_ <= (tol), "%s: rel %.3e > %.0e", (name), e_, (double)(tol)); \
} while (0)

/* ---- float64 references ---- */

static void ref_layernorm(int N, int C, const float *x, const float *w, const float *b,
                          const float *dy, float *out, float *mean, float *rstd,
                          float *dres, float *dw, float *db)
{
	for (int r = 0; r < N; r++) {
		const float *xr = x + (size_t)r * C, *dr = dy + (size_t)r * C;
		double mu = 0, var = 0, m1 = 0, m2 = 0, rs;
		for (int i = 0; i < C; i++)
			mu += xr[i];
		mu /= C;
		for (int i = 0; i < C; i++)
			var += (xr[i] - mu) * (xr[i] - mu);
		rs = 1.0 / sqrt(var / C + 1e-5);
		for (int i = 0; i < C; i++) {
			double xh = (xr[i] - mu) * rs;
			out[(size_t)r * C + i] = (float)(xh * w[i] + b[i]);
			m1 += (double)dr[i] * w[i];
			m2 += (double)dr[i] * w[i] * xh;
			dw[i] += (float)(dr[i] * xh);
			db[i] += dr[i];
		}
		m1 /= C;
		m2 /= C;
		for (int i = 0; i < C; i++) {
			double xh = (xr[i] - mu) * rs;
			dres[(size_t)r * C + i] += (float)(((double)dr[i] * w[i] - m1 - xh * m2) * rs);
		}
		mean[r] = (float)mu;
		rstd[r] = (float)rs;
	}
}

static void ref_gelu(size_t n, const float *x, const float *dy, float *out, float *dx)
{
	const double k = sqrt(2.0 / M_PI), a = 0.044715;
	for (size_t i = 0; i < n; i++) {
		double v = x[i], u = k * (v + a * v * v * v), t = tanh(u);
		out[i] = (float)(0.5 * v * (1 + t));
		dx[i] = (float)(dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k *
		                                          (1 + 3 * a * v * v)));
	}
}

static void ref_matmul(int N, int C, int OC, const float *x, const float *W, const float *bias,
                       const float *resid, const float *dy, float *out, float *dx, float *dW,
                       float *dbias)
{
	for (int r = 0; r < N; r++)
		for (int o = 0; o < OC; o++) {
			double s = bias ? bias[o] : 0;
			for (int i = 0; i < C; i++)
				s += (double)x[(size_t)r * C + i] * W[(size_t)o * C + i];
			if (resid)
				s += resid[(size_t)r * OC + o];
			out[(size_t)r * OC + o] = (float)s;
		}
	for (int r = 0; r < N; r++)
		for (int i = 0; i < C; i++) {
			double s = 0;
			for (int o = 0; o < OC; o++)
				s += (double)dy[(size_t)r * OC + o] * W[(size_t)o * C + i];
			dx[(size_t)r * C + i] = (float)s;
		}
	for (int o = 0; o < OC; o++) {
		double sb = 0;
		for (int i = 0; i < C; i++) {
			double s = 0;
			for (int r = 0; r < N; r++)
				s += (double)dy[(size_t)r * OC + o] * x[(size_t)r * C + i];
			dW[(size_t)o * C + i] += (float)s;
		}
		for (int r = 0; r < N; r++)
			sb += dy[(size_t)r * OC + o];
		if (dbias)
			dbias[o] += (float)sb;
	}
}

static void ref_attention(int B, int T, int C, int H, const float *qkv, const float *dy,
                          float *y, float *lse, float *dqkv)
{
	int hs = C / H, C3 = 3 * C;
	double scale = 1.0 / sqrt((double)hs);
	double *P = xmalloc(xmul((size_t)T * T, sizeof(double)));
	double *dP = xmalloc(xmul((size_t)T * T, sizeof(double)));
	memset(dqkv, 0, (size_t)B * T * C3 * sizeof(float));
	for (int b = 0; b < B; b++)
		for (int h = 0; h < H; h++) {
			const float *Q = qkv + (size_t)b * T * C3 + h * hs, *K = Q + C, *V = Q + 2 * C;
			const float *dY = dy + (size_t)b * T * C + h * hs;
			float *dQ = dqkv + (size_t)b * T * C3 + h * hs, *dK = dQ + C, *dV = dQ + 2 * C;
			for (int i = 0; i < T; i++) {
				double mx = -INFINITY, sum = 0;
				for (int j = 0; j <= i; j++) {
					double s = 0;
					for (int d = 0; d < hs; d++)
						s += (double)Q[(size_t)i * C3 + d] * K[(size_t)j * C3 + d];
					P[(size_t)i * T + j] = s * scale;
					mx = fmax(mx, s * scale);
				}
				for (int j = 0; j <= i; j++)
					sum += exp(P[(size_t)i * T + j] - mx);
				lse[((size_t)b * H + h) * T + i] = (float)(mx + log(sum));
				for (int j = 0; j <= i; j++)
					P[(size_t)i * T + j] = exp(P[(size_t)i * T + j] - mx) / sum;
				for (int d = 0; d < hs; d++) {
					double s = 0;
					for (int j = 0; j <= i; j++)
						s += P[(size_t)i * T + j] * V[(size_t)j * C3 + d];
					y[((size_t)b * T + i) * C + h * hs + d] = (float)s;
				}
			}
			for (int i = 0; i < T; i++) {
				double D = 0;
				for (int j = 0; j <= i; j++) {
					double s = 0;
					for (int d = 0; d < hs; d++)
						s += (double)dY[(size_t)i * C + d] * V[(size_t)j * C3 + d];
					dP[(size_t)i * T + j] = s;
					D += s * P[(size_t)i * T + j];
				}
				for (int j = 0; j <= i; j++) {
					double ds = P[(size_t)i * T + j] * (dP[(size_t)i * T + j] - D) * scale;
					for (int d = 0; d < hs; d++) {
						dQ[(size_t)i * C3 + d] += (float)(ds * K[(size_t)j * C3 + d]);
						dK[(size_t)j * C3 + d] += (float)(ds * Q[(size_t)i * C3 + d]);
						dV[(size_t)j * C3 + d] +=
							(float)(P[(size_t)i * T + j] * dY[(size_t)i * C + d]);
					}
				}
			}
		}
	free(P);
	free(dP);
}

static void ref_xent(int BT, int V, int Vp, const float *lg, const uint32_t *tg, float dscale,
                     float *loss, float *dl)
{
	for (int r = 0; r < BT; r++) {
		const float *l = lg + (size_t)r * Vp;
		float *d = dl + (size_t)r * Vp;
		double mx = -INFINITY, sum = 0, lse;
		memset(d, 0, (size_t)Vp * sizeof(float));
		loss[r] = 0;
		if (tg[r] == GPT_IGNORE)
			continue;
		for (int i = 0; i < V; i++)
			mx = fmax(mx, l[i]);
		for (int i = 0; i < V; i++)
			sum += exp(l[i] - mx);
		lse = mx + log(sum);
		loss[r] = (float)(lse - l[tg[r]]);
		for (int i = 0; i < V; i++)
			d[i] = (float)(exp(l[i] - lse) * dscale - (i == (int)tg[r] ? dscale : 0.0));
	}
}

/* ---- kernels ---- */

static void test_layernorm(void)
{
	static const int shapes[][2] = {{64, 768}, {37, 100}, {5, 1600}};
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int N = shapes[s][0], C = shapes[s][1];
		size_t nc = (size_t)N * C;
		float *x = randn(nc, 1.0), *w = randn(C, 1.0), *b = randn(C, 0.5);
		float *dy = randn(nc, 1.0), *dres0 = randn(nc, 0.1);
		float *o1 = zeros(nc), *m1 = zeros(N), *r1 = zeros(N), *dr1 = copyf(dres0, nc);
		float *dw1 = randn(C, 0.1), *db1 = randn(C, 0.1);
		float *o2 = zeros(nc), *m2 = zeros(N), *r2 = zeros(N), *dr2 = copyf(dres0, nc);
		float *dw2 = copyf(dw1, C), *db2 = copyf(db1, C);
		for (int i = 0; i < C; i++)
			w[i] = bf16r(1.0f + 0.2f * w[i]);
		gcuda_test_layernorm(N, C, x, w, b, dy, o1, m1, r1, dr1, dw1, db1);
		ref_layernorm(N, C, x, w, b, dy, o2, m2, r2, dr2, dw2, db2);
		printf(" layernorm %dx%d\n", N, C);
		CMP("out (bf16)", o1, o2, nc, 1e-2);
		CMP("mean", m1, m2, (size_t)N, 1e-4);
		CMP("rstd", r1, r2, (size_t)N, 1e-4);
		CMP("dres += dx", dr1, dr2, nc, 1e-4);
		CMP("dweight", dw1, dw2, (size_t)C, 1e-4);
		CMP("dbias", db1, db2, (size_t)C, 1e-4);
		free(x); free(w); free(b); free(dy); free(dres0);
		free(o1); free(m1); free(r1); free(dr1); free(dw1); free(db1);
		free(o2); free(m2); free(r2); free(dr2); free(dw2); free(db2);
	}
}

static void test_gelu(void)
{
	size_t n = 100003;
	float *x = randn(n, 2.0), *dy = randn(n, 1.0);
	float *o1 = zeros(n), *d1 = zeros(n), *o2 = zeros(n), *d2 = zeros(n);
	gcuda_test_gelu(n, x, dy, o1, d1);
	ref_gelu(n, x, dy, o2, d2);
	printf(" gelu %zu\n", n);
	CMP("out (bf16)", o1, o2, n, 1e-2);
	CMP("dinp (bf16)", d1, d2, n, 1e-2);
	free(x); free(dy); free(o1); free(d1); free(o2); free(d2);
}

static void test_matmul(void)
{
	/* the last: a bias gradient whose width is not a multiple of 8 */
	static const int shapes[][3] = {
		{64, 128, 384}, {40, 96, 24}, {128, 256, 256}, {33, 64, 100},
	};
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2], with = s != 1;
		size_t nc = (size_t)N * C, no = (size_t)N * OC, wc = (size_t)OC * C;
		float *x = randn(nc, 1.0), *W = randn(wc, 0.05), *bias = with ? randn(OC, 0.1) : NULL;
		float *resid = with ? randn(no, 1.0) : NULL, *dy = randn(no, 1.0);
		float *o1 = zeros(no), *dx1 = zeros(nc), *dW1 = randn(wc, 0.1);
		float *db1 = with ? randn(OC, 0.1) : NULL;
		float *o2 = zeros(no), *dx2 = zeros(nc), *dW2 = copyf(dW1, wc);
		float *db2 = with ? copyf(db1, OC) : NULL;
		gcuda_test_matmul(N, C, OC, x, W, bias, resid, dy, o1, dx1, dW1, db1);
		ref_matmul(N, C, OC, x, W, bias, resid, dy, o2, dx2, dW2, db2);
		printf(" matmul %dx%d -> %d%s\n", N, C, OC, with ? " + bias + residual" : "");
		CMP("out (bf16)", o1, o2, no, 1e-2);
		CMP("dinp (bf16)", dx1, dx2, nc, 1e-2);
		CMP("dweight +=", dW1, dW2, wc, 1e-4);
		if (with)
			CMP("dbias +=", db1, db2, (size_t)OC, 1e-4);
		free(x); free(W); free(bias); free(resid); free(dy);
		free(o1); free(dx1); free(dW1); free(db1); free(o2); free(dx2); free(dW2); free(db2);
	}
}

/* Both paths: the batched products, and flash.cu where the head size is
 * 64 (the shapes with other head sizes check the fallback). */
static void attention_case(int flash)
{
	static const int shapes[][4] = {
		{2, 64, 128, 2}, {3, 13, 48, 4}, {1, 256, 64, 1}, {2, 200, 256, 4}, {1, 7, 64, 1},
	};
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], H = shapes[s][3], used;
		size_t n3 = (size_t)B * T * 3 * C, n1 = (size_t)B * T * C, nl = (size_t)B * H * T;
		float *qkv = randn(n3, 1.0), *dy = randn(n1, 1.0);
		float *y1 = zeros(n1), *l1 = zeros(nl), *d1 = zeros(n3);
		float *y2 = zeros(n1), *l2 = zeros(nl), *d2 = zeros(n3);
		used = gcuda_test_attention(B, T, C, H, flash, qkv, dy, y1, l1, d1);
		ref_attention(B, T, C, H, qkv, dy, y2, l2, d2);
		printf(" attention B=%d T=%d C=%d H=%d (%s)\n", B, T, C, H,
		       used ? "flash" : "batched products");
		CHECK(used == (flash && C / H == 64), "flash used %d", used);
		CMP("y (bf16)", y1, y2, n1, 1e-2);
		CMP("lse", l1, l2, nl, 1e-4);
		CMP("dqkv (bf16)", d1, d2, n3, 2e-2);
		free(qkv); free(dy); free(y1); free(l1); free(d1); free(y2); free(l2); free(d2);
	}
}

static void test_attention(void)
{
	attention_case(0);
}

static void test_attention_flash(void)
{
	attention_case(1);
}

/* Both classifiers: the evaluation's two kernels (k_xent_fwd, k_xent_bwd)
 * and training's fused one, from rows shorter than its 1024 threads' 8
 * entries each to GPT-2's, one over 48 KB of shared memory (which needs
 * the opt-in) and one beyond the emulated sm_90's 227 KB (the fused
 * kernel's two-pass fallback). */
static void test_xent(void)
{
	static const int shapes[][3] = {
		{24, 1000, 1024}, {5, 9000, 9088}, {3, 20000, 20096}, {4, 50257, 50304},
		{2, 70000, 70016}, {2, 120000, 120064},
	};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		int BT = shapes[k][0], V = shapes[k][1], Vp = shapes[k][2];
		size_t n = (size_t)BT * Vp;
		float *lg = randn(n, 3.0), *l2 = zeros(BT), *d2 = zeros(n);
		uint32_t *tg = xcalloc((size_t)BT, sizeof *tg);
		for (int r = 0; r < BT; r++)
			tg[r] = r % 5 == 3 ? GPT_IGNORE : (uint32_t)(gpt_rng_next(&rng) % (uint64_t)V);
		tg[0] = (uint32_t)V - 1; /* the last real id */
		for (size_t i = 0; i < n; i++)
			if ((int)(i % (size_t)Vp) >= V)
				lg[i] = 0; /* padding: ignored whatever it holds */
		ref_xent(BT, V, Vp, lg, tg, 0.05f, l2, d2);
		for (int fused = 0; fused < 2; fused++) {
			float *l1 = zeros(BT), *d1 = zeros(n);
			(fused ? gcuda_test_xent_fused : gcuda_test_xent)(BT, V, Vp, lg, tg, 0.05f, l1,
			                                                  d1);
			printf(" cross-entropy%s BT=%d V=%d (padded %d)\n", fused ? ", fused" : "", BT,
			       V, Vp);
			CMP("row loss", l1, l2, (size_t)BT, 1e-4);
			CMP("dlogits (bf16)", d1, d2, n, 1e-2);
			for (int r = 0; r < BT; r++)
				for (int i = V; i < Vp; i++)
					CHECK(d1[(size_t)r * Vp + i] == 0, "padding gradient %g",
					      d1[(size_t)r * Vp + i]);
			for (int r = 3; r < BT; r += 5)
				for (int i = 0; i < Vp; i++)
					CHECK(d1[(size_t)r * Vp + i] == 0 && l1[r] == 0,
					      "ignored row %d: gradient %g, loss %g", r,
					      d1[(size_t)r * Vp + i], l1[r]);
			free(l1);
			free(d1);
		}
		free(lg); free(l2); free(d2); free(tg);
	}
}

/* Widths that take 8 bf16 and 4 floats a load (96), only the float
 * vectors (100), and neither (90). */
static void test_embedding(void)
{
	static const int widths[] = {96, 100, 90};
	for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
		int B = 3, T = 40, C = widths[k], V = 50;
		size_t BT = (size_t)B * T, nc = BT * C;
		uint32_t *in = xcalloc(BT, sizeof *in);
		float *wte = randn((size_t)V * C, 0.5), *wpe = randn((size_t)T * C, 0.5);
		float *dres = randn(nc, 1.0), *o1 = zeros(nc), *o2 = zeros(nc);
		float *dte1 = randn((size_t)V * C, 0.1), *dpe1 = randn((size_t)T * C, 0.1);
		float *dte2 = copyf(dte1, (size_t)V * C), *dpe2 = copyf(dpe1, (size_t)T * C);
		for (size_t i = 0; i < BT; i++)
			in[i] = (uint32_t)(gpt_rng_next(&rng) % 7 * 7 % (uint64_t)V); /* many repeats */
		gcuda_test_embedding(B, T, C, V, in, wte, wpe, dres, o1, dte1, dpe1);
		for (size_t r = 0; r < BT; r++)
			for (int i = 0; i < C; i++) {
				o2[r * C + i] = wte[(size_t)in[r] * C + i] + wpe[(r % T) * C + i];
				dte2[(size_t)in[r] * C + i] += dres[r * C + i];
				dpe2[(r % T) * C + i] += dres[r * C + i];
			}
		printf(" embedding B=%d T=%d C=%d V=%d\n", B, T, C, V);
		CMP("out (bf16)", o1, o2, nc, 1e-2);
		CMP("dwte +=", dte1, dte2, (size_t)V * C, 1e-4);
		CMP("dwpe +=", dpe1, dpe2, (size_t)T * C, 1e-4);
		free(in); free(wte); free(wpe); free(dres); free(o1); free(o2);
		free(dte1); free(dpe1); free(dte2); free(dpe2);
	}
}

/* The gradient norm and AdamW (gcuda_adamw_step's two kernels) against
 * optim.c: tensors whose sizes are multiples of 4 (4 parameters a thread,
 * 16-byte loads) and odd ones (a tensor ending inside a group of four,
 * bf16 copies off 8-byte alignment), n not a multiple of 4; clipped,
 * with weight decay on every other tensor.  The bf16 copies sit at
 * 128-element boundaries as the engine's do; the gaps must keep what
 * they held. */
static void test_adamw(void)
{
	static const size_t sizes[] = {768, 2304, 64, 7, 3, 1000, 5, 4096, 1, 13};
	enum { NT = sizeof sizes / sizeof sizes[0] };
	size_t off[NT], boff[NT], n = 0, nb = 0;
	int decay[NT];
	struct adamw_config cfg;
	struct adamw opt;
	long step = 7;
	float lr = 3e-4f, max_norm = 1.0f, norm_g, norm_c;
	for (int k = 0; k < NT; k++) {
		off[k] = n;
		boff[k] = nb;
		decay[k] = k % 2 == 0;
		n += sizes[k];
		nb += (sizes[k] + 127) / 128 * 128;
	}
	float *p1 = randn(n, 0.5), *g = randn(n, 1.0), *m1 = randn(n, 0.1), *v1 = randn(n, 0.1);
	float *pb = randn(nb, 1.0), *pb0 = copyf(pb, nb), *p2, *want = zeros(nb);
	for (size_t i = 0; i < n; i++)
		v1[i] = v1[i] * v1[i];
	p2 = copyf(p1, n);
	adamw_config_default(&cfg);
	adamw_init(&opt, &cfg, n);
	memcpy(opt.m, m1, n * sizeof(float));
	memcpy(opt.v, v1, n * sizeof(float));
	opt.step = step - 1;
	for (int k = 0; k < NT; k++)
		if (decay[k])
			adamw_add_decay(&opt, off[k], sizes[k]);
	gcuda_test_adamw(n, NT, off, boff, decay, &cfg, step, lr, max_norm, p1, g, m1, v1, nb, pb,
	                 &norm_g);
	norm_c = grad_global_norm(g, n);
	adamw_step(&opt, p2, g, lr, grad_clip_scale(norm_c, max_norm));
	printf(" adamw %d tensors, %zu parameters, clipped (norm %.4g)\n", NT, n, norm_c);
	CMP("gradient norm", &norm_g, &norm_c, 1, 1e-6);
	CMP("params", p1, p2, n, 1e-5);
	CMP("m", m1, opt.m, n, 1e-5);
	CMP("v", v1, opt.v, n, 1e-5);
	memcpy(want, pb0, nb * sizeof(float));
	for (int k = 0; k < NT; k++)
		for (size_t i = 0; i < sizes[k]; i++)
			want[boff[k] + i] = bf16r(p1[off[k] + i]);
	CMP("bf16 copies and the gaps", pb, want, nb, 0);
	adamw_free(&opt);
	free(p1); free(g); free(m1); free(v1); free(pb); free(pb0); free(p2); free(want);
}

/* ---- whole models ---- */

/* A finished configuration of n_layer L, n_head H, width C, context T
 * and vocabulary V. */
static struct gpt_config tiny(int L, int H, int C, int T, int V, int tied, int bias,
                              int qkv_bias)
{
	struct gpt_config c = {0};
	c.n_layer = L;
	c.n_head = H;
	c.n_embd = C;
	c.n_ctx = T;
	c.vocab_size = V;
	c.tied = tied;
	c.bias = bias;
	c.qkv_bias = qkv_bias;
	gpt_config_finish(&c);
	return c;
}

static void rand_tokens(uint32_t *in, uint32_t *tg, size_t n, int V, int ignore_every)
{
	for (size_t i = 0; i < n; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&rng) % (uint64_t)V);
		tg[i] = (uint32_t)(gpt_rng_next(&rng) % (uint64_t)V);
		if (ignore_every && i % (size_t)ignore_every == 1)
			tg[i] = GPT_IGNORE;
	}
}

/* An engine on device over a fresh model of c with weights from seed,
 * planned for training B x T, with AdamW's defaults. */
static struct engine *train_engine(const char *device, const struct gpt_config *c,
                                   uint64_t seed, int B, int T)
{
	struct gpt_model m;
	struct adamw_config ac;
	struct engine *e;
	gpt_model_init(&m, c);
	gpt_model_init_weights(&m, seed);
	e = engine_open(device, &m);
	engine_plan(e, B, T, 1, 0);
	adamw_config_default(&ac);
	engine_optim(e, &ac);
	return e;
}

static void model_case(int tied, int bias, int qkv_bias, int H, int C)
{
	struct gpt_config c = tiny(2, H, C, 64, 300, tied, bias, qkv_bias);
	struct gpt_model m;
	struct gcuda_model *g;
	struct adamw_config ac;
	struct adamw ocpu, ogpu;
	int B = 4, T = 32, BT = B * T;
	uint32_t *in = xcalloc((size_t)BT, 4), *tg = xcalloc((size_t)BT, 4);
	float loss_c, loss_g, *gg, *lg, *p0, norm_c, norm_g;
	double worst = 0;
	size_t n;

	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, gpt_rng_next(&rng));
	gpt_model_plan(&m, B, T, 1);
	n = m.n_params;
	rand_tokens(in, tg, (size_t)BT, c.vocab_size, 7);
	printf(" model L=2 H=%d C=%d V=300 tied=%d bias=%d qkv_bias=%d, B=%d T=%d%s\n", H, C,
	       tied, bias, qkv_bias, B, T, gcuda_attention_flash() ? ", flash attention" : "");

	g = gcuda_model_init(&c);
	gcuda_model_plan(g, B, T, 1, 0);
	gcuda_model_upload(g, &m);

	/* forward: loss and logits */
	loss_c = gpt_model_forward(&m, in, tg, B, T);
	loss_g = gcuda_model_forward(g, in, tg, B, T);
	printf("  %-28s cpu %.6f gpu %.6f (tol 1e-2)\n", "loss", loss_c, loss_g);
	CHECK(fabsf(loss_c - loss_g) <= 1e-2f, "loss cpu %g gpu %g", loss_c, loss_g);
	CHECK(gcuda_model_counted(g) == m.n_counted, "counted %ld vs %ld",
	      gcuda_model_counted(g), m.n_counted);
	lg = zeros((size_t)BT * c.padded_vocab);
	gcuda_model_logits(g, 0, BT, lg);
	CMP("logits", lg, gpt_model_logits(&m), (size_t)BT * c.padded_vocab, 2e-2);

	/* backward, two micro-batches accumulated */
	gpt_model_zero_grad(&m);
	gpt_model_backward(&m, 0.5f);
	gcuda_model_zero_grad(g);
	gcuda_model_backward(g, 0.5f);
	rand_tokens(in, tg, (size_t)BT, c.vocab_size, 0);
	gpt_model_forward(&m, in, tg, B, T - 8);
	gpt_model_backward(&m, 0.5f);
	loss_g = gcuda_model_forward_backward(g, in, tg, B, T - 8, 0.5f);
	CHECK(fabsf(m.loss - loss_g) <= 1e-2f, "second loss cpu %g gpu %g", m.loss, loss_g);
	gg = zeros(n);
	gcuda_model_download_grads(g, gg);
	for (int i = 0; i < m.n_tensors; i++) {
		const struct gpt_tensor *t = &m.tensors[i];
		double e = rel(gg + t->offset, m.grads + t->offset, t->size);
		if (e > worst)
			worst = e;
		if (e > 5e-2) {
			printf("  grad %-23s rel %.2e (tol 5e-2)  MISMATCH\n", t->name, e);
			CHECK(e <= 5e-2, "gradient of %s: rel %.3e", t->name, e);
		}
	}
	printf("  %-28s worst tensor rel %.2e (tol 5e-2)\n", "gradients", worst);
	CMP("all gradients", gg, m.grads, n, 3e-2);

	/* the optimizer, from the GPU's gradients on both sides, clipped */
	norm_g = gcuda_model_grad_norm(g);
	norm_c = grad_global_norm(gg, n);
	printf("  %-28s cpu %.6g gpu %.6g\n", "grad norm", norm_c, norm_g);
	CHECK(fabsf(norm_c - norm_g) <= 1e-5f * norm_c, "norm cpu %g gpu %g", norm_c, norm_g);
	adamw_config_default(&ac);
	gpt_model_adamw_init(&m, &ocpu, &ac);
	gpt_model_adamw_init(&m, &ogpu, &ac);
	gcuda_adamw_init(g, &ogpu);
	p0 = copyf(m.params, n);
	for (int step = 0; step < 2; step++) {
		adamw_step(&ocpu, m.params, gg, 1e-3f, grad_clip_scale(norm_c, 0.5f * norm_c));
		gcuda_adamw_step(g, 1e-3f, 0.5f * norm_c);
	}
	CHECK(fabsf(gcuda_adamw_last_norm(g) - norm_g) <= 1e-6f * norm_g, "last norm");
	{
		float *pg = copyf(m.params, n), *pc = copyf(m.params, n);
		struct gpt_model *mm = &m;
		gcuda_model_download(g, mm); /* m.params now the GPU's */
		memcpy(pg, m.params, n * sizeof(float));
		gcuda_adamw_download(g, &ogpu);
		for (size_t i = 0; i < n; i++) {
			pg[i] -= p0[i];
			pc[i] -= p0[i];
		}
		CMP("adamw update", pg, pc, n, 1e-5);
		CMP("adamw m", ogpu.m, ocpu.m, n, 1e-5);
		CMP("adamw v", ogpu.v, ocpu.v, n, 1e-5);
		CHECK(ogpu.step == ocpu.step, "step %ld vs %ld", ogpu.step, ocpu.step);
		free(pg);
		free(pc);
	}

	/* recomputation gives the same gradients as the same forward without
	 * it.  --recompute keeps the GELU in the engine's kernel (the backward
	 * recomputes it there), so the comparison is with GPT_CUDA_GELU=kernel;
	 * the default fused cuBLASLt epilogue rounds differently, close to it. */
	{
		float *g0 = zeros(n), *g1 = zeros(n), *g2 = zeros(n);
		struct gcuda_model *gk;
		struct gpt_model mk;
		const char *was = getenv("GPT_CUDA_GELU");
		char *keep = was ? strdup(was) : NULL;
		gcuda_model_zero_grad(g);
		gcuda_model_forward_backward(g, in, tg, B, T, 1.0f);
		gcuda_model_download_grads(g, g0);
		/* the fused classifier's gradients, as the two passes give them */
		gcuda_model_zero_grad(g);
		gcuda_model_forward(g, in, tg, B, T);
		gcuda_model_backward(g, 1.0f);
		gcuda_model_download_grads(g, g1);
		CMP("fused classifier, two passes", g1, g0, n, 1e-3);
		gpt_model_init(&mk, &c);
		gcuda_model_download(g, &mk);
		setenv("GPT_CUDA_GELU", "kernel", 1);
		gk = gcuda_model_init(&c);
		if (keep)
			setenv("GPT_CUDA_GELU", keep, 1);
		else
			unsetenv("GPT_CUDA_GELU");
		free(keep);
		gcuda_model_plan(gk, B, T, 1, 0);
		gcuda_model_upload(gk, &mk);
		gcuda_model_zero_grad(gk);
		gcuda_model_forward_backward(gk, in, tg, B, T, 1.0f);
		gcuda_model_download_grads(gk, g1);
		gcuda_model_plan(gk, B, T, 1, 1);
		gcuda_model_zero_grad(gk);
		gcuda_model_forward_backward(gk, in, tg, B, T, 1.0f);
		gcuda_model_download_grads(gk, g2);
		CMP("recompute gradients", g2, g1, n, 1e-6);
		CMP("fused GELU against the kernel's", g0, g1, n, 2e-2);
		gcuda_model_free(gk);
		gpt_model_free(&mk);
		free(g0);
		free(g1);
		free(g2);
	}
	printf("  peak gpu memory %.1f MiB\n", gcuda_model_peak_bytes(g) / 1048576.0);
	gcuda_model_free(g);
	adamw_free(&ocpu);
	adamw_free(&ogpu);
	gpt_model_free(&m);
	free(in); free(tg); free(gg); free(lg); free(p0);
}

static void test_model_tied(void)
{
	model_case(1, 1, 1, 4, 64);
}

static void test_model_untied_nobias(void)
{
	model_case(0, 0, 0, 2, 128);
}

/* The whole model again with flash attention (the engine reads
 * GPT_CUDA_ATTENTION when an engine is made); width 64 per head. */
static void test_model_flash(void)
{
	char *was = strdup(getenv("GPT_CUDA_ATTENTION") ? getenv("GPT_CUDA_ATTENTION") : "");
	setenv("GPT_CUDA_ATTENTION", "flash", 1);
	model_case(1, 1, 1, 2, 128);
	setenv("GPT_CUDA_ATTENTION", was, 1);
	free(was);
}

/* The CUDA engine's table (cuda/engine.cu, what the programs call)
 * against the CPU engine's on one model: tolerances as model_case's, and
 * from the same gradients (grads_set) the same step to 1e-5, also after
 * the state went through the host and back (pull, push). */
static void test_engine(void)
{
	struct gpt_config c = tiny(2, 2, 64, 64, 300, 0, 1, 1);
	int B = 3, T = 32, BT = B * T, Vp = c.padded_vocab, P = 40;
	uint64_t seed = gpt_rng_next(&rng);
	struct engine *cpu = train_engine("cpu", &c, seed, B, T);
	struct engine *gpu = train_engine("cuda", &c, seed, B, T);
	size_t n = cpu->model.n_params;
	uint32_t *in = xcalloc(2 * (size_t)BT, 4), *tg = xcalloc(2 * (size_t)BT, 4);
	float *lgc = zeros((size_t)BT * Vp), *lgg = zeros((size_t)BT * Vp);
	float *gc = zeros(n), *gg = zeros(n), *p0 = zeros(n), *uc = zeros(n), *ug = zeros(n);
	float *rc = zeros((size_t)BT), *rg = zeros((size_t)BT);
	double *lc = xcalloc((size_t)BT, sizeof *lc), *lg = xcalloc((size_t)BT, sizeof *lg);
	double loss_c, loss_g;
	char desc[300];

	rand_tokens(in, tg, 2 * (size_t)BT, c.vocab_size, 5);
	engine_describe(gpu, desc, sizeof desc);
	printf(" engine table: %s against the cpu, L=2 H=2 C=64 V=300 untied, B=%d T=%d\n", desc,
	       B, T);
	CHECK(strncmp(desc, "the gpu: ", 9) == 0, "describe: '%s'", desc);

	/* forward: the loss, the counted positions, logits, each position's loss */
	loss_c = engine_forward(cpu, in, tg, B, T);
	loss_g = engine_forward(gpu, in, tg, B, T);
	printf("  %-28s cpu %.6f gpu %.6f (tol 1e-2)\n", "loss", loss_c, loss_g);
	CHECK(fabs(loss_c - loss_g) <= 1e-2, "loss cpu %g gpu %g", loss_c, loss_g);
	CHECK(engine_counted(cpu) == engine_counted(gpu), "counted %ld vs %ld",
	      engine_counted(cpu), engine_counted(gpu));
	engine_logits(cpu, 1, BT - 1, lgc);
	engine_logits(gpu, 1, BT - 1, lgg);
	CMP("logits rows 1..", lgg, lgc, (size_t)(BT - 1) * Vp, 2e-2);
	for (int r = 0; r < BT; r++)
		lc[r] = lg[r] = -1; /* stays where the target is GPT_IGNORE */
	engine_losses(cpu, in, tg, B, T, lc);
	engine_losses(gpu, in, tg, B, T, lg);
	for (int r = 0; r < BT; r++) {
		rc[r] = (float)lc[r];
		rg[r] = (float)lg[r];
		if (tg[r] == GPT_IGNORE)
			CHECK(lc[r] == -1 && lg[r] == -1, "row %d ignored: %g %g", r, lc[r], lg[r]);
	}
	CMP("losses", rg, rc, (size_t)BT, 1e-2);

	/* gradients of two micro-batches; then the cpu's into the gpu */
	loss_c = train_grads(cpu, in, tg, 2, B, T);
	loss_g = train_grads(gpu, in, tg, 2, B, T);
	CHECK(fabs(loss_c - loss_g) <= 1e-2, "accumulated loss cpu %g gpu %g", loss_c, loss_g);
	engine_grads_get(cpu, gc);
	engine_grads_get(gpu, gg);
	CMP("all gradients", gg, gc, n, 3e-2);
	memcpy(p0, cpu->model.params, n * sizeof *p0);
	for (int round = 0; round < 2; round++) {
		float nc, ng;
		size_t moved;
		engine_grads_set(gpu, gc);
		engine_grads_get(gpu, gg);
		CMP(round ? "grads_set, after a push" : "grads_set", gg, gc, n, 0);
		nc = engine_grad_norm(cpu);
		ng = engine_grad_norm(gpu);
		CHECK(fabsf(nc - ng) <= 1e-5f * nc, "norm cpu %g gpu %g", nc, ng);
		engine_step(cpu, 1e-3f, 0.5f * nc);
		engine_step(gpu, 1e-3f, 0.5f * nc);
		engine_pull(gpu);
		moved = 0;
		for (size_t i = 0; i < n; i++) {
			uc[i] = cpu->model.params[i] - p0[i];
			ug[i] = gpu->model.params[i] - p0[i];
			moved += uc[i] != 0;
		}
		CMP(round ? "step, after a push" : "step", ug, uc, n, 1e-5);
		CHECK(moved > n / 2, "the step moved %zu of %zu weights", moved, n);
		CMP("adamw m", gpu->opt.m, cpu->opt.m, n, 1e-5);
		CMP("adamw v", gpu->opt.v, cpu->opt.v, n, 1e-5);
		CHECK(gpu->opt.step == cpu->opt.step, "step %ld vs %ld", gpu->opt.step,
		      cpu->opt.step);
		/* the cpu's state through the host into the gpu, as a resume does */
		memcpy(p0, cpu->model.params, n * sizeof *p0);
		memcpy(gpu->model.params, p0, n * sizeof *p0);
		memcpy(gpu->opt.m, cpu->opt.m, n * sizeof *p0);
		memcpy(gpu->opt.v, cpu->opt.v, n * sizeof *p0);
		engine_push(gpu);
	}

	/* the decoder: a prompt with every row, then one token, a rewind */
	{
		struct engine_decoder *dc = engine_decoder_open(cpu, c.n_ctx);
		struct engine_decoder *dg = engine_decoder_open(gpu, c.n_ctx);
		float *ac = zeros((size_t)P * Vp), *ag = zeros((size_t)P * Vp);
		float *one = zeros((size_t)Vp), *again = zeros((size_t)Vp);
		const float *last = engine_decoder_feed(dg, in, P, ag);
		CHECK(last == ag + (size_t)(P - 1) * Vp, "feed with rows returns the last row");
		engine_decoder_feed(dc, in, P, ac);
		CMP("decoder prompt rows", ag, ac, (size_t)P * Vp, 2e-2);
		memcpy(one, engine_decoder_feed(dg, in + P, 1, NULL), (size_t)Vp * sizeof *one);
		last = engine_decoder_feed(dc, in + P, 1, NULL);
		CMP("decoder next token", one, last, (size_t)Vp, 2e-2);
		CHECK(engine_decoder_pos(dg) == P + 1, "pos %d", engine_decoder_pos(dg));
		engine_decoder_rewind(dg, P);
		CHECK(engine_decoder_pos(dg) == P, "pos %d after a rewind", engine_decoder_pos(dg));
		memcpy(again, engine_decoder_feed(dg, in + P, 1, NULL), (size_t)Vp * sizeof *again);
		CMP("after a rewind, again", again, one, (size_t)Vp, 0);
		engine_decoder_close(dg);
		engine_decoder_close(dc);
		free(ac); free(ag); free(one); free(again);
	}
	CHECK(engine_peak_bytes(gpu) > 0 && engine_peak_bytes(cpu) == 0, "peak bytes %zu, %zu",
	      engine_peak_bytes(gpu), engine_peak_bytes(cpu));
	engine_close(gpu);
	engine_close(cpu);
	free(in); free(tg); free(lgc); free(lgg); free(gc); free(gg); free(p0); free(uc);
	free(ug); free(rc); free(rg); free(lc); free(lg);
}

/* ---- training on real text ---- */

/* --dropout on both engines: the same masks (libcommon/dropout.h), so
 * the GPU's loss and gradients with dropout match the CPU's with
 * dropout to the model tests' tolerances, and are far from the CPU's
 * without it; evaluation does not drop.  One case with the default
 * matmul attention, one asking for flash (dropout moves the engine to
 * the batched products). */
static void dropout_case(const char *attention)
{
	struct gpt_config c = tiny(2, 2, 128, 64, 300, 1, 1, 1);
	int B = 3, T = 32, BT = B * T;
	uint64_t seed = gpt_rng_next(&rng), key = gpt_rng_next(&rng);
	char *was = strdup(getenv("GPT_CUDA_ATTENTION") ? getenv("GPT_CUDA_ATTENTION") : "");
	struct engine *cpu, *gpu;
	uint32_t *in = xcalloc((size_t)BT, 4), *tg = xcalloc((size_t)BT, 4);
	float *gc, *gg, *g0, lc, lg, l0, le, lgpu0;
	size_t n;

	setenv("GPT_CUDA_ATTENTION", attention, 1);
	cpu = train_engine("cpu", &c, seed, B, T);
	gpu = train_engine("cuda", &c, seed, B, T);
	setenv("GPT_CUDA_ATTENTION", was, 1);
	free(was);
	n = cpu->model.n_params;
	gc = zeros(n);
	gg = zeros(n);
	g0 = zeros(n);
	rand_tokens(in, tg, (size_t)BT, c.vocab_size, 6);
	printf(" dropout 0.2, L=2 H=2 C=128 V=300, B=%d T=%d, %s attention asked for\n", B, T,
	       attention);
	lgpu0 = engine_forward(gpu, in, tg, B, T);
	engine_zero_grad(cpu);
	l0 = engine_forward_backward(cpu, in, tg, B, T, 1.0f);
	engine_grads_get(cpu, g0);
	engine_dropout(cpu, 0.2f, key, 7);
	engine_dropout(gpu, 0.2f, key, 7);
	engine_zero_grad(cpu);
	engine_zero_grad(gpu);
	lc = engine_forward_backward(cpu, in, tg, B, T, 1.0f);
	lg = engine_forward_backward(gpu, in, tg, B, T, 1.0f);
	printf("  %-28s cpu %.6f gpu %.6f, without dropout %.6f (tol 1e-2)\n", "loss", lc, lg, l0);
	CHECK(fabsf(lc - lg) <= 1e-2f, "dropout loss cpu %g gpu %g", lc, lg);
	engine_grads_get(cpu, gc);
	engine_grads_get(gpu, gg);
	CMP("gradients with dropout", gg, gc, n, 3e-2);
	{
		double far = rel(gg, g0, n);
		printf("  %-28s rel %.2e (want > 0.2)\n", "against no dropout", far);
		CHECK(far > 0.2, "the gpu's dropout gradients are near the undropped: %g", far);
	}
	/* a second pass with the same key: the same masks, the same bits */
	engine_zero_grad(gpu);
	le = engine_forward_backward(gpu, in, tg, B, T, 1.0f);
	engine_grads_get(gpu, g0);
	CHECK(le == lg && memcmp(g0, gg, n * sizeof *g0) == 0, "the same key, other results");
	/* evaluation does not drop: the same bits as before, or with flash
	 * asked for, the batched products' rounding of them */
	le = engine_forward(gpu, in, tg, B, T);
	CHECK(strcmp(attention, "flash") ? le == lgpu0 : fabsf(le - lgpu0) <= 1e-3f * lgpu0,
	      "evaluation dropped: %g, want %g", le, lgpu0);
	engine_close(cpu);
	engine_close(gpu);
	free(in); free(tg); free(gc); free(gg); free(g0);
}

/* A classifier (gpt-train --classify) on both engines: loss, logits and
 * the gradients of what learns to the model tests' tolerances, the
 * frozen tensors' gradients exactly 0 on the GPU, and after an AdamW
 * step with frozen ranges the frozen weights unchanged, bit for bit. */
static void classify_case(enum gpt_trainable tr)
{
	struct gpt_config c = tiny(2, 2, 64, 32, 300, 1, 1, 1);
	int B = 4, T = 24, K = 3, last[4] = { 23, 10, 3, 17 };
	uint32_t labels[4] = { 2, 0, 1, 2 }, *in = xcalloc((size_t)B * T, 4), *tg = xcalloc((size_t)B * T, 4);
	uint64_t seed = gpt_rng_next(&rng);
	struct engine *cpu, *gpu;
	float lc, lg, *gc, *gg, *logc, *logg, *p0;
	size_t n;

	c.n_classes = K;
	cpu = train_engine("cpu", &c, seed, B, T);
	gpu = train_engine("cuda", &c, seed, B, T);
	n = cpu->model.n_params;
	for (int t = 0; t < cpu->model.n_tensors; t++)
		if (!gpt_tensor_trainable(&cpu->model.layout, t, tr, c.n_layer)) {
			adamw_add_frozen(&cpu->opt, cpu->model.tensors[t].offset, cpu->model.tensors[t].size);
			adamw_add_frozen(&gpu->opt, gpu->model.tensors[t].offset, gpu->model.tensors[t].size);
		}
	engine_push(gpu);
	rand_tokens(in, tg, (size_t)B * T, c.vocab_size, 0);
	printf(" classifier L=2 C=64 K=3, B=%d T=%d, training %s\n", B, T,
	       tr == GPT_TRAIN_ALL ? "all" : tr == GPT_TRAIN_HEAD ? "the head" : "the last block");
	gc = zeros(n);
	gg = zeros(n);
	logc = zeros((size_t)B * K);
	logg = zeros((size_t)B * K);
	engine_zero_grad(cpu);
	engine_zero_grad(gpu);
	lc = engine_classify(cpu, in, last, labels, B, T);
	lg = engine_classify(gpu, in, last, labels, B, T);
	printf("  %-28s cpu %.6f gpu %.6f (tol 1e-2)\n", "loss", lc, lg);
	CHECK(fabsf(lc - lg) <= 1e-2f, "classify loss cpu %g gpu %g", lc, lg);
	engine_class_logits(cpu, B, logc);
	engine_class_logits(gpu, B, logg);
	CMP("class logits", logg, logc, (size_t)B * K, 2e-2);
	engine_classify_backward(cpu, 1.0f, tr);
	engine_classify_backward(gpu, 1.0f, tr);
	engine_grads_get(cpu, gc);
	engine_grads_get(gpu, gg);
	CMP("gradients", gg, gc, n, 3e-2);
	for (int t = 0; t < gpu->model.n_tensors; t++) {
		const struct gpt_tensor *tt = &gpu->model.tensors[t];
		size_t nz = 0;
		if (gpt_tensor_trainable(&gpu->model.layout, t, tr, c.n_layer))
			continue;
		for (size_t i = 0; i < tt->size; i++)
			nz += gg[tt->offset + i] != 0.0f;
		CHECK(nz == 0, "frozen %s: %zu gradients not 0 on the gpu", tt->name, nz);
	}
	p0 = copyf(cpu->model.params, n);
	engine_step(gpu, 1e-2f, 1.0f);
	engine_pull(gpu);
	for (int t = 0; t < gpu->model.n_tensors; t++) {
		const struct gpt_tensor *tt = &gpu->model.tensors[t];
		int same = memcmp(gpu->model.params + tt->offset, p0 + tt->offset,
		                  tt->size * sizeof(float)) == 0;
		if (gpt_tensor_trainable(&gpu->model.layout, t, tr, c.n_layer))
			CHECK(!same || strstr(tt->name, "c_attn.bias"), "%s did not learn", tt->name);
		else
			CHECK(same, "frozen %s moved on the gpu", tt->name);
	}
	engine_close(cpu);
	engine_close(gpu);
	free(in); free(tg); free(gc); free(gg); free(logc); free(logg); free(p0);
}

static void test_classify(void)
{
	classify_case(GPT_TRAIN_LAST_BLOCK);
	classify_case(GPT_TRAIN_ALL);
	classify_case(GPT_TRAIN_HEAD);
}

static void test_dropout(void)
{
	dropout_case("matmul");
	dropout_case("flash");
}

/* The LSTM (cuda/lstm.cu) against the CPU engine's (lstm.c): three
 * training steps with the state carried and dropout between the layers,
 * then the logits, the carried state and the weights; engine_losses; a
 * batch smaller than the plan keeps the other rows' state. */
static void test_lstm(void)
{
	struct gpt_config c;
	struct gpt_model m1, m2;
	struct engine *cpu, *gpu;
	struct adamw_config ac;
	int B = 3, T = 8, BT = B * T, Vp;
	uint32_t in[24], tg[24];
	float *sc, *sg, *lc, *lg;
	size_t ns;
	uint64_t seed = gpt_rng_next(&rng), key = gpt_rng_next(&rng);

	gpt_config_lstm(&c, 70, 12, 24, 2, 16);
	gpt_model_init(&m1, &c);
	gpt_model_init_weights(&m1, seed);
	gpt_model_init(&m2, &c);
	gpt_model_init_weights(&m2, seed);
	cpu = engine_open("cpu", &m1);
	gpu = engine_open("cuda", &m2);
	CHECK(strcmp(gpu->ops->name, "cuda") == 0 && gpu->ops->state_get,
	      "an lstm on --device cuda is on '%s'", gpu->ops->name);
	engine_plan(cpu, B, T, 1, 0);
	engine_plan(gpu, B, T, 1, 0);
	adamw_config_default(&ac);
	engine_optim(cpu, &ac);
	engine_optim(gpu, &ac);
	printf(" lstm L=2 E=12 H=24 V=70, B=%d T=%d, dropout 0.3 between layers\n", B, T);
	for (int st = 0; st < 3; st++) {
		float nc, ng;
		double a, b;
		rand_tokens(in, tg, (size_t)BT, c.vocab_size, st == 1 ? 5 : 0);
		engine_dropout(cpu, 0.3f, key + (uint64_t)st, 0);
		engine_dropout(gpu, 0.3f, key + (uint64_t)st, 0);
		a = train_step(cpu, in, tg, 1, B, T, 3e-3f, 1.0f, &nc);
		b = train_step(gpu, in, tg, 1, B, T, 3e-3f, 1.0f, &ng);
		printf("  step %d loss cpu %.6f gpu %.6f, norm cpu %.5f gpu %.5f\n", st, a, b, nc, ng);
		CHECK(fabs(a - b) <= 1e-4 * fabs(a), "step %d: loss cpu %g gpu %g", st, a, b);
		CHECK(fabsf(nc - ng) <= 1e-3f * nc, "step %d: norm cpu %g gpu %g", st, nc, ng);
	}
	ns = engine_state_floats(cpu, B);
	sc = zeros(ns);
	sg = zeros(ns);
	engine_state_get(cpu, sc, B);
	engine_state_get(gpu, sg, B);
	CMP("carried state", sg, sc, ns, 1e-4);
	engine_pull(gpu);
	CMP("weights after 3 steps", gpu->model.params, cpu->model.params, cpu->model.n_params, 1e-5);
	Vp = c.padded_vocab;
	lc = zeros((size_t)BT * Vp);
	lg = zeros((size_t)BT * Vp);
	rand_tokens(in, tg, (size_t)BT, c.vocab_size, 0);
	engine_forward(cpu, in, tg, B, T);
	engine_forward(gpu, in, tg, B, T);
	engine_logits(cpu, 0, BT, lc);
	engine_logits(gpu, 0, BT, lg);
	CMP("logits (state carried on)", lg, lc, (size_t)BT * Vp, 1e-4);
	{
		double dc[24], dg[24];
		float fc[24], fg[24];
		engine_state_set(cpu, NULL, B);
		engine_state_set(gpu, NULL, B);
		engine_losses(cpu, in, tg, B, T, dc);
		engine_losses(gpu, in, tg, B, T, dg);
		for (int r = 0; r < BT; r++) {
			fc[r] = (float)dc[r];
			fg[r] = (float)dg[r];
		}
		CMP("losses from the zero state", fg, fc, (size_t)BT, 1e-4);
	}
	/* one row of three: rows 1 and 2 keep their state */
	engine_state_get(gpu, sg, B);
	engine_forward(gpu, in, tg, 1, T);
	{
		float *after = zeros(ns);
		size_t H = (size_t)c.n_embd, same = 0, rows = 0;
		engine_state_get(gpu, after, B);
		for (size_t k = 0; k < (size_t)2 * c.n_layer; k++)
			for (size_t i = H; i < (size_t)B * H; i++, rows++)
				same += after[k * B * H + i] == sg[k * B * H + i];
		CHECK(same == rows, "a batch of 1 moved the other rows' state (%zu of %zu kept)", same,
		      rows);
		free(after);
	}
	free(sc);
	free(sg);
	free(lc);
	free(lg);
	engine_close(cpu);
	engine_close(gpu);
}

static uint32_t *read_tokens(size_t *n)
{
	const char *bin = getenv("BIN");
	char cmd[4096];
	FILE *p;
	size_t cap = 1 << 20, len = 0, got;
	uint32_t *buf = xmalloc(cap * sizeof *buf);
	snprintf(cmd, sizeof cmd,
	         "'%s/gpt-tokenize' -q --offline --vocab '%s/data/gpt2' -f u32 "
	         "'%s/data/text/tinyshakespeare.txt'",
	         bin ? bin : "bin", test_shared(), test_shared());
	p = popen(cmd, "r");
	if (!p)
		die_errno("cannot run: '%s'", cmd);
	while ((got = fread(buf + len, sizeof *buf, cap - len, p)) > 0) {
		len += got;
		if (len == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap * sizeof *buf);
		}
	}
	if (pclose(p) != 0)
		die("tokenizing failed: '%s'", cmd);
	*n = len;
	return buf;
}

/* The library's training step (train.h) on both engines. */
static void test_train_shakespeare(void)
{
	struct gpt_config c;
	struct engine *cpu, *gpu;
	struct lr_schedule sch = {LR_COSINE, 1e-3f, 10, 100, 0, 0.1f};
	int B = 8, T = 64, steps = 100, BT = B * T;
	size_t ntok, at = 0;
	uint32_t *tok = read_tokens(&ntok), *in = xcalloc((size_t)BT, 4), *tg = xcalloc((size_t)BT, 4);
	double worst = 0, first = 0, last = 0;

	CHECK(ntok > (size_t)BT * steps + 1, "only %zu tokens", ntok);
	if (ntok <= (size_t)BT * steps + 1)
		return;
	c = tiny(4, 2, 128, T, 50257, 1, 1, 1);
	cpu = train_engine("cpu", &c, 1337, B, T);
	gpu = train_engine("cuda", &c, 1337, B, T);
	printf(" training L=4 H=2 C=128 B=%d T=%d on %zu tinyshakespeare tokens%s\n", B, T, ntok,
	       gcuda_attention_flash() ? " (flash attention)" : "");
	for (int s = 0; s < steps; s++) {
		double lc, lgpu, d;
		float lr = lr_schedule_at(&sch, s);
		for (int i = 0; i < BT; i++) {
			in[i] = tok[at + (size_t)i];
			tg[i] = tok[at + (size_t)i + 1];
		}
		at += (size_t)BT;
		lc = train_step(cpu, in, tg, 1, B, T, lr, 1.0f, NULL);
		lgpu = train_step(gpu, in, tg, 1, B, T, lr, 1.0f, NULL);
		d = fabs(lgpu - lc) / lc;
		if (d > worst)
			worst = d;
		if (s == 0)
			first = lc;
		last = lc;
		if (s % 10 == 0 || s == steps - 1 || d > 0.02)
			printf("  step %3d cpu %.4f gpu %.4f diff %.2f%%%s\n", s, lc, lgpu, 100 * d,
			       d > 0.02 ? "  MISMATCH" : "");
		CHECK(d <= 0.02, "step %d: cpu loss %.4f gpu %.4f", s, lc, lgpu);
	}
	printf("  worst difference %.2f%% (tol 2%%); cpu loss %.3f -> %.3f\n", 100 * worst, first,
	       last);
	CHECK(last < first - 1.0, "the cpu engine did not learn: %.3f -> %.3f", first, last);
	engine_close(gpu);
	engine_close(cpu);
	free(tok); free(in); free(tg);
}

/* ---- inference: the GPU decoder and gpt-eval on the GPU ----
 * Tolerances: logits 2e-2 (as the whole model's), the loss 1e-2 absolute;
 * a rewound cache refed with the same tokens repeats its logits exactly
 * (every reduction has a fixed order). */

/* Random weights at their usual scale give nearly uniform attention and
 * logits, where a wrong key or a wrong softmax scale hardly shows: larger
 * query, key, value and embedding weights make both sharp. */
static void sharpen(struct gpt_model *m)
{
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		if (strstr(t->name, "attn.c_attn.weight") || strcmp(t->name, "wte.weight") == 0)
			for (size_t k = 0; k < t->size; k++)
				m->params[t->offset + k] *= 8.0f;
	}
}

/* A tiny model with a context past the decoder's 256-key tiles. */
static void decoder_case(int tied, int bias, int H, int C)
{
	struct gpt_config c = tiny(2, H, C, 300, 300, tied, bias, bias);
	struct gpt_model m;
	struct gcuda_model *g;
	struct gcuda_decoder *d;
	struct infer s;
	int P = 200, N = 290, Vp;
	uint32_t *ids = xcalloc((size_t)N, sizeof *ids);
	float *gall, *call, *gstep, *cstep, *again;

	Vp = c.padded_vocab;
	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, gpt_rng_next(&rng));
	sharpen(&m);
	for (int i = 0; i < N; i++)
		ids[i] = (uint32_t)(gpt_rng_next(&rng) % (uint64_t)c.vocab_size);
	gall = zeros((size_t)P * Vp);
	call = zeros((size_t)P * Vp);
	gstep = zeros((size_t)(N - P + 1) * Vp);
	cstep = zeros((size_t)(N - P + 1) * Vp);
	again = zeros((size_t)(N - P + 1) * Vp);
	printf(" decoder L=2 H=%d C=%d tied=%d bias=%d: a prompt of %d, then %d tokens one at "
	       "a time\n", H, C, tied, bias, P, N - P);

	g = gcuda_model_init(&c);
	gcuda_model_upload(g, &m);
	d = gcuda_decoder_init(g, c.n_ctx);
	infer_init(&s, &m);

	/* the prompt in one call: every row, and the last row alone */
	gcuda_decoder_step_all(d, ids, P, gall);
	memcpy(cstep, infer_feed(&s, ids, P, call), (size_t)Vp * sizeof(float));
	CMP("prompt logits, every row", gall, call, (size_t)P * Vp, 2e-2);
	CHECK(gcuda_decoder_pos(d) == P, "pos %d after the prompt", gcuda_decoder_pos(d));
	gcuda_decoder_rewind(d, 0);
	gcuda_decoder_step(d, ids, P, gstep);
	CMP("prompt logits, last row", gstep, cstep, (size_t)Vp, 2e-2);

	/* then one token at a time, across the 256-key tile boundary */
	for (int t = P; t < N; t++) {
		size_t r = (size_t)(t - P + 1) * Vp;
		gcuda_decoder_step(d, ids + t, 1, gstep + r);
		memcpy(cstep + r, infer_feed(&s, ids + t, 1, NULL), (size_t)Vp * sizeof(float));
	}
	CHECK(gcuda_decoder_pos(d) == N, "pos %d at the end", gcuda_decoder_pos(d));
	CMP("token-by-token logits", gstep + Vp, cstep + Vp, (size_t)(N - P) * Vp, 2e-2);
	for (int i = 0; i < N - P; i++) {
		size_t r = (size_t)(i + 1) * Vp;
		for (int k = c.vocab_size; k < Vp; k++)
			CHECK(gstep[r + k] == -INFINITY, "padding logit %d: %g", k, gstep[r + k]);
	}

	/* back to the prompt, and the same tokens again: the same logits */
	gcuda_decoder_rewind(d, P);
	for (int t = P; t < N; t++)
		gcuda_decoder_step(d, ids + t, 1, again + (size_t)(t - P + 1) * Vp);
	CMP("after a rewind, again", again + Vp, gstep + Vp, (size_t)(N - P) * Vp, 0);

	/* the decoder's prompt rows equal the engine's full forward pass */
	gcuda_model_plan(g, 1, P, 0, 0);
	gcuda_model_forward(g, ids, NULL, 1, P);
	{
		float *fw = zeros((size_t)P * Vp);
		gcuda_model_logits(g, 0, P, fw);
		CMP("prompt rows vs gpu forward", gall, fw, (size_t)P * Vp, 2e-2);
		free(fw);
	}

	/* per-row losses of a forward with targets: their mean is the loss */
	{
		uint32_t *tg = xcalloc((size_t)P, sizeof *tg);
		float *rl = zeros((size_t)P), loss;
		double sum = 0;
		long cnt = 0;
		for (int i = 0; i < P; i++)
			tg[i] = i % 9 == 4 ? GPT_IGNORE : ids[i + 1];
		loss = gcuda_model_forward(g, ids, tg, 1, P);
		gcuda_model_row_loss(g, 0, P, rl);
		for (int i = 0; i < P; i++) {
			if (tg[i] == GPT_IGNORE) {
				CHECK(rl[i] == 0, "ignored row %d has loss %g", i, rl[i]);
				continue;
			}
			sum += rl[i];
			cnt++;
		}
		printf("  %-28s mean %.6f loss %.6f\n", "row losses", sum / (double)cnt, loss);
		CHECK(fabs(sum / (double)cnt - loss) <= 1e-5 * loss, "row losses' mean %g, loss %g",
		      sum / (double)cnt, loss);
		free(tg);
		free(rl);
	}
	gcuda_decoder_free(d);
	gcuda_model_free(g);
	infer_free(&s);
	gpt_model_free(&m);
	free(ids); free(gall); free(call); free(gstep); free(cstep); free(again);
}

/* NCCL with one rank (what a one-GPU session can check): the library
 * loads where gpt-train would find it, a communicator of world size 1
 * opens, and the device all-reduce leaves the gradients exactly as they
 * were (a sum over one rank), with the norm recomputed after it. */
static void test_nccl(void)
{
	struct gpt_config c = tiny(2, 2, 64, 64, 300, 0, 1, 1);
	int B = 2, T = 32, BT = B * T;
	struct engine *gpu = train_engine("cuda", &c, gpt_rng_next(&rng), B, T);
	const struct engine_ops *ops = gpu->ops;
	size_t n = gpu->model.n_params;
	uint32_t *in = xcalloc((size_t)BT, 4), *tg = xcalloc((size_t)BT, 4);
	float *g0 = zeros(n), *g1 = zeros(n), norm0, norm1;
	char why[256] = "", id[ENGINE_COMM_ID];
	struct gcuda_device d;

	gcuda_device_info(&d);
	CHECK(ops->comm_load && ops->comm_id && ops->comm_open && ops->grads_allreduce,
	      "the cuda engine has no device collectives");
	if (ops->comm_load(why, sizeof why) != 0) {
		if (strncmp(d.name, "cudasim", 7) == 0) {
			printf("  nccl: not loadable under the emulator (%s): skipped\n", why);
			engine_close(gpu);
			free(in); free(tg); free(g0); free(g1);
			return;
		}
		CHECK(0, "NCCL: %s", why);
		engine_close(gpu);
		free(in); free(tg); free(g0); free(g1);
		return;
	}
	printf("  nccl %d loaded\n", gcuda_nccl_version());
	rand_tokens(in, tg, (size_t)BT, c.vocab_size, 5);
	train_grads(gpu, in, tg, 1, B, T);
	engine_grads_get(gpu, g0);
	norm0 = engine_grad_norm(gpu);
	ops->comm_id(id);
	CHECK(ops->comm_open(gpu, id, 0, 1, 60, why, sizeof why) == 0, "communicator: %s", why);
	if (!why[0]) {
		ops->grads_allreduce(gpu);
		engine_grads_get(gpu, g1);
		CMP("all-reduce over one rank", g1, g0, n, 0);
		norm1 = engine_grad_norm(gpu);
		CHECK(norm1 == norm0, "norm after the all-reduce %g, before %g", norm1, norm0);
	}
	engine_close(gpu);
	free(in); free(tg); free(g0); free(g1);
}

static void test_decoder(void)
{
	decoder_case(1, 1, 4, 64);
	decoder_case(0, 0, 2, 128);
}

/* The value of "key": in gpt-eval's one-row JSON, or NAN. */
static double json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;
	snprintf(pat, sizeof pat, "\"%s\": ", key);
	p = strstr(json, pat);
	return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* bin/gpt-eval on a tiny GPT-2-vocabulary model: the loss and bits per
 * byte of a text, batched, and LAMBADA through the decoder, on both
 * devices. */
static void test_gpt_eval(void)
{
	struct gpt_config c = tiny(2, 2, 64, 128, 50257, 1, 1, 1);
	struct gpt_model m;
	const char *bin = getenv("BIN"), *sh = test_shared();
	const char *dir = test_tmpdir(), *dev[2] = {"cpu", "cuda"};
	char cmd[8192], out[2][4096];

	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, gpt_rng_next(&rng));
	sharpen(&m);
	snprintf(cmd, sizeof cmd, "%s/tiny.gpt", dir);
	modelio_save(&m, "gpt2", cmd);
	gpt_model_free(&m);
	printf(" gpt-eval L=2 H=2 C=64 T=128 on the cpu and the gpu\n");
	for (int k = 0; k < 2; k++) {
		snprintf(cmd, sizeof cmd,
		         "head -c 20000 '%s/data/text/tinyshakespeare.txt' | '%s/gpt-eval' -q "
		         "--offline --vocab '%s/data/gpt2' --device %s -b 3 --json --text "
		         "--lambada '%s/data/eval/lambada_test.jsonl' --limit 20 "
		         "--details '%s/details-%s' '%s/tiny.gpt'",
		         sh, bin ? bin : "bin", sh, dev[k], sh, dir, dev[k], dir);
		CHECK(test_cmd(out[k], sizeof out[k], "%s", cmd) == 0, "failed: %s", cmd);
	}
	{
		double lc = json_num(out[0], "loss"), lg = json_num(out[1], "loss");
		double bc = json_num(out[0], "bpb"), bg = json_num(out[1], "bpb");
		double pc = json_num(out[0], "lambada_ppl"), pg = json_num(out[1], "lambada_ppl");
		printf("  %-28s cpu %.4f gpu %.4f (tol 1e-2)\n", "text loss", lc, lg);
		printf("  %-28s cpu %.4f gpu %.4f (tol 1%%)\n", "bits per byte", bc, bg);
		printf("  %-28s cpu %.3f gpu %.3f (tol 2%%)\n", "lambada perplexity", pc, pg);
		CHECK(json_num(out[0], "tokens") == json_num(out[1], "tokens"), "tokens differ");
		CHECK(fabs(lc - lg) <= 1e-2, "text loss cpu %g gpu %g", lc, lg);
		CHECK(fabs(bc - bg) <= 1e-2 * bc, "bpb cpu %g gpu %g", bc, bg);
		CHECK(fabs(pc - pg) <= 2e-2 * pc, "lambada ppl cpu %g gpu %g", pc, pg);
		CHECK(json_num(out[1], "lambada_n") == 20, "lambada examples %g",
		      json_num(out[1], "lambada_n"));
	}
	/* each example's target loss */
	{
		char pc[4096], pg[4096];
		FILE *fc, *fg;
		double worst = 0;
		int n = 0;
		snprintf(pc, sizeof pc, "%s/details-cpu", dir);
		snprintf(pg, sizeof pg, "%s/details-cuda", dir);
		fc = fopen(pc, "r");
		fg = fopen(pg, "r");
		CHECK(fc && fg, "no details files in %s", dir);
		while (fc && fg && fgets(pc, sizeof pc, fc) && fgets(pg, sizeof pg, fg)) {
			unsigned long ic, ig;
			int hc, hg;
			double a, b;
			if (pc[0] == '#')
				continue;
			if (sscanf(pc, "%lu %d %lf", &ic, &hc, &a) != 3 ||
			    sscanf(pg, "%lu %d %lf", &ig, &hg, &b) != 3 || ic != ig) {
				CHECK(0, "details lines differ: '%s' '%s'", pc, pg);
				break;
			}
			if (fabs(a - b) / a > worst)
				worst = fabs(a - b) / a;
			n++;
		}
		printf("  %-28s %d examples, worst rel %.2e (tol 2e-2)\n", "lambada target losses", n,
		       worst);
		CHECK(n == 20, "%d lambada details", n);
		CHECK(worst <= 2e-2, "lambada target loss rel %.3e", worst);
		if (fc)
			fclose(fc);
		if (fg)
			fclose(fg);
	}
}

int main(int argc, char **argv)
{
	const char *s = getenv("CUDA_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
	struct gcuda_device d;

	(void)argc;
	err_init(argv[0]);
	setenv("GPT_CUDA_ATTENTION", "matmul", 0); /* see the top: flash by request */
	/* CUDA_TEST_ONLY="name ...": test.h's TEST_ONLY by its older name
	 * (e.g. the quick tests, under the CPU emulator of tests/cudasim) */
	if (getenv("CUDA_TEST_ONLY"))
		setenv("TEST_ONLY", getenv("CUDA_TEST_ONLY"), 1);
	if (!gcuda_available()) {
		printf("fail cuda_test: no usable gpu: %s\n", gcuda_why_not());
		return 1;
	}
	gcuda_device_info(&d);
	printf("device %s (sm_%d%d, %d SMs, %.1f GiB); CUDA_TEST_SEED=%llu\n", d.name, d.sm_major,
	       d.sm_minor, d.multiprocessors, d.total_bytes / 1073741824.0,
	       (unsigned long long)seed);
	gpt_rng_seed(&rng, seed);
	RUN(test_layernorm);
	RUN(test_gelu);
	RUN(test_matmul);
	RUN(test_attention);
	RUN(test_attention_flash);
	RUN(test_xent);
	RUN(test_embedding);
	RUN(test_adamw);
	RUN(test_model_tied);
	RUN(test_model_untied_nobias);
	RUN(test_model_flash);
	RUN(test_engine);
	RUN(test_dropout);
	RUN(test_classify);
	RUN(test_lstm);
	RUN(test_nccl);
	RUN(test_decoder);
	RUN(test_gpt_eval);
	RUN(test_train_shakespeare);
	printf("%s\n", test_failed_total ? "cuda-test: MISMATCHES above" : "cuda-test: all passed");
	return TEST_END();
}
