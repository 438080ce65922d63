/* engine: the CUDA engine behind libcommon's engine.h, its table of
 * operations over gpt_cuda.h and gpt_cuda_infer.h.  libcommon reaches it
 * through the weak symbol engine_cuda, which the Makefile has the linker
 * take from libgptcuda.a (-Wl,--undefined=engine_cuda).  The host model
 * e->model (and e->opt) is copied to the GPU by push and back by pull;
 * everything else runs on the GPU's copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "engine.h"
#include "err.h"
}
#include "gpt_cuda.h"
#include "gpt_cuda_infer.h"

struct cuda_engine {
	struct gcuda_model *g;
	float *rows;   /* per-position losses for engine_losses */
	size_t n_rows;
	struct gcuda_comm *comm;   /* NCCL, when data parallel */
};

struct cuda_decoder {
	struct engine_decoder base; /* first, as engine.h's decoders begin */
	struct gcuda_decoder *d;
	float *last;                /* padded_vocab floats: feed's result */
	int Vp;
};

static struct cuda_engine *impl(struct engine *e)
{
	return (struct cuda_engine *)e->impl;
}

static struct gcuda_model *gpu(struct engine *e)
{
	return impl(e)->g;
}

static struct cuda_decoder *dec(struct engine_decoder *d)
{
	return (struct cuda_decoder *)d;
}

static const char *cuda_unavailable(void)
{
	return gcuda_available() ? NULL : gcuda_why_not();
}

static void cuda_open(struct engine *e)
{
	struct cuda_engine *c = (struct cuda_engine *)xcalloc(1, sizeof *c);

	c->g = gcuda_model_init(&e->model.cfg);
	gcuda_model_upload(c->g, &e->model);
	e->impl = c;
}

static void cuda_close(struct engine *e)
{
	struct cuda_engine *c = impl(e);

	gcuda_comm_close(c->comm);
	gcuda_model_free(c->g);
	free(c->rows);
	free(c);
	e->impl = NULL;
}

static void cuda_describe(struct engine *e, char *buf, size_t cap)
{
	struct gcuda_device d;

	(void)e;
	gcuda_device_info(&d);
	snprintf(buf, cap, "the gpu: %s", d.name);
}

static void cuda_plan(struct engine *e, int B, int T, int training, int recompute)
{
	gcuda_model_plan(gpu(e), B, T, training, recompute);
}

static void cuda_optim(struct engine *e)
{
	gcuda_adamw_init(gpu(e), &e->opt);
}

static void cuda_push(struct engine *e)
{
	gcuda_model_upload(gpu(e), &e->model);
	if (e->has_opt)
		gcuda_adamw_init(gpu(e), &e->opt);
}

static void cuda_pull(struct engine *e)
{
	gcuda_model_download(gpu(e), &e->model);
	if (e->has_opt)
		gcuda_adamw_download(gpu(e), &e->opt);
}

static float cuda_forward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B,
                          int T)
{
	return gcuda_model_forward(gpu(e), in, tg, B, T);
}

static long cuda_counted(struct engine *e)
{
	return gcuda_model_counted(gpu(e));
}

static void cuda_logits(struct engine *e, int r0, int n, float *dst)
{
	gcuda_model_logits(gpu(e), r0, n, dst);
}

/* A forward with targets leaves each row's loss on the GPU (float32,
 * 0 where the target is GPT_IGNORE); the counted ones are copied out. */
static void cuda_losses(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T,
                        double *loss)
{
	struct cuda_engine *c = impl(e);
	size_t n = (size_t)B * (size_t)T;

	if (n > c->n_rows) {
		free(c->rows);
		c->rows = (float *)xmalloc(xmul(n, sizeof *c->rows));
		c->n_rows = n;
	}
	gcuda_model_forward(c->g, in, tg, B, T);
	gcuda_model_row_loss(c->g, 0, B * T, c->rows);
	for (size_t r = 0; r < n; r++)
		if (tg[r] != GPT_IGNORE)
			loss[r] = c->rows[r];
}

static void cuda_zero_grad(struct engine *e)
{
	gcuda_model_zero_grad(gpu(e));
}

static float cuda_forward_backward(struct engine *e, const uint32_t *in, const uint32_t *tg,
                                   int B, int T, float scale)
{
	gcuda_model_dropout(gpu(e), &e->drop);
	return gcuda_model_forward_backward(gpu(e), in, tg, B, T, scale);
}

static float cuda_classify(struct engine *e, const uint32_t *in, const int *last,
                          const uint32_t *labels, int B, int T)
{
	return gcuda_model_classify(gpu(e), in, last, labels, B, T);
}

static void cuda_class_logits(struct engine *e, int B, float *dst)
{
	gcuda_model_class_logits(gpu(e), B, dst);
}

static void cuda_classify_backward(struct engine *e, float scale, int trainable)
{
	gcuda_model_classify_backward(gpu(e), scale, trainable);
}

static float cuda_grad_norm(struct engine *e)
{
	return gcuda_model_grad_norm(gpu(e));
}

