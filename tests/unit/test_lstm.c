/* test_lstm: the CPU LSTM (model.h, lstm.c) against PyTorch's nn.LSTM
 * (tests/gen_lstm_fixtures.py: logits, losses and final states over three
 * windows with the state carried, every gradient of truncated BPTT, a
 * given initial state, two clipped AdamW steps), finite differences with
 * and without dropout, one batch learnt by heart, the step decoder
 * against the batched forward, and windows that do not change a
 * stream's logits. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "model.h"
#include "modelio.h"
#include "optim.h"
#include "train.h"
#include "test.h"
#include "fixture.h"

/* Largest |got - want| over n values, relative to the largest |want|. */
static double max_rel(const float *got, const float *want, size_t n)
{
	double mx = 0, e = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs(want[i]) > mx)
			mx = fabs(want[i]);
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		if (d > e)
			e = d;
	}
	return e / (mx > 0 ? mx : 1);
}

/* The fixture's state [L][B][H] (h or c) against ours [L][h,c][B][H]. */
static double state_err(const float *ours, const float *want, int which, int L, int B, int H)
{
	size_t n = (size_t)B * H;
	float *got = malloc((size_t)L * n * sizeof *got);
	double e;

	for (int l = 0; l < L; l++)
		memcpy(got + l * n, ours + (size_t)(2 * l + which) * n, n * sizeof *got);
	e = max_rel(got, want, (size_t)L * n);
	free(got);
	return e;
}

/* Fills the model's weights from records "PREFIX<name>" (PyTorch
 * shapes: the vocabulary's rows without padding). */
static int load_weights(struct gpt_model *m, const struct fixture *f, const char *prefix)
{
	memset(m->params, 0, m->n_params * sizeof(float));
	for (int t = 0; t < m->n_tensors; t++) {
		const struct gpt_tensor *tt = &m->tensors[t];
		char nm[96];
		size_t n, want = tt->size;
		const float *p;

		if (t == m->layout.emb || t == m->layout.dec_w)
			want = (size_t)m->cfg.vocab_size * (size_t)tt->shape[1];
		else if (t == m->layout.dec_b)
			want = (size_t)m->cfg.vocab_size;
		snprintf(nm, sizeof nm, "%s%s", prefix, tt->name);
		p = fixture_get(f, nm, &n);
		CHECK(p && n == want, "record '%s': %zu values, want %zu", nm, n, want);
		if (!p || n != want)
			return -1;
		memcpy(m->params + tt->offset, p, n * sizeof(float));
	}
	return 0;
}

/* Worst relative error of every tensor's gradient (or parameters, when
 * params) against records "PREFIX<name>"; the tensor named in *worst. */
static double tensors_err(const struct gpt_model *m, const float *vals, const struct fixture *f,
                          const char *prefix, const char **worst)
{
	double e = 0;

	for (int t = 0; t < m->n_tensors; t++) {
		const struct gpt_tensor *tt = &m->tensors[t];
		char nm[96];
		size_t n;
		const float *p;
		double d;

		snprintf(nm, sizeof nm, "%s%s", prefix, tt->name);
		if (!(p = fixture_get(f, nm, &n)))
			return INFINITY;
		d = max_rel(vals + tt->offset, p, n);
		if (d > e) {
			e = d;
			*worst = tt->name;
		}
	}
	return e;
}

static void fixture_model(const struct fixture *f, struct gpt_model *m, int *dims)
{
	const float *cf = fixture_need(f, "config", 7);
	struct gpt_config c;

	for (int i = 0; i < 7; i++)
		dims[i] = cf ? (int)cf[i] : 1;
	gpt_config_lstm(&c, dims[0], dims[1], dims[2], dims[3], 64);
	gpt_model_init(m, &c);
}

