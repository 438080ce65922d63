/* engine: picking an engine for a device and calling through its table
 * (the contract is in engine.h).  The CUDA table is a weak reference: it
 * is there when the program was linked with cuda/, NULL otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "err.h"

#define NO_CUDA_BUILD "no CUDA engine in this build (no nvcc when it was built)"

void engine_select_gpu(int index)
{
	if (&engine_cuda && engine_cuda.select)
		engine_cuda.select(index);
}

int engine_device_check(const char *name)
{
	return strcmp(name, "auto") == 0 || strcmp(name, "cpu") == 0 ||
	       strcmp(name, "cuda") == 0 ? 0 : -1;
}

const struct engine_ops *engine_find(const char *device, char *why, size_t cap)
{
	const char *no = NULL;

	if (why && cap)
		why[0] = '\0';
	if (engine_device_check(device) != 0)
		die("unknown device '%s' (auto, cpu, cuda)", device);
	if (strcmp(device, "cpu") == 0)
		return &engine_cpu;
	no = &engine_cuda ? engine_cuda.unavailable() : NO_CUDA_BUILD;
	if (!no)
		return &engine_cuda;
	if (strcmp(device, "cuda") == 0 && !&engine_cuda)
		die(NO_CUDA_BUILD "; use --device cpu");
	if (strcmp(device, "cuda") == 0)
		die("no CUDA engine for --device cuda: no usable gpu: %s", no);
	if (why && cap)
		snprintf(why, cap, "%s", no);
	return &engine_cpu;
}

struct engine *engine_open(const char *device, struct gpt_model *m)
{
	struct engine *e = xcalloc(1, sizeof *e);

	e->ops = engine_find(device, e->why, sizeof e->why);
	/* an LSTM on the GPU is a table of its own (cuda/lstm.cu) */
	if (m->cfg.arch == GPT_ARCH_LSTM && &engine_cuda && e->ops == &engine_cuda &&
	    &engine_cuda_lstm)
		e->ops = &engine_cuda_lstm;
	if (m->cfg.arch == GPT_ARCH_LSTM && !e->ops->state_get) {
		if (strcmp(device, "auto") != 0)
			die("the %s engine has no lstm; use --device cpu", e->ops->name);
		snprintf(e->why, sizeof e->why, "the %s engine has no lstm", e->ops->name);
		e->ops = &engine_cpu;
	}
	e->model = *m;
	memset(m, 0, sizeof *m);
	e->ops->open(e);
	return e;
}

void engine_plan(struct engine *e, int B, int T, int training, int recompute)
{
	e->ops->plan(e, B, T, training, recompute);
}

void engine_optim(struct engine *e, const struct adamw_config *c)
{
	if (e->has_opt)
		adamw_free(&e->opt);
	gpt_model_adamw_init(&e->model, &e->opt, c);
	e->has_opt = 1;
	e->ops->optim(e);
}

void engine_push(struct engine *e)
{
	e->ops->push(e);
}

void engine_pull(struct engine *e)
{
	e->ops->pull(e);
}

void engine_describe(struct engine *e, char *buf, size_t cap)
{
	e->ops->describe(e, buf, cap);
}

float engine_forward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T)
{
	return e->ops->forward(e, in, tg, B, T);
}

long engine_counted(struct engine *e)
{
	return e->ops->counted(e);
}

void engine_logits(struct engine *e, int r0, int n, float *dst)
{
	e->ops->logits(e, r0, n, dst);
}

void engine_losses(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T,
                   double *loss)
{
	e->ops->losses(e, in, tg, B, T, loss);
}

size_t engine_state_floats(struct engine *e, int B)
{
	return gpt_model_state_floats(&e->model, B);
}

void engine_state_get(struct engine *e, float *dst, int B)
{
	if (!e->ops->state_get)
		die("the %s engine carries no state", e->ops->name);
	e->ops->state_get(e, dst, B);
}

void engine_state_set(struct engine *e, const float *src, int B)
{
	if (!e->ops->state_set)
		die("the %s engine carries no state", e->ops->name);
	e->ops->state_set(e, src, B);
}

void engine_zero_grad(struct engine *e)
{
	e->ops->zero_grad(e);
}

float engine_forward_backward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B,
                              int T, float scale)
{
	return e->ops->forward_backward(e, in, tg, B, T, scale);
}

void engine_dropout(struct engine *e, float p, uint64_t key, uint64_t row0)
{
	if (!(p >= 0.0f && p < 1.0f))
		die("dropout probability out of range: '%g'", (double)p);
	e->drop = gpt_dropout_make(p, key, row0);
}

static void need_classify(const struct engine *e)
{
	if (!e->ops->classify)
		die("the %s engine cannot run a classifier yet; give --device cpu", e->ops->name);
}

float engine_classify(struct engine *e, const uint32_t *in, const int *last,
                      const uint32_t *labels, int B, int T)
{
	need_classify(e);
	return e->ops->classify(e, in, last, labels, B, T);
}

void engine_class_logits(struct engine *e, int B, float *dst)
{
	need_classify(e);
	e->ops->class_logits(e, B, dst);
}

void engine_classify_backward(struct engine *e, float scale, enum gpt_trainable trainable)
{
	need_classify(e);
	e->ops->classify_backward(e, scale, (int)trainable);
}

float engine_grad_norm(struct engine *e)
{
	return e->ops->grad_norm(e);
}

void engine_step(struct engine *e, float lr, float clip)
{
	e->ops->step(e, lr, clip);
}

void engine_grads_get(struct engine *e, float *dst)
{
	e->ops->grads_get(e, dst);
}

void engine_grads_set(struct engine *e, const float *src)
{
	e->ops->grads_set(e, src);
}

size_t engine_peak_bytes(struct engine *e)
{
	return e->ops->peak_bytes(e);
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	e->ops->close(e);
	if (e->has_opt)
		adamw_free(&e->opt);
	gpt_model_free(&e->model);
	free(e);
}

struct engine_decoder *engine_decoder_open(struct engine *e, int max_T)
{
	struct engine_decoder *d;

	/* an LSTM's decoder has no cache: it takes any number of positions */
	if (max_T < 1 || (max_T > e->model.cfg.n_ctx && e->model.cfg.arch != GPT_ARCH_LSTM))
		die("decoder: cache of %d positions outside 1..%d", max_T, e->model.cfg.n_ctx);
	d = e->ops->decoder_open(e, max_T);
	d->e = e;
	return d;
}

const float *engine_decoder_feed(struct engine_decoder *d, const uint32_t *ids, int n,
                                 float *all)
{
	return d->e->ops->decoder_feed(d, ids, n, all);
}

void engine_decoder_rewind(struct engine_decoder *d, int pos)
{
	d->e->ops->decoder_rewind(d, pos);
}

int engine_decoder_pos(struct engine_decoder *d)
{
	return d->e->ops->decoder_pos(d);
}

void engine_decoder_close(struct engine_decoder *d)
{
	if (d)
		d->e->ops->decoder_close(d);
}
