/* lstm: the character-level LSTM on the CPU, float32 (the contract:
 * model.h, "The LSTM").  The input projections of a layer are one matrix
 * product over the whole window; each time step adds h . W_hh^T (one
 * product over the batch's rows) and applies the gates fused in one pass.
 * Activations are stored time-major ([t][row][unit]) so a step's rows are
 * contiguous; the logits are batch-major ([row][t]) as the engine's
 * contract has them.  The backward is truncated backpropagation through
 * the window: nothing flows into the state it started from. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "dropout.h"
#include "err.h"
#include "model.h"
#include "model_kern.h"

void openblas_set_num_threads(int n);

#define PAR_MIN 32768L

struct lstm_off {
	size_t wih, whh, bih, bhh;
};

struct lstm_layer {
	float *h;      /* [(T+1) * B * H]: slot 0 the state it started from */
	float *c;      /* the same for the cell */
	float *gates;  /* [T * B * 4H]: i, f, g, o after their nonlinearity */
	float *tc;     /* [T * B * H]: tanh of the new cells */
	float *xin;    /* [T * B * H]: the layer's input after dropout, when
	                  the layer below dropped; else NULL (h of below) */
};

struct gpt_lstm_acts {
	struct lstm_off *off;
	size_t emb, decw, decb;
	int nthreads;
	float *state;          /* [L][2][plan_B][H] */
	float *buf;            /* everything below, planned */
	struct lstm_layer *layer;
	float *x0;             /* [T * B * E] layer 0's input (embeddings) */
	float *top;            /* [B * T * H] the top layer's output, by row */
	float *logits, *row_lse, *row_loss;
	uint32_t *inputs, *targets;
	float *dgates, *dh, *dx, *dhn, *dcn;   /* backward scratch */
	int B, T, has_targets, dropped;   /* the last forward's */
};

/* The gates' nonlinearities through model_kern.h's exp_fast (a few ulp,
 * and loops of them vectorise where libm's are scalar calls); tanh as
 * 2 sigmoid(2x) - 1, within 1e-7 of tanhf. */
static inline float sigm(float x)
{
	return 1.0f / (1.0f + exp_fast(-x));
}

static inline float tanh_f(float x)
{
	return 2.0f / (1.0f + exp_fast(-2.0f * x)) - 1.0f;
}

void lstm_init(struct gpt_model *m)
{
	const struct gpt_layout *L = &m->layout;
	struct gpt_lstm_acts *a = m->lstm = xcalloc(1, sizeof *a);

	a->off = xcalloc((size_t)m->cfg.n_layer, sizeof *a->off);
	for (int l = 0; l < m->cfg.n_layer; l++) {
		a->off[l].wih = L->tensors[L->lstm[l].wih].offset;
		a->off[l].whh = L->tensors[L->lstm[l].whh].offset;
		a->off[l].bih = L->tensors[L->lstm[l].bih].offset;
		a->off[l].bhh = L->tensors[L->lstm[l].bhh].offset;
	}
	a->emb = L->tensors[L->emb].offset;
	a->decw = L->tensors[L->dec_w].offset;
	a->decb = L->tensors[L->dec_b].offset;
}

void lstm_init_weights(struct gpt_model *m, uint64_t seed)
{
	const struct gpt_config *c = &m->cfg;
	double k = 1.0 / sqrt((double)c->n_embd);

	memset(m->params, 0, m->n_params * sizeof(float));
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		float *p = m->params + t->offset;
		size_t n = t->size;
		long j;
		int emb = i == m->layout.emb;

		/* the vocabulary's padding rows stay 0 */
		if (emb || i == m->layout.dec_w)
			n = (size_t)c->vocab_size * (size_t)t->shape[1];
		else if (i == m->layout.dec_b)
			n = (size_t)c->vocab_size;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
		for (j = 0; j < (long)n; j++)
			p[j] = emb ? (float)model_normal_at(seed, t->offset + (size_t)j)
			           : (float)(k * (2.0 * model_uniform_at(seed, t->offset + (size_t)j) -
			                          1.0));
	}
}

