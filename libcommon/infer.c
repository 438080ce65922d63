/* infer: incremental GPT-2 forward passes over a key/value cache, for
 * sampling and scoring; and loading/saving a model's weights through
 * checkpoint files.  The arithmetic follows model.c so that the logits
 * agree with gpt_model_forward on the whole sequence. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "err.h"
#include "infer.h"

#define LN_EPS 1e-5f
/* Rows per internal chunk of a prefill: large enough for matrix-matrix
 * products, small enough that scratch stays a few megabytes. */
#define CHUNK_ROWS 64

/* The weights of tensor i of the model's table, or NULL when it is absent. */
static const float *tensor(const struct gpt_model *m, int i)
{
	return i == GPT_NO_TENSOR ? NULL : m->params + m->layout.tensors[i].offset;
}

void infer_init(struct infer *s, const struct gpt_model *m)
{
	const struct gpt_config *c = &m->cfg;
	size_t C = (size_t)c->n_embd, R = CHUNK_ROWS;
	size_t kv = xmul(xmul((size_t)c->n_layer, (size_t)c->n_ctx), C);
	memset(s, 0, sizeof *s);
	/* threads come from OpenMP (see matmul) */
	openblas_set_num_threads(1);
	s->m = m;
	s->rows = CHUNK_ROWS;
	s->wte = tensor(m, m->layout.wte);
	s->wpe = tensor(m, m->layout.wpe);
	s->lnfw = tensor(m, m->layout.lnfw);
	s->lnfb = tensor(m, m->layout.lnfb);
	s->head = tensor(m, m->layout.head);
	s->layer = xcalloc((size_t)c->n_layer, sizeof *s->layer);
	for (int l = 0; l < c->n_layer; l++) {
		const struct gpt_layer_ix *x = &m->layout.layer[l];
		struct infer_layer *L = &s->layer[l];

		L->ln1w = tensor(m, x->ln1w);
		L->ln1b = tensor(m, x->ln1b);
		L->qkvw = tensor(m, x->qkvw);
		L->qkvb = tensor(m, x->qkvb);
		L->projw = tensor(m, x->projw);
		L->projb = tensor(m, x->projb);
		L->ln2w = tensor(m, x->ln2w);
		L->ln2b = tensor(m, x->ln2b);
		L->fcw = tensor(m, x->fcw);
		L->fcb = tensor(m, x->fcb);
		L->mprojw = tensor(m, x->mprojw);
		L->mprojb = tensor(m, x->mprojb);
	}
	s->kc = xmalloc(xmul(kv, sizeof(float)));
	s->vc = xmalloc(xmul(kv, sizeof(float)));
	s->x = xmalloc(xmul(R * C, sizeof(float)));
	s->ln = xmalloc(xmul(R * C, sizeof(float)));
	s->qkv = xmalloc(xmul(R * 3 * C, sizeof(float)));
	s->att = xmalloc(xmul(R * C, sizeof(float)));
	s->fch = xmalloc(xmul(R * 4 * C, sizeof(float)));
	s->scores = xmalloc(xmul(xmul(R * (size_t)c->n_head, (size_t)c->n_ctx), sizeof(float)));
	s->logits = xmalloc(xmul(R * (size_t)c->padded_vocab, sizeof(float)));
}

void infer_free(struct infer *s)
{
	free(s->layer);
	free(s->kc);
	free(s->vc);
	free(s->x);
	free(s->ln);
	free(s->qkv);
	free(s->att);
	free(s->fch);
	free(s->scores);
	free(s->logits);
	memset(s, 0, sizeof *s);
}

void infer_rewind(struct infer *s, int pos)
{
	if (pos < 0 || pos > s->pos)
		die("infer: cannot rewind to position: '%d'", pos);
	s->pos = pos;
}