static void test_lstm_layout(void)
{
	struct gpt_config c;
	struct gpt_model m;
	const char *names[] = {"embedding.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
	                       "lstm.bias_ih_l0", "lstm.bias_hh_l0", "lstm.weight_ih_l1",
	                       "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1",
	                       "decoder.weight", "decoder.bias"};

	gpt_config_lstm(&c, 257, 16, 32, 2, 128);
	CHECK(gpt_config_check(&c) == NULL, "%s", gpt_config_check(&c));
	/* PyTorch's count: 257*16 + (4*32*16 + 4*32*32 + 2*128) + (2*4*32*32 + 256) + 257*33 */
	CHECK(gpt_config_count_params(&c) == 257 * 16 + 6400 + 8448 + 257 * 33,
	      "%zu parameters", gpt_config_count_params(&c));
	gpt_model_init(&m, &c);
	CHECK(m.n_tensors == 11, "%d tensors", m.n_tensors);
	for (int i = 0; i < 11 && i < m.n_tensors; i++)
		CHECK(strcmp(m.tensors[i].name, names[i]) == 0, "tensor %d is '%s'", i,
		      m.tensors[i].name);
	CHECK(m.tensors[0].shape[0] == 384 && m.tensors[0].shape[1] == 16, "embedding %dx%d",
	      m.tensors[0].shape[0], m.tensors[0].shape[1]);
	CHECK(m.tensors[5].shape[0] == 128 && m.tensors[5].shape[1] == 32, "weight_ih_l1 %dx%d",
	      m.tensors[5].shape[0], m.tensors[5].shape[1]);
	gpt_model_init_weights(&m, 3);
	/* the padding rows stay 0; PyTorch's uniform bound 1/sqrt(H) */
	{
		const struct gpt_tensor *d = gpt_model_tensor(&m, "decoder.weight");
		float mx = 0;
		int pad_zero = 1;
		for (size_t i = 0; i < d->size; i++) {
			float v = m.params[d->offset + i];
			if (i >= (size_t)257 * 32 && v != 0)
				pad_zero = 0;
			if (fabsf(v) > mx)
				mx = fabsf(v);
		}
		CHECK(pad_zero, "decoder padding rows not zero");
		CHECK(mx <= 1.0f / sqrtf(32.0f) && mx > 0.9f / sqrtf(32.0f), "decoder bound %g", mx);
	}
	gpt_model_free(&m);
	/* what the family cannot have */
	gpt_config_lstm(&c, 257, 16, 32, 2, 128);
	c.tied = 1;
	CHECK(gpt_config_check(&c) != NULL, "a tied lstm passed the check");
	gpt_config_lstm(&c, 257, 0, 32, 2, 128);
	CHECK(gpt_config_check(&c) != NULL, "an lstm without an embedding passed the check");
}

