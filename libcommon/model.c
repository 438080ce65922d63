/* model: GPT-2 forward and backward passes on the CPU in float32, with
 * OpenMP threads for the element-wise and attention work and CBLAS for the
 * matrix products.  The contract (layout, init, loss) is in model.h. */
#include <cblas.h>
#include <math.h>
#if defined(__x86_64__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dropout.h"
#include "err.h"
#include "model.h"
#include "model_kern.h"

#define LN_EPS 1e-5f
#define ATT_ROWS 64 /* query rows per attention block */
#define NO_TENSOR ((size_t)-1)
/* Work below this many elements runs on one thread: waking a team costs
 * more than it saves, and on a busy machine a descheduled team member
 * stalls the others.  The choice depends on shapes only, so results stay
 * reproducible. */
#define PAR_MIN 32768L

/* The exp-heavy and LayerNorm loops get an AVX2 version chosen at run time (no -march:
 * binaries travel).  Every reduction names its lanes, and AVX2 without FMA
 * rounds each operation as SSE2 does, so both versions give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(GPT_NO_CLONES)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SIMD_CLONES
#endif

/* Offsets (in floats) of one block's tensors; NO_TENSOR when absent. */
struct layer_off {
	size_t ln1w, ln1b, qkvw, qkvb, projw, projb;
	size_t ln2w, ln2b, fcw, fcb, mprojw, mprojb;
};

/* One block's saved activations.  In an inference plan every layer points
 * at the same storage, which the forward order allows. */
struct layer_acts {
	float *ln1, *ln1_mean, *ln1_rstd; /* [BT,C], [BT], [BT] */
	float *qkv;                       /* [BT,3C] */
	float *lse;                       /* [B,H,T] attention log-sum-exp */
	float *atty;                      /* [BT,C] */
	float *res2;                      /* [BT,C] */
	float *ln2, *ln2_mean, *ln2_rstd;
	float *fch, *fch_gelu;            /* [BT,4C] */
	float *res3;                      /* [BT,C] */
};

struct gpt_model_acts {
	struct layer_off *off;            /* per layer */
	size_t wte, wpe, lnfw, lnfb, head, clsw, clsb;
	/* a classifier's: per sequence its last position, label, logits */
	int *last;
	uint32_t *labels;
	float *cls_logits;
	/* planned storage */
	float *buf;
	struct layer_acts *layer;
	float *encoded, *lnf, *lnf_mean, *lnf_rstd, *logits, *row_lse, *row_loss;
	uint32_t *inputs, *targets;
	float *dres, *dbufC, *dbufC2, *dbuf4C; /* backward scratch */
	float *scratch;                   /* per thread: nthreads * scratch_n */
	size_t scratch_n;
	int nthreads;
	/* the last forward */
	int B, T, has_targets;
};

/* ---- configuration ---- */

void gpt_config_finish(struct gpt_config *c)
{
	c->padded_vocab = (c->vocab_size + 127) / 128 * 128;
}

int gpt_config_preset(const char *name, struct gpt_config *c)
{
	static const struct { const char *name; int layer, head, embd, tied, qkv; } tab[] = {
		{"d12", 12, 12, 768, 1, 1},
		{"d24", 24, 16, 1024, 1, 1},
		{"d36", 36, 20, 1280, 1, 1},
		{"d48", 48, 25, 1600, 1, 1},
		{"163m", 12, 12, 768, 0, 0},
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
		if (strcmp(name, tab[i].name) != 0)
			continue;
		memset(c, 0, sizeof *c);
		c->n_layer = tab[i].layer;
		c->n_head = tab[i].head;
		c->n_embd = tab[i].embd;
		c->n_ctx = 1024;
		c->vocab_size = 50257;
		c->tied = tab[i].tied;
		c->bias = 1;
		c->qkv_bias = tab[i].qkv;
		gpt_config_finish(c);
		return 0;
	}
	return -1;
}

void gpt_config_lstm(struct gpt_config *c, int V, int E, int H, int L, int n_ctx)
{
	memset(c, 0, sizeof *c);
	c->arch = GPT_ARCH_LSTM;
	c->vocab_size = V;
	c->n_input = E;
	c->n_embd = H;
	c->n_layer = L;
	c->n_ctx = n_ctx;
	c->n_head = 1;
	c->bias = 1;
	gpt_config_finish(c);
}

static const char *lstm_config_check(const struct gpt_config *c)
{
	if (c->n_head != 1 || c->tied || !c->bias || c->qkv_bias || c->n_classes)
		return "an lstm has one head, an untied decoder with a bias, no qkv bias, no classes";
	if (c->n_input < 1 || c->n_input > GPT_MAX_LSTM_INPUT)
		return "embedding width out of range (1-65536)";
	double H = c->n_embd, n = (double)c->padded_vocab * (c->n_input + H + 1) +
	         (double)c->n_layer * 4 * H * (2 * H + 2) + 4 * H * (c->n_input - H);
	if (n > (double)(1ull << 36))
		return "model too large";
	return NULL;
}

const char *gpt_config_check(const struct gpt_config *c)
{
	if (c->arch != GPT_ARCH_GPT2 && c->arch != GPT_ARCH_LSTM)
		return "unknown architecture";
	if (c->arch == GPT_ARCH_GPT2 && c->n_input != 0)
		return "a transformer has no embedding width of its own";
	if (c->n_layer < 1 || c->n_layer > 1024)
		return "layers out of range (1-1024)";
	if (c->n_head < 1 || c->n_head > 1024)
		return "heads out of range (1-1024)";
	if (c->n_embd < 1 || c->n_embd > 65536)
		return "width out of range (1-65536)";
	if (c->n_embd % c->n_head != 0)
		return "width is not a multiple of heads";
	if (c->n_ctx < 1 || c->n_ctx > (1 << 20))
		return "context out of range (1-1048576)";
	if (c->vocab_size < 1 || c->vocab_size > (1 << 24))
		return "vocabulary out of range (1-16777216)";
	if (c->padded_vocab != (c->vocab_size + 127) / 128 * 128)
		return "padded vocabulary is not the vocabulary rounded up to 128";
	if ((c->tied | c->bias | c->qkv_bias) & ~1)
		return "tied, bias and qkv_bias must be 0 or 1";
	if (c->n_classes < 0 || c->n_classes == 1 || c->n_classes > GPT_MAX_CLASSES)
		return "classes out of range (0, or 2-1024)";
	if (c->arch == GPT_ARCH_LSTM)
		return lstm_config_check(c);
	/* a model of more than 2^36 floats (256 GiB) is surely a bad file */
	double C = c->n_embd, n = (double)c->padded_vocab * C * (c->tied ? 1 : 2) +
	         (double)c->n_ctx * C + (double)c->n_layer * 13 * C * C;
	if (n > (double)(1ull << 36))
		return "model too large";
	return NULL;
}

/* Floats of a configuration, with or without vocabulary padding. */
static size_t config_floats(const struct gpt_config *c, int padded)
{
	size_t C = (size_t)c->n_embd, V = (size_t)(padded ? c->padded_vocab : c->vocab_size);
	size_t per;

	if (c->arch == GPT_ARCH_LSTM)
		return V * ((size_t)c->n_input + C + 1) + (size_t)c->n_layer * 4 * C * (C + 2) +
		       4 * C * ((size_t)c->n_input + C * (size_t)(c->n_layer - 1));
	per = 2 * C + 3 * C * C + (c->qkv_bias ? 3 * C : 0) + C * C +
	             2 * C + 4 * C * C + 4 * C * C + (c->bias ? C + 4 * C + C : 0);
	return V * C * (c->tied ? 1 : 2) + (size_t)c->n_ctx * C +
	       (size_t)c->n_layer * per + 2 * C + (size_t)c->n_classes * (C + 1);
}

