/* gpt_cuda: the GPT-2 model on an NVIDIA GPU, C-callable.  The same model,
 * parameter layout and loss as the CPU engine (libcommon/model.h): float32
 * master weights, bf16 weight copies and bf16 activations, matrix products
 * through cuBLASLt (bf16 in, float32 accumulation), AdamW on the GPU.
 *
 * Offers gcuda_available (is there a usable GPU), the engine gcuda_model_*
 * (init, plan, upload/download of weights, forward, backward, optimizer
 * step) and gcuda_adamw_* (optimizer state to and from a struct adamw, so
 * checkpoints are one format on both devices).
 *
 * Memory: gcuda_model_init returns an engine owned by the caller, released
 * by gcuda_model_free with all its GPU memory.  Host arrays passed in are
 * borrowed for the call only.  Errors (a failed CUDA or cuBLAS call, GPU
 * out of memory) print one line naming the file and line on stderr and
 * exit 1; out-of-memory says what was asked and what is free.
 *
 * A step with gradient accumulation over A micro-batches:
 *     gcuda_model_zero_grad(g);
 *     for each micro-batch: loss = gcuda_model_forward_backward(g, in, tg, B, T, 1.0f/A);
 *     gcuda_adamw_step(g, lr, max_norm);
 * Inside a step the only copies between host and GPU are the token ids in
 * and the loss scalar out.  The whole engine runs on one CUDA stream. */
#ifndef GPT_CUDA_H
#define GPT_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gpt_config;
struct gpt_model;
struct adamw;
struct gpt_dropout;
struct gcuda_model; /* private */

/* 1 when a CUDA device of compute capability 8.0 or newer and cuBLASLt can
 * be used, else 0 (never dies; gcuda_why_not says why).  The first call
 * selects device 0 (or gcuda_select's), among $CUDA_VISIBLE_DEVICES's. */
int gcuda_available(void);
/* The device gcuda_available selects: index among the visible devices
 * (default 0; a data-parallel rank gives its local rank).  Call it
 * before the first gcuda_available. */
void gcuda_select(int index);
/* Why gcuda_available() returned 0: a short lowercase reason, or "". */
const char *gcuda_why_not(void);

/* 1 when engines made now use flash attention (where the head size is
 * 64): GPT_CUDA_ATTENTION unset or "flash"; 0 for "matmul" (or
 * "batched"): the batched products.  Dies on another value. */
int gcuda_attention_flash(void);

struct gcuda_device {
	char name[256];
	int sm_major, sm_minor, multiprocessors;
	size_t total_bytes, free_bytes;
	double peak_bf16_tflops; /* dense bf16 tensor peak with float32
	                            accumulation, from a table of known cards;
	                            0 when unknown */
};
/* Describe the device in use; dies when none is available. */
void gcuda_device_info(struct gcuda_device *d);

/* An engine for configuration c (must pass gpt_config_check): allocates
 * the weights on the GPU (zero until gcuda_model_upload). */
struct gcuda_model *gcuda_model_init(const struct gpt_config *c);
/* Allocate activations for batches of up to B x T (T <= n_ctx), and when
 * training also gradients and backward buffers.  recompute 1: keep only
 * the residual stream, the attention inputs and the MLP pre-activation per
 * layer and recompute LayerNorm outputs and GELU in the backward pass
 * (about 40% less activation memory for one more pass of cheap kernels).
 * May be called again to re-plan; gradients are kept. */
void gcuda_model_plan(struct gcuda_model *g, int B, int T, int training,
                      int recompute);
/* Weights from / to a CPU model of the same configuration (dies
 * otherwise), whose tensor table is this engine's: both are model.h's. */
void gcuda_model_upload(struct gcuda_model *g, const struct gpt_model *m);
void gcuda_model_download(struct gcuda_model *g, struct gpt_model *m);

/* Forward pass over inputs[B*T] (B <= planned B, T <= planned T), with
 * targets[B*T] (GPT_IGNORE where a position does not count) or NULL.
 * Returns the mean loss over counted positions (0 when none or no
 * targets); waits for the GPU. */
float gcuda_model_forward(struct gcuda_model *g, const uint32_t *inputs,
                          const uint32_t *targets, int B, int T);
/* Positions that counted in the last forward with targets. */
long gcuda_model_counted(const struct gcuda_model *g);
/* Logits of the last forward, rows r0 .. r0+n of the B*T rows, each
 * padded_vocab floats with the padding at -INFINITY, into dst.  Only
 * valid until the next backward (which overwrites them). */
void gcuda_model_logits(struct gcuda_model *g, int r0, int n, float *dst);
void gcuda_model_zero_grad(struct gcuda_model *g);
/* Add scale * d(mean loss of the last forward)/d(params) to the gradients;
 * needs a training plan and a forward with targets just before.  Queues
 * work and returns without waiting. */
void gcuda_model_backward(struct gcuda_model *g, float scale);
/* Forward with targets then backward(scale), waiting only once at the
 * end for the loss. */
