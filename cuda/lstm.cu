/* lstm: the character-level LSTM (model.h, "The LSTM") on the GPU, the
 * table engine_cuda_lstm that engine_open takes for an LSTM where it would
 * take engine_cuda.  Float32 throughout, as the CPU engine (lstm.c): the
 * window's input products and the decoder are cuBLASLt products (mm32),
 * each time step one product over the batch's rows and one kernel for the
 * gates; the backward is truncated backpropagation through the window.
 *
 * The optimizer runs on the host: the gradients come back for the norm
 * and AdamW (optim.c, so a step is the CPU engine's to the bit given the
 * same gradients) and the weights go out again.  An LSTM's weights are a
 * few million floats, so that costs milliseconds where a step of char-rnn
 * costs a fraction of a TFLOP.  The host weights are thus always current,
 * and decoders (sampling) are the CPU engine's, on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "engine.h"
#include "err.h"
}
#include "gpt_cuda.h"
#include "internal.h"

extern "C" const struct engine_ops engine_cuda;
extern "C" const struct engine_ops engine_cuda_lstm;
/* referenced by engine.cu, so that linking it links this file too */
extern "C" const int gcuda_lstm_here = 1;

struct loff {
	size_t wih, whh, bih, bhh;
};

struct glstm {
	struct gctx x;
	int V, Vp, E, H, L;
	size_t n_params;
	float *params, *grads;          /* device, the host model's layout */
	size_t emb, decw, decb;
	struct loff *off;
	/* plan */
	int B, T, training;
	float *state;                   /* [L][2][B][H] */
	float *h, *c;                   /* per layer (T+1) * B * H */
	float *gates, *xin;             /* per layer T*B*4H, T*B*H */
	float *x0, *top, *logits, *row_loss;
	uint32_t *d_in, *d_tg;
	float *dgates, *dh, *dx, *dhn, *dcn;
	size_t act_bytes;
	void *act;
	uint32_t *d_ids;                /* 2 * B * T ids, for d_in and d_tg */
	float *h_rows;                  /* host: B*T losses */
	/* the last forward */
	int fB, fT, has_targets, dropped;
	long counted;
	struct gpt_dropout drop;
	float norm;
	int norm_ok;
};

static struct glstm *G(struct engine *e)
{
	return (struct glstm *)e->impl;
}

/* ---- kernels ---- */

static unsigned nblocks(size_t n, unsigned threads)
{
	size_t b = (n + threads - 1) / threads;
	return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1));
}

#define GRID_LOOP(i, n) \
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
	     i += (size_t)gridDim.x * blockDim.x)

/* x0[t][b] = emb[in[b][t]], time-major */
static __global__ void lstm_embed(float *x0, const float *emb, const uint32_t *in, int B, int T,
                                  int E)
{
	GRID_LOOP(i, (size_t)B * T * E) {
		size_t r = i / (size_t)E, j = i % (size_t)E;
		size_t t = r / (size_t)B, b = r % (size_t)B;
		x0[i] = emb[(size_t)in[b * (size_t)T + t] * E + j];
	}
}

/* rows x n: out[r][j] = a[j] + b[j] (b may be NULL) */
static __global__ void lstm_rows_bias(float *out, const float *a, const float *b, size_t rows,
                                      int n, int ld)
{
	GRID_LOOP(i, rows * (size_t)n) {
		size_t r = i / (size_t)n, j = i % (size_t)n;
		out[r * (size_t)ld + j] = a[j] + (b ? b[j] : 0.0f);
	}
}