static void layernorm(float *out, const float *inp, const float *w, const float *b,
                      int N, int C)
{
	int r;
#pragma omp parallel for schedule(static) if (N > 1)
	for (r = 0; r < N; r++) {
		const float *x = inp + (size_t)r * C;
		float *y = out + (size_t)r * C;
		float mu = 0, var = 0, rs;
		for (int i = 0; i < C; i++)
			mu += x[i];
		mu /= C;
		for (int i = 0; i < C; i++)
			var += (x[i] - mu) * (x[i] - mu);
		rs = 1.0f / sqrtf(var / C + LN_EPS);
		for (int i = 0; i < C; i++)
			y[i] = (x[i] - mu) * rs * w[i] + b[i];
	}
}

/* out[N,OC] (row stride ldo) = (acc ? out : 0) + inp[N,C] . W[OC,C]^T + bias.
 * The output columns are split among the OpenMP threads, each calling
 * single-threaded BLAS on its slice of W, as model.c does: one thread pool,
 * whatever OpenBLAS was built with. */
static void matmul(float *out, int ldo, const float *inp, const float *W, const float *bias,
                   int N, int C, int OC, int acc)
{
	int nt = omp_get_max_threads(), chunks, ch;

	/* threads only pay off on products of some size: a parallel region
	 * costs microseconds, more when other processes hold the cores */
	chunks = (size_t)N * OC * C < (1u << 20) ? 1 : OC / 64 < nt * 4 ? OC / 64 : nt * 4;
	if (chunks < 1)
		chunks = 1;
#pragma omp parallel for schedule(static) if (chunks > 1)
	for (ch = 0; ch < chunks; ch++) {
		int lo = (int)((long)OC * ch / chunks), hi = (int)((long)OC * (ch + 1) / chunks);
		if (N == 1)
			cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, C, 1.0f, W + (size_t)lo * C,
			            C, inp, 1, acc ? 1.0f : 0.0f, out + lo, 1);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, hi - lo, C, 1.0f, inp,
			            C, W + (size_t)lo * C, C, acc ? 1.0f : 0.0f, out + lo, ldo);
		if (bias)
			for (int r = 0; r < N; r++) {
				float *o = out + (size_t)r * ldo;
				for (int i = lo; i < hi; i++)
					o[i] += bias[i];
			}
	}
}

/* GELU, tanh form, written x * sigmoid(2u) as model.c does. */
static void gelu(float *x, size_t n)
{
	long i;
#pragma omp parallel for schedule(static) if (n > 65536)
	for (i = 0; i < (long)n; i++) {
		float v = x[i];
		float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
		x[i] = v / (1.0f + expf(-2.0f * u));
	}
}

/* Causal attention of rows p0..p0+n-1 over the cached keys and values of
 * layer l (already holding those rows). */
static void attention(struct infer *s, int l, int p0, int n)
{
	const struct gpt_config *c = &s->m->cfg;
	int C = c->n_embd, H = c->n_head, hs = C / H, rh;
	float scale = 1.0f / sqrtf((float)hs);
	const float *K = s->kc + (size_t)l * c->n_ctx * C;
	const float *V = s->vc + (size_t)l * c->n_ctx * C;

#pragma omp parallel for schedule(dynamic, 1) if ((long)n * H * (p0 + n) * hs > 65536)
	for (rh = 0; rh < n * H; rh++) {
		int r = rh / H, h = rh % H, t = p0 + r;
		const float *q = s->qkv + (size_t)r * 3 * C + h * hs;
		float *p = s->scores + (size_t)rh * c->n_ctx;
		float *y = s->att + (size_t)r * C + h * hs;
		float mx = -INFINITY, sum = 0, inv;

		for (int j = 0; j <= t; j++) {
			const float *k = K + (size_t)j * C + h * hs;
			float d = 0;
			for (int i = 0; i < hs; i++)
				d += q[i] * k[i];
			p[j] = d * scale;
			mx = p[j] > mx ? p[j] : mx;
		}
		for (int j = 0; j <= t; j++) {
			p[j] = expf(p[j] - mx);
			sum += p[j];
		}
		inv = 1.0f / sum;
		memset(y, 0, (size_t)hs * sizeof *y);
		for (int j = 0; j <= t; j++) {
			const float *v = V + (size_t)j * C + h * hs;
			float w = p[j] * inv;
			for (int i = 0; i < hs; i++)
				y[i] += w * v[i];
		}
	}
}