void lstm_free(struct gpt_model *m)
{
	struct gpt_lstm_acts *a = m->lstm;

	if (!a)
		return;
	free(a->off);
	free(a->state);
	free(a->buf);
	free(a->layer);
	free(a->inputs);
	free(a->targets);
	free(a);
	m->lstm = NULL;
}

void lstm_plan(struct gpt_model *m, int B, int T, int training)
{
	struct gpt_lstm_acts *a = m->lstm;
	const struct gpt_config *c = &m->cfg;
	size_t H = (size_t)c->n_embd, E = (size_t)c->n_input, L = (size_t)c->n_layer;
	size_t BT = xmul((size_t)B, (size_t)T), Vp = (size_t)c->padded_vocab, at = 0, total;
	size_t X = E > H ? E : H;

	free(a->state);
	free(a->buf);
	free(a->layer);
	free(a->inputs);
	free(a->targets);
	if (training && !m->grads)
		m->grads = xcalloc(m->n_params, sizeof(float));
	a->state = xcalloc(xmul(xmul(2 * L, (size_t)B), H), sizeof(float));
	/* per layer h, c (T+1 slots), gates, tanh(c), dropped input */
	total = xmul(L, 2 * (BT + (size_t)B) * H + BT * 4 * H + 2 * BT * H) + BT * E + BT * H +
	        xmul(BT, Vp) + 2 * BT;
	if (training)
		total += BT * 4 * H + BT * H + BT * X + 2 * (size_t)B * H;
	a->buf = xmalloc(xmul(total, sizeof(float)));
	a->layer = xcalloc(L, sizeof *a->layer);
#define TAKE(n) (at += (n), a->buf + at - (n))
	for (size_t l = 0; l < L; l++) {
		a->layer[l].h = TAKE((BT + (size_t)B) * H);
		a->layer[l].c = TAKE((BT + (size_t)B) * H);
		a->layer[l].gates = TAKE(BT * 4 * H);
		a->layer[l].tc = TAKE(BT * H);
		a->layer[l].xin = TAKE(BT * H);
	}
	a->x0 = TAKE(BT * E);
	a->top = TAKE(BT * H);
	a->logits = TAKE(BT * Vp);
	a->row_lse = TAKE(BT);
	a->row_loss = TAKE(BT);
	a->dgates = a->dh = a->dx = a->dhn = a->dcn = NULL;
	if (training) {
		a->dgates = TAKE(BT * 4 * H);
		a->dh = TAKE(BT * H);
		a->dx = TAKE(BT * X);
		a->dhn = TAKE((size_t)B * H);
		a->dcn = TAKE((size_t)B * H);
	}
#undef TAKE
	if (at != total)
		die("model: internal error: lstm plan mismatch");
	a->inputs = xcalloc(BT, sizeof(uint32_t));
	a->targets = xcalloc(BT, sizeof(uint32_t));
	a->nthreads = omp_get_max_threads();
	openblas_set_num_threads(1);
	model_flush_subnormals(a->nthreads);
	a->B = a->T = a->has_targets = 0;
	m->plan_B = B;
	m->plan_T = T;
	m->plan_training = training;
}

/* ---- the carried state ---- */

size_t gpt_model_state_floats(const struct gpt_model *m, int B)
{
	if (m->cfg.arch != GPT_ARCH_LSTM)
		return 0;
	return 2 * (size_t)m->cfg.n_layer * (size_t)B * (size_t)m->cfg.n_embd;
}

static void state_rows_check(const struct gpt_model *m, int B)
{
	if (m->cfg.arch != GPT_ARCH_LSTM || !m->lstm->state || B < 1 || B > m->plan_B)
		die("model: no carried state of %d rows (an lstm's plan holds %d)", B, m->plan_B);
}

void gpt_model_state_get(const struct gpt_model *m, float *dst, int B)
{
	size_t H = (size_t)m->cfg.n_embd, n = (size_t)B * H, P = (size_t)m->plan_B * H;

	state_rows_check(m, B);
	for (int k = 0; k < 2 * m->cfg.n_layer; k++)
		memcpy(dst + k * n, m->lstm->state + k * P, n * sizeof(float));
}

