/* engine: a model on a device, behind one table of operations, so that a
 * tool asks for "auto", "cpu" or "cuda" and never names an engine itself.
 * The CPU engine (engine_cpu.c, over model.c, optim.c and infer.c) is
 * always there; the CUDA engine (cuda/engine.cu) fills the same table in a
 * build with nvcc, and engine_open finds it at link time (a weak symbol),
 * so libcommon neither includes nor depends on cuda/.
 *
 * The host model.  Every engine holds a struct gpt_model (e->model: the
 * configuration, the tensor table of model.h, float32 weights in host
 * memory) and, once engine_optim has been called, an AdamW state e->opt in
 * the same layout.  These are what checkpoints read and write: fill them,
 * then engine_push; engine_pull brings the device's weights and optimizer
 * state back into them.  On the CPU the host model IS the engine's model,
 * so push and pull do nothing; on a GPU they copy.
 *
 * A training step with gradient accumulation over A micro-batches:
 *     engine_zero_grad(e);
 *     for each micro-batch: loss = engine_forward_backward(e, in, tg, B, T, 1.0f / A);
 *     norm = engine_grad_norm(e);
 *     engine_step(e, lr, clip);
 * (train.h's train_grads / train_step do exactly this; engine_dropout
 * before a forward_backward gives it dropout.)  The loss mask is
 * the targets: a position whose target is GPT_IGNORE has no loss and no
 * gradient, and the loss is the mean over the others.
 *
 * Inference: engine_forward (with or without targets), then
 * engine_logits (rows of the last forward) or engine_losses (each
 * position's loss); engine_decoder_open for incremental decoding with a
 * key/value cache.
 *
 * Room for what comes next: a data-parallel trainer reduces the gradients
 * between the last engine_forward_backward and engine_grad_norm; the
 * operation it needs, gradients in and out of the engine, is
 * engine_grads_get / engine_grads_set, or on a GPU the device's own
 * all-reduce (comm_* and grads_allreduce in the table, NCCL).  A
 * second model family is another table whose open takes its own
 * configuration; the trainer sees only this header.
 *
 * Memory: engine_open returns an engine owned by the caller, released by
 * engine_close with everything it holds (the host model too).  Decoders
 * borrow their engine: close them first.  Errors (a failed CUDA call, out
 * of memory, a shape beyond the plan) print one line and exit 1. */
#ifndef GPT_ENGINE_H
#define GPT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "optim.h"

struct engine;
struct engine_decoder;

#define ENGINE_COMM_ID 128     /* bytes of a device communicator's id */

/* The table an engine fills.  impl is the engine's own state.  Every
 * operation is required unless its comment says it may be NULL. */