float gcuda_model_forward_backward(struct gcuda_model *g, const uint32_t *inputs,
                                   const uint32_t *targets, int B, int T,
                                   float scale);
/* Dropout (libcommon/dropout.h) in gcuda_model_forward_backward from now
 * on: d NULL or d->p 0 turns it off; gcuda_model_forward never drops.
 * Flash attention has no dropout: turning it on moves this engine's
 * attention to the batched products (and their T x T scratch) for good. */
void gcuda_model_dropout(struct gcuda_model *g, const struct gpt_dropout *d);
/* A classifier (model.h's gpt_model_classify, n_classes > 0): the loss
 * (waits), the last pass's B x n_classes logits (read them before the
 * backward, which turns them into their gradient), and the backward of
 * the tensors trainable (enum gpt_trainable) names. */
float gcuda_model_classify(struct gcuda_model *g, const uint32_t *inputs, const int *last,
                           const uint32_t *labels, int B, int T);
void gcuda_model_class_logits(struct gcuda_model *g, int B, float *dst);
void gcuda_model_classify_backward(struct gcuda_model *g, float scale, int trainable);
/* Gradients to and from the host: n_params floats, the CPU model's
 * layout (upload replaces the engine's; both need a training plan). */
void gcuda_model_download_grads(struct gcuda_model *g, float *dst);
void gcuda_model_upload_grads(struct gcuda_model *g, const float *src);
/* Global L2 norm of the gradients (fixed summation order); waits. */
float gcuda_model_grad_norm(struct gcuda_model *g);

/* The optimizer.  gcuda_adamw_init copies configuration, decay ranges,
 * step count and the m and v moments from opt (a CPU optimizer made by
 * gpt_model_adamw_init, fresh or read from a checkpoint). */
void gcuda_adamw_init(struct gcuda_model *g, const struct adamw *opt);
/* One AdamW step at rate lr, after clipping the gradient to global norm
 * max_norm (<= 0: no clipping), exactly as optim.h's adamw_step with
 * grad_clip_scale(grad_global_norm(grads), max_norm), all on the GPU
 * without waiting.  The norm is the one gcuda_model_grad_norm measured
 * when the gradients have not changed since (one pass a step, as
 * train_step asks for it first), else measured here.  The bf16 weight
 * copies are refreshed. */
void gcuda_adamw_step(struct gcuda_model *g, float lr, float max_norm);
/* The gradient norm the last gcuda_adamw_step measured (before clipping);
 * waits. */
float gcuda_adamw_last_norm(struct gcuda_model *g);
/* m, v and step into opt (allocated by gpt_model_adamw_init for the same
 * model), e.g. to write a checkpoint. */
void gcuda_adamw_download(struct gcuda_model *g, struct adamw *opt);

/* Phase timing, for make bench-gpu and make gpu-model: with on, the
 * forward, backward and optimizer record a CUDA event where each phase
 * starts ("embed", per layer "ln1", "qkv", "attention", ..., "loss",
 * "head bwd", ..., "adamw"; a phase ends where the next starts).
 * gcuda_phases_take waits for the GPU and gives the phases since the last
 * take (at most max; dies beyond), each's name and milliseconds, the last
 * ending now, then starts over.  Off by default: a mark costs a test. */
void gcuda_phases_on(struct gcuda_model *g, int on);
int gcuda_phases_take(struct gcuda_model *g, int max, const char **names, float *ms);

/* Bytes of GPU memory this engine holds now, and the most it has held. */
size_t gcuda_model_bytes(const struct gcuda_model *g);
size_t gcuda_model_peak_bytes(const struct gcuda_model *g);
/* Wait for all queued work. */
void gcuda_model_sync(struct gcuda_model *g);
void gcuda_model_free(struct gcuda_model *g);

/* NCCL (nccl.cu), for data-parallel training: loaded at run time.
 * gcuda_nccl_load: 0, or -1 with why.  gcuda_nccl_id: a communicator id
 * (128 bytes) on one rank, for the others.  gcuda_comm_open: join (blocks
 * until every rank has; NULL with why on failure).  gcuda_model_allreduce:
 * the model's gradients summed over the communicator's ranks, in place;
 * a wait beyond timeout_s aborts the communicator and dies. */
struct gcuda_comm;
int gcuda_nccl_load(char *why, size_t cap);
void gcuda_nccl_id(void *id);
int gcuda_nccl_version(void);
struct gcuda_comm *gcuda_comm_open(const void *id, int rank, int world, double timeout_s,
                                   char *why, size_t cap);
void gcuda_comm_close(struct gcuda_comm *k);
void gcuda_model_allreduce(struct gcuda_model *g, struct gcuda_comm *k);
/* The next backward pass starts the sum of each layer's gradients on a
 * stream of its own as soon as the layer's backward has made them, so
 * the communication overlaps the layers below; gcuda_model_allreduce
 * then waits for those sums.  For the last micro-batch of a step. */
void gcuda_model_overlap(struct gcuda_model *g, struct gcuda_comm *k);

#ifdef __cplusplus
}
#endif

#endif