size_t gpt_config_count_params(const struct gpt_config *c)
{
	return config_floats(c, 0);
}

/* ---- the tensor table: the one definition of the layout ---- */

static int layout_add(struct gpt_layout *L, int cap, const char *name, int rows, int cols,
                      int ndim)
{
	struct gpt_tensor *t;
	if (L->n_tensors >= cap)
		die("model: tensor table overflow");
	t = &L->tensors[L->n_tensors];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->ndim = ndim;
	t->shape[0] = rows;
	t->shape[1] = cols;
	t->size = (size_t)rows * (size_t)cols;
	t->offset = L->n_params;
	t->decay = ndim == 2;
	L->n_params += t->size;
	return L->n_tensors++;
}

/* The LSTM's table (model.h). */
static void lstm_layout(struct gpt_layout *L, const struct gpt_config *c)
{
	int H = c->n_embd, cap = 3 + 4 * c->n_layer;
	char nm[40];

	L->tensors = xcalloc((size_t)cap, sizeof *L->tensors);
	L->lstm = xcalloc((size_t)c->n_layer, sizeof *L->lstm);
	L->wte = L->wpe = L->lnfw = L->lnfb = L->head = GPT_NO_TENSOR;
	L->cls_w = L->cls_b = GPT_NO_TENSOR;
	L->emb = layout_add(L, cap, "embedding.weight", c->padded_vocab, c->n_input, 2);
	for (int l = 0; l < c->n_layer; l++) {
		struct gpt_lstm_ix *o = &L->lstm[l];
		int in = l ? H : c->n_input;
		snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", l);
		o->wih = layout_add(L, cap, nm, 4 * H, in, 2);
		snprintf(nm, sizeof nm, "lstm.weight_hh_l%d", l);
		o->whh = layout_add(L, cap, nm, 4 * H, H, 2);
		snprintf(nm, sizeof nm, "lstm.bias_ih_l%d", l);
		o->bih = layout_add(L, cap, nm, 4 * H, 1, 1);
		snprintf(nm, sizeof nm, "lstm.bias_hh_l%d", l);
		o->bhh = layout_add(L, cap, nm, 4 * H, 1, 1);
	}
	L->dec_w = layout_add(L, cap, "decoder.weight", c->padded_vocab, H, 2);
	L->dec_b = layout_add(L, cap, "decoder.bias", c->padded_vocab, 1, 1);
}

void gpt_layout_init(struct gpt_layout *L, const struct gpt_config *c)
{
	const char *why = gpt_config_check(c);
	int C, cap;
	char nm[40];

	if (why)
		die("model: bad configuration: '%s'", why);
	memset(L, 0, sizeof *L);
	if (c->arch == GPT_ARCH_LSTM) {
		lstm_layout(L, c);
		if (L->n_params != config_floats(c, 1))
			die("model: internal error: parameter count mismatch");
		return;
	}
	L->emb = L->dec_w = L->dec_b = GPT_NO_TENSOR;
	C = c->n_embd;
	cap = 4 + 12 * c->n_layer + 3;
	L->tensors = xcalloc((size_t)cap, sizeof *L->tensors);
	L->layer = xcalloc((size_t)c->n_layer, sizeof *L->layer);
	L->wte = layout_add(L, cap, "wte.weight", c->padded_vocab, C, 2);
	L->wpe = layout_add(L, cap, "wpe.weight", c->n_ctx, C, 2);
	for (int l = 0; l < c->n_layer; l++) {
		struct gpt_layer_ix *o = &L->layer[l];
#define ADD(field, suffix, r, cc, nd) do { \
		snprintf(nm, sizeof nm, "h.%d.%s", l, suffix); \
		o->field = layout_add(L, cap, nm, r, cc, nd); } while (0)
		o->qkvb = o->projb = o->fcb = o->mprojb = GPT_NO_TENSOR;
		ADD(ln1w, "ln_1.weight", C, 1, 1);
		ADD(ln1b, "ln_1.bias", C, 1, 1);
		ADD(qkvw, "attn.c_attn.weight", 3 * C, C, 2);
		if (c->qkv_bias)
			ADD(qkvb, "attn.c_attn.bias", 3 * C, 1, 1);
		ADD(projw, "attn.c_proj.weight", C, C, 2);
		if (c->bias)
			ADD(projb, "attn.c_proj.bias", C, 1, 1);
		ADD(ln2w, "ln_2.weight", C, 1, 1);
		ADD(ln2b, "ln_2.bias", C, 1, 1);
		ADD(fcw, "mlp.c_fc.weight", 4 * C, C, 2);
		if (c->bias)
			ADD(fcb, "mlp.c_fc.bias", 4 * C, 1, 1);
		ADD(mprojw, "mlp.c_proj.weight", C, 4 * C, 2);
		if (c->bias)
			ADD(mprojb, "mlp.c_proj.bias", C, 1, 1);
#undef ADD
	}
	L->lnfw = layout_add(L, cap, "ln_f.weight", C, 1, 1);
	L->lnfb = layout_add(L, cap, "ln_f.bias", C, 1, 1);
	L->head = c->tied ? L->wte : layout_add(L, cap, "lm_head.weight", c->padded_vocab, C, 2);
	L->cls_w = L->cls_b = GPT_NO_TENSOR;
	if (c->n_classes) {
		L->cls_w = layout_add(L, cap, "cls.weight", c->n_classes, C, 2);
		L->cls_b = layout_add(L, cap, "cls.bias", c->n_classes, 1, 1);
	}
	if (L->n_params != config_floats(c, 1))
		die("model: internal error: parameter count mismatch");
}

void gpt_layout_free(struct gpt_layout *L)
{
	free(L->tensors);
	free(L->layer);
	free(L->lstm);
	memset(L, 0, sizeof *L);
}

/* ---- model setup ---- */

/* Offset in floats of tensor i, or NO_TENSOR when it is absent. */
static size_t off_of(const struct gpt_layout *L, int i)
{
	return i == GPT_NO_TENSOR ? NO_TENSOR : L->tensors[i].offset;
}