static __device__ float sigm(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* One time step's gates, z [B][4H] pre-activation, into i, f, g, o; the
 * new cell and hidden state from cp. */
static __global__ void lstm_gates(float *z, const float *cp, float *cn, float *hn, int B, int H)
{
	GRID_LOOP(k, (size_t)B * H) {
		size_t b = k / (size_t)H, j = k % (size_t)H;
		float *zi = z + b * 4 * (size_t)H;
		float i = sigm(zi[j]), f = sigm(zi[H + j]), g = tanhf(zi[2 * H + j]),
		      o = sigm(zi[3 * H + j]);
		float cc = f * cp[k] + i * g;
		zi[j] = i;
		zi[H + j] = f;
		zi[2 * H + j] = g;
		zi[3 * H + j] = o;
		cn[k] = cc;
		hn[k] = o * tanhf(cc);
	}
}

/* out = mask * in over [T][B][H] (dropout.h's index: (row * n_ctx + t) *
 * H + j) */
static __global__ void lstm_drop(float *out, const float *in, int B, int T, int H, int nctx,
                                 struct gpt_dropout d, uint64_t seed)
{
	GRID_LOOP(i, (size_t)B * T * H) {
		size_t r = i / (size_t)H, j = i % (size_t)H;
		uint64_t t = r / (size_t)B, b = r % (size_t)B;
		uint64_t idx = ((d.row0 + b) * (uint64_t)nctx + t) * (uint64_t)H + j;
		out[i] = drop_mul(seed, idx, &d) * in[i];
	}
}

/* top[b][t] = x[t][b] (rows of H), or back */
static __global__ void lstm_transpose(float *dst, const float *src, int B, int T, int H,
                                      int to_batch)
{
	GRID_LOOP(i, (size_t)B * T * H) {
		size_t r = i / (size_t)H, j = i % (size_t)H;
		size_t t = r / (size_t)B, b = r % (size_t)B;
		size_t bt = (b * (size_t)T + t) * H + j;
		if (to_batch)
			dst[bt] = src[i];
		else
			dst[i] = src[bt];
	}
}

/* Each row's loss (log-sum-exp minus the target's logit; 0 where the
 * target is GPT_IGNORE or there are none), the padding set to -inf. */
static __global__ void lstm_loss(float *lg, float *loss, const uint32_t *tg, int rows, int V,
                                 int Vp)
{
	GRID_LOOP(r, (size_t)rows) {
		float *x = lg + r * (size_t)Vp, mx = -INFINITY, s = 0.0f;
		for (int v = V; v < Vp; v++)
			x[v] = -INFINITY;
		loss[r] = 0.0f;
		if (!tg || tg[r] == 0xffffffffu)
			continue;
		for (int v = 0; v < V; v++)
			mx = fmaxf(mx, x[v]);
		for (int v = 0; v < V; v++)
			s += expf(x[v] - mx);
		loss[r] = mx + logf(s) - x[tg[r]];
	}
}

/* The logits become dscale * (softmax - one-hot), 0 on rows that do not
 * count and on the padding; loss holds each row's loss, lse recomputed. */
static __global__ void lstm_dlogits(float *lg, const uint32_t *tg, float dscale, int rows, int V,
                                    int Vp)
{
	GRID_LOOP(r, (size_t)rows) {
		float *x = lg + r * (size_t)Vp, mx = -INFINITY, s = 0.0f, lse;
		if (tg[r] == 0xffffffffu) {
			for (int v = 0; v < Vp; v++)
				x[v] = 0.0f;
			continue;
		}
		for (int v = 0; v < V; v++)
			mx = fmaxf(mx, x[v]);
		for (int v = 0; v < V; v++)
			s += expf(x[v] - mx);
		lse = mx + logf(s);
		for (int v = 0; v < V; v++)
			x[v] = expf(x[v] - lse) * dscale;
		x[tg[r]] -= dscale;
		for (int v = V; v < Vp; v++)
			x[v] = 0.0f;
	}
}

/* acc[j] += the sum over rows of x[r][j] (row stride ld), rows in order */
static __global__ void lstm_colsum(float *acc, const float *x, int rows, int cols, int ld)
{
	GRID_LOOP(j, (size_t)cols) {
		float s = 0.0f;
		for (int r = 0; r < rows; r++)
			s += x[(size_t)r * ld + j];
		acc[j] += s;
	}
}

/* One time step backward: dz [B][4H] from the gates, the cells and dh (of
 * the output, plus dhn from the step after); dcn carried to the step
 * before. */
static __global__ void lstm_gates_bwd(float *dz, const float *gt, const float *c0,
                                      const float *c1, const float *dh, const float *dhn,
                                      float *dcn, int B, int H)
{
	GRID_LOOP(k, (size_t)B * H) {
		size_t b = k / (size_t)H, j = k % (size_t)H;
		const float *g4 = gt + b * 4 * (size_t)H;
		float *z = dz + b * 4 * (size_t)H;
		float d = dh[k] + dhn[k], tc = tanhf(c1[k]);
		float i = g4[j], f = g4[H + j], g = g4[2 * H + j], o = g4[3 * H + j];
		float dc = dcn[k] + d * o * (1.0f - tc * tc);
		z[j] = dc * g * i * (1.0f - i);
		z[H + j] = dc * c0[k] * f * (1.0f - f);
		z[2 * H + j] = dc * i * (1.0f - g * g);
		z[3 * H + j] = d * tc * o * (1.0f - o);
		dcn[k] = dc * f;
	}
}

/* demb[in[b][t]][j] += dx[t][b][j]: a thread per column, the positions in
 * order, so the sums are the same run to run */
static __global__ void lstm_embed_bwd(float *demb, const float *dx, const uint32_t *in, int B,
                                      int T, int E)
{
	GRID_LOOP(j, (size_t)E) {
		for (int t = 0; t < T; t++)
			for (int b = 0; b < B; b++)
				demb[(size_t)in[(size_t)b * T + t] * E + j] +=
					dx[((size_t)t * B + b) * E + j];
	}
}

/* ---- the passes ---- */

/* Row-major float32 products (internal.h's mm32). */
static void prod(struct glstm *g, int ta, int tb, int M, int N, int K, const float *A, int lda,
                 const float *Bm, int ldb, float beta, float *D, int ldd)
{
	mm32(&g->x, ta, tb, M, N, K, A, lda, Bm, ldb, beta, D, ldd);
}

static void plan_free(struct glstm *g)
{
	dfree(&g->x, g->act, g->act_bytes);
	g->act = NULL;
	free(g->h_rows);
	g->h_rows = NULL;
}

static float forward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T)
{
	struct glstm *g = G(e);
	cudaStream_t s = g->x.s;
	int H = g->H, E = g->E, V = g->V, Vp = g->Vp, BT = B * T, nctx = e->model.cfg.n_ctx;
	size_t P = (size_t)g->B * H, n = (size_t)B * H;
	const float *x;
	double total = 0;
	long counted = 0;

	if (!g->act)
		die("gpu lstm: forward before a plan");
	if (B < 1 || T < 1 || B > g->B || T > g->T)
		die("gpu lstm: batch shape beyond the plan: '%dx%d'", B, T);
	for (int i = 0; i < BT; i++) {
		if (in[i] >= (uint32_t)V)
			die("model: token id out of range: '%u'", in[i]);
		if (tg && tg[i] != GPT_IGNORE && tg[i] >= (uint32_t)V)
			die("model: target id out of range: '%u'", tg[i]);
	}
	CUDA_CHECK(cudaMemcpyAsync(g->d_in, in, (size_t)BT * sizeof *in, cudaMemcpyHostToDevice, s));
	if (tg)
		CUDA_CHECK(cudaMemcpyAsync(g->d_tg, tg, (size_t)BT * sizeof *tg,
		                           cudaMemcpyHostToDevice, s));
	g->fB = B;
	g->fT = T;
	g->has_targets = tg != NULL;
	g->dropped = g->drop.p != 0.0f;
	lstm_embed<<<nblocks((size_t)BT * E, 256), 256, 0, s>>>(g->x0, g->params + g->emb, g->d_in,
	                                                       B, T, E);
	LAUNCH_CHECK();
	x = g->x0;
	for (int l = 0; l < g->L; l++) {
		const struct loff *o = &g->off[l];
		float *h = g->h + (size_t)l * (T + 1) * n, *c = g->c + (size_t)l * (T + 1) * n;
		float *gates = g->gates + (size_t)l * BT * 4 * H;
		int K = l ? H : E;

		/* the plan's rows are B; a smaller batch keeps its rows' state */
		CUDA_CHECK(cudaMemcpyAsync(h, g->state + (size_t)(2 * l) * P, n * sizeof(float),
		                           cudaMemcpyDeviceToDevice, s));
		CUDA_CHECK(cudaMemcpyAsync(c, g->state + (size_t)(2 * l + 1) * P, n * sizeof(float),
		                           cudaMemcpyDeviceToDevice, s));
		lstm_rows_bias<<<nblocks((size_t)BT * 4 * H, 256), 256, 0, s>>>(
			gates, g->params + o->bih, g->params + o->bhh, (size_t)BT, 4 * H, 4 * H);
		LAUNCH_CHECK();
		prod(g, 0, 1, BT, 4 * H, K, x, K, g->params + o->wih, K, 1.0f, gates, 4 * H);
		for (int t = 0; t < T; t++) {
			float *z = gates + (size_t)t * B * 4 * H;
			prod(g, 0, 1, B, 4 * H, H, h + (size_t)t * n, H, g->params + o->whh, H, 1.0f, z,
			     4 * H);
			lstm_gates<<<nblocks(n, 256), 256, 0, s>>>(z, c + (size_t)t * n,
			                                           c + (size_t)(t + 1) * n,
			                                           h + (size_t)(t + 1) * n, B, H);
			LAUNCH_CHECK();
		}
		CUDA_CHECK(cudaMemcpyAsync(g->state + (size_t)(2 * l) * P, h + (size_t)T * n,
		                           n * sizeof(float), cudaMemcpyDeviceToDevice, s));
		CUDA_CHECK(cudaMemcpyAsync(g->state + (size_t)(2 * l + 1) * P, c + (size_t)T * n,
		                           n * sizeof(float), cudaMemcpyDeviceToDevice, s));
		x = h + n;
		if (g->dropped && l + 1 < g->L) {
			float *xin = g->xin + (size_t)l * BT * H;
			lstm_drop<<<nblocks((size_t)BT * H, 256), 256, 0, s>>>(
				xin, x, B, T, H, nctx, g->drop, drop_site(g->drop.key, l));
			LAUNCH_CHECK();
			x = xin;
		}
	}
	lstm_transpose<<<nblocks((size_t)BT * H, 256), 256, 0, s>>>(g->top, x, B, T, H, 1);
	LAUNCH_CHECK();
	lstm_rows_bias<<<nblocks((size_t)BT * V, 256), 256, 0, s>>>(
		g->logits, g->params + g->decb, (const float *)NULL, (size_t)BT, V, Vp);
	LAUNCH_CHECK();
	prod(g, 0, 1, BT, V, H, g->top, H, g->params + g->decw, H, 1.0f, g->logits, Vp);
	lstm_loss<<<nblocks((size_t)BT, 128), 128, 0, s>>>(g->logits, g->row_loss,
	                                                   tg ? g->d_tg : (const uint32_t *)NULL,
	                                                   BT, V, Vp);
	LAUNCH_CHECK();
	CUDA_CHECK(cudaMemcpyAsync(g->h_rows, g->row_loss, (size_t)BT * sizeof(float),
	                           cudaMemcpyDeviceToHost, s));
	CUDA_CHECK(cudaStreamSynchronize(s));
	if (tg)
		for (int r = 0; r < BT; r++)
			if (tg[r] != GPT_IGNORE) {
				total += g->h_rows[r];
				counted++;
			}
	g->counted = counted;
	return counted ? (float)(total / (double)counted) : 0.0f;
}