/* The norm is measured again on the device, with the same rule as
 * optim.h's grad_clip_scale. */
static void cuda_step(struct engine *e, float lr, float clip)
{
	gcuda_adamw_step(gpu(e), lr, clip);
}

static void cuda_grads_get(struct engine *e, float *dst)
{
	gcuda_model_download_grads(gpu(e), dst);
}

static void cuda_grads_set(struct engine *e, const float *src)
{
	gcuda_model_upload_grads(gpu(e), src);
}

static int cuda_comm_open(struct engine *e, const void *id, int rank, int world,
                          double timeout_s, char *why, size_t cap)
{
	impl(e)->comm = gcuda_comm_open(id, rank, world, timeout_s, why, cap);
	return impl(e)->comm ? 0 : -1;
}

static void cuda_grads_allreduce(struct engine *e)
{
	if (!impl(e)->comm)
		die("engine: a gradient all-reduce before the communicator is open");
	gcuda_model_allreduce(gpu(e), impl(e)->comm);
}

/* GPT_CUDA_OVERLAP=0: one all-reduce after the backward instead */
static void cuda_grads_overlap(struct engine *e)
{
	const char *v = getenv("GPT_CUDA_OVERLAP");

	if (impl(e)->comm && !(v && strcmp(v, "0") == 0))
		gcuda_model_overlap(gpu(e), impl(e)->comm);
}

static size_t cuda_peak_bytes(struct engine *e)
{
	return gcuda_model_peak_bytes(gpu(e));
}

static struct engine_decoder *cuda_decoder_open(struct engine *e, int max_T)
{
	struct cuda_decoder *d = (struct cuda_decoder *)xcalloc(1, sizeof *d);

	d->d = gcuda_decoder_init(gpu(e), max_T);
	d->Vp = e->model.cfg.padded_vocab;
	d->last = (float *)xmalloc(xmul((size_t)d->Vp, sizeof *d->last));
	return &d->base;
}

static const float *cuda_decoder_feed(struct engine_decoder *ed, const uint32_t *ids, int n,
                                      float *all)
{
	struct cuda_decoder *d = dec(ed);

	if (all) {
		gcuda_decoder_step_all(d->d, ids, n, all);
		return all + (size_t)(n - 1) * (size_t)d->Vp;
	}
	gcuda_decoder_step(d->d, ids, n, d->last);
	return d->last;
}

static void cuda_decoder_rewind(struct engine_decoder *ed, int pos)
{
	gcuda_decoder_rewind(dec(ed)->d, pos);
}

static int cuda_decoder_pos(struct engine_decoder *ed)
{
	return gcuda_decoder_pos(dec(ed)->d);
}

static void cuda_decoder_close(struct engine_decoder *ed)
{
	struct cuda_decoder *d = dec(ed);

	gcuda_decoder_free(d->d);
	free(d->last);
	free(d);
}

/* engine.c takes an LSTM to cuda/lstm.cu's table through a weak
 * reference, which alone would not pull lstm.o out of libgptcuda.a: this
 * one does, wherever this file is linked. */
extern "C" const int gcuda_lstm_here;
extern "C" const int *const gcuda_lstm_pull = &gcuda_lstm_here;

/* In the order of struct engine_ops (C++17 has no designated
 * initialisers). */
extern "C" const struct engine_ops engine_cuda = {
	"cuda",                /* name */
	cuda_unavailable,      /* unavailable */
	cuda_open,             /* open */
	cuda_close,            /* close */
	cuda_describe,         /* describe */
	cuda_plan,             /* plan */
	cuda_optim,            /* optim */
	cuda_push,             /* push */
	cuda_pull,             /* pull */
	cuda_forward,          /* forward */
	cuda_counted,          /* counted */
	cuda_logits,           /* logits */
	cuda_losses,           /* losses */
	cuda_zero_grad,        /* zero_grad */
	cuda_forward_backward, /* forward_backward */
	cuda_grad_norm,        /* grad_norm */
	cuda_step,             /* step */
	cuda_grads_get,        /* grads_get */
	cuda_grads_set,        /* grads_set */
	cuda_peak_bytes,       /* peak_bytes */
	gcuda_select,          /* select */
	gcuda_nccl_load,       /* comm_load */
	gcuda_nccl_id,         /* comm_id */
	cuda_comm_open,        /* comm_open */
	cuda_grads_allreduce,  /* grads_allreduce */
	cuda_grads_overlap,    /* grads_overlap */
	cuda_classify,         /* classify */
	cuda_class_logits,     /* class_logits */
	cuda_classify_backward, /* classify_backward */
	cuda_decoder_open,     /* decoder_open */
	cuda_decoder_feed,     /* decoder_feed */
	cuda_decoder_rewind,   /* decoder_rewind */
	cuda_decoder_pos,      /* decoder_pos */
	cuda_decoder_close,    /* decoder_close */
	NULL,                  /* state_get: no lstm here yet */
	NULL,                  /* state_set */
};
