/* optim: AdamW, global gradient-norm clipping and learning-rate schedules
 * for a flat float32 parameter buffer (the model's, see model.h).
 *
 * Offers adamw_* (the optimizer, its state is plain data the trainer saves
 * and restores bit-exactly: m, v, n and step), grad_global_norm,
 * grad_clip_scale, and lr_schedule_*.  adamw_init allocates m and v (owned
 * by the struct, released by adamw_free).
 *
 * The update is PyTorch's torch.optim.AdamW, step t = opt->step after the
 * increment, g = grad_scale * grad:
 *     p = p * (1 - lr * wd)                 (only where decay is set)
 *     m = m + (1 - beta1) * (g - m)
 *     v = beta2 * v + (1 - beta2) * g * g
 *     p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * Gradient accumulation is the caller's: the model's backward adds into its
 * gradient buffer (scaled by 1/micro-steps); one adamw_step per step.
 * Every loop is element-wise or reduced in a fixed order, so results do
 * not depend on the thread count. */
#ifndef GPT_OPTIM_H
#define GPT_OPTIM_H

#include <stddef.h>

struct adamw_config {
	/* double, as PyTorch keeps them, so bias corrections match it */
	double beta1;         /* default 0.9 */
	double beta2;         /* default 0.95 */
	double eps;           /* default 1e-8 */
	double weight_decay;  /* default 0.1; decoupled, scaled by lr */
};

struct adamw_range { size_t offset, count; };

struct adamw {
	struct adamw_config cfg;
	size_t n;                   /* parameters */
	float *m, *v;               /* first and second moments, n each */
	long step;                  /* steps taken so far */
	int n_decay;                /* ranges of the buffer that are decayed */
	struct adamw_range *decay;
	int n_frozen;               /* ranges that are never updated */
	struct adamw_range *frozen;
};

/* The defaults above. */
void adamw_config_default(struct adamw_config *c);
/* m = v = 0, step 0, no range decayed yet. */
void adamw_init(struct adamw *opt, const struct adamw_config *c, size_t n);
/* Apply weight decay to params[offset .. offset+count). */
void adamw_add_decay(struct adamw *opt, size_t offset, size_t count);
/* Leave params[offset .. offset+count) alone in every step (no update,
 * no decay, moments untouched): a frozen tensor of a classifier's
 * fine-tuning.  Ranges are added in buffer order, disjoint. */
void adamw_add_frozen(struct adamw *opt, size_t offset, size_t count);
/* One step over all n parameters (but the frozen); grads are multiplied by grad_scale
 * (e.g. the clipping factor) as they are read and left unchanged. */
void adamw_step(struct adamw *opt, float *params, const float *grads,
                float lr, float grad_scale);
void adamw_free(struct adamw *opt);

/* The L2 norm of g[0..n), summed in double in fixed-size chunks combined
 * in order: the same bits for any thread count. */
float grad_global_norm(const float *g, size_t n);
/* The grad_scale that clips a gradient of norm `norm` to max_norm:
 * min(1, max_norm / (norm + 1e-6)); 1 when max_norm <= 0 (no clipping). */
float grad_clip_scale(float norm, float max_norm);

enum lr_kind {
	LR_COSINE,    /* warmup, then cosine from lr down to lr * floor */
	LR_LINEAR,    /* warmup, then linear from lr down to lr * floor */
	LR_CONSTANT,  /* warmup, then lr */
	LR_WSD        /* warmup, lr, then linear decay to lr * floor over the
	                 last `decay` steps (warmup-stable-decay) */
};

struct lr_schedule {
	enum lr_kind kind;
	float lr;       /* peak learning rate */
	long warmup;    /* steps of linear warmup: lr * (step+1) / warmup */
	long total;     /* steps in the run; from step total on: lr * floor
	                   (LR_CONSTANT: lr) */
	long decay;     /* LR_WSD only: steps of the final decay */
	float floor;    /* final rate as a fraction of lr, in [0, 1] */
};

/* The rate at step (0-based). */
float lr_schedule_at(const struct lr_schedule *s, long step);
/* "cosine", "linear", "constant", "wsd" -> kind; 0 ok, -1 unknown. */
int lr_schedule_kind(const char *name, enum lr_kind *kind);

#endif