static void backward(struct engine *e, float scale)
{
	struct glstm *g = G(e);
	cudaStream_t s = g->x.s;
	int H = g->H, E = g->E, V = g->V, Vp = g->Vp, B = g->fB, T = g->fT, BT = B * T;
	int nctx = e->model.cfg.n_ctx;
	size_t n = (size_t)B * H;
	float dscale;

	if (!g->training || !g->has_targets)
		die("gpu lstm: backward needs a training plan and a forward with targets");
	dscale = g->counted ? scale / (float)g->counted : 0.0f;
	lstm_dlogits<<<nblocks((size_t)BT, 128), 128, 0, s>>>(g->logits, g->d_tg, dscale, BT, V, Vp);
	LAUNCH_CHECK();
	prod(g, 1, 0, V, H, BT, g->logits, Vp, g->top, H, 1.0f, g->grads + g->decw, H);
	lstm_colsum<<<nblocks((size_t)V, 128), 128, 0, s>>>(g->grads + g->decb, g->logits, BT, V, Vp);
	LAUNCH_CHECK();
	prod(g, 0, 0, BT, H, V, g->logits, Vp, g->params + g->decw, H, 0.0f, g->dx, H);
	lstm_transpose<<<nblocks((size_t)BT * H, 256), 256, 0, s>>>(g->dh, g->dx, B, T, H, 0);
	LAUNCH_CHECK();
	for (int l = g->L - 1; l >= 0; l--) {
		const struct loff *o = &g->off[l];
		float *h = g->h + (size_t)l * (T + 1) * n, *c = g->c + (size_t)l * (T + 1) * n;
		float *gates = g->gates + (size_t)l * BT * 4 * H;
		int K = l ? H : E;
		const float *x = l == 0 ? g->x0
		                 : g->dropped ? g->xin + (size_t)(l - 1) * BT * H
		                              : g->h + (size_t)(l - 1) * (T + 1) * n + n;

		CUDA_CHECK(cudaMemsetAsync(g->dhn, 0, n * sizeof(float), s));
		CUDA_CHECK(cudaMemsetAsync(g->dcn, 0, n * sizeof(float), s));
		for (int t = T - 1; t >= 0; t--) {
			float *dz = g->dgates + (size_t)t * B * 4 * H;
			lstm_gates_bwd<<<nblocks(n, 256), 256, 0, s>>>(
				dz, gates + (size_t)t * B * 4 * H, c + (size_t)t * n, c + (size_t)(t + 1) * n,
				g->dh + (size_t)t * n, g->dhn, g->dcn, B, H);
			LAUNCH_CHECK();
			if (t > 0)
				prod(g, 0, 0, B, H, 4 * H, dz, 4 * H, g->params + o->whh, H, 0.0f, g->dhn, H);
		}
		prod(g, 1, 0, 4 * H, H, BT, g->dgates, 4 * H, h, H, 1.0f, g->grads + o->whh, H);
		prod(g, 1, 0, 4 * H, K, BT, g->dgates, 4 * H, x, K, 1.0f, g->grads + o->wih, K);
		lstm_colsum<<<nblocks((size_t)4 * H, 128), 128, 0, s>>>(g->grads + o->bih, g->dgates, BT,
		                                                        4 * H, 4 * H);
		LAUNCH_CHECK();
		lstm_colsum<<<nblocks((size_t)4 * H, 128), 128, 0, s>>>(g->grads + o->bhh, g->dgates, BT,
		                                                        4 * H, 4 * H);
		LAUNCH_CHECK();
		prod(g, 0, 0, BT, K, 4 * H, g->dgates, 4 * H, g->params + o->wih, K, 0.0f, g->dx, K);
		if (l > 0) {
			if (g->dropped) {
				lstm_drop<<<nblocks((size_t)BT * H, 256), 256, 0, s>>>(
					g->dh, g->dx, B, T, H, nctx, g->drop, drop_site(g->drop.key, l - 1));
				LAUNCH_CHECK();
			} else {
				CUDA_CHECK(cudaMemcpyAsync(g->dh, g->dx, (size_t)BT * H * sizeof(float),
				                           cudaMemcpyDeviceToDevice, s));
			}
		} else {
			lstm_embed_bwd<<<nblocks((size_t)E, 64), 64, 0, s>>>(g->grads + g->emb, g->dx,
			                                                     g->d_in, B, T, E);
			LAUNCH_CHECK();
		}
	}
	g->has_targets = 0; /* the logits are gone */
	g->norm_ok = 0;
}