static void test_lstm_torch(void)
{
	struct fixture f;
	struct gpt_model m;
	int d[7], V, L, B, H, T, NW;
	const char *worst = "";
	float *st, *lg;

	if (fixture_load(&f, "lstm") != 0) {
		CHECK(0, "cannot read fixture 'lstm' (ROOT=%s)", getenv("ROOT"));
		return;
	}
	fixture_model(&f, &m, d);
	V = d[0], H = d[2], L = d[3], B = d[4], T = d[5], NW = d[6];
	if (load_weights(&m, &f, "w.") != 0)
		goto out;
	gpt_model_plan(&m, B, T, 1);
	st = malloc(gpt_model_state_floats(&m, B) * sizeof *st);
	lg = malloc((size_t)B * T * V * sizeof *lg);
	for (int w = 0; w < NW; w++) {
		const float *in = fixture_need(&f, "in", (size_t)NW * B * T);
		const float *tg = fixture_need(&f, "tg", (size_t)NW * B * T);
		uint32_t ii[256], tt[256];
		char nm[64];
		double e;

		if (!in || !tg)
			break;
		for (int k = 0; k < B * T; k++) {
			ii[k] = (uint32_t)in[(size_t)w * B * T + k];
			tt[k] = (uint32_t)tg[(size_t)w * B * T + k];
		}
		gpt_model_zero_grad(&m);
		float loss = gpt_model_forward(&m, ii, tt, B, T);
		for (int r = 0; r < B * T; r++)
			memcpy(lg + (size_t)r * V, gpt_model_logits(&m) + (size_t)r * m.cfg.padded_vocab,
			       (size_t)V * sizeof *lg);
		snprintf(nm, sizeof nm, "logits.%d", w);
		e = max_rel(lg, fixture_need(&f, nm, (size_t)B * T * V), (size_t)B * T * V);
		CHECK(e < 1e-5, "window %d: logits off by %.3g", w, e);
		snprintf(nm, sizeof nm, "loss.%d", w);
		const float *want = fixture_need(&f, nm, 1);
		CHECK(want && fabsf(loss - *want) < 1e-5f * *want, "window %d: loss %.7f, torch %.7f",
		      w, loss, want ? *want : 0);
		gpt_model_state_get(&m, st, B);
		snprintf(nm, sizeof nm, "h.%d", w);
		e = state_err(st, fixture_need(&f, nm, (size_t)L * B * H), 0, L, B, H);
		CHECK(e < 1e-5, "window %d: h off by %.3g", w, e);
		snprintf(nm, sizeof nm, "c.%d", w);
		e = state_err(st, fixture_need(&f, nm, (size_t)L * B * H), 1, L, B, H);
		CHECK(e < 1e-5, "window %d: c off by %.3g", w, e);
		gpt_model_backward(&m, 1.0f);
		snprintf(nm, sizeof nm, "grad.%d.", w);
		e = tensors_err(&m, m.grads, &f, nm, &worst);
		CHECK(e < 1e-4, "window %d: gradient of %s off by %.3g", w, worst, e);
		if (getenv("TEST_VERBOSE"))
			printf("# window %d: loss %.6f, gradients within %.2g (%s)\n", w, loss, e, worst);
	}

	/* a given initial state */
	{
		const float *ih = fixture_need(&f, "init.h", (size_t)L * B * H);
		const float *ic = fixture_need(&f, "init.c", (size_t)L * B * H);
		const float *in = fixture_need(&f, "in", (size_t)NW * B * T);
		const float *tg = fixture_need(&f, "tg", (size_t)NW * B * T);
		const float *wl = fixture_need(&f, "init.loss", 1);
		uint32_t ii[256], tt[256];
		size_t n = (size_t)B * H;
		double e;

		if (ih && ic && in && tg && wl) {
			for (int l = 0; l < L; l++) {
				memcpy(st + (size_t)(2 * l) * n, ih + l * n, n * sizeof *st);
				memcpy(st + (size_t)(2 * l + 1) * n, ic + l * n, n * sizeof *st);
			}
			gpt_model_state_set(&m, st, B);
			for (int k = 0; k < B * T; k++) {
				ii[k] = (uint32_t)in[k];
				tt[k] = (uint32_t)tg[k];
			}
			gpt_model_zero_grad(&m);
			float loss = gpt_model_forward(&m, ii, tt, B, T);
			CHECK(fabsf(loss - *wl) < 1e-5f * *wl, "given state: loss %.7f, torch %.7f", loss,
			      *wl);
			for (int r = 0; r < B * T; r++)
				memcpy(lg + (size_t)r * V,
				       gpt_model_logits(&m) + (size_t)r * m.cfg.padded_vocab,
				       (size_t)V * sizeof *lg);
			e = max_rel(lg, fixture_need(&f, "init.logits", (size_t)B * T * V),
			            (size_t)B * T * V);
			CHECK(e < 1e-5, "given state: logits off by %.3g", e);
			gpt_model_state_get(&m, st, B);
			e = state_err(st, fixture_need(&f, "init.hout", (size_t)L * B * H), 0, L, B, H);
			CHECK(e < 1e-5, "given state: h out off by %.3g", e);
			e = state_err(st, fixture_need(&f, "init.cout", (size_t)L * B * H), 1, L, B, H);
			CHECK(e < 1e-5, "given state: c out off by %.3g", e);
			gpt_model_backward(&m, 1.0f);
			e = tensors_err(&m, m.grads, &f, "init.grad.", &worst);
			CHECK(e < 1e-4, "given state: gradient of %s off by %.3g", worst, e);
		}
	}
	free(st);
	free(lg);

	/* two clipped AdamW steps, the state carried from the first */
	{
		const float *hy = fixture_need(&f, "train.hyper", 5);
		const float *lrs = fixture_need(&f, "train.lrs", 2);
		const float *tl = fixture_need(&f, "train.loss", 2);
		const float *tn = fixture_need(&f, "train.norm", 2);
		const float *in = fixture_need(&f, "in", (size_t)NW * B * T);
		const float *tg = fixture_need(&f, "tg", (size_t)NW * B * T);
		struct adamw_config ac;
		struct engine *e;
		double err;

		if (!hy || !lrs || !tl || !tn || !in || !tg)
			goto out;
		load_weights(&m, &f, "w.");
		e = engine_open("cpu", &m);
		engine_plan(e, B, T, 1, 0);
		adamw_config_default(&ac);
		ac.beta1 = hy[0];
		ac.beta2 = hy[1];
		ac.eps = hy[2];
		ac.weight_decay = hy[3];
		engine_optim(e, &ac);
		for (int s = 0; s < 2; s++) {
			uint32_t ii[256], tt[256];
			float norm;
			double loss;
			for (int k = 0; k < B * T; k++) {
				ii[k] = (uint32_t)in[(size_t)s * B * T + k];
				tt[k] = (uint32_t)tg[(size_t)s * B * T + k];
			}
			loss = train_step(e, ii, tt, 1, B, T, lrs[s], hy[4], &norm);
			CHECK(fabs(loss - tl[s]) < 1e-5 * tl[s], "step %d: loss %.7f, torch %.7f", s, loss,
			      tl[s]);
			CHECK(fabsf(norm - tn[s]) < 1e-5f * tn[s], "step %d: norm %.7f, torch %.7f", s,
			      norm, tn[s]);
		}
		engine_pull(e);
		err = tensors_err(&e->model, e->model.params, &f, "after.", &worst);
		CHECK(err < 1e-5, "after two steps: %s off by %.3g", worst, err);
		engine_close(e);
		fixture_free(&f);
		return;
	}
out:
	gpt_model_free(&m);
	fixture_free(&f);
}