void gpt_model_state_set(struct gpt_model *m, const float *src, int B)
{
	size_t H = (size_t)m->cfg.n_embd, n = (size_t)B * H, P = (size_t)m->plan_B * H;

	state_rows_check(m, B);
	for (int k = 0; k < 2 * m->cfg.n_layer; k++) {
		if (src)
			memcpy(m->lstm->state + k * P, src + k * n, n * sizeof(float));
		else
			memset(m->lstm->state + k * P, 0, n * sizeof(float));
	}
}

/* ---- forward ---- */

/* Threads for one time step's product (B x H by H x 4H): a team woken
 * per step costs more than a small product gains, and on a busy machine
 * a descheduled member stalls every step.  Shapes alone decide. */
static int step_threads(const struct gpt_lstm_acts *a, int B, int H)
{
	return (double)B * 4 * H * H > 8e6 ? a->nthreads : 1;
}

/* Thread k's hidden units [*j0, *j1) of H among n threads, in multiples
 * of 16. */
static void unit_slice(int H, int k, int n, int *j0, int *j1)
{
	int a = k ? (int)(((long)H * k / n + 15) & ~15L) : 0;
	int b = k + 1 < n ? (int)(((long)H * (k + 1) / n + 15) & ~15L) : H;
	*j0 = a < H ? a : H;
	*j1 = b < H ? b : H;
}

/* The recurrence of one layer over T steps: z (the window's input
 * products, biases added) gains h . W_hh^T each step and goes through the
 * gates.  In one team of threads, each owning a slice of the hidden units
 * and so the four gate blocks of them (four products, then its gates),
 * with one barrier a step: the next step's products read every unit. */
static void recur_forward(struct lstm_layer *ly, const float *whh, int B, int T, int H, int nt)
{
	size_t n = (size_t)B * H;
#pragma omp parallel num_threads(nt)
	{
		int j0, j1;
		unit_slice(H, omp_get_thread_num(), omp_get_num_threads(), &j0, &j1);
		for (int t = 0; t < T; t++) {
			float *z = ly->gates + (size_t)t * B * 4 * H;
			const float *hp = ly->h + (size_t)t * n, *cp = ly->c + (size_t)t * n;
			float *cn = ly->c + (size_t)(t + 1) * n, *hn = ly->h + (size_t)(t + 1) * n;
			float *tcn = ly->tc + (size_t)t * n;
			if (j1 > j0)
				for (int g = 0; g < 4; g++)
					cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, j1 - j0, H, 1.0f,
					            hp, H, whh + ((size_t)g * H + j0) * H, H, 1.0f,
					            z + (size_t)g * H + j0, 4 * H);
			for (int b = 0; b < B; b++) {
				float *restrict zi = z + (size_t)b * 4 * H, *restrict zf = zi + H,
				      *restrict zg = zf + H, *restrict zo = zg + H;
				const float *restrict c0 = cp + (size_t)b * H;
				float *restrict c1 = cn + (size_t)b * H, *restrict h1 = hn + (size_t)b * H,
				      *restrict t1 = tcn + (size_t)b * H;
#pragma omp simd
				for (int j = j0; j < j1; j++) {
					float i = sigm(zi[j]), f = sigm(zf[j]), gg = tanh_f(zg[j]), o = sigm(zo[j]);
					float cc = f * c0[j] + i * gg, tc = tanh_f(cc);
					zi[j] = i;
					zf[j] = f;
					zg[j] = gg;
					zo[j] = o;
					c1[j] = cc;
					t1[j] = tc;
					h1[j] = o * tc;
				}
			}
#pragma omp barrier
		}
	}
}

/* Layer l's output slots 1..T into the next layer's input, dropped when
 * dropout is on; returns the input the next layer reads. */