/* ---- the table ---- */

static const char *l_unavailable(void)
{
	return engine_cuda.unavailable();
}

static void l_push(struct engine *e)
{
	struct glstm *g = G(e);

	CUDA_CHECK(cudaMemcpy(g->params, e->model.params, g->n_params * sizeof(float),
	                      cudaMemcpyHostToDevice));
}

static void l_pull(struct engine *e)
{
	struct glstm *g = G(e);

	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	CUDA_CHECK(cudaMemcpy(e->model.params, g->params, g->n_params * sizeof(float),
	                      cudaMemcpyDeviceToHost));
}

static void l_open(struct engine *e)
{
	struct glstm *g = (struct glstm *)xcalloc(1, sizeof *g);
	const struct gpt_config *c = &e->model.cfg;
	const struct gpt_layout *L = &e->model.layout;

	if (c->arch != GPT_ARCH_LSTM)
		die("gpu lstm: the model is not an lstm");
	ctx_init(&g->x);
	g->V = c->vocab_size;
	g->Vp = c->padded_vocab;
	g->E = c->n_input;
	g->H = c->n_embd;
	g->L = c->n_layer;
	g->n_params = e->model.n_params;
	g->params = (float *)dalloc(&g->x, g->n_params * sizeof(float), "lstm weights");
	g->off = (struct loff *)xcalloc((size_t)g->L, sizeof *g->off);
	for (int l = 0; l < g->L; l++) {
		g->off[l].wih = L->tensors[L->lstm[l].wih].offset;
		g->off[l].whh = L->tensors[L->lstm[l].whh].offset;
		g->off[l].bih = L->tensors[L->lstm[l].bih].offset;
		g->off[l].bhh = L->tensors[L->lstm[l].bhh].offset;
	}
	g->emb = L->tensors[L->emb].offset;
	g->decw = L->tensors[L->dec_w].offset;
	g->decb = L->tensors[L->dec_b].offset;
	e->impl = g;
	l_push(e);
}