static void tiny_lstm(struct gpt_model *m, int V, int E, int H, int L, uint64_t seed)
{
	struct gpt_config c;

	gpt_config_lstm(&c, V, E, H, L, 64);
	gpt_model_init(m, &c);
	gpt_model_init_weights(m, seed);
}

static void random_ids(uint32_t *x, int n, int V, uint64_t seed)
{
	struct gpt_rng r;

	gpt_rng_seed(&r, seed);
	for (int i = 0; i < n; i++)
		x[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)V);
}

/* Central differences (Richardson) on the largest gradient of each
 * tensor, from a fixed nonzero initial state, dropout p. */
static void finite_differences(float p)
{
	struct gpt_model m;
	uint32_t in[24], tg[24];
	int B = 2, T = 12, checked = 0;
	float *s0;
	struct gpt_rng r;

	tiny_lstm(&m, 20, 6, 8, 3, 5);
	for (size_t i = 0; i < m.n_params; i++)
		m.params[i] *= 3; /* gradients well above float32's noise */
	gpt_model_plan(&m, B, T, 1);
	s0 = malloc(gpt_model_state_floats(&m, B) * sizeof *s0);
	gpt_rng_seed(&r, 6);
	for (size_t i = 0; i < gpt_model_state_floats(&m, B); i++)
		s0[i] = (float)(gpt_rng_uniform(&r) - 0.5);
	random_ids(in, B * T, 20, 7);
	random_ids(tg, B * T, 20, 8);
	tg[3] = GPT_IGNORE;
	gpt_model_dropout(&m, p, 99, 0);
	gpt_model_zero_grad(&m);
	gpt_model_state_set(&m, s0, B);
	gpt_model_forward(&m, in, tg, B, T);
	gpt_model_backward(&m, 1.0f);
	for (int t = 0; t < m.n_tensors; t++) {
		const struct gpt_tensor *tt = &m.tensors[t];
		size_t best = 0;
		for (size_t i = 1; i < tt->size; i++)
			if (fabsf(m.grads[tt->offset + i]) > fabsf(m.grads[tt->offset + best]))
				best = i;
		size_t k = tt->offset + best;
		float g = m.grads[k], p0 = m.params[k], h = 1e-2f, dd[2];
		if (fabsf(g) < 0.005f)
			continue;
		for (int j = 0; j < 2; j++, h /= 2) {
			m.params[k] = p0 + h;
			gpt_model_state_set(&m, s0, B);
			double lp = gpt_model_forward(&m, in, tg, B, T);
			m.params[k] = p0 - h;
			gpt_model_state_set(&m, s0, B);
			double lm = gpt_model_forward(&m, in, tg, B, T);
			dd[j] = (float)((lp - lm) / ((double)(p0 + h) - (double)(p0 - h)));
		}
		m.params[k] = p0;
		double fd = (4.0 * dd[1] - dd[0]) / 3.0;
		CHECK(fabs(fd - g) <= 0.02 * fabs(g), "p %.2f: %s[%zu]: backward %.6g, differences %.6g",
		      (double)p, tt->name, best, g, fd);
		checked++;
	}
	CHECK(checked == m.n_tensors, "only %d of %d tensors had a gradient to check", checked,
	      m.n_tensors);
	free(s0);
	gpt_model_free(&m);
}