struct engine_ops {
	const char *name;              /* "cpu", "cuda" */
	/* NULL when this engine can run here, else a short lowercase reason
	 * ("no cuda device", ...).  Never dies. */
	const char *(*unavailable)(void);
	/* Set up e->impl for e->model (already built, weights filled). */
	void (*open)(struct engine *e);
	void (*close)(struct engine *e);
	/* One line about the device, e.g. "the gpu: NVIDIA H200". */
	void (*describe)(struct engine *e, char *buf, size_t cap);
	void (*plan)(struct engine *e, int B, int T, int training, int recompute);
	void (*optim)(struct engine *e);   /* e->opt was just made */
	void (*push)(struct engine *e);
	void (*pull)(struct engine *e);
	float (*forward)(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T);
	long (*counted)(struct engine *e);
	void (*logits)(struct engine *e, int r0, int n, float *dst);
	void (*losses)(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T,
	               double *loss);
	void (*zero_grad)(struct engine *e);
	float (*forward_backward)(struct engine *e, const uint32_t *in, const uint32_t *tg, int B,
	                          int T, float scale);
	float (*grad_norm)(struct engine *e);
	void (*step)(struct engine *e, float lr, float clip);
	void (*grads_get)(struct engine *e, float *dst);
	void (*grads_set)(struct engine *e, const float *src);
	size_t (*peak_bytes)(struct engine *e);   /* device memory; 0 on the cpu */
	/* The device to use among this machine's, before the first
	 * unavailable or open (a data-parallel rank's local rank); NULL on
	 * an engine with one device. */
	void (*select)(int index);
	/* Data parallel on the device (NCCL on the GPU); all four NULL on an
	 * engine without it, whose trainer sums the gradients on the host.
	 *   comm_load: 0 when the collective library can be used here, else
	 *     -1 and why (cap bytes)
	 *   comm_id: a new communicator's id (ENGINE_COMM_ID bytes), made by
	 *     one rank and sent to the others
	 *   comm_open: join the communicator of world ranks as rank, every
	 *     rank with the same id; 0, or -1 and why (also when the others
	 *     do not join within timeout_s)
	 *   grads_allreduce: the gradients summed over the ranks in place on
	 *     the device; a rank that does not take part within the timeout
	 *     aborts the communicator and this rank dies */
	int (*comm_load)(char *why, size_t cap);
	void (*comm_id)(void *id);
	int (*comm_open)(struct engine *e, const void *id, int rank, int world, double timeout_s,
	                 char *why, size_t cap);
	void (*grads_allreduce)(struct engine *e);
	/* May be NULL: the next forward_backward is the step's last here;
	 * the engine may start the sums of gradients its backward has
	 * finished while the rest of it runs (grads_allreduce waits). */
	void (*grads_overlap)(struct engine *e);
	/* A classifier (model.h's gpt_model_classify); all three NULL on an
	 * engine without classification. */
	float (*classify)(struct engine *e, const uint32_t *in, const int *last,
	                  const uint32_t *labels, int B, int T);
	void (*class_logits)(struct engine *e, int B, float *dst);
	void (*classify_backward)(struct engine *e, float scale, int trainable);
	struct engine_decoder *(*decoder_open)(struct engine *e, int max_T);
	const float *(*decoder_feed)(struct engine_decoder *d, const uint32_t *ids, int n,
	                             float *all);
	void (*decoder_rewind)(struct engine_decoder *d, int pos);
	int (*decoder_pos)(struct engine_decoder *d);
	void (*decoder_close)(struct engine_decoder *d);
	/* An LSTM's carried state (model.h): rows 0..B-1 to and from host
	 * memory, gpt_model_state_floats(B) floats, src NULL: zeros.  Both
	 * NULL on an engine without the LSTM, which engine_open refuses an
	 * LSTM. */
	void (*state_get)(struct engine *e, float *dst, int B);
	void (*state_set)(struct engine *e, const float *src, int B);
};

struct engine {
	const struct engine_ops *ops;
	struct gpt_model model;        /* the host model (see above) */
	struct adamw opt;              /* valid once has_opt */
	int has_opt;
	struct gpt_dropout drop;       /* forward_backward's (engine_dropout) */
	char why[256];                 /* auto: why this engine ("" when no
	                                  other was passed over) */
	void *impl;
};

/* The CPU engine's table, and the CUDA engine's where it is linked in. */
extern const struct engine_ops engine_cpu;
extern const struct engine_ops engine_cuda __attribute__((weak));
/* The CUDA engine's table for an LSTM (cuda/lstm.cu), where linked in. */
extern const struct engine_ops engine_cuda_lstm __attribute__((weak));

/* The device index engines opened from now on use, where an engine has
 * several (the GPUs of a machine): a data-parallel trainer gives its
 * local rank, before engine_find. */
void engine_select_gpu(int index);
/* 0 when name is "auto", "cpu" or "cuda", else -1 (for option parsing:
 * an unknown device is a usage error). */
int engine_device_check(const char *name);
/* The table for device, as engine_open picks it (below), without opening
 * anything: for a program that checks --device before its other work.
 * why (cap bytes, may be NULL) gets the reason auto passed over cuda, or
 * "".  Dies as engine_open does. */
const struct engine_ops *engine_find(const char *device, char *why, size_t cap);
/* The engine for device ("auto": cuda where it is built and usable, else
 * cpu, with e->why saying why not cuda) over the host model m, which the
 * engine takes: *m is moved into e->model and zeroed.  The weights are
 * pushed.  "cuda" where it cannot run dies with the reason; an LSTM
 * goes to an engine that has it (auto passes over one without, saying so
 * in e->why; naming one without dies). */
struct engine *engine_open(const char *device, struct gpt_model *m);
/* Plan batches of up to B x T (T <= n_ctx): activations, and when training
 * gradients too.  recompute: trade time for activation memory where the
 * engine can (the GPU); others ignore it. */
void engine_plan(struct engine *e, int B, int T, int training, int recompute);
/* Make e->opt for the model (AdamW with c, decay as model.h says) with
 * zero moments at step 0; fill it from a checkpoint, then engine_push. */