void gpt_model_init(struct gpt_model *m, const struct gpt_config *c)
{
	struct gpt_model_acts *a;
	const struct gpt_layout *L;

	memset(m, 0, sizeof *m);
	gpt_layout_init(&m->layout, c);
	L = &m->layout;
	m->cfg = *c;
	m->n_tensors = L->n_tensors;
	m->tensors = L->tensors;
	m->n_params = L->n_params;
	a = m->acts = xcalloc(1, sizeof *a);
	m->params = xcalloc(m->n_params, sizeof(float));
	if (c->arch == GPT_ARCH_LSTM) {
		lstm_init(m);
		return;
	}
	a->off = xcalloc((size_t)c->n_layer, sizeof *a->off);
	a->wte = off_of(L, L->wte);
	a->wpe = off_of(L, L->wpe);
	a->lnfw = off_of(L, L->lnfw);
	a->lnfb = off_of(L, L->lnfb);
	a->head = off_of(L, L->head);
	a->clsw = off_of(L, L->cls_w);
	a->clsb = off_of(L, L->cls_b);
	for (int l = 0; l < c->n_layer; l++) {
		const struct gpt_layer_ix *x = &L->layer[l];
		struct layer_off *o = &a->off[l];
		o->ln1w = off_of(L, x->ln1w);
		o->ln1b = off_of(L, x->ln1b);
		o->qkvw = off_of(L, x->qkvw);
		o->qkvb = off_of(L, x->qkvb);
		o->projw = off_of(L, x->projw);
		o->projb = off_of(L, x->projb);
		o->ln2w = off_of(L, x->ln2w);
		o->ln2b = off_of(L, x->ln2b);
		o->fcw = off_of(L, x->fcw);
		o->fcb = off_of(L, x->fcb);
		o->mprojw = off_of(L, x->mprojw);
		o->mprojb = off_of(L, x->mprojb);
	}
}

const struct gpt_tensor *gpt_model_tensor(const struct gpt_model *m,
                                          const char *name)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

/* ---- random numbers ---- */

static uint64_t splitmix64_at(uint64_t seed, uint64_t j)
{
	/* output j (0-based) of splitmix64 seeded with seed */
	uint64_t z = seed + (j + 1) * 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double normal_at(uint64_t seed, size_t k)
{
	double u1 = (double)(splitmix64_at(seed, 2 * (uint64_t)k) >> 11) * 0x1p-53;
	double u2 = (double)(splitmix64_at(seed, 2 * (uint64_t)k + 1) >> 11) * 0x1p-53;
	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

void gpt_rng_seed(struct gpt_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64_at(seed, (uint64_t)i);
}

static uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t gpt_rng_next(struct gpt_rng *r)
{
	uint64_t *s = r->s, out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return out;
}

double gpt_rng_uniform(struct gpt_rng *r)
{
	return (double)(gpt_rng_next(r) >> 11) * 0x1p-53;
}

double model_uniform_at(uint64_t seed, size_t k)
{
	return (double)(splitmix64_at(seed, 2 * (uint64_t)k) >> 11) * 0x1p-53;
}

double model_normal_at(uint64_t seed, size_t k)
{
	return normal_at(seed, k);
}

static void fill_normal(float *p, size_t offset, size_t n, double std, uint64_t seed)
{
	long i;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
	for (i = 0; i < (long)n; i++)
		p[i] = (float)(std * normal_at(seed, offset + (size_t)i));
}

void gpt_model_init_weights(struct gpt_model *m, uint64_t seed)
{
	const struct gpt_config *c = &m->cfg;
	double resid_std = 0.02 / sqrt(2.0 * c->n_layer);

	if (c->arch == GPT_ARCH_LSTM) {
		lstm_init_weights(m, seed);
		return;
	}
	memset(m->params, 0, m->n_params * sizeof(float));
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		const char *dot = strrchr(t->name, '.');
		float *p = m->params + t->offset;
		size_t rows = (size_t)t->shape[0];
		if (t->ndim == 1) {
			/* LayerNorm weights 1; every bias 0 */
			if (strstr(t->name, "ln_") && strcmp(dot, ".weight") == 0)
				for (size_t k = 0; k < t->size; k++)
					p[k] = 1.0f;
			continue;
		}
		if (strcmp(t->name, "wte.weight") == 0 || strcmp(t->name, "lm_head.weight") == 0)
			rows = (size_t)c->vocab_size; /* padding rows stay 0 */
		fill_normal(p, t->offset, rows * (size_t)t->shape[1],
		            strstr(t->name, "c_proj.weight") ? resid_std : 0.02, seed);
	}
}

/* ---- planning ---- */

/* Subnormal floats flushed to zero, in every thread the model uses: an
 * operation on a subnormal costs the CPU a microcode assist, which made
 * inference of a small classifier 1.7 times slower, and a value below
 * 1.2e-38 carries nothing a model needs. */
void model_flush_subnormals(int nthreads)
{
#if defined(__x86_64__)
#pragma omp parallel num_threads(nthreads)
	{
		_MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
		_MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
	}
#else
	(void)nthreads;
#endif
}

void gpt_model_plan(struct gpt_model *m, int B, int T, int training)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, H = (size_t)c->n_head;
	size_t BT, per, total, nl, at = 0, lv;

	/* positions are counted in int (and rows of logits in size_t) */
	if (B < 1 || T < 1 || T > c->n_ctx || (long)B * T > (1L << 28))
		die("model: bad batch shape: '%dx%d'", B, T);
	if (c->arch == GPT_ARCH_LSTM) {
		lstm_plan(m, B, T, training);
		return;
	}
	BT = xmul((size_t)B, (size_t)T);
	free(a->buf);
	free(a->layer);
	free(a->inputs);
	free(a->targets);
	free(a->scratch);
	if (training && !m->grads)
		m->grads = xcalloc(m->n_params, sizeof(float));

	nl = training ? L : 1;
	per = BT * (16 * C + 4) + (size_t)B * H * (size_t)T;
	/* a classifier never computes the language model's logits: no room
	 * for them (B x T x vocabulary: gigabytes at GPT-2's size) */
	lv = c->n_classes ? 0 : xmul(BT, (size_t)c->padded_vocab);
	total = xmul(nl, per) + BT * (2 * C + 2 + 2) + lv;
	if (training)
		total += BT * (3 * C + 4 * C);
	a->buf = xmalloc(xmul(total, sizeof(float)));
	a->layer = xcalloc(L, sizeof *a->layer);
#define TAKE(n) (at += (n), a->buf + at - (n))
	for (size_t l = 0; l < nl; l++) {
		struct layer_acts *la = &a->layer[l];
		la->ln1 = TAKE(BT * C);
		la->ln1_mean = TAKE(BT);
		la->ln1_rstd = TAKE(BT);
		la->qkv = TAKE(BT * 3 * C);
		la->lse = TAKE((size_t)B * H * (size_t)T);
		la->atty = TAKE(BT * C);
		la->res2 = TAKE(BT * C);
		la->ln2 = TAKE(BT * C);
		la->ln2_mean = TAKE(BT);
		la->ln2_rstd = TAKE(BT);
		la->fch = TAKE(BT * 4 * C);
		la->fch_gelu = TAKE(BT * 4 * C);
		la->res3 = TAKE(BT * C);
	}
	for (size_t l = nl; l < L; l++)
		a->layer[l] = a->layer[0];
	a->encoded = TAKE(BT * C);
	a->lnf = TAKE(BT * C);
	a->lnf_mean = TAKE(BT);
	a->lnf_rstd = TAKE(BT);
	a->row_lse = TAKE(BT);
	a->row_loss = TAKE(BT);
	a->logits = TAKE(lv);
	a->dres = a->dbufC = a->dbufC2 = a->dbuf4C = NULL;
	if (training) {
		a->dres = TAKE(BT * C);
		a->dbufC = TAKE(BT * C);
		a->dbufC2 = TAKE(BT * C);
		a->dbuf4C = TAKE(BT * 4 * C);
	}
#undef TAKE
	if (at != total)
		die("model: internal error: activation plan mismatch");
	a->inputs = xcalloc(BT, sizeof(uint32_t));
	a->targets = xcalloc(BT, sizeof(uint32_t));
	free(a->last);
	free(a->labels);
	free(a->cls_logits);
	a->last = xcalloc((size_t)B, sizeof *a->last);
	a->labels = xcalloc((size_t)B, sizeof *a->labels);
	a->cls_logits = xcalloc(xmul((size_t)B, (size_t)(c->n_classes ? c->n_classes : 1)),
	                        sizeof(float));
	a->nthreads = omp_get_max_threads();
	openblas_set_num_threads(1); /* see gemm() */
	model_flush_subnormals(a->nthreads);
	/* per thread: two blocks of attention rows, or one row of logits */
	a->scratch_n = (size_t)T * 2 * ATT_ROWS > (size_t)c->padded_vocab
	                       ? (size_t)T * 2 * ATT_ROWS : (size_t)c->padded_vocab;
	a->scratch = xmalloc(xmul(xmul((size_t)a->nthreads, a->scratch_n), sizeof(float)));
	a->B = a->T = a->has_targets = 0;
	m->plan_B = B;
	m->plan_T = T;
	m->plan_training = training;
}