static const float *layer_output(struct gpt_model *m, int l, int B, int T)
{
	struct gpt_lstm_acts *a = m->lstm;
	const struct gpt_dropout *d = &m->drop;
	int H = m->cfg.n_embd;
	const float *h = a->layer[l].h + (size_t)B * H;
	float *x = a->layer[l].xin;
	uint64_t s, nctx = (uint64_t)m->cfg.n_ctx;
	long r;

	if (d->p == 0.0f || l == m->cfg.n_layer - 1)
		return h;
	s = drop_site(d->key, l);
#pragma omp parallel for schedule(static) num_threads(a->nthreads) if ((long)B * T * H > PAR_MIN / 8)
	for (r = 0; r < (long)B * T; r++) {
		int t = (int)(r / B), b = (int)(r % B);
		uint64_t base = ((d->row0 + (uint64_t)b) * nctx + (uint64_t)t) * (uint64_t)H;
		for (int j = 0; j < H; j++)
			x[r * H + j] = drop_mul(s, base + (uint64_t)j, d) * h[r * H + j];
	}
	return x;
}

float lstm_forward(struct gpt_model *m, const uint32_t *inputs, const uint32_t *targets, int B,
                   int T)
{
	struct gpt_lstm_acts *a = m->lstm;
	const struct gpt_config *c = &m->cfg;
	int H = c->n_embd, E = c->n_input, V = c->vocab_size, Vp = c->padded_vocab, nl = c->n_layer;
	int BT = B * T, nt = a->nthreads, st = step_threads(a, B, H);
	size_t P = (size_t)m->plan_B * H, n = (size_t)B * H;
	const float *x;
	double total = 0;
	long counted = 0;

	if (!a->buf)
		die("model: forward before gpt_model_plan");
	if (B < 1 || T < 1 || B > m->plan_B || T > m->plan_T)
		die("model: batch shape beyond the plan: '%dx%d'", B, T);
	for (int i = 0; i < BT; i++) {
		if (inputs[i] >= (uint32_t)V)
			die("model: token id out of range: '%u'", inputs[i]);
		if (targets && targets[i] != GPT_IGNORE && targets[i] >= (uint32_t)V)
			die("model: target id out of range: '%u'", targets[i]);
	}
	memcpy(a->inputs, inputs, (size_t)BT * sizeof *inputs);
	if (targets)
		memcpy(a->targets, targets, (size_t)BT * sizeof *targets);
	a->B = B;
	a->T = T;
	a->has_targets = targets != NULL;
	a->dropped = m->drop.p != 0.0f;

	/* embeddings, time-major */
	for (int t = 0; t < T; t++)
		for (int b = 0; b < B; b++)
			memcpy(a->x0 + ((size_t)t * B + b) * E,
			       m->params + a->emb + (size_t)inputs[(size_t)b * T + t] * E,
			       (size_t)E * sizeof(float));
	x = a->x0;
	for (int l = 0; l < nl; l++) {
		struct lstm_layer *ly = &a->layer[l];
		const struct lstm_off *o = &a->off[l];
		const float *bih = m->params + o->bih, *bhh = m->params + o->bhh;
		int K = l ? H : E;
		long r;

		memcpy(ly->h, a->state + (size_t)(2 * l) * P, n * sizeof(float));
		memcpy(ly->c, a->state + (size_t)(2 * l + 1) * P, n * sizeof(float));
		/* z = x . W_ih^T + b_ih + b_hh over the whole window */
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)BT * H > PAR_MIN / 4)
		for (r = 0; r < BT; r++)
			for (int j = 0; j < 4 * H; j++)
				ly->gates[(size_t)r * 4 * H + j] = bih[j] + bhh[j];
		model_gemm(nt, 0, 1, BT, 4 * H, K, x, K, m->params + o->wih, K, 1.0f, ly->gates,
		           4 * H);
		recur_forward(ly, m->params + o->whh, B, T, H, st);
		memcpy(a->state + (size_t)(2 * l) * P, ly->h + (size_t)T * n, n * sizeof(float));
		memcpy(a->state + (size_t)(2 * l + 1) * P, ly->c + (size_t)T * n, n * sizeof(float));
		x = layer_output(m, l, B, T);
	}
	/* the decoder on the top layer, rows in batch order */
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			memcpy(a->top + ((size_t)b * T + t) * H, x + ((size_t)t * B + b) * H,
			       (size_t)H * sizeof(float));
	for (long r = 0; r < BT; r++)
		memcpy(a->logits + (size_t)r * Vp, m->params + a->decb, (size_t)V * sizeof(float));
	model_gemm(nt, 0, 1, BT, V, H, a->top, H, m->params + a->decw, H, 1.0f, a->logits, Vp);
	model_loss_rows(nt, a->logits, a->row_lse, a->row_loss, targets, BT, V, Vp);
	if (targets)
		for (int r = 0; r < BT; r++)
			if (targets[r] != GPT_IGNORE) {
				total += a->row_loss[r];
				counted++;
			}
	m->n_counted = counted;
	m->loss = counted ? (float)(total / (double)counted) : 0.0f;
	return m->loss;
}