static void test_lstm_finite_differences(void)
{
	finite_differences(0.0f);
}

static void test_lstm_finite_differences_dropout(void)
{
	finite_differences(0.3f);
}

/* A small LSTM learns one batch by heart through the library's step. */
static void test_lstm_overfit(void)
{
	struct gpt_model m;
	struct engine *e;
	struct adamw_config ac;
	uint32_t in[64], tg[64];
	int B = 4, T = 16, step;
	float loss = 0, first = 0;

	tiny_lstm(&m, 60, 16, 32, 2, 1);
	e = engine_open("cpu", &m);
	engine_plan(e, B, T, 1, 0);
	random_ids(in, B * T, 60, 9);
	random_ids(tg, B * T, 60, 10);
	adamw_config_default(&ac);
	ac.weight_decay = 0;
	engine_optim(e, &ac);
	for (step = 0; step < 600; step++) {
		/* every step from the zero state: the same batch each time */
		engine_state_set(e, NULL, B);
		loss = (float)train_step(e, in, tg, 1, B, T, 1e-2f, 5.0f, NULL);
		if (step == 0)
			first = loss;
		if (loss < 0.05f)
			break;
	}
	if (getenv("TEST_VERBOSE"))
		printf("# overfit: loss %.4f -> %.4f in %d steps\n", first, loss, step);
	CHECK(first > 3.5f && loss < 0.05f, "loss %.4f -> %.4f after %d steps", first, loss, step);
	engine_close(e);
}

/* One stream three ways: one window of 12, three windows of 4 with the
 * state carried, and the step decoder token by token. */
static void test_lstm_stream(void)
{
	struct gpt_model m;
	struct gpt_lstm_step *s;
	uint32_t in[12];
	float *a, *b;
	int V = 30, Vp;
	double e1 = 0, e2 = 0;

	tiny_lstm(&m, V, 8, 16, 2, 21);
	Vp = m.cfg.padded_vocab;
	random_ids(in, 12, V, 22);
	a = malloc((size_t)12 * Vp * sizeof *a);
	b = malloc((size_t)12 * Vp * sizeof *b);
	gpt_model_plan(&m, 1, 12, 0);
	gpt_model_forward(&m, in, NULL, 1, 12);
	memcpy(a, gpt_model_logits(&m), (size_t)12 * Vp * sizeof *a);
	gpt_model_state_set(&m, NULL, 1);
	for (int w = 0; w < 3; w++) {
		gpt_model_forward(&m, in + 4 * w, NULL, 1, 4);
		memcpy(b + (size_t)4 * w * Vp, gpt_model_logits(&m), (size_t)4 * Vp * sizeof *b);
	}
	for (int k = 0; k < 12 * Vp; k++)
		if (k % Vp < V && fabs(a[k] - b[k]) > e1)
			e1 = fabs(a[k] - b[k]);
	CHECK(e1 < 1e-5, "windows of 4 differ from one of 12 by %.3g", e1);
	s = gpt_lstm_step_open(&m);
	for (int t = 0; t < 12; t++) {
		const float *lg = gpt_lstm_step_feed(s, in[t]);
		for (int v = 0; v < V; v++)
			if (fabs(lg[v] - a[(size_t)t * Vp + v]) > e2)
				e2 = fabs(lg[v] - a[(size_t)t * Vp + v]);
		CHECK(isinf(lg[V]) && lg[V] < 0, "padding logit %g", lg[V]);
	}
	CHECK(e2 < 1e-5, "the step decoder differs from the forward by %.3g", e2);
	/* reset: the first logits again */
	gpt_lstm_step_reset(s);
	gpt_lstm_step_feed(s, in[1]);
	gpt_lstm_step_reset(s);
	const float *lg = gpt_lstm_step_feed(s, in[0]);
	double e3 = 0;
	for (int v = 0; v < V; v++)
		if (fabs(lg[v] - a[v]) > e3)
			e3 = fabs(lg[v] - a[v]);
	CHECK(e3 < 1e-5, "after reset the first logits differ by %.3g", e3);
	/* the state carried changes the logits: a stream is not its windows alone */
	gpt_model_forward(&m, in, NULL, 1, 4);
	double moved = 0;
	for (int v = 0; v < V; v++)
		moved += fabs(gpt_model_logits(&m)[v] - a[v]);
	CHECK(moved > 1e-3, "a carried state left the logits as from zero (%.3g)", moved);
	gpt_lstm_step_close(s);
	free(a);
	free(b);
	gpt_model_free(&m);
}

