/* engine_cpu: the CPU engine's table (engine.h) over the reference model
 * (model.h), AdamW (optim.h) and the key/value-cache decoder (infer.h).
 * The host model is the engine's model: push and pull have nothing to
 * copy, and training runs on e->model and e->opt in place. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "err.h"
#include "infer.h"

struct cpu {
	float norm;        /* the last grad_norm, while norm_ok */
	int norm_ok;
};

struct cpu_decoder {
	struct engine_decoder base;
	struct infer inf;
};

static const char *cpu_unavailable(void)
{
	return NULL;
}

static void cpu_open(struct engine *e)
{
	e->impl = xcalloc(1, sizeof(struct cpu));
}

static void cpu_close(struct engine *e)
{
	free(e->impl);
	e->impl = NULL;
}

static void cpu_describe(struct engine *e, char *buf, size_t cap)
{
	(void)e;
	snprintf(buf, cap, "the cpu");
}

static void cpu_plan(struct engine *e, int B, int T, int training, int recompute)
{
	(void)recompute; /* the CPU engine keeps every activation */
	gpt_model_plan(&e->model, B, T, training);
}

static void cpu_nothing(struct engine *e)
{
	(void)e;
}

static void norm_forget(struct engine *e)
{
	((struct cpu *)e->impl)->norm_ok = 0;
}

static float cpu_forward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T)
{
	return gpt_model_forward(&e->model, in, tg, B, T);
}

static long cpu_counted(struct engine *e)
{
	return e->model.n_counted;
}

static void cpu_logits(struct engine *e, int r0, int n, float *dst)
{
	size_t Vp = (size_t)e->model.cfg.padded_vocab;

	memcpy(dst, gpt_model_logits(&e->model) + (size_t)r0 * Vp, (size_t)n * Vp * sizeof *dst);
}

static void cpu_losses(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T,
                       double *loss)
{
	int V = e->model.cfg.vocab_size;
	size_t Vp = (size_t)e->model.cfg.padded_vocab;
	const float *lg;

	gpt_model_forward(&e->model, in, NULL, B, T);
	lg = gpt_model_logits(&e->model);
#pragma omp parallel for schedule(static)
	for (int r = 0; r < B * T; r++)
		if (tg[r] != GPT_IGNORE) {
			const float *row = lg + (size_t)r * Vp;
			loss[r] = infer_lse(row, V) - row[tg[r]];
		}
}

static void cpu_zero_grad(struct engine *e)
{
	norm_forget(e);
	gpt_model_zero_grad(&e->model);
}

/* A loss that is not finite skips the backward pass: the caller stops on
 * it either way.  The model drops (e->drop) for this pass only. */
static float cpu_forward_backward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B,
                                  int T, float scale)
{
	float l;

	e->model.drop = e->drop;
	l = gpt_model_forward(&e->model, in, tg, B, T);
	norm_forget(e);
	if (isfinite(l))
		gpt_model_backward(&e->model, scale);
	e->model.drop.p = 0.0f; /* forward alone never drops */
	return l;
}

static float cpu_classify(struct engine *e, const uint32_t *in, const int *last,
                         const uint32_t *labels, int B, int T)
{
	norm_forget(e);
	return gpt_model_classify(&e->model, in, last, labels, B, T);
}

static void cpu_class_logits(struct engine *e, int B, float *dst)
{
	memcpy(dst, gpt_model_class_logits(&e->model),
	       (size_t)B * (size_t)e->model.cfg.n_classes * sizeof *dst);
}

static void cpu_classify_backward(struct engine *e, float scale, int trainable)
{
	norm_forget(e);
	gpt_model_classify_backward(&e->model, scale, (enum gpt_trainable)trainable);
}

static float cpu_grad_norm(struct engine *e)
{
	struct cpu *c = e->impl;

	if (!c->norm_ok) {
		c->norm = grad_global_norm(e->model.grads, e->model.n_params);
		c->norm_ok = 1;
	}
	return c->norm;
}

static void cpu_step(struct engine *e, float lr, float clip)
{
	float scale = grad_clip_scale(cpu_grad_norm(e), clip);

	if (!e->has_opt)
		die("engine: an optimizer step before engine_optim");
	adamw_step(&e->opt, e->model.params, e->model.grads, lr, scale);
}

static void need_grads(struct engine *e)
{
	if (!e->model.grads)
		die("engine: no gradients before a training plan");
}

static void cpu_grads_get(struct engine *e, float *dst)
{
	need_grads(e);
	memcpy(dst, e->model.grads, e->model.n_params * sizeof *dst);
}

static void cpu_grads_set(struct engine *e, const float *src)
{
	need_grads(e);
	norm_forget(e);
	memcpy(e->model.grads, src, e->model.n_params * sizeof *src);
}

static size_t cpu_peak_bytes(struct engine *e)
{
	(void)e;
	return 0;
}