void gpt_model_free(struct gpt_model *m)
{
	struct gpt_model_acts *a = m->acts;
	if (a) {
		free(a->off);
		free(a->buf);
		free(a->layer);
		free(a->inputs);
		free(a->targets);
		free(a->scratch);
		free(a->last);
		free(a->labels);
		free(a->cls_logits);
		free(a);
	}
	lstm_free(m);
	gpt_layout_free(&m->layout);
	free(m->params);
	free(m->grads);
	memset(m, 0, sizeof *m);
}

/* ---- kernels ---- */


/* A sum in 8 fixed lanes: deterministic, and vectorisable. */
static inline float sum8(const float *a, int n)
{
	float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			s[k] += a[i + k];
	for (; i < n; i++)
		s[0] += a[i];
	return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* The maximum of a[0..n).  GCC vectors (portable, no intrinsics): the
 * vectoriser will not turn a float max reduction into maxps by itself
 * without -ffinite-math-only.  The result is exact whatever the order. */
typedef float v4sf __attribute__((vector_size(16)));
typedef int32_t v4si __attribute__((vector_size(16)));

static inline float max8(const float *a, int n)
{
	v4sf m0 = {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, m1 = m0, x0, x1;
	float m;
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		v4si g0, g1;
		memcpy(&x0, a + i, sizeof x0);
		memcpy(&x1, a + i + 4, sizeof x1);
		g0 = x0 > m0;
		g1 = x1 > m1;
		m0 = (v4sf)(((v4si)x0 & g0) | ((v4si)m0 & ~g0));
		m1 = (v4sf)(((v4si)x1 & g1) | ((v4si)m1 & ~g1));
	}
	m = -INFINITY;
	for (int k = 0; k < 4; k++) {
		m = m0[k] > m ? m0[k] : m;
		m = m1[k] > m ? m1[k] : m;
	}
	for (; i < n; i++)
		m = a[i] > m ? a[i] : m;
	return m;
}

/* sum of exp(a[i] - sub), in 8 fixed lanes */
static inline float sumexp8(const float *a, int n, float sub)
{
	float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			s[k] += exp_fast(a[i + k] - sub);
	for (; i < n; i++)
		s[0] += exp_fast(a[i] - sub);
	return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* C[M,N] = op(A) op(B) + beta C, row-major.  OpenBLAS runs
 * single-threaded (gpt_model_plan sets it) and the product is split here
 * among the OpenMP threads, by columns of C or by rows when C is tall, so
 * that one pool of threads owns the cores instead of two spinning against
 * each other.  The split depends only on the thread count, and every
 * element is computed by one call, so results are reproducible. */
void model_gemm(int nthreads, int ta, int tb, int M, int N, int K, const float *A, int lda,
                const float *Bm, int ldb, float beta, float *C, int ldc)
{
	int by_cols = N >= M;
#pragma omp parallel num_threads(nthreads) if ((double)M * N * K > PAR_MIN * 32.0)
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		long len = by_cols ? N : M;
		long lo = t ? (len * t / n + 15) & ~15L : 0;
		long hi = t + 1 < n ? (len * (t + 1) / n + 15) & ~15L : len;
		hi = hi < len ? hi : len;
		if (lo < hi) {
			const float *Ap = A, *Bp = Bm;
			float *Cp = C;
			int m = M, nn = N;
			if (by_cols) {
				Bp += tb ? (size_t)lo * ldb : (size_t)lo;
				Cp += lo;
				nn = (int)(hi - lo);
			} else {
				Ap += ta ? (size_t)lo : (size_t)lo * lda;
				Cp += (size_t)lo * ldc;
				m = (int)(hi - lo);
			}
			cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
			            tb ? CblasTrans : CblasNoTrans, m, nn, K, 1.0f, Ap, lda, Bp,
			            ldb, beta, Cp, ldc);
		}
	}
}

static void gemm(const struct gpt_model_acts *a, int ta, int tb, int M, int N, int K,
                 const float *A, int lda, const float *Bm, int ldb, float beta, float *C,
                 int ldc)
{
	model_gemm(a->nthreads, ta, tb, M, N, K, A, lda, Bm, ldb, beta, C, ldc);
}

SIMD_CLONES
static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int N, int C)
{
	int r;
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
	for (r = 0; r < N; r++) {
		const float *x = inp + (size_t)r * C;
		float *y = out + (size_t)r * C;
		float mu = sum8(x, C) / C, s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, var, rs;
		int i = 0;
		for (; i + 8 <= C; i += 8)
			for (int k = 0; k < 8; k++) {
				float d = x[i + k] - mu;
				s[k] += d * d;
			}
		for (; i < C; i++)
			s[0] += (x[i] - mu) * (x[i] - mu);
		var = (((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))) / C;
		rs = 1.0f / sqrtf(var + LN_EPS);
		for (i = 0; i < C; i++)
			y[i] = (x[i] - mu) * rs * w[i] + b[i];
		mean[r] = mu;
		rstd[r] = rs;
	}
}

/* dinp += d/dinp; dw, db += (column sums, each in row order). */
SIMD_CLONES
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C)
{
	int r, cb;
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
	for (r = 0; r < N; r++) {
		const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
		float *dx = dinp + (size_t)r * C, mu = mean[r], rs = rstd[r];
		float s1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		float m1, m2;
		int i = 0;
		for (; i + 8 <= C; i += 8)
			for (int k = 0; k < 8; k++) {
				float dn = dy[i + k] * w[i + k];
				s1[k] += dn;
				s2[k] += dn * ((x[i + k] - mu) * rs);
			}
		for (; i < C; i++) {
			float dn = dy[i] * w[i];
			s1[0] += dn;
			s2[0] += dn * ((x[i] - mu) * rs);
		}
		m1 = (((s1[0] + s1[4]) + (s1[1] + s1[5])) + ((s1[2] + s1[6]) + (s1[3] + s1[7]))) / C;
		m2 = (((s2[0] + s2[4]) + (s2[1] + s2[5])) + ((s2[2] + s2[6]) + (s2[3] + s2[7]))) / C;
		for (i = 0; i < C; i++) {
			float xh = (x[i] - mu) * rs;
			dx[i] += (dy[i] * w[i] - m1 - xh * m2) * rs;
		}
	}
	/* parameter gradients: columns split among threads, rows summed in
	 * order, so the bits do not depend on the thread count */
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
	for (cb = 0; cb < C; cb += 64) {
		int ce = cb + 64 < C ? cb + 64 : C;
		for (int rr = 0; rr < N; rr++) {
			const float *x = inp + (size_t)rr * C, *dy = dout + (size_t)rr * C;
			float mu = mean[rr], rs = rstd[rr];
			for (int i = cb; i < ce; i++) {
				dw[i] += dy[i] * ((x[i] - mu) * rs);
				db[i] += dy[i];
			}
		}
	}
}