static void l_close(struct engine *e)
{
	struct glstm *g = G(e);

	plan_free(g);
	dfree(&g->x, g->params, g->n_params * sizeof(float));
	dfree(&g->x, g->grads, g->n_params * sizeof(float));
	free(g->off);
	ctx_free(&g->x);
	free(g);
	e->impl = NULL;
}

static void l_describe(struct engine *e, char *buf, size_t cap)
{
	engine_cuda.describe(e, buf, cap);
}

static void l_plan(struct engine *e, int B, int T, int training, int recompute)
{
	struct glstm *g = G(e);
	size_t H = (size_t)g->H, E = (size_t)g->E, L = (size_t)g->L;
	size_t BT = (size_t)B * (size_t)T, X = E > H ? E : H, f = 0;
	char *p;

	(void)recompute; /* an LSTM keeps every activation */
	if (B < 1 || T < 1 || T > e->model.cfg.n_ctx || (long)B * T > (1L << 28))
		die("model: bad batch shape: '%dx%d'", B, T);
	plan_free(g);
	f = 2 * L * (size_t)B * H + 2 * L * (BT + (size_t)B) * H + L * BT * 4 * H + L * BT * H +
	    BT * E + BT * H + BT * (size_t)g->Vp + BT;
	if (training)
		f += BT * 4 * H + BT * H + BT * X + 2 * (size_t)B * H;
	g->act_bytes = f * sizeof(float) + 2 * BT * sizeof(uint32_t);
	g->act = dalloc(&g->x, g->act_bytes, "lstm activations");
	p = (char *)g->act;
#define TAKE(ptr, cnt) (ptr = (float *)p, p += (cnt) * sizeof(float))
	TAKE(g->state, 2 * L * (size_t)B * H);
	TAKE(g->h, L * (BT + (size_t)B) * H);
	TAKE(g->c, L * (BT + (size_t)B) * H);
	TAKE(g->gates, L * BT * 4 * H);
	TAKE(g->xin, L * BT * H);
	TAKE(g->x0, BT * E);
	TAKE(g->top, BT * H);
	TAKE(g->logits, BT * (size_t)g->Vp);
	TAKE(g->row_loss, BT);
	g->dgates = g->dh = g->dx = g->dhn = g->dcn = NULL;
	if (training) {
		TAKE(g->dgates, BT * 4 * H);
		TAKE(g->dh, BT * H);
		TAKE(g->dx, BT * X);
		TAKE(g->dhn, (size_t)B * H);
		TAKE(g->dcn, (size_t)B * H);
	}
#undef TAKE
	g->d_in = (uint32_t *)p;
	g->d_tg = g->d_in + BT;
	CUDA_CHECK(cudaMemset(g->state, 0, 2 * L * (size_t)B * H * sizeof(float)));
	g->h_rows = (float *)xmalloc(BT * sizeof(float));
	if (training && !g->grads) {
		g->grads = (float *)dalloc(&g->x, g->n_params * sizeof(float), "lstm gradients");
		CUDA_CHECK(cudaMemset(g->grads, 0, g->n_params * sizeof(float)));
	}
	if (training && !e->model.grads)
		e->model.grads = (float *)xcalloc(g->n_params, sizeof(float));
	g->B = B;
	g->T = T;
	g->training = training;
	g->norm_ok = 0;
}