/* One chunk of at most s->rows tokens; logits of its rows (all of them
 * when want_all, else the last) land in s->logits. */
static void feed_chunk(struct infer *s, const uint32_t *ids, int n, int want_all)
{
	const struct gpt_config *c = &s->m->cfg;
	int C = c->n_embd, V = c->vocab_size, Vp = c->padded_vocab, p0 = s->pos;
	int first = want_all ? 0 : n - 1, nl = n - first;

	for (int r = 0; r < n; r++) {
		const float *te = s->wte + (size_t)ids[r] * C;
		const float *pe = s->wpe + (size_t)(p0 + r) * C;
		float *x = s->x + (size_t)r * C;
		for (int i = 0; i < C; i++)
			x[i] = te[i] + pe[i];
	}
	for (int l = 0; l < c->n_layer; l++) {
		const struct infer_layer *L = &s->layer[l];
		float *K = s->kc + ((size_t)l * c->n_ctx + p0) * C;
		float *Vc = s->vc + ((size_t)l * c->n_ctx + p0) * C;

		layernorm(s->ln, s->x, L->ln1w, L->ln1b, n, C);
		matmul(s->qkv, 3 * C, s->ln, L->qkvw, L->qkvb, n, C, 3 * C, 0);
		for (int r = 0; r < n; r++) {
			memcpy(K + (size_t)r * C, s->qkv + (size_t)r * 3 * C + C, (size_t)C * sizeof(float));
			memcpy(Vc + (size_t)r * C, s->qkv + (size_t)r * 3 * C + 2 * C,
			       (size_t)C * sizeof(float));
		}
		attention(s, l, p0, n);
		matmul(s->x, C, s->att, L->projw, L->projb, n, C, C, 1);
		layernorm(s->ln, s->x, L->ln2w, L->ln2b, n, C);
		matmul(s->fch, 4 * C, s->ln, L->fcw, L->fcb, n, C, 4 * C, 0);
		gelu(s->fch, (size_t)n * 4 * C);
		matmul(s->x, C, s->fch, L->mprojw, L->mprojb, n, 4 * C, C, 1);
	}
	layernorm(s->ln, s->x + (size_t)first * C, s->lnfw, s->lnfb, nl, C);
	matmul(s->logits, Vp, s->ln, s->head, NULL, nl, C, V, 0);
	for (int r = 0; r < nl; r++)
		for (int i = V; i < Vp; i++)
			s->logits[(size_t)r * Vp + i] = -INFINITY;
	s->pos += n;
}

double infer_lse(const float *l, int V)
{
	float mx = l[0];
	double s = 0;

	for (int i = 1; i < V; i++)
		mx = l[i] > mx ? l[i] : mx;
	for (int i = 0; i < V; i++)
		s += exp((double)l[i] - mx);
	return mx + log(s);
}

const float *infer_feed(struct infer *s, const uint32_t *ids, int n, float *all)
{
	const struct gpt_config *c = &s->m->cfg;
	size_t Vp = (size_t)c->padded_vocab;
	int done = 0, last = 0;

	if (n < 1 || n > c->n_ctx - s->pos)
		die("infer: %d tokens do not fit the context of %d after %d", n, c->n_ctx, s->pos);
	for (int i = 0; i < n; i++)
		if (ids[i] >= (uint32_t)c->vocab_size)
			die("infer: token id out of range: '%u'", ids[i]);
	while (done < n) {
		int k = n - done < s->rows ? n - done : s->rows;
		feed_chunk(s, ids + done, k, all != NULL);
		if (all)
			memcpy(all + (size_t)done * Vp, s->logits, xmul((size_t)k, Vp * sizeof(float)));
		last = all ? k - 1 : 0;
		done += k;
	}
	return s->logits + (size_t)last * Vp;
}