/* out[N,OC] = (accumulate ? out : 0) + inp[N,C] . W[OC,C]^T + bias */
static void matmul_forward(const struct gpt_model_acts *a, float *out, const float *inp,
                           const float *W, const float *bias, int N, int C, int OC,
                           int accumulate)
{
	int r;
	gemm(a, 0, 1, N, OC, C, inp, C, W, C, accumulate ? 1.0f : 0.0f, out, OC);
	if (!bias)
		return;
#pragma omp parallel for schedule(static) if ((long)N * OC > PAR_MIN)
	for (r = 0; r < N; r++) {
		float *o = out + (size_t)r * OC;
		for (int i = 0; i < OC; i++)
			o[i] += bias[i];
	}
}

/* dinp[N,C] = dout . W; dW[OC,C] += dout^T . inp; dbias += column sums. */
static void matmul_backward(const struct gpt_model_acts *a, float *dinp, float *dW,
                            float *dbias, const float *dout, const float *inp,
                            const float *W, int N, int C, int OC)
{
	int cb;
	gemm(a, 0, 0, N, C, OC, dout, OC, W, C, 0.0f, dinp, C);
	gemm(a, 1, 0, OC, C, N, dout, OC, inp, C, 1.0f, dW, C);
	if (!dbias)
		return;
#pragma omp parallel for schedule(static) if ((long)N * OC > PAR_MIN)
	for (cb = 0; cb < OC; cb += 64) {
		int ce = cb + 64 < OC ? cb + 64 : OC;
		for (int r = 0; r < N; r++) {
			const float *d = dout + (size_t)r * OC;
			for (int i = cb; i < ce; i++)
				dbias[i] += d[i];
		}
	}
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* GELU, tanh form: 0.5 x (1 + tanh(u)), u = K (x + A x^3).  Written as
 * x * sigmoid(2u) = x / (1 + exp(-2u)), which keeps full relative
 * precision where 1 + tanh(u) would cancel (x below about -2). */
static inline float gelu_exp(float x)
{
	return exp_fast(-2.0f * GELU_K * (x + GELU_A * x * x * x));
}

SIMD_CLONES
static void gelu_forward(float *out, const float *inp, size_t n)
{
	long i;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
	for (i = 0; i < (long)n; i++)
		out[i] = inp[i] / (1.0f + gelu_exp(inp[i]));
}

/* d (in place: dout becomes dinp).  With s = sigmoid(2u), 1 - s = e s:
 * gelu'(x) = s + x s (1 - s) 2 u'(x). */
SIMD_CLONES
static void gelu_backward(float *d, const float *inp, size_t n)
{
	long i;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
	for (i = 0; i < (long)n; i++) {
		float x = inp[i], e = gelu_exp(x), s = 1.0f / (1.0f + e);
		float g = s + x * s * (e * s) * 2.0f * GELU_K * (1.0f + 3.0f * GELU_A * x * x);
		d[i] *= g;
	}
}

/* The dropout index of attention weight (b, h, i, 0) (dropout.h). */
static inline uint64_t att_index(const struct gpt_dropout *d, int b, int h, int i, int H,
                                 int n_ctx)
{
	return (((d->row0 + (uint64_t)b) * (uint64_t)H + (uint64_t)h) * (uint64_t)n_ctx +
	        (uint64_t)i) * (uint64_t)n_ctx;
}

/* Causal attention per (sequence, head): y = softmax(q k^T / sqrt(hs)) v,
 * by blocks of ATT_ROWS query rows, each against the keys up to its last
 * row, with single-threaded products inside the thread that owns the
 * (sequence, head).  Saves the log-sum-exp of each row; backward
 * recomputes the weights from it. */
SIMD_CLONES
static void attention_forward(struct gpt_model_acts *a, float *y, float *lse,
                              const float *qkv, int B, int T, int C, int H,
                              const struct gpt_dropout *d, int site, int n_ctx)
{
	uint64_t ds = d ? drop_site(d->key, site) : 0;
	int hs = C / H, bh, C3 = 3 * C;
	float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) num_threads(a->nthreads) \
	if ((long)B * H * T * T * hs > PAR_MIN * 16)
	for (bh = 0; bh < B * H; bh++) {
		int b = bh / H, h = bh % H;
		float *S = a->scratch + (size_t)omp_get_thread_num() * a->scratch_n;
		const float *Q = qkv + (size_t)b * T * C3 + h * hs, *K = Q + C, *V = Q + 2 * C;
		for (int i0 = 0; i0 < T; i0 += ATT_ROWS) {
			int rows = T - i0 < ATT_ROWS ? T - i0 : ATT_ROWS, n = i0 + rows;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, hs, scale,
			            Q + (size_t)i0 * C3, C3, K, C3, 0.0f, S, n);
			for (int r = 0; r < rows; r++) {
				float *p = S + (size_t)r * n, mx, sum, inv;
				int len = i0 + r + 1;
				mx = max8(p, len);
				for (int j = 0; j < len; j++)
					p[j] = exp_fast(p[j] - mx);
				sum = sum8(p, len);
				inv = 1.0f / sum;
				for (int j = 0; j < len; j++)
					p[j] *= inv;
				for (int j = len; j < n; j++)
					p[j] = 0;
				lse[(size_t)bh * T + i0 + r] = mx + logf(sum);
				if (d) { /* the weights' dropout; lse stays the softmax's */
					uint64_t base = att_index(d, b, h, i0 + r, H, n_ctx);
					for (int j = 0; j < len; j++)
						p[j] *= drop_mul(ds, base + (uint64_t)j, d);
				}
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, n, 1.0f, S, n,
			            V, C3, 0.0f, y + ((size_t)b * T + i0) * C + h * hs, C);
		}
	}
}

/* dqkv (overwritten) from dy, qkv and the saved log-sum-exp:
 * dP = dy v^T, dS = P (dP - rowsum(P dP)) / sqrt(hs), dq = dS k,
 * dk = dS^T q, dv = P^T dy. */