float *lstm_logits(struct gpt_model *m)
{
	return m->lstm->logits;
}

/* ---- backward ---- */

/* The recurrence backward over the window (its end's state carries no
 * gradient): each step's gate gradients dz from dh (the output's) plus
 * dhn (from the step after) and the cell's carried gradient, then dhn =
 * dz . W_hh for the step before.  Threads own slices of the hidden units
 * as in the forward: the gates' part is the slice's own, the product
 * reads every unit's dz, so one barrier a step, before it. */
static void recur_backward(struct gpt_lstm_acts *a, const struct lstm_layer *ly, const float *whh,
                           int B, int T, int H, int nt)
{
	size_t n = (size_t)B * H;
#pragma omp parallel num_threads(nt)
	{
		int j0, j1;
		unit_slice(H, omp_get_thread_num(), omp_get_num_threads(), &j0, &j1);
		for (int b = 0; b < B; b++)
			for (int j = j0; j < j1; j++) {
				a->dhn[(size_t)b * H + j] = 0.0f;
				a->dcn[(size_t)b * H + j] = 0.0f;
			}
		for (int t = T - 1; t >= 0; t--) {
			const float *gt = ly->gates + (size_t)t * B * 4 * H;
			const float *c0 = ly->c + (size_t)t * n, *tcs = ly->tc + (size_t)t * n;
			const float *dht = a->dh + (size_t)t * n;
			float *dz = a->dgates + (size_t)t * B * 4 * H;
			for (int b = 0; b < B; b++) {
				const float *restrict gi = gt + (size_t)b * 4 * H, *restrict gf = gi + H,
				            *restrict gg = gf + H, *restrict go = gg + H;
				float *restrict zi = dz + (size_t)b * 4 * H, *restrict zf = zi + H,
				      *restrict zg = zf + H, *restrict zo = zg + H;
				float *restrict dcn = a->dcn + (size_t)b * H;
				const float *restrict dhn = a->dhn + (size_t)b * H;
				const float *restrict dhb = dht + (size_t)b * H, *restrict tcb = tcs + (size_t)b * H,
				            *restrict c0b = c0 + (size_t)b * H;
#pragma omp simd
				for (int j = j0; j < j1; j++) {
					float dh = dhb[j] + dhn[j], tc = tcb[j];
					float i = gi[j], f = gf[j], g = gg[j], ov = go[j];
					float dc = dcn[j] + dh * ov * (1.0f - tc * tc);
					zi[j] = dc * g * i * (1.0f - i);
					zf[j] = dc * c0b[j] * f * (1.0f - f);
					zg[j] = dc * i * (1.0f - g * g);
					zo[j] = dh * tc * ov * (1.0f - ov);
					dcn[j] = dc * f;
				}
			}
#pragma omp barrier
			/* into the step before: this slice of dh = dz . W_hh */
			if (t > 0 && j1 > j0)
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, j1 - j0, 4 * H, 1.0f,
				            dz, 4 * H, whh + j0, H, 0.0f, a->dhn + j0, H);
		}
	}
}

/* Column sums of rows x cols (row stride ld) added into acc, and into
 * acc2 too when not NULL: each column's rows summed in order, whatever the
 * threads (each takes slices of 64 columns, reading the rows' slices). */