static void l_optim(struct engine *e)
{
	(void)e; /* the optimizer is the host's (e->opt) */
}

static float l_forward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T)
{
	G(e)->drop.p = 0.0f;
	return forward(e, in, tg, B, T);
}

static long l_counted(struct engine *e)
{
	return G(e)->counted;
}

static void l_logits(struct engine *e, int r0, int n, float *dst)
{
	struct glstm *g = G(e);

	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	CUDA_CHECK(cudaMemcpy(dst, g->logits + (size_t)r0 * g->Vp,
	                      (size_t)n * g->Vp * sizeof(float), cudaMemcpyDeviceToHost));
}

static void l_losses(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T,
                     double *loss)
{
	struct glstm *g = G(e);

	G(e)->drop.p = 0.0f;
	forward(e, in, tg, B, T);
	for (int r = 0; r < B * T; r++)
		if (tg[r] != GPT_IGNORE)
			loss[r] = g->h_rows[r];
}

static void l_zero_grad(struct engine *e)
{
	struct glstm *g = G(e);

	if (!g->grads)
		die("engine: no gradients before a training plan");
	CUDA_CHECK(cudaMemsetAsync(g->grads, 0, g->n_params * sizeof(float), g->x.s));
	g->norm_ok = 0;
}

static float l_forward_backward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B,
                                int T, float scale)
{
	struct glstm *g = G(e);
	float l;

	g->drop = e->drop;
	l = forward(e, in, tg, B, T);
	g->norm_ok = 0;
	if (isfinite(l))
		backward(e, scale);
	g->drop.p = 0.0f;
	return l;
}

