/* train: the training loop, as a library.  gpt-train parses options and
 * calls train_run; tests and benchmarks call train_step for one optimizer
 * step on an engine (engine.h) without a run folder.
 *
 *   train_optdefs[0..train_n_optdefs)
 *       every run setting: its long option, short letter, kind, bounds
 *       [min, max] (TRAIN_GT_MIN, TRAIN_LT_MAX: that end excluded) and
 *       whether it is saved in checkpoints (TRAIN_SAVE: --resume takes it
 *       back unless given again), fixes the model's shape (TRAIN_SHAPE:
 *       refused with --init) or is fixed for the life of a run
 *       (TRAIN_FIXED, and TRAIN_SHAPE too: --resume accepts it only equal
 *       to the run's, naming a difference)
 *   train_opts_default(o), train_opts_set(o, i, arg), train_opt_index(name),
 *   train_opts_free(o)
 *       the settings: defaults, setting number i from its text (range
 *       checked, a usage error otherwise), the index of a name
 *   train_run(o, given)
 *       the whole run: open the shards, build or resume the model on the
 *       engine o->device picks, train, validate, sample, checkpoint, log;
 *       given[i] says setting i came from the command line.  Takes o's
 *       strings (o is zeroed).  The run folder is locked (RUN/lock) for
 *       the life of the process.  Returns 0, also when a resumed run has
 *       nothing left to do; every failure dies with one line naming its
 *       subject (status 1, or 2 for bad usage).  SIGINT and SIGTERM are
 *       acknowledged at once, cut a validation short, finish the step,
 *       save and return.
 *
 *   train_grads(e, in, tg, A, B, T)
 *       zero the gradients, then forward and backward A micro-batches of
 *       B x T (in and tg hold A*B*T ids each, micro-batch a at a*B*T),
 *       each scaled 1/A; returns the mean of the micro-batch losses, or
 *       the first loss that is not finite (the rest are then not run).
 *   train_step(e, in, tg, A, B, T, lr, clip, &norm)
 *       train_grads, then the gradient norm (into *norm when not NULL)
 *       and one AdamW step at lr clipped to clip; returns the loss.  No
 *       step is taken when the loss or the norm is not finite. */
#ifndef GPT_TRAIN_H
#define GPT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "progress.h"

struct train_opts {
	char *train, *val, *out, *resume, *init, *model, *device, *vocab, *schedule;
	char *arch;               /* --arch: "gpt2" or "lstm" */
	uint64_t layers, heads, width, context, vocab_size;
	uint64_t embed;           /* --embed: an LSTM's embedding width */
	uint64_t batch, total_batch, steps, tokens, warmup;
	double lr, min_lr_frac, decay_frac, weight_decay, beta1, beta2, eps, clip;
	uint64_t seed, val_every, val_batches, sample_every, sample_tokens;
	uint64_t ckpt_every, keep, threads;
	double skip_z;
	double dropout;           /* --dropout: probability, 0 off */
	uint64_t zero;            /* --zero 1: optimizer state sharded over ranks */
	/* fine-tuning (--sft): instruction data instead of shards */
	char *sft, *template_name, *split, *split_out;
	uint64_t epochs, train_on_prompt, pack;
	/* classification (--classify): labelled texts instead */
	char *classify, *trainable, *labels, *text_field, *label_field;
	uint64_t balance, max_length;
	double val_frac;
	double dist_timeout;      /* --dist-timeout: seconds a collective may wait */
	int recompute;            /* --recompute: a memory choice, not saved */
	enum progress_mode progress;
};

/* TRAIN_FLAG: an option without an argument, saved as 1 (a u64) */
enum train_okind { TRAIN_STR, TRAIN_U64, TRAIN_DBL, TRAIN_FLAG };
/* TRAIN_SFT: a fine-tuning setting, saved only by a --sft or --classify
 * run; TRAIN_CLS: a classification setting, saved only by --classify */
enum { TRAIN_SAVE = 1, TRAIN_SHAPE = 2, TRAIN_FIXED = 4, TRAIN_GT_MIN = 8, TRAIN_LT_MAX = 16,
       TRAIN_SFT = 32, TRAIN_CLS = 64 };

struct train_optdef {
	const char *name;
	int shortopt;             /* 0: long only */
	enum train_okind kind;
	size_t off;               /* in struct train_opts */
	double min, max;
	int flags;                /* TRAIN_SAVE, TRAIN_SHAPE, TRAIN_FIXED, ... */
};

extern const struct train_optdef train_optdefs[];
extern const int train_n_optdefs;

void train_opts_default(struct train_opts *o);
void train_opts_set(struct train_opts *o, int idx, const char *arg);
/* The index of the setting called name; 0 when there is none. */
int train_opt_index(const char *name);
void train_opts_free(struct train_opts *o);
int train_run(struct train_opts *o, const int *given);

/* The source of micro-batch a of a step: B x T inputs and targets, valid
 * until the next call. */
typedef void (*train_batch_fn)(void *ctx, uint64_t a, const uint32_t **in,
                               const uint32_t **tg);
/* train_grads over micro-batches from next instead of arrays. */
double train_grads_from(struct engine *e, train_batch_fn next, void *ctx, uint64_t accum, int B,
                        int T);

double train_grads(struct engine *e, const uint32_t *in, const uint32_t *tg, int accum, int B,
                   int T);
double train_step(struct engine *e, const uint32_t *in, const uint32_t *tg, int accum, int B,
                  int T, float lr, float clip, float *norm);

#endif