/* An LSTM's decoder has no cache to rewind and no end: it keeps the ids
 * it was fed (a growing array, whatever max_T) and, to go back, starts
 * again from the zero state and feeds them up to the position asked for. */
struct lstm_decoder {
	struct engine_decoder base;
	struct gpt_lstm_step *s;
	uint32_t *ids;
	int pos, cap;
	const float *last; /* the logits after ids[pos - 1] */
};

static int is_lstm(const struct engine *e)
{
	return e->model.cfg.arch == GPT_ARCH_LSTM;
}

static struct engine_decoder *cpu_decoder_open(struct engine *e, int max_T)
{
	if (is_lstm(e)) {
		struct lstm_decoder *d = xcalloc(1, sizeof *d);
		d->s = gpt_lstm_step_open(&e->model);
		d->cap = 1024;
		(void)max_T;
		d->ids = xcalloc((size_t)d->cap, sizeof *d->ids);
		return &d->base;
	}
	struct cpu_decoder *d = xcalloc(1, sizeof *d);

	(void)max_T; /* the cache always holds n_ctx positions */
	infer_init(&d->inf, &e->model);
	return &d->base;
}

static const float *cpu_decoder_feed(struct engine_decoder *d, const uint32_t *ids, int n,
                                     float *all)
{
	if (is_lstm(d->e)) {
		struct lstm_decoder *l = (struct lstm_decoder *)d;
		size_t Vp = (size_t)d->e->model.cfg.padded_vocab;
		if (n < 1 || n > INT_MAX / 2 - l->pos)
			die("decoder: %d tokens at position %d", n, l->pos);
		if (l->pos + n > l->cap) {
			while (l->pos + n > l->cap)
				l->cap *= 2;
			l->ids = xrealloc(l->ids, xmul((size_t)l->cap, sizeof *l->ids));
		}
		for (int i = 0; i < n; i++) {
			l->ids[l->pos++] = ids[i];
			l->last = gpt_lstm_step_feed(l->s, ids[i]);
			if (all)
				memcpy(all + (size_t)i * Vp, l->last, Vp * sizeof *all);
		}
		return l->last;
	}
	return infer_feed(&((struct cpu_decoder *)d)->inf, ids, n, all);
}

static void cpu_decoder_rewind(struct engine_decoder *d, int pos)
{
	if (is_lstm(d->e)) {
		struct lstm_decoder *l = (struct lstm_decoder *)d;
		if (pos < 0 || pos > l->pos)
			die("decoder: rewind to %d beyond position %d", pos, l->pos);
		if (pos == l->pos)
			return;
		gpt_lstm_step_reset(l->s);
		l->last = NULL;
		for (int i = 0; i < pos; i++)
			l->last = gpt_lstm_step_feed(l->s, l->ids[i]);
		l->pos = pos;
		return;
	}
	infer_rewind(&((struct cpu_decoder *)d)->inf, pos);
}

static int cpu_decoder_pos(struct engine_decoder *d)
{
	if (is_lstm(d->e))
		return ((struct lstm_decoder *)d)->pos;
	return ((struct cpu_decoder *)d)->inf.pos;
}

static void cpu_decoder_close(struct engine_decoder *d)
{
	if (is_lstm(d->e)) {
		struct lstm_decoder *l = (struct lstm_decoder *)d;
		gpt_lstm_step_close(l->s);
		free(l->ids);
		free(l);
		return;
	}
	infer_free(&((struct cpu_decoder *)d)->inf);
	free(d);
}

static void cpu_state_get(struct engine *e, float *dst, int B)
{
	gpt_model_state_get(&e->model, dst, B);
}

static void cpu_state_set(struct engine *e, const float *src, int B)
{
	gpt_model_state_set(&e->model, src, B);
}

const struct engine_ops engine_cpu = {
	.name = "cpu",
	.unavailable = cpu_unavailable,
	.open = cpu_open,
	.close = cpu_close,
	.describe = cpu_describe,
	.plan = cpu_plan,
	.optim = cpu_nothing,
	.push = cpu_nothing,
	.pull = cpu_nothing,
	.forward = cpu_forward,
	.counted = cpu_counted,
	.logits = cpu_logits,
	.losses = cpu_losses,
	.zero_grad = cpu_zero_grad,
	.forward_backward = cpu_forward_backward,
	.grad_norm = cpu_grad_norm,
	.step = cpu_step,
	.grads_get = cpu_grads_get,
	.grads_set = cpu_grads_set,
	.peak_bytes = cpu_peak_bytes,
	.classify = cpu_classify,
	.class_logits = cpu_class_logits,
	.classify_backward = cpu_classify_backward,
	.decoder_open = cpu_decoder_open,
	.decoder_feed = cpu_decoder_feed,
	.decoder_rewind = cpu_decoder_rewind,
	.decoder_pos = cpu_decoder_pos,
	.decoder_close = cpu_decoder_close,
	.state_get = cpu_state_get,
	.state_set = cpu_state_set,
};