SIMD_CLONES
static void attention_backward(struct gpt_model_acts *a, float *dqkv, const float *dy,
                               const float *qkv, const float *lse, int B, int T,
                               int C, int H, const struct gpt_dropout *d, int site,
                               int n_ctx)
{
	uint64_t ds = d ? drop_site(d->key, site) : 0;
	int hs = C / H, bh, C3 = 3 * C;
	float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) num_threads(a->nthreads) \
	if ((long)B * H * T * T * hs > PAR_MIN * 16)
	for (bh = 0; bh < B * H; bh++) {
		int b = bh / H, h = bh % H;
		float *P = a->scratch + (size_t)omp_get_thread_num() * a->scratch_n;
		float *dP = P + (size_t)ATT_ROWS * T;
		const float *Q = qkv + (size_t)b * T * C3 + h * hs, *K = Q + C, *V = Q + 2 * C;
		const float *dY = dy + (size_t)b * T * C + h * hs;
		float *dQ = dqkv + (size_t)b * T * C3 + h * hs, *dK = dQ + C, *dV = dQ + 2 * C;
		for (int i = 0; i < T; i++)
			for (int k = 0; k < hs; k++)
				dK[(size_t)i * C3 + k] = dV[(size_t)i * C3 + k] = 0;
		for (int i0 = 0; i0 < T; i0 += ATT_ROWS) {
			int rows = T - i0 < ATT_ROWS ? T - i0 : ATT_ROWS, n = i0 + rows;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, hs, scale,
			            Q + (size_t)i0 * C3, C3, K, C3, 0.0f, P, n);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, hs, 1.0f,
			            dY + (size_t)i0 * C, C, V, C3, 0.0f, dP, n);
			for (int r = 0; r < rows; r++) {
				float *p = P + (size_t)r * n, *dp = dP + (size_t)r * n;
				float l = lse[(size_t)bh * T + i0 + r], s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
				int len = i0 + r + 1, j = 0;
				for (j = 0; j < len; j++)
					p[j] = exp_fast(p[j] - l);
				for (j = len; j < n; j++)
					p[j] = 0;
				if (d) {
					/* dropped weights P' = P Z, Z the mask times 1/(1-p):
					 * dp holds dP' = dy v^T; the gradient of P is Z dP',
					 * and rowsum(P Z dP') = rowsum(P' dP').  dS from P,
					 * then P becomes P' for dv = P'^T dy. */
					uint64_t base = att_index(d, b, h, i0 + r, H, n_ctx);
					for (j = 0; j < len; j++) {
						dp[j] *= drop_mul(ds, base + (uint64_t)j, d);
						s[j & 7] += p[j] * dp[j];
					}
					float D = ((s[0] + s[4]) + (s[1] + s[5])) +
					          ((s[2] + s[6]) + (s[3] + s[7]));
					for (j = 0; j < len; j++) {
						dp[j] = p[j] * (dp[j] - D) * scale;
						p[j] *= drop_mul(ds, base + (uint64_t)j, d);
					}
					for (j = len; j < n; j++)
						dp[j] = 0;
					continue;
				}
				for (j = 0; j + 8 <= len; j += 8)
					for (int k = 0; k < 8; k++)
						s[k] += p[j + k] * dp[j + k];
				for (; j < len; j++)
					s[0] += p[j] * dp[j];
				float D = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
				/* dP becomes dS; zero beyond the diagonal as P is */
				for (j = 0; j < n; j++)
					dp[j] = p[j] * (dp[j] - D) * scale;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, n, 1.0f, dP, n,
			            K, C3, 0.0f, dQ + (size_t)i0 * C3, C3);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, rows, 1.0f, dP, n,
			            Q + (size_t)i0 * C3, C3, 1.0f, dK, C3);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, rows, 1.0f, P, n,
			            dY + (size_t)i0 * C, C, 1.0f, dV, C3);
		}
	}
}

/* Per row of logits: padding to -inf and, where the target counts, the
 * log-sum-exp and the loss. */
SIMD_CLONES
void model_loss_rows(int nthreads, float *logits, float *row_lse, float *row_loss,
                     const uint32_t *targets, int BT, int V, int Vp)
{
	int r;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
	if ((long)BT * V > PAR_MIN)
	for (r = 0; r < BT; r++) {
		float *lg = logits + (size_t)r * Vp, mx;
		for (int i = V; i < Vp; i++)
			lg[i] = -INFINITY;
		row_loss[r] = 0;
		if (!targets || targets[r] == GPT_IGNORE)
			continue;
		mx = max8(lg, V);
		row_lse[r] = mx + logf(sumexp8(lg, V, mx));
		row_loss[r] = row_lse[r] - lg[targets[r]];
	}
}

static void loss_rows(struct gpt_model_acts *a, const uint32_t *targets, int BT, int V,
                      int Vp)
{
	model_loss_rows(a->nthreads, a->logits, a->row_lse, a->row_loss, targets, BT, V, Vp);
}

/* The logits become dscale * (softmax - one-hot(target)); rows that do
 * not count and the padding become 0. */
SIMD_CLONES
void model_dlogits_rows(int nthreads, float *logits, const float *row_lse,
                        const uint32_t *targets, float dscale, int BT, int V, int Vp)
{
	int r;
#pragma omp parallel for schedule(static) num_threads(nthreads) \
	if ((long)BT * V > PAR_MIN)
	for (r = 0; r < BT; r++) {
		float *lg = logits + (size_t)r * Vp;
		uint32_t t = targets[r];
		if (t == GPT_IGNORE) {
			memset(lg, 0, (size_t)Vp * sizeof(float));
			continue;
		}
		float l = row_lse[r];
		for (int i = 0; i < V; i++)
			lg[i] = exp_fast(lg[i] - l) * dscale;
		lg[t] -= dscale;
		for (int i = V; i < Vp; i++)
			lg[i] = 0;
	}
}

static void dlogits_rows(struct gpt_model_acts *a, float dscale, int BT, int V, int Vp)
{
	model_dlogits_rows(a->nthreads, a->logits, a->row_lse, a->targets, dscale, BT, V, Vp);
}

/* Dropout on a [B, T, C] activation of site `site` (dropout.h):
 * out = add + mask * in, where add may be NULL (0) and out may be in. */
static void drop_rows(const struct gpt_model *m, float *out, const float *in,
                      const float *add, int site, int B, int T, int C)
{
	const struct gpt_dropout *d = &m->drop;
	uint64_t s = drop_site(d->key, site), nctx = (uint64_t)m->cfg.n_ctx;
	int r;
#pragma omp parallel for schedule(static) if ((long)B * T * C > PAR_MIN / 8)
	for (r = 0; r < B * T; r++) {
		uint64_t base = ((d->row0 + (uint64_t)(r / T)) * nctx + (uint64_t)(r % T)) *
		                (uint64_t)C;
		const float *x = in + (size_t)r * C, *y = add ? add + (size_t)r * C : NULL;
		float *o = out + (size_t)r * C;
		for (int i = 0; i < C; i++)
			o[i] = (y ? y[i] : 0.0f) + drop_mul(s, base + (uint64_t)i, d) * x[i];
	}
}

/* ---- forward and backward ---- */

static float *par(struct gpt_model *m, size_t off)
{
	return off == NO_TENSOR ? NULL : m->params + off;
}

static float *grd(struct gpt_model *m, size_t off)
{
	return off == NO_TENSOR ? NULL : m->grads + off;
}

/* Embeddings, the blocks and ln_f on inputs[B*T] (checked, copied to
 * a->inputs): the final hidden states in a->lnf. */
static void trunk_forward(struct gpt_model *m, const uint32_t *inputs, int B, int T)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, H = c->n_head, BT = B * T, r, drop = m->drop.p > 0.0f;
	const float *x;

	/* embeddings */