/* An LSTM's checkpoint (version 3) keeps its family and every weight. */
static void test_lstm_checkpoint(void)
{
	struct gpt_model m, b;
	const char *path = test_path("lstm.gpt");
	char tok[64] = "";
	struct ckpt ck;

	tiny_lstm(&m, 257, 12, 20, 3, 4);
	modelio_save(&m, "bytes", path);
	CHECK(ckpt_open(&ck, path) == 0, "%s", ck.err);
	CHECK(ck.model.arch == 1 && ck.model.input == 12 && ck.model.width == 20 &&
	      ck.model.layers == 3, "header: arch %u input %u width %u layers %u", ck.model.arch,
	      ck.model.input, ck.model.width, ck.model.layers);
	ckpt_close(&ck);
	modelio_load(path, &b, tok);
	CHECK(b.cfg.arch == GPT_ARCH_LSTM && b.cfg.n_input == 12 && b.cfg.n_embd == 20 &&
	      b.cfg.n_layer == 3 && b.cfg.vocab_size == 257, "config back");
	CHECK(strcmp(tok, "bytes") == 0, "tokenizer '%s'", tok);
	CHECK(b.n_params == m.n_params &&
	      memcmp(b.params, m.params, m.n_params * sizeof(float)) == 0, "weights back");
	gpt_model_free(&m);
	gpt_model_free(&b);
}

/* A shape wide enough for the recurrences' team of threads (each owns
 * a slice of the hidden units): the same loss, gradients and state with
 * one thread and with three. */
static void test_lstm_threads(void)
{
	struct gpt_model m;
	uint32_t in[32], tg[32];
	int B = 8, T = 4, H = 512, saved = omp_get_max_threads();
	float *g1, *s1, l1, l3;
	size_t ns;

	tiny_lstm(&m, 30, 16, H, 2, 9);
	random_ids(in, B * T, 30, 10);
	random_ids(tg, B * T, 30, 11);
	ns = gpt_model_state_floats(&m, B);
	g1 = malloc(m.n_params * sizeof *g1);
	s1 = malloc(ns * sizeof *s1);
	omp_set_num_threads(1);
	gpt_model_plan(&m, B, T, 1);
	gpt_model_dropout(&m, 0.2f, 5, 0);
	gpt_model_zero_grad(&m);
	l1 = gpt_model_forward(&m, in, tg, B, T);
	gpt_model_backward(&m, 1.0f);
	memcpy(g1, m.grads, m.n_params * sizeof *g1);
	gpt_model_state_get(&m, s1, B);
	omp_set_num_threads(3);
	gpt_model_plan(&m, B, T, 1);
	gpt_model_zero_grad(&m);
	l3 = gpt_model_forward(&m, in, tg, B, T);
	gpt_model_backward(&m, 1.0f);
	{
		float *s3 = malloc(ns * sizeof *s3);
		gpt_model_state_get(&m, s3, B);
		CHECK(fabsf(l1 - l3) < 1e-6f * l1, "loss %.8f with one thread, %.8f with three", l1, l3);
		CHECK(max_rel(m.grads, g1, m.n_params) < 1e-5, "gradients differ by %.3g",
		      max_rel(m.grads, g1, m.n_params));
		CHECK(max_rel(s3, s1, ns) < 1e-5, "state differs by %.3g", max_rel(s3, s1, ns));
		free(s3);
	}
	omp_set_num_threads(saved);
	free(g1);
	free(s1);
	gpt_model_free(&m);
}

int main(void)
{
	RUN(test_lstm_layout);
	RUN(test_lstm_torch);
	RUN(test_lstm_finite_differences);
	RUN(test_lstm_finite_differences_dropout);
	RUN(test_lstm_overfit);
	RUN(test_lstm_stream);
	RUN(test_lstm_checkpoint);
	RUN(test_lstm_threads);
	return TEST_END();
}