/* The gradients into the host model's, once per step. */
static void grads_down(struct engine *e)
{
	struct glstm *g = G(e);

	if (!g->grads)
		die("engine: no gradients before a training plan");
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	CUDA_CHECK(cudaMemcpy(e->model.grads, g->grads, g->n_params * sizeof(float),
	                      cudaMemcpyDeviceToHost));
}

static float l_grad_norm(struct engine *e)
{
	struct glstm *g = G(e);

	if (!g->norm_ok) {
		grads_down(e);
		g->norm = grad_global_norm(e->model.grads, g->n_params);
		g->norm_ok = 1;
	}
	return g->norm;
}

static void l_step(struct engine *e, float lr, float clip)
{
	float scale = grad_clip_scale(l_grad_norm(e), clip);

	if (!e->has_opt)
		die("engine: an optimizer step before engine_optim");
	adamw_step(&e->opt, e->model.params, e->model.grads, lr, scale);
	l_push(e);
}

static void l_grads_get(struct engine *e, float *dst)
{
	grads_down(e);
	memcpy(dst, e->model.grads, G(e)->n_params * sizeof *dst);
}

static void l_grads_set(struct engine *e, const float *src)
{
	struct glstm *g = G(e);

	if (!g->grads)
		die("engine: no gradients before a training plan");
	CUDA_CHECK(cudaMemcpy(g->grads, src, g->n_params * sizeof *src, cudaMemcpyHostToDevice));
	g->norm_ok = 0;
}