#pragma omp parallel for schedule(static) if ((long)BT * C > PAR_MIN)
	for (r = 0; r < BT; r++) {
		const float *te = m->params + a->wte + (size_t)inputs[r] * C;
		const float *pe = m->params + a->wpe + (size_t)(r % T) * C;
		float *o = a->encoded + (size_t)r * C;
		for (int i = 0; i < C; i++)
			o[i] = te[i] + pe[i];
	}
	if (drop)
		drop_rows(m, a->encoded, a->encoded, NULL, 0, B, T, C);
	x = a->encoded;
	for (int l = 0; l < c->n_layer; l++) {
		struct layer_off *o = &a->off[l];
		struct layer_acts *la = &a->layer[l];
		layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, x, par(m, o->ln1w),
		                  par(m, o->ln1b), BT, C);
		matmul_forward(a, la->qkv, la->ln1, par(m, o->qkvw), par(m, o->qkvb), BT, C, 3 * C, 0);
		attention_forward(a, la->atty, la->lse, la->qkv, B, T, C, H,
		                  drop ? &m->drop : NULL, 1 + 3 * l, c->n_ctx);
		if (drop) { /* res2 = x + dropout(proj(atty)) */
			matmul_forward(a, la->res2, la->atty, par(m, o->projw), par(m, o->projb), BT,
			               C, C, 0);
			drop_rows(m, la->res2, la->res2, x, 2 + 3 * l, B, T, C);
		} else {
			memcpy(la->res2, x, (size_t)BT * C * sizeof(float));
			matmul_forward(a, la->res2, la->atty, par(m, o->projw), par(m, o->projb), BT,
			               C, C, 1);
		}
		layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, par(m, o->ln2w),
		                  par(m, o->ln2b), BT, C);
		matmul_forward(a, la->fch, la->ln2, par(m, o->fcw), par(m, o->fcb), BT, C, 4 * C, 0);
		gelu_forward(la->fch_gelu, la->fch, (size_t)BT * 4 * C);
		if (drop) {
			matmul_forward(a, la->res3, la->fch_gelu, par(m, o->mprojw), par(m, o->mprojb),
			               BT, 4 * C, C, 0);
			drop_rows(m, la->res3, la->res3, la->res2, 3 + 3 * l, B, T, C);
		} else {
			memcpy(la->res3, la->res2, (size_t)BT * C * sizeof(float));
			matmul_forward(a, la->res3, la->fch_gelu, par(m, o->mprojw), par(m, o->mprojb),
			               BT, 4 * C, C, 1);
		}
		x = la->res3;
	}
	layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, par(m, a->lnfw), par(m, a->lnfb),
	                  BT, C);
}

float gpt_model_forward(struct gpt_model *m, const uint32_t *inputs,
                        const uint32_t *targets, int B, int T)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, V = c->vocab_size, Vp = c->padded_vocab;
	int BT = B * T, r;
	double total = 0;
	long counted = 0;

	if (c->arch == GPT_ARCH_LSTM)
		return lstm_forward(m, inputs, targets, B, T);
	if (!a->buf)
		die("model: forward before gpt_model_plan");
	if (c->n_classes)
		die("model: a classifier runs through gpt_model_classify, not the language model's "
		    "forward");
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

	trunk_forward(m, inputs, B, T);
	/* logits over the real vocabulary only; padding reads -inf */
	gemm(a, 0, 1, BT, V, C, a->lnf, C, m->params + a->head, C, 0.0f, a->logits, Vp);
	loss_rows(a, targets, BT, V, Vp);
	if (targets)
		for (r = 0; r < BT; r++)
			if (targets[r] != GPT_IGNORE) {
				total += a->row_loss[r];
				counted++;
			}
	m->n_counted = counted;
	m->loss = counted ? (float)(total / (double)counted) : 0.0f;
	return m->loss;
}

float *gpt_model_logits(struct gpt_model *m)
{
	return m->cfg.arch == GPT_ARCH_LSTM ? lstm_logits(m) : m->acts->logits;
}

void gpt_model_zero_grad(struct gpt_model *m)
{
	if (m->grads)
		memset(m->grads, 0, m->n_params * sizeof(float));
}

/* From a->dres, the gradient of the last block's output: the blocks'
 * backward from the last down to block lo, and below block 0 the
 * embeddings' (lo 0). */
static void trunk_backward(struct gpt_model *m, int lo)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, H = c->n_head, B = a->B, T = a->T, BT = B * T, r;
	int drop = m->drop.p > 0.0f;

	for (int l = c->n_layer - 1; l >= lo; l--) {
		struct layer_off *o = &a->off[l];
		struct layer_acts *la = &a->layer[l];
		const float *x = l ? a->layer[l - 1].res3 : a->encoded;
		const float *dbranch = a->dres; /* the gradient of a branch's output */
		if (drop) {
			drop_rows(m, a->dbufC, a->dres, NULL, 3 + 3 * l, B, T, C);
			dbranch = a->dbufC;
		}
		matmul_backward(a, a->dbuf4C, grd(m, o->mprojw), grd(m, o->mprojb), dbranch,
		                la->fch_gelu, par(m, o->mprojw), BT, 4 * C, C);
		gelu_backward(a->dbuf4C, la->fch, (size_t)BT * 4 * C);
		matmul_backward(a, a->dbufC, grd(m, o->fcw), grd(m, o->fcb), a->dbuf4C, la->ln2,
		                par(m, o->fcw), BT, C, 4 * C);
		layernorm_backward(a->dres, grd(m, o->ln2w), grd(m, o->ln2b), a->dbufC, la->res2,
		                   par(m, o->ln2w), la->ln2_mean, la->ln2_rstd, BT, C);
		if (drop)
			drop_rows(m, a->dbufC, a->dres, NULL, 2 + 3 * l, B, T, C);
		matmul_backward(a, a->dbufC2, grd(m, o->projw), grd(m, o->projb), dbranch, la->atty,
		                par(m, o->projw), BT, C, C);
		attention_backward(a, a->dbuf4C, a->dbufC2, la->qkv, la->lse, B, T, C, H,
		                   drop ? &m->drop : NULL, 1 + 3 * l, c->n_ctx);
		matmul_backward(a, a->dbufC, grd(m, o->qkvw), grd(m, o->qkvb), a->dbuf4C, la->ln1,
		                par(m, o->qkvw), BT, C, 3 * C);
		layernorm_backward(a->dres, grd(m, o->ln1w), grd(m, o->ln1b), a->dbufC, x,
		                   par(m, o->ln1w), la->ln1_mean, la->ln1_rstd, BT, C);
	}
	/* embeddings: rows of wte in input order (a token may repeat) */
	if (lo == 0) {
		float *dwte = m->grads + a->wte, *dwpe = m->grads + a->wpe;
		int t;
		if (drop)
			drop_rows(m, a->dres, a->dres, NULL, 0, B, T, C);
		for (r = 0; r < BT; r++) {
			float *g = dwte + (size_t)a->inputs[r] * C;
			const float *d = a->dres + (size_t)r * C;
			for (int i = 0; i < C; i++)
				g[i] += d[i];
		}
#pragma omp parallel for schedule(static) if ((long)BT * C > PAR_MIN)
		for (t = 0; t < T; t++)
			for (int b = 0; b < B; b++) {
				float *g = dwpe + (size_t)t * C;
				const float *d = a->dres + ((size_t)b * T + t) * C;
				for (int i = 0; i < C; i++)
					g[i] += d[i];
			}
	}
}