void engine_optim(struct engine *e, const struct adamw_config *c);
void engine_push(struct engine *e);
void engine_pull(struct engine *e);
/* "the cpu" or "the gpu: NAME". */
void engine_describe(struct engine *e, char *buf, size_t cap);
/* Mean loss over the counted positions (0 with no targets or none). */
float engine_forward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T);
long engine_counted(struct engine *e);
/* Rows r0..r0+n of the last forward's B*T rows of logits, padded_vocab
 * floats each (padding -INFINITY), into dst; valid until the next
 * backward. */
void engine_logits(struct engine *e, int r0, int n, float *dst);
/* Forward over B x T and the loss of each position r whose tg[r] is not
 * GPT_IGNORE into loss[r] (others untouched), as log-sum-exp minus the
 * target's logit (in double on the cpu). */
void engine_losses(struct engine *e, const uint32_t *in, const uint32_t *tg, int B, int T,
                   double *loss);
void engine_zero_grad(struct engine *e);
/* Forward with targets, then add scale * the gradient of its mean loss to
 * the gradients; a loss that is not finite is returned with no backward
 * pass on the cpu (callers stop on it). */
float engine_forward_backward(struct engine *e, const uint32_t *in, const uint32_t *tg, int B,
                              int T, float scale);
/* Dropout (dropout.h) in every engine_forward_backward from now on:
 * probability p in [0, 1) (0: off, the default, every result the same
 * bit for bit as without the call), the masks of key, the micro-batch's
 * rows numbered from row0.  engine_forward, engine_losses and decoders
 * never drop.  Both engines draw the same masks. */
void engine_dropout(struct engine *e, float p, uint64_t key, uint64_t row0);
/* A classifier's pass (model.h: n_classes > 0): the blocks on in[B*T],
 * the head at each row's last[b]; with labels, the mean cross-entropy
 * (GPT_IGNORE rows do not count).  class_logits: the last pass's B rows
 * of n_classes logits.  classify_backward adds scale * the gradient of
 * the tensors enum gpt_trainable names.  Dies on an engine without
 * classification, naming it. */
float engine_classify(struct engine *e, const uint32_t *in, const int *last,
                      const uint32_t *labels, int B, int T);
void engine_class_logits(struct engine *e, int B, float *dst);
void engine_classify_backward(struct engine *e, float scale, enum gpt_trainable trainable);
/* An LSTM's carried state (model.h: gpt_model_state_*), engine_state_floats
 * floats for B rows (0 for GPT-2).  The trainer carries each row's stream
 * from window to window, and keeps it aside while it validates. */
size_t engine_state_floats(struct engine *e, int B);
void engine_state_get(struct engine *e, float *dst, int B);
void engine_state_set(struct engine *e, const float *src, int B);
/* Global L2 norm of the gradients, in a fixed order. */
float engine_grad_norm(struct engine *e);
/* One AdamW step at rate lr after clipping to global norm clip (<= 0: no
 * clipping), as optim.h: grad_clip_scale(grad_global_norm(g), clip). */
void engine_step(struct engine *e, float lr, float clip);
/* The gradients to and from host memory, n_params floats in the host
 * model's layout (for checks, and for a host-side all-reduce). */
void engine_grads_get(struct engine *e, float *dst);
void engine_grads_set(struct engine *e, const float *src);
size_t engine_peak_bytes(struct engine *e);
void engine_close(struct engine *e);

/* Incremental decoding, as infer.h: a cache of max_T positions (1 <=
 * max_T <= n_ctx).  feed runs n tokens at positions pos..pos+n-1 and
 * returns the last one's logits (padded_vocab floats, padding -INFINITY,
 * valid until the next feed); all, when not NULL, receives all n rows.
 * rewind forgets the cache beyond pos tokens.  Feeding beyond max_T
 * dies.  The engine must not train while a decoder is open. */
struct engine_decoder *engine_decoder_open(struct engine *e, int max_T);
const float *engine_decoder_feed(struct engine_decoder *d, const uint32_t *ids, int n,
                                 float *all);
void engine_decoder_rewind(struct engine_decoder *d, int pos);
int engine_decoder_pos(struct engine_decoder *d);
void engine_decoder_close(struct engine_decoder *d);

/* What every decoder starts with: the engine it belongs to. */
struct engine_decoder {
	struct engine *e;
};

#endif