static void colsum_add(float *acc, float *acc2, const float *x, int rows, int cols, int ld,
                       int nthreads)
{
	int c0;
#pragma omp parallel for schedule(static) num_threads(nthreads) if ((long)rows * cols > PAR_MIN)
	for (c0 = 0; c0 < cols; c0 += 64) {
		int w = cols - c0 < 64 ? cols - c0 : 64;
		float s[64] = { 0 };
		for (int r = 0; r < rows; r++) {
			const float *xr = x + (size_t)r * ld + c0;
			for (int j = 0; j < w; j++)
				s[j] += xr[j];
		}
		for (int j = 0; j < w; j++) {
			acc[c0 + j] += s[j];
			if (acc2)
				acc2[c0 + j] += s[j];
		}
	}
}

void lstm_backward(struct gpt_model *m, float scale)
{
	struct gpt_lstm_acts *a = m->lstm;
	const struct gpt_config *c = &m->cfg;
	const struct gpt_dropout *d = &m->drop;
	int H = c->n_embd, E = c->n_input, V = c->vocab_size, Vp = c->padded_vocab, nl = c->n_layer;
	int B = a->B, T = a->T, BT = B * T, nt = a->nthreads, st = step_threads(a, B, H);
	size_t n = (size_t)B * H;
	float dscale;

	if (!m->plan_training || !a->has_targets)
		die("model: backward needs a training plan and a forward with targets");
	if ((d->p != 0.0f) != a->dropped)
		die("model: the backward's dropout is not its forward's");
	dscale = m->n_counted ? scale / (float)m->n_counted : 0.0f;
	model_dlogits_rows(nt, a->logits, a->row_lse, a->targets, dscale, BT, V, Vp);
	/* decoder: dW += dlogits^T . top, db += sums, dtop = dlogits . W */
	model_gemm(nt, 1, 0, V, H, BT, a->logits, Vp, a->top, H, 1.0f, m->grads + a->decw, H);
	colsum_add(m->grads + a->decb, NULL, a->logits, BT, V, Vp, nt);
	model_gemm(nt, 0, 0, BT, H, V, a->logits, Vp, m->params + a->decw, H, 0.0f, a->dx, H);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			memcpy(a->dh + ((size_t)t * B + b) * H, a->dx + ((size_t)b * T + t) * H,
			       (size_t)H * sizeof(float));
	for (int l = nl - 1; l >= 0; l--) {
		struct lstm_layer *ly = &a->layer[l];
		const struct lstm_off *o = &a->off[l];
		int K = l ? H : E;
		const float *x = l ? (a->dropped ? a->layer[l - 1].xin : a->layer[l - 1].h + n) : a->x0;

		recur_backward(a, ly, m->params + o->whh, B, T, H, st);
		model_gemm(nt, 1, 0, 4 * H, H, BT, a->dgates, 4 * H, ly->h, H, 1.0f,
		           m->grads + o->whh, H);
		model_gemm(nt, 1, 0, 4 * H, K, BT, a->dgates, 4 * H, x, K, 1.0f, m->grads + o->wih, K);
		/* both biases get the same sums */
		colsum_add(m->grads + o->bih, m->grads + o->bhh, a->dgates, BT, 4 * H, 4 * H, nt);
		/* the input's gradient: to the layer below, or to the embedding */
		model_gemm(nt, 0, 0, BT, K, 4 * H, a->dgates, 4 * H, m->params + o->wih, K, 0.0f, a->dx,
		           K);
		if (l > 0) {
			uint64_t s = drop_site(d->key, l - 1), nctx = (uint64_t)c->n_ctx;
			long r;
			if (!a->dropped) {
				memcpy(a->dh, a->dx, (size_t)BT * H * sizeof(float));
				continue;
			}
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)BT * H > PAR_MIN / 8)
			for (r = 0; r < BT; r++) {
				int t = (int)(r / B), b = (int)(r % B);
				uint64_t base = ((d->row0 + (uint64_t)b) * nctx + (uint64_t)t) * (uint64_t)H;
				for (int j = 0; j < H; j++)
					a->dh[r * H + j] = drop_mul(s, base + (uint64_t)j, d) * a->dx[r * H + j];
			}
		} else {
			/* rows in a fixed order: each thread a slice of the columns */
			int j0;
			float *g = m->grads + a->emb;
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)BT * E > PAR_MIN)
			for (j0 = 0; j0 < E; j0 += 16) {
				int j1 = j0 + 16 < E ? j0 + 16 : E;
				for (int t = 0; t < T; t++)
					for (int b = 0; b < B; b++) {
						float *gr = g + (size_t)a->inputs[(size_t)b * T + t] * E;
						const float *dr = a->dx + ((size_t)t * B + b) * E;
						for (int j = j0; j < j1; j++)
							gr[j] += dr[j];
					}
			}
		}
	}
	a->has_targets = 0; /* the logits are gone */
}