void gpt_model_backward(struct gpt_model *m, float scale)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, V = c->vocab_size, Vp = c->padded_vocab;
	int B = a->B, T = a->T, BT = B * T;
	float dscale;

	if (c->arch == GPT_ARCH_LSTM) {
		lstm_backward(m, scale);
		return;
	}
	if (!m->plan_training || !a->has_targets)
		die("model: backward needs a training plan and a forward with targets");
	dscale = m->n_counted ? scale / (float)m->n_counted : 0.0f;

	/* dlogits, in place of the logits */
	dlogits_rows(a, dscale, BT, V, Vp);
	/* head: dlnf = dlogits . W; dW += dlogits^T . lnf */
	gemm(a, 0, 0, BT, C, V, a->logits, Vp, m->params + a->head, C, 0.0f, a->dbufC, C);
	gemm(a, 1, 0, V, C, BT, a->logits, Vp, a->lnf, C, 1.0f, m->grads + a->head, C);
	memset(a->dres, 0, (size_t)BT * C * sizeof(float));
	layernorm_backward(a->dres, grd(m, a->lnfw), grd(m, a->lnfb), a->dbufC,
	                   a->layer[c->n_layer - 1].res3, par(m, a->lnfw), a->lnf_mean,
	                   a->lnf_rstd, BT, C);

	trunk_backward(m, 0);
	a->has_targets = 0; /* the logits are gone */
}

/* ---- classification ---- */

float gpt_model_classify(struct gpt_model *m, const uint32_t *inputs, const int *last,
                         const uint32_t *labels, int B, int T)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, K = c->n_classes, b;
	double total = 0;
	long counted = 0;

	if (!K)
		die("model: classify on a model without classes");
	if (!a->buf)
		die("model: forward before gpt_model_plan");
	if (B < 1 || T < 1 || B > m->plan_B || T > m->plan_T)
		die("model: batch shape beyond the plan: '%dx%d'", B, T);
	for (int i = 0; i < B * T; i++)
		if (inputs[i] >= (uint32_t)c->vocab_size)
			die("model: token id out of range: '%u'", inputs[i]);
	for (b = 0; b < B; b++) {
		if (last[b] < 0 || last[b] >= T)
			die("model: last position out of range: '%d'", last[b]);
		if (labels && labels[b] != GPT_IGNORE && labels[b] >= (uint32_t)K)
			die("model: class out of range: '%u'", labels[b]);
		a->last[b] = last[b];
		a->labels[b] = labels ? labels[b] : GPT_IGNORE;
	}
	memcpy(a->inputs, inputs, (size_t)B * T * sizeof *inputs);
	a->B = B;
	a->T = T;
	a->has_targets = labels != NULL;
	trunk_forward(m, inputs, B, T);
	/* logits = W h + bias, h the hidden state at each sequence's last
	 * position; the loss in double, as loss_rows */
	for (b = 0; b < B; b++) {
		const float *h = a->lnf + ((size_t)b * T + (size_t)last[b]) * C;
		float *lg = a->cls_logits + (size_t)b * K, mx = -INFINITY;
		double sum = 0;
		for (int k = 0; k < K; k++) {
			const float *w = m->params + a->clsw + (size_t)k * C;
			float acc = 0;
			for (int i = 0; i < C; i++)
				acc += w[i] * h[i];
			lg[k] = acc + m->params[a->clsb + (size_t)k];
			mx = lg[k] > mx ? lg[k] : mx;
		}
		if (a->labels[b] == GPT_IGNORE)
			continue;
		for (int k = 0; k < K; k++)
			sum += exp((double)lg[k] - mx);
		total += (double)mx + log(sum) - lg[a->labels[b]];
		counted++;
	}
	m->n_counted = counted;
	m->loss = counted ? (float)(total / (double)counted) : 0.0f;
	return m->loss;
}

const float *gpt_model_class_logits(const struct gpt_model *m)
{
	return m->acts->cls_logits;
}

int gpt_tensor_trainable(const struct gpt_layout *L, int t, enum gpt_trainable trainable,
                         int n_layer)
{
	if (trainable == GPT_TRAIN_ALL)
		return 1;
	if (t == L->cls_w || t == L->cls_b)
		return 1;
	if (trainable == GPT_TRAIN_HEAD)
		return 0;
	if (t == L->lnfw || t == L->lnfb)
		return 1;
	/* the last block's tensors lie between its ln_1.weight and ln_f */
	return L->tensors[t].offset >= L->tensors[L->layer[n_layer - 1].ln1w].offset &&
	       L->tensors[t].offset < L->tensors[L->lnfw].offset;
}

void gpt_model_classify_backward(struct gpt_model *m, float scale, enum gpt_trainable trainable)
{
	struct gpt_model_acts *a = m->acts;
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, K = c->n_classes, B = a->B, T = a->T, BT = B * T;
	float dscale;

	if (!K || !m->plan_training || !a->has_targets)
		die("model: classify_backward needs a classifier's training plan and a classify "
		    "with labels");
	dscale = m->n_counted ? scale / (float)m->n_counted : 0.0f;
	memset(a->dbufC, 0, (size_t)BT * C * sizeof(float));
	for (int b = 0; b < B; b++) {
		const float *h = a->lnf + ((size_t)b * T + (size_t)a->last[b]) * C;
		float *lg = a->cls_logits + (size_t)b * K, mx = -INFINITY;
		float *dh = a->dbufC + ((size_t)b * T + (size_t)a->last[b]) * C;
		double sum = 0;
		if (a->labels[b] == GPT_IGNORE)
			continue;
		for (int k = 0; k < K; k++)
			mx = lg[k] > mx ? lg[k] : mx;
		for (int k = 0; k < K; k++)
			sum += exp((double)lg[k] - mx);
		for (int k = 0; k < K; k++) {
			float g = (float)(exp((double)lg[k] - mx) / sum) -
			          (k == (int)a->labels[b] ? 1.0f : 0.0f);
			float *gw = m->grads + a->clsw + (size_t)k * C;
			const float *w = m->params + a->clsw + (size_t)k * C;
			g *= dscale;
			m->grads[a->clsb + (size_t)k] += g;
			for (int i = 0; i < C; i++) {
				gw[i] += g * h[i];
				dh[i] += g * w[i];
			}
		}
	}
	if (trainable != GPT_TRAIN_HEAD) {
		memset(a->dres, 0, (size_t)BT * C * sizeof(float));
		layernorm_backward(a->dres, grd(m, a->lnfw), grd(m, a->lnfb), a->dbufC,
		                   a->layer[c->n_layer - 1].res3, par(m, a->lnfw), a->lnf_mean,
		                   a->lnf_rstd, BT, C);
		trunk_backward(m, trainable == GPT_TRAIN_ALL ? 0 : c->n_layer - 1);
	}
	a->has_targets = 0;
}

void gpt_model_dropout(struct gpt_model *m, float p, uint64_t key, uint64_t row0)
{
	if (!(p >= 0.0f && p < 1.0f))
		die("model: dropout probability out of range: '%g'", (double)p);
	m->drop = gpt_dropout_make(p, key, row0);
}

void gpt_model_adamw_init(const struct gpt_model *m, struct adamw *opt,
                          const struct adamw_config *c)
{
	adamw_init(opt, c, m->n_params);
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i].decay)
			adamw_add_decay(opt, m->tensors[i].offset, m->tensors[i].size);
}