static size_t l_peak_bytes(struct engine *e)
{
	return G(e)->x.peak;
}

static void l_state_get(struct engine *e, float *dst, int B)
{
	struct glstm *g = G(e);
	size_t n = (size_t)B * g->H, P = (size_t)g->B * g->H;

	if (!g->act || B < 1 || B > g->B)
		die("model: no carried state of %d rows (an lstm's plan holds %d)", B, g->B);
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	for (int k = 0; k < 2 * g->L; k++)
		CUDA_CHECK(cudaMemcpy(dst + k * n, g->state + k * P, n * sizeof(float),
		                      cudaMemcpyDeviceToHost));
}

static void l_state_set(struct engine *e, const float *src, int B)
{
	struct glstm *g = G(e);
	size_t n = (size_t)B * g->H, P = (size_t)g->B * g->H;

	if (!g->act || B < 1 || B > g->B)
		die("model: no carried state of %d rows (an lstm's plan holds %d)", B, g->B);
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	for (int k = 0; k < 2 * g->L; k++) {
		if (src)
			CUDA_CHECK(cudaMemcpy(g->state + k * P, src + k * n, n * sizeof(float),
			                      cudaMemcpyHostToDevice));
		else
			CUDA_CHECK(cudaMemset(g->state + k * P, 0, n * sizeof(float)));
	}
}

static void l_select(int index)
{
	if (engine_cuda.select)
		engine_cuda.select(index);
}

/* In the order of struct engine_ops (C++17 has no designated
 * initialisers).  Decoders are the CPU engine's, on the host weights,
 * which the host optimizer keeps current. */
extern "C" const struct engine_ops engine_cuda_lstm = {
	"cuda",                /* name */
	l_unavailable,         /* unavailable */
	l_open,                /* open */
	l_close,               /* close */
	l_describe,            /* describe */
	l_plan,                /* plan */
	l_optim,               /* optim */
	l_push,                /* push */
	l_pull,                /* pull */
	l_forward,             /* forward */
	l_counted,             /* counted */
	l_logits,              /* logits */
	l_losses,              /* losses */
	l_zero_grad,           /* zero_grad */
	l_forward_backward,    /* forward_backward */
	l_grad_norm,           /* grad_norm */
	l_step,                /* step */
	l_grads_get,           /* grads_get */
	l_grads_set,           /* grads_set */
	l_peak_bytes,          /* peak_bytes */
	l_select,              /* select */
	NULL,                  /* comm_load: no data parallel for an lstm */
	NULL,                  /* comm_id */
	NULL,                  /* comm_open */
	NULL,                  /* grads_allreduce */
	NULL,                  /* grads_overlap */
	NULL,                  /* classify */
	NULL,                  /* class_logits */
	NULL,                  /* classify_backward */
	engine_cpu.decoder_open,   /* decoder_open */
	engine_cpu.decoder_feed,   /* decoder_feed */
	engine_cpu.decoder_rewind, /* decoder_rewind */
	engine_cpu.decoder_pos,    /* decoder_pos */
	engine_cpu.decoder_close,  /* decoder_close */
	l_state_get,           /* state_get */
	l_state_set,           /* state_set */
};