/* ---- one token at a time ---- */

struct gpt_lstm_step {
	const struct gpt_model *m;
	float *h, *c;      /* [L][H] */
	float *z, *x;      /* 4H; the layer's input, max(E, H) */
	float *logits;     /* padded_vocab */
};

struct gpt_lstm_step *gpt_lstm_step_open(const struct gpt_model *m)
{
	struct gpt_lstm_step *s = xcalloc(1, sizeof *s);
	size_t H = (size_t)m->cfg.n_embd, E = (size_t)m->cfg.n_input, L = (size_t)m->cfg.n_layer;

	if (m->cfg.arch != GPT_ARCH_LSTM)
		die("model: a step decoder on a model that is not an lstm");
	s->m = m;
	s->h = xcalloc(xmul(L, H), sizeof(float));
	s->c = xcalloc(xmul(L, H), sizeof(float));
	s->z = xcalloc(4 * H, sizeof(float));
	s->x = xcalloc(E > H ? E : H, sizeof(float));
	s->logits = xcalloc((size_t)m->cfg.padded_vocab, sizeof(float));
	return s;
}

void gpt_lstm_step_reset(struct gpt_lstm_step *s)
{
	size_t k = (size_t)s->m->cfg.n_layer * (size_t)s->m->cfg.n_embd;

	memset(s->h, 0, k * sizeof(float));
	memset(s->c, 0, k * sizeof(float));
}

const float *gpt_lstm_step_feed(struct gpt_lstm_step *s, uint32_t id)
{
	const struct gpt_model *m = s->m;
	const struct gpt_lstm_acts *a = m->lstm;
	int H = m->cfg.n_embd, E = m->cfg.n_input, V = m->cfg.vocab_size;

	if (id >= (uint32_t)V)
		die("model: token id out of range: '%u'", id);
	memcpy(s->x, m->params + a->emb + (size_t)id * E, (size_t)E * sizeof(float));
	for (int l = 0; l < m->cfg.n_layer; l++) {
		const struct lstm_off *o = &a->off[l];
		float *h = s->h + (size_t)l * H, *c = s->c + (size_t)l * H;
		int K = l ? H : E;

		for (int j = 0; j < 4 * H; j++)
			s->z[j] = m->params[o->bih + j] + m->params[o->bhh + j];
		cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * H, K, 1.0f, m->params + o->wih, K, s->x,
		            1, 1.0f, s->z, 1);
		cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * H, H, 1.0f, m->params + o->whh, H, h, 1,
		            1.0f, s->z, 1);
		for (int j = 0; j < H; j++) {
			float i = sigm(s->z[j]), f = sigm(s->z[H + j]), g = tanh_f(s->z[2 * H + j]),
			      ov = sigm(s->z[3 * H + j]);
			c[j] = f * c[j] + i * g;
			h[j] = ov * tanh_f(c[j]);
		}
		memcpy(s->x, h, (size_t)H * sizeof(float));
	}
	memcpy(s->logits, m->params + a->decb, (size_t)V * sizeof(float));
	cblas_sgemv(CblasRowMajor, CblasNoTrans, V, H, 1.0f, m->params + a->decw, H, s->x, 1, 1.0f,
	            s->logits, 1);
	for (int i = V; i < m->cfg.padded_vocab; i++)
		s->logits[i] = -INFINITY;
	return s->logits;
}

void gpt_lstm_step_close(struct gpt_lstm_step *s)
{
	if (!s)
		return;
	free(s->h);
	free(s->c);
	free(s->z);
	free(s->x);
	free(s->logits);
	free(s);
}
