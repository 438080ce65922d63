/* train: the training loop of gpt-train as a library (train.h): the run's
 * settings and how --resume takes them back, the run folder (checkpoints,
 * latest, log.tsv, config), gradient accumulation, schedules, validation,
 * samples, outlier skipping and signals, over any engine (engine.h), so
 * that a resumed run continues its loss curve bit for bit; checkpoints are
 * one format on every engine, so a run may resume on another device. */
#include "checkpoint.h"
#include "cli.h"
#include "dist.h"
#include "engine.h"
#include "err.h"
#include "io.h"
#include "le.h"
#include "model.h"
#include "modelio.h"
#include "optim.h"
#include "progress.h"
#include "clsdata.h"
#include "sft.h"
#include "shard.h"
#include "tokenize.h"
#include "train.h"
#include "vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

void openblas_set_num_threads(int n);

#define S(f) offsetof(struct train_opts, f)
const struct train_optdef train_optdefs[] = {
	{ "train", 'i', TRAIN_STR, S(train), 0, 0, TRAIN_SAVE },
	{ "val", 0, TRAIN_STR, S(val), 0, 0, TRAIN_SAVE },
	{ "output", 'o', TRAIN_STR, S(out), 0, 0, 0 },
	{ "resume", 0, TRAIN_STR, S(resume), 0, 0, 0 },
	{ "init", 0, TRAIN_STR, S(init), 0, 0, TRAIN_SAVE | TRAIN_FIXED },
	{ "model", 0, TRAIN_STR, S(model), 0, 0, TRAIN_SHAPE },
	{ "arch", 0, TRAIN_STR, S(arch), 0, 0, TRAIN_SAVE | TRAIN_SHAPE },
	{ "embed", 0, TRAIN_U64, S(embed), 0, 65536, TRAIN_SAVE | TRAIN_SHAPE },
	{ "layers", 0, TRAIN_U64, S(layers), 1, 1024, TRAIN_SAVE | TRAIN_SHAPE },
	{ "heads", 0, TRAIN_U64, S(heads), 1, 1024, TRAIN_SAVE | TRAIN_SHAPE },
	{ "width", 0, TRAIN_U64, S(width), 1, 65536, TRAIN_SAVE | TRAIN_SHAPE },
	{ "context", 0, TRAIN_U64, S(context), 2, 1 << 20, TRAIN_SAVE | TRAIN_SHAPE },
	{ "vocab-size", 0, TRAIN_U64, S(vocab_size), 2, 1 << 24, TRAIN_SAVE | TRAIN_SHAPE },
	{ "vocab", 0, TRAIN_STR, S(vocab), 0, 0, 0 },
	{ "batch", 'b', TRAIN_U64, S(batch), 1, 1 << 20, TRAIN_SAVE },
	{ "total-batch", 0, TRAIN_U64, S(total_batch), 1, 1e15, TRAIN_SAVE },
	{ "steps", 'n', TRAIN_U64, S(steps), 1, 1e15, TRAIN_SAVE },
	{ "tokens", 0, TRAIN_U64, S(tokens), 1, 1e18, 0 },
	{ "lr", 0, TRAIN_DBL, S(lr), 0, 1e30, TRAIN_SAVE },
	{ "warmup", 0, TRAIN_U64, S(warmup), 0, 1e15, TRAIN_SAVE },
	{ "schedule", 0, TRAIN_STR, S(schedule), 0, 0, TRAIN_SAVE },
	{ "min-lr-frac", 0, TRAIN_DBL, S(min_lr_frac), 0, 1, TRAIN_SAVE },
	{ "decay-frac", 0, TRAIN_DBL, S(decay_frac), 0, 1, TRAIN_SAVE },
	{ "weight-decay", 0, TRAIN_DBL, S(weight_decay), 0, 1e30, TRAIN_SAVE },
	{ "beta1", 0, TRAIN_DBL, S(beta1), 0, 1, TRAIN_SAVE | TRAIN_LT_MAX },
	{ "beta2", 0, TRAIN_DBL, S(beta2), 0, 1, TRAIN_SAVE | TRAIN_LT_MAX },
	{ "eps", 0, TRAIN_DBL, S(eps), 0, 1, TRAIN_SAVE | TRAIN_GT_MIN },
	{ "clip", 0, TRAIN_DBL, S(clip), 0, 1e30, TRAIN_SAVE },
	{ "seed", 0, TRAIN_U64, S(seed), 0, 1.8e19, TRAIN_SAVE | TRAIN_FIXED },
	{ "val-every", 0, TRAIN_U64, S(val_every), 0, 1e15, TRAIN_SAVE },
	{ "val-batches", 0, TRAIN_U64, S(val_batches), 1, 1e9, TRAIN_SAVE },
	{ "sample-every", 0, TRAIN_U64, S(sample_every), 0, 1e15, TRAIN_SAVE },
	{ "sample-tokens", 0, TRAIN_U64, S(sample_tokens), 1, 1e6, TRAIN_SAVE },
	{ "checkpoint-every", 0, TRAIN_U64, S(ckpt_every), 0, 1e15, TRAIN_SAVE },
	{ "keep", 0, TRAIN_U64, S(keep), 0, 1e9, TRAIN_SAVE },
	{ "skip-outliers", 0, TRAIN_DBL, S(skip_z), 0, 1e9, TRAIN_SAVE },
	{ "dropout", 0, TRAIN_DBL, S(dropout), 0, 0.9, TRAIN_SAVE },
	{ "threads", 'j', TRAIN_U64, S(threads), 1, 4096, TRAIN_SAVE },
	{ "device", 0, TRAIN_STR, S(device), 0, 0, 0 },
	{ "zero", 0, TRAIN_U64, S(zero), 0, 1, 0 },
	/* fine-tuning; a resumed run whose examples come out otherwise is
	 * refused by the data check of its checkpoint */
	{ "sft", 0, TRAIN_STR, S(sft), 0, 0, TRAIN_SAVE },
	{ "template", 0, TRAIN_STR, S(template_name), 0, 0, TRAIN_SAVE | TRAIN_SFT },
	{ "epochs", 0, TRAIN_U64, S(epochs), 1, 1e6, TRAIN_SAVE | TRAIN_SFT },
	{ "val-frac", 0, TRAIN_DBL, S(val_frac), 0, 0.5, TRAIN_SAVE | TRAIN_SFT },
	{ "split", 0, TRAIN_STR, S(split), 0, 0, TRAIN_SAVE | TRAIN_SFT },
	{ "split-out", 0, TRAIN_STR, S(split_out), 0, 0, 0 },
	{ "train-on-prompt", 0, TRAIN_FLAG, S(train_on_prompt), 0, 1, TRAIN_SAVE | TRAIN_SFT },
	{ "pack", 0, TRAIN_FLAG, S(pack), 0, 1, TRAIN_SAVE | TRAIN_SFT },
	/* classification fine-tuning */
	{ "classify", 0, TRAIN_STR, S(classify), 0, 0, TRAIN_SAVE },
	{ "trainable", 0, TRAIN_STR, S(trainable), 0, 0, TRAIN_SAVE | TRAIN_CLS },
	{ "labels", 0, TRAIN_STR, S(labels), 0, 0, TRAIN_SAVE | TRAIN_CLS },
	{ "balance", 0, TRAIN_FLAG, S(balance), 0, 1, TRAIN_SAVE | TRAIN_CLS },
	{ "max-length", 0, TRAIN_U64, S(max_length), 0, 1 << 20, TRAIN_SAVE | TRAIN_CLS },
	{ "text-field", 0, TRAIN_STR, S(text_field), 0, 0, TRAIN_SAVE | TRAIN_CLS },
	{ "label-field", 0, TRAIN_STR, S(label_field), 0, 0, TRAIN_SAVE | TRAIN_CLS },
	{ "dist-timeout", 0, TRAIN_DBL, S(dist_timeout), 1, 1e6, 0 },
};
#undef S
#define NDEFS (int)(sizeof train_optdefs / sizeof train_optdefs[0])
const int train_n_optdefs = NDEFS;
#define defs train_optdefs

int train_opt_index(const char *name)
{
	for (int i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].name, name) == 0)
			return i;
	return 0;
}

void train_opts_set(struct train_opts *o, int idx, const char *arg)
{
	const struct train_optdef *d = &defs[idx];
	char opt[48];
	char *base = (char *)o + d->off;

	snprintf(opt, sizeof opt, "--%s", d->name);
	switch (d->kind) {
	case TRAIN_STR:
		free(*(char **)base);
		*(char **)base = xstrdup(arg);
		break;
	case TRAIN_U64:
		*(uint64_t *)base = cli_u64(opt, arg, (uint64_t)d->min, (uint64_t)d->max);
		break;
	case TRAIN_FLAG:
		*(uint64_t *)base = arg ? cli_u64(opt, arg, 0, 1) : 1;
		break;
	case TRAIN_DBL: {
		double v = cli_double(opt, arg, d->min, d->max);

		/* half-open ranges: AdamW divides by 1 - beta^t and by eps */
		if (((d->flags & TRAIN_GT_MIN) && !(v > d->min)) ||
		    ((d->flags & TRAIN_LT_MAX) && !(v < d->max)))
			die_usage("%s must be %s %g and %s %g: '%s'", opt,
				  d->flags & TRAIN_GT_MIN ? "greater than" : "at least", d->min,
				  d->flags & TRAIN_LT_MAX ? "less than" : "at most", d->max, arg);
		*(double *)base = v;
		break;
	}
	}
}

void train_opts_default(struct train_opts *o)
{
	memset(o, 0, sizeof *o);
	o->batch = 4;
	o->lr = 6e-4;
	o->schedule = xstrdup("cosine");
	o->min_lr_frac = 0.1;
	o->decay_frac = 0.2;
	o->weight_decay = 0.1;
	o->beta1 = 0.9;
	o->beta2 = 0.95;
	o->eps = 1e-8;
	o->clip = 1.0;
	o->seed = 1337;
	o->val_every = 250;
	o->val_batches = 20;
	o->sample_tokens = 64;
	o->ckpt_every = 1000;
	o->keep = 3;
	o->device = xstrdup("auto");
	o->dist_timeout = 300;
}

/* The run's settings as "key value" lines: what --resume takes back. */
static char *settings_text(const struct train_opts *o)
{
	size_t cap = 4096, n = 0;
	char *s = xmalloc(cap);

	for (int i = 0; i < NDEFS; i++) {
		const struct train_optdef *d = &defs[i];
		const char *base = (const char *)o + d->off;
		char val[64];
		const char *v = val;
		size_t need;

		if (!(d->flags & TRAIN_SAVE) || ((d->flags & TRAIN_SFT) && !o->sft && !o->classify) ||
		    ((d->flags & TRAIN_CLS) && !o->classify))
			continue;
		if (d->kind == TRAIN_STR) {
			v = *(char *const *)base;
			if (!v)
				continue;
		} else if (d->kind == TRAIN_U64 || d->kind == TRAIN_FLAG) {
			snprintf(val, sizeof val, "%" PRIu64, *(const uint64_t *)base);
		} else {
			snprintf(val, sizeof val, "%.17g", *(const double *)base);
		}
		need = strlen(d->name) + strlen(v) + 3;
		while (n + need + 1 > cap)
			s = xrealloc(s, cap *= 2);
		n += (size_t)snprintf(s + n, cap - n, "%s %s\n", d->name, v);
	}
	return s;
}

/* Take back the settings of a checkpoint for every option the command
 * line did not give. */
static void settings_apply(struct train_opts *o, const char *text, const int *given)
{
	char *copy = xstrdup(text), *line = copy, *next;

	for (; line && *line; line = next) {
		char *sp;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		for (int i = 0; i < NDEFS; i++)
			if ((defs[i].flags & TRAIN_SAVE) && strcmp(defs[i].name, line) == 0 && !given[i])
				train_opts_set(o, i, sp + 1);
	}
	free(copy);
}

/* ---- signals ------------------------------------------------------------ */

static volatile sig_atomic_t stop_sig;
static volatile sig_atomic_t stop_clear_line;   /* a progress line is drawn */
static volatile sig_atomic_t stop_silent;       /* a rank but 0: rank 0 says it */

/* The first signal is acknowledged here, at once, whatever the trainer is
 * doing (write is async-signal-safe); the loop finishes the step. */
static void on_stop(int sig)
{
	static const char clear[] = "\r\033[K";
	static const char ack[] = "gpt-train: stopping after this step, then saving "
				  "(a second signal stops at once, without saving)\n";
	int saved = errno;

	if (stop_sig) {
		/* A second signal: stop now, without a checkpoint. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_sig = sig;
	if (stop_silent) {
		errno = saved;
		return;
	}
	if (stop_clear_line && write(STDERR_FILENO, clear, sizeof clear - 1) < 0)
		stop_clear_line = 0;
	if (write(STDERR_FILENO, ack, sizeof ack - 1) < 0)
		stop_clear_line = 0;
	errno = saved;
}

static void install_stop(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* what Open MPI's mpirun forwards to every rank (it turns SIGTERM
	 * and SIGINT into SIGKILL a second later) */
	sigaction(SIGUSR1, &sa, NULL);
}

/* ---- outlier statistics ------------------------------------------------- */

/* Exponential moving mean and variance of a series (loss, grad norm). */
struct ema {
	uint64_t n;
	double mean, var;
};

#define EMA_ALPHA 0.02
#define EMA_WARM 20

static double ema_z(const struct ema *e, double x)
{
	if (e->n < EMA_WARM || e->var <= 0)
		return 0;
	return (x - e->mean) / sqrt(e->var);
}

static void ema_add(struct ema *e, double x)
{
	if (e->n == 0) {
		e->mean = x;
		e->var = 0;
	} else {
		double d = x - e->mean;

		e->mean += EMA_ALPHA * d;
		e->var = (1 - EMA_ALPHA) * (e->var + EMA_ALPHA * d * d);
	}
	e->n++;
}

/* ---- the trainer -------------------------------------------------------- */

struct trainer {
	struct train_opts o;
	struct gpt_config cfg;
	struct engine *e;
	struct lr_schedule sched;
	struct gpt_rng rng;
	struct shards *train, *val;
	int have_val;
	int B, T;
	uint64_t accum;           /* micro-batches per step */
	uint64_t step, tokens;
	struct ema loss_ema, norm_ema;
	uint32_t *batch;          /* B*(T+1) tokens of one micro-batch */
	uint32_t *inputs, *targets;
	char tokenizer[CKPT_NAME_MAX];
	struct vocab vocab;
	int have_vocab;
	double elapsed0;          /* seconds of earlier sessions */
	FILE *log;
	char *last_ckpt;
	uint64_t saved_step;
	int quiet;
	int locked;               /* RUN/lock is held */
	int logged0;              /* log.tsv holds the step-0 line */
	/* data parallel (dist.h): rank 0 of 1 when not launched */
	int rank, world;
	uint64_t W;               /* windows per step, over all ranks */
	int stop;                 /* the stop the ranks agreed on */
	float *gbuf;              /* n_params: gradients on the host */
	/* --zero 1: this rank's slice [zoff, zoff + zcnt) of the AdamW state */
	int zero;
	size_t zoff, zcnt;
	struct adamw zopt;
	float *gmine;             /* zcnt: the summed gradients of the slice */
	int device_comm;          /* the engine sums the gradients (NCCL) */
	char comm_why[256];       /* why it does not, when it could */
	/* --sft: instruction examples instead of windows of shards */
	int sft;
	struct sft_set st, sv;    /* training and validation examples */
	uint64_t sft_consumed;    /* examples of the training order used */
	uint64_t step_div;        /* the step's loss divisor: W, or counted */
	uint64_t step_tokens;     /* the step's tokens */
	uint64_t *idx;            /* B: one micro-batch's examples */
	uint32_t eot;
	/* --classify: labelled texts, held as examples of st and sv (their
	 * tokens; no mask), each with a class */
	int cls;
	enum gpt_trainable trainable;
	uint32_t *lab_tr, *lab_va;  /* classes of st's and sv's examples */
	char *label_text;           /* the labels, each ended by '\n' */
	int n_labels;
	int *last;                  /* B: one micro-batch's last positions */
	uint32_t *mb_labels;        /* B */
	float *mb_logits;           /* B x n_labels */
	double step_acc, val_acc;   /* the last step's and validation's */
	/* --arch lstm: each of the B rows reads its own continuous stream,
	 * the training tokens cut into B equal parts, one window of T a step,
	 * its state carried from step to step and reset where the streams
	 * start over (truncated backpropagation through time) */
	int lstm;
	uint64_t row_len;           /* tokens of each row's stream */
	uint64_t row_windows;       /* windows of T in it: steps per epoch */
	float *state;               /* B rows of carried state, for saving */
	size_t n_state;             /* floats */
};

/* Whether the run stops after this step: the signal, or with several
 * ranks what they agreed on at the last gradient sum (every rank stops
 * after the same step). */
static int stopping(const struct trainer *t)
{
	return dist_on() ? t->stop : stop_sig != 0;
}

static double sft_step_grads(struct trainer *t);
static double sft_validate(struct trainer *t);
static double cls_step_grads(struct trainer *t);
static double cls_validate(struct trainer *t);

/* The AdamW state the trainer keeps: the engine's, or this rank's slice. */
static const struct adamw *optim_state(const struct trainer *t)
{
	return t->zero ? &t->zopt : &t->e->opt;
}

/* A fine-tuning run's data position, in the loader's 64 bytes:
 * "GPTSFT1\0", examples consumed, the number of training examples and
 * their hash (ids and mask), the seed, and an XXH64 of the 56 before. */
static void sft_pos_save(const struct trainer *t, unsigned char *b)
{
	memset(b, 0, SHARD_POS_BYTES);
	memcpy(b, "GPTSFT1", 8);
	le_put_u64(b + 8, t->sft_consumed);
	le_put_u64(b + 16, t->st.n);
	le_put_u64(b + 24, t->st.hash);
	le_put_u64(b + 32, t->o.seed);
	le_put_u64(b + 56, XXH64(b, 56, 0));
}

static void sft_pos_restore(struct trainer *t, const unsigned char *b, const char *path)
{
	if (memcmp(b, "GPTSFT1", 8) != 0)
		die("checkpoint is of a pretraining run, not a fine-tuning one (--sft): '%s'", path);
	if (XXH64(b, 56, 0) != le_get_u64(b + 56))
		die("checkpoint training state is corrupt: '%s'", path);
	if (le_get_u64(b + 16) != t->st.n || le_get_u64(b + 24) != t->st.hash)
		die("the fine-tuning examples differ from the run's (%" PRIu64 " examples then, %zu "
		    "now, or other tokens: another file, template, split or --train-on-prompt): '%s'",
		    le_get_u64(b + 16), t->st.n, path);
	t->sft_consumed = le_get_u64(b + 8);
}

/* The trainer state section: "GPTTRN1\0", the two outlier series
 * (n, mean, var each), the loader position length and bytes. */
#define TRN_MAGIC "GPTTRN1"
#define TRN_FIXED (8 + 48 + 8)

static unsigned char *trainer_state(const struct trainer *t, size_t *len)
{
	size_t plen = SHARD_POS_BYTES, slen = t->lstm ? 8 + t->n_state * sizeof(float) : 0;
	unsigned char *b = xmalloc(TRN_FIXED + plen + slen);

	memcpy(b, TRN_MAGIC, 8);
	le_put_u64(b + 8, t->loss_ema.n);
	le_put_f64(b + 16, t->loss_ema.mean);
	le_put_f64(b + 24, t->loss_ema.var);
	le_put_u64(b + 32, t->norm_ema.n);
	le_put_f64(b + 40, t->norm_ema.mean);
	le_put_f64(b + 48, t->norm_ema.var);
	le_put_u64(b + 56, plen);
	if (t->sft)
		sft_pos_save(t, b + TRN_FIXED);
	else
		shards_pos_save(t->train, b + TRN_FIXED);
	if (t->lstm) {
		/* an LSTM's carried state after this step, as the next one
		 * starts from it (floats as they lie in memory: little-endian,
		 * as the checkpoint's) */
		engine_state_get(t->e, t->state, t->B);
		le_put_u64(b + TRN_FIXED + plen, t->n_state);
		memcpy(b + TRN_FIXED + plen + 8, t->state, t->n_state * sizeof(float));
	}
	*len = TRN_FIXED + plen + slen;
	return b;
}

static void trainer_state_restore(struct trainer *t, const unsigned char *b, size_t len,
				  const char *path)
{
	uint64_t plen;

	if (len < TRN_FIXED || memcmp(b, TRN_MAGIC, 8) != 0)
		die("checkpoint has no training state (weights only?): '%s'", path);
	plen = le_get_u64(b + 56);
	if (plen != SHARD_POS_BYTES ||
	    len - TRN_FIXED != plen + (t->lstm ? 8 + t->n_state * sizeof(float) : 0))
		die("checkpoint training state is corrupt: '%s'", path);
	if (t->lstm) {
		if (le_get_u64(b + TRN_FIXED + plen) != t->n_state)
			die("checkpoint training state is corrupt (carried state of %" PRIu64
			    " floats, the model's is %zu): '%s'", le_get_u64(b + TRN_FIXED + plen),
			    t->n_state, path);
		memcpy(t->state, b + TRN_FIXED + plen + 8, t->n_state * sizeof(float));
	}
	t->loss_ema.n = le_get_u64(b + 8);
	t->loss_ema.mean = le_get_f64(b + 16);
	t->loss_ema.var = le_get_f64(b + 24);
	t->norm_ema.n = le_get_u64(b + 32);
	t->norm_ema.mean = le_get_f64(b + 40);
	t->norm_ema.var = le_get_f64(b + 48);
	if (t->sft)
		sft_pos_restore(t, b + TRN_FIXED, path);
	else
		shards_pos_restore(t->train, b + TRN_FIXED);
}

/* With several ranks: the weights must be the same bits on every rank
 * (the sums are; a rank that drifted is a bug or bad hardware). */
static void check_weights(struct trainer *t, int report)
{
	const struct gpt_model *m = &t->e->model;
	uint64_t h = XXH64(m->params, m->n_params * sizeof *m->params, 0), *all;
	const char *perturb = getenv("GPT_TEST_DIST_PERTURB");

	if (t->world == 1)
		return;
	/* for the test that proves this check can fail */
	if (perturb && atoi(perturb) == t->rank)
		h ^= 1;
	all = xmalloc(xmul((size_t)t->world, sizeof *all));
	dist_allgather_u64(h, all);
	for (int r = 1; r < t->world; r++)
		if (all[r] != all[0])
			die("the weights of rank %d differ from rank 0's at step %" PRIu64
			    " (xxh64 %016" PRIx64 " and %016" PRIx64 "); stopping", r, t->step,
			    all[r], all[0]);
	if (report && t->rank == 0 && !t->quiet)
		fprintf(stderr, "gpt-train: weights identical on %d ranks (xxh64 %016" PRIx64 ")\n",
			t->world, all[0]);
	free(all);
}

/* Every rank calls it: the weights are compared, a sharded optimizer
 * state is gathered to rank 0, and rank 0 alone writes. */
static void save_checkpoint(struct trainer *t)
{
	struct ckpt c;
	struct gpt_model *m = &t->e->model;
	struct ckpt_tensor *tens;
	char *path = ckpt_run_path(t->o.out, t->step);
	char *settings;
	size_t slen;
	unsigned char *state;
	float *zm = NULL, *zv = NULL;
	const struct adamw *opt = optim_state(t);

	engine_pull(t->e);
	check_weights(t, 0);
	if (t->zero) {
		if (t->rank == 0) {
			zm = xmalloc(xmul(m->n_params, sizeof *zm));
			zv = xmalloc(xmul(m->n_params, sizeof *zv));
		}
		dist_gather_f32(t->zopt.m, m->n_params, zm, 0);
		dist_gather_f32(t->zopt.v, m->n_params, zv, 0);
	}
	free(t->last_ckpt);
	t->last_ckpt = path;
	t->saved_step = t->step;
	if (t->rank != 0)
		return;
	tens = modelio_tensors(m);
	settings = settings_text(&t->o);
	state = trainer_state(t, &slen);
	memset(&c, 0, sizeof c);
	modelio_config_to_ckpt(&t->cfg, &c.model);
	c.sched.kind = (uint32_t)t->sched.kind;
	c.sched.lr = t->o.lr;
	c.sched.min_lr_frac = t->o.min_lr_frac;
	c.sched.warmup = t->o.warmup;
	c.sched.total_steps = t->o.steps;
	c.sched.decay = (uint64_t)t->sched.decay;
	c.sched.weight_decay = t->o.weight_decay;
	c.sched.beta1 = t->o.beta1;
	c.sched.beta2 = t->o.beta2;
	c.sched.eps = t->o.eps;
	c.sched.clip = t->o.clip;
	c.step = t->step;
	c.tokens = t->tokens;
	c.adam_step = (uint64_t)opt->step;
	memcpy(c.rng, t->rng.s, sizeof c.rng);
	snprintf(c.tokenizer, sizeof c.tokenizer, "%s", t->tokenizer);
	c.n_params = m->n_params;
	c.n_tensors = (uint32_t)m->n_tensors;
	c.tensors = tens;
	c.params = m->params;
	c.has_optim = 1;
	c.m = t->zero ? zm : opt->m;
	c.v = t->zero ? zv : opt->v;
	c.loader = state;
	c.loader_len = slen;
	c.settings = settings;
	c.settings_len = strlen(settings);
	if (t->cls) {
		c.labels = t->label_text;
		c.labels_len = strlen(t->label_text);
	}
	ckpt_write(&c, path);
	ckpt_run_set_latest(t->o.out, t->step);
	if (t->o.keep)
		ckpt_run_prune(t->o.out, (unsigned)t->o.keep);
	free(tens);
	free(settings);
	free(state);
	free(zm);
	free(zv);
}

/* Fill inputs/targets from rows windows of T+1 tokens. */
static void split_batch(struct trainer *t, int rows)
{
	size_t T1 = (size_t)t->T + 1;

	for (int b = 0; b < rows; b++)
		for (int i = 0; i < t->T; i++) {
			t->inputs[(size_t)b * t->T + i] = t->batch[b * T1 + i];
			t->targets[(size_t)b * t->T + i] = t->batch[b * T1 + i + 1];
		}
}

static void check_ids(struct trainer *t, int rows, const char *what)
{
	size_t n = (size_t)rows * ((size_t)t->T + 1);

	for (size_t i = 0; i < n; i++)
		if (t->batch[i] >= (uint32_t)t->cfg.vocab_size)
			die("token id %" PRIu32 " in the %s shards is outside the vocabulary of %d",
			    t->batch[i], what, t->cfg.vocab_size);
}

/* --dropout for the micro-batch whose first row is row `first` of the
 * step: the step's key (the seed and the step's number), rows numbered
 * by their place in the step, so the masks are the same whatever the
 * micro-batch size, the number of ranks, or a resume in between. */
static void step_dropout(struct trainer *t, uint64_t first)
{
	engine_dropout(t->e, (float)t->o.dropout, gpt_dropout_step_key(t->o.seed, t->step), first);
}

/* The gradients of one step, from this rank's part of its W windows:
 * the windows [floor(r W / N), floor((r + 1) W / N)) of the step in the
 * shuffled order, in micro-batches of at most B rows, each micro-batch's
 * mean loss weighted rows / W.  So the sum over ranks is the gradient of
 * the mean loss over all W windows, whatever N (and with one rank,
 * exactly the micro-batches of B windows of a single process).  Returns
 * the sum of rows x loss over the micro-batches, or the first loss that
 * is not finite; the position moves on by W windows on every rank. */
/* --arch lstm: the step's window of each row's stream, the state carried
 * from the last step, or zero where the streams start (over). */
static double lstm_step_grads(struct trainer *t)
{
	uint64_t w = t->step % t->row_windows;
	float l;

	t->step_div = t->W;
	t->step_tokens = t->W * (uint64_t)t->T;
	if (w == 0)
		engine_state_set(t->e, NULL, t->B);
	for (int b = 0; b < t->B; b++)
		shards_read(t->train, (uint64_t)b * t->row_len + w * (uint64_t)t->T,
			    t->batch + (size_t)b * ((size_t)t->T + 1), (size_t)t->T + 1);
	check_ids(t, t->B, "training");
	split_batch(t, t->B);
	engine_zero_grad(t->e);
	step_dropout(t, 0);
	l = engine_forward_backward(t->e, t->inputs, t->targets, t->B, t->T, 1.0f);
	return isfinite(l) ? (double)t->B * (double)l : (double)l;
}

static double step_grads(struct trainer *t)
{
	uint64_t base, lo, hi, k;
	size_t off, cnt;
	double sum = 0;

	if (t->lstm)
		return lstm_step_grads(t);
	if (t->cls)
		return cls_step_grads(t);
	if (t->sft)
		return sft_step_grads(t);
	base = shards_consumed(t->train);
	t->step_div = t->W;
	t->step_tokens = t->W * (uint64_t)t->T;
	dist_slice((size_t)t->W, t->rank, &off, &cnt);
	lo = off;
	hi = off + cnt;
	engine_zero_grad(t->e);
	for (k = lo; k < hi;) {
		int rows = hi - k < (uint64_t)t->B ? (int)(hi - k) : t->B;
		float l;

		for (int b = 0; b < rows; b++)
			shards_read(t->train, shards_window_at(t->train, base + k + (uint64_t)b),
				    t->batch + (size_t)b * ((size_t)t->T + 1), (size_t)t->T + 1);
		check_ids(t, rows, "training");
		split_batch(t, rows);
		/* the last micro-batch: the engine may sum the gradients as its
		 * backward makes them (NCCL, overlapped) */
		if (t->device_comm && t->e->ops->grads_overlap && k + (uint64_t)rows >= hi && !t->sft)
			t->e->ops->grads_overlap(t->e);
		step_dropout(t, k);
		l = engine_forward_backward(t->e, t->inputs, t->targets, rows, t->T,
					    (float)rows / (float)t->W);
		if (!isfinite(l)) {
			sum = l;
			break;
		}
		sum += (double)rows * (double)l;
		k += (uint64_t)rows;
	}
	shards_skip(t->train, t->W);
	return sum;
}

/* --sft: the gradients of one step of W examples of the training
 * order, this rank's slice of them in micro-batches of at most B,
 * padded or packed; each micro-batch's mean loss over its counted
 * positions weighted by its share of the step's counted positions, so
 * the step's loss is the mean over every response token of the step,
 * however the examples are split (the series' loss when a step is one
 * micro-batch).  Returns the sum of counted x loss. */
static double sft_step_grads(struct trainer *t)
{
	uint64_t base = t->sft_consumed, total = 0, toks = 0;
	size_t off, cnt;
	double sum = 0;

	for (uint64_t k = 0; k < t->W; k++) {
		uint64_t e = sft_at(&t->st, t->o.seed, base + k);

		total += (uint64_t)sft_counted(&t->st, e);
		toks += (uint64_t)t->st.len[e] - 1;
	}
	t->step_div = total ? total : 1;
	t->step_tokens = toks;
	dist_slice((size_t)t->W, t->rank, &off, &cnt);
	engine_zero_grad(t->e);
	for (uint64_t k = off; k < off + cnt;) {
		int rows = off + cnt - k < (uint64_t)t->B ? (int)(off + cnt - k) : t->B, nr, Tm;
		long c = 0;
		float l;

		for (int b = 0; b < rows; b++) {
			t->idx[b] = sft_at(&t->st, t->o.seed, base + k + (uint64_t)b);
			c += sft_counted(&t->st, t->idx[b]);
		}
		k += (uint64_t)rows;
		if (c == 0)
			continue;   /* nothing of these to learn */
		nr = sft_fill(&t->st, t->idx, rows, (int)t->o.pack, t->T, t->eot, t->inputs,
			      t->targets, &Tm);
		step_dropout(t, k - (uint64_t)rows);
		l = engine_forward_backward(t->e, t->inputs, t->targets, nr, Tm,
					    (float)c / (float)t->step_div);
		if (!isfinite(l)) {
			sum = l;
			break;
		}
		sum += (double)c * (double)l;
	}
	t->sft_consumed += t->W;
	return sum;
}

/* --sft: the mean loss over the counted positions of the validation
 * examples, in micro-batches of B in file order (at most val-batches),
 * sliced over the ranks. */
static double sft_validate(struct trainer *t)
{
	uint64_t nb = (t->sv.n + (uint64_t)t->B - 1) / (uint64_t)t->B;
	double v[2] = { 0, 0 };
	size_t off, cnt;

	if (nb > t->o.val_batches)
		nb = t->o.val_batches;
	dist_slice((size_t)nb, t->rank, &off, &cnt);
	for (uint64_t k = off; k < off + cnt; k++) {
		int rows = 0, nr, Tm;
		long c = 0;
		float l;

		if (stop_sig && !dist_on())
			return NAN;
		for (uint64_t e = k * (uint64_t)t->B; e < t->sv.n && rows < t->B; e++) {
			t->idx[rows++] = e;
			c += sft_counted(&t->sv, e);
		}
		if (c == 0)
			continue;
		nr = sft_fill(&t->sv, t->idx, rows, (int)t->o.pack, t->T, t->eot, t->inputs,
			      t->targets, &Tm);
		l = engine_forward(t->e, t->inputs, t->targets, nr, Tm);
		v[0] += (double)c * (double)l;
		v[1] += (double)c;
	}
	dist_sum_f64(v, 2);
	return v[1] > 0 ? v[0] / v[1] : NAN;
}

/* --classify: examples idx[0..rows) of s as one micro-batch, padded
 * with <|endoftext|> to the longest (at most T): inputs, each row's last
 * real position and its class (labs).  Returns the width. */
static int cls_fill(struct trainer *t, const struct sft_set *s, const uint32_t *labs, int rows)
{
	int Tm = 1;

	for (int b = 0; b < rows; b++)
		if (s->len[t->idx[b]] > Tm)
			Tm = s->len[t->idx[b]];
	for (int b = 0; b < rows; b++) {
		const uint32_t *ids = s->ids[t->idx[b]];
		int n = s->len[t->idx[b]];

		for (int i = 0; i < Tm; i++)
			t->inputs[(size_t)b * Tm + i] = i < n ? ids[i] : t->eot;
		t->last[b] = n - 1;
		t->mb_labels[b] = labs[t->idx[b]];
	}
	return Tm;
}

/* The correct answers of the last classify pass over rows. */
static int cls_correct(struct trainer *t, int rows)
{
	int k = t->n_labels, ok = 0;

	engine_class_logits(t->e, rows, t->mb_logits);
	for (int b = 0; b < rows; b++) {
		const float *lg = t->mb_logits + (size_t)b * k;
		int best = 0;

		for (int j = 1; j < k; j++)
			if (lg[j] > lg[best])
				best = j;
		ok += (uint32_t)best == t->mb_labels[b];
	}
	return ok;
}

/* --classify: one step of W texts of the training order, this rank's
 * slice in micro-batches of at most B, each micro-batch's mean loss
 * weighted rows / W; the step's accuracy into t->step_acc.  Returns the
 * sum of rows x loss. */
static double cls_step_grads(struct trainer *t)
{
	uint64_t base = t->sft_consumed, toks = 0;
	size_t off, cnt;
	double sum = 0, acc[2] = { 0, 0 };

	for (uint64_t k = 0; k < t->W; k++)
		toks += (uint64_t)t->st.len[sft_at(&t->st, t->o.seed, base + k)];
	t->step_div = t->W;
	t->step_tokens = toks;
	dist_slice((size_t)t->W, t->rank, &off, &cnt);
	engine_zero_grad(t->e);
	for (uint64_t k = off; k < off + cnt;) {
		int rows = off + cnt - k < (uint64_t)t->B ? (int)(off + cnt - k) : t->B, Tm;
		float l;

		for (int b = 0; b < rows; b++)
			t->idx[b] = sft_at(&t->st, t->o.seed, base + k + (uint64_t)b);
		k += (uint64_t)rows;
		Tm = cls_fill(t, &t->st, t->lab_tr, rows);
		l = engine_classify(t->e, t->inputs, t->last, t->mb_labels, rows, Tm);
		if (!isfinite(l)) {
			sum = l;
			break;
		}
		acc[0] += cls_correct(t, rows);
		acc[1] += rows;
		engine_classify_backward(t->e, (float)rows / (float)t->W, t->trainable);
		sum += (double)rows * (double)l;
	}
	dist_sum_f64(acc, 2);
	t->step_acc = acc[1] > 0 ? acc[0] / acc[1] : NAN;
	t->sft_consumed += t->W;
	return sum;
}

/* --classify: the mean loss and (into t->val_acc) the accuracy over the
 * validation texts, in micro-batches of B in file order (at most
 * val-batches), sliced over the ranks. */
static double cls_validate(struct trainer *t)
{
	uint64_t nb = (t->sv.n + (uint64_t)t->B - 1) / (uint64_t)t->B;
	double v[3] = { 0, 0, 0 };
	size_t off, cnt;

	if (nb > t->o.val_batches)
		nb = t->o.val_batches;
	dist_slice((size_t)nb, t->rank, &off, &cnt);
	for (uint64_t k = off; k < off + cnt; k++) {
		int rows = 0, Tm;
		float l;

		if (stop_sig && !dist_on())
			return NAN;
		for (uint64_t e = k * (uint64_t)t->B; e < t->sv.n && rows < t->B; e++)
			t->idx[rows++] = e;
		Tm = cls_fill(t, &t->sv, t->lab_va, rows);
		l = engine_classify(t->e, t->inputs, t->last, t->mb_labels, rows, Tm);
		v[0] += (double)rows * (double)l;
		v[1] += cls_correct(t, rows);
		v[2] += rows;
	}
	dist_sum_f64(v, 3);
	t->val_acc = v[2] > 0 ? v[1] / v[2] : NAN;
	return v[2] > 0 ? v[0] / v[2] : NAN;
}

/* The gradients summed over the ranks, and their global norm: on the
 * host through MPI, or with --zero 1 only this rank's slice (into
 * gmine), the norm from the slices' sums of squares. */
static float reduce_grads(struct trainer *t)
{
	size_t n = t->e->model.n_params;

	if (t->zero) {
		double ss = 0;

		engine_grads_get(t->e, t->gbuf);
		dist_reduce_scatter_f32(t->gbuf, n, t->gmine);
		for (size_t i = 0; i < t->zcnt; i++)
			ss += (double)t->gmine[i] * (double)t->gmine[i];
		dist_sum_f64(&ss, 1);
		return (float)sqrt(ss);
	}
	if (t->device_comm) {
		t->e->ops->grads_allreduce(t->e);
	} else if (t->world > 1) {
		engine_grads_get(t->e, t->gbuf);
		dist_sum_f32(t->gbuf, n);
		engine_grads_set(t->e, t->gbuf);
	}
	return engine_grad_norm(t->e);
}

/* The optimizer step: the engine's, or with --zero 1 AdamW on this
 * rank's slice, then every rank's slice of the weights to every rank. */
static void optimizer_step(struct trainer *t, float lr, float norm)
{
	struct gpt_model *m = &t->e->model;

	if (!t->zero) {
		engine_step(t->e, lr, (float)t->o.clip);
		return;
	}
	adamw_step(&t->zopt, m->params + t->zoff, t->gmine, lr,
		   grad_clip_scale(norm, (float)t->o.clip));
	dist_allgather_f32(m->params, m->n_params);
	engine_push(t->e);
}

/* Mean loss over the fixed validation windows: the first val-batches
 * micro-batches of the validation shards, in order.  A stop signal cuts
 * it short (NaN: no loss is logged), so that the step is saved at once;
 * validation reads its shards directly and touches neither the training
 * order nor the random state. */
/* --arch lstm: the validation tokens as B streams like the training's,
 * from the zero state, the first val-batches windows of each; the
 * training's carried state is kept aside and put back. */
static double lstm_validate(struct trainer *t)
{
	uint64_t row = (shards_tokens(t->val) - 1) / (uint64_t)t->B, nb = row / (uint64_t)t->T;
	double sum = 0;

	if (nb > t->o.val_batches)
		nb = t->o.val_batches;
	engine_state_get(t->e, t->state, t->B);
	engine_state_set(t->e, NULL, t->B);
	for (uint64_t k = 0; k < nb; k++) {
		if (stop_sig) {
			sum = NAN;
			break;
		}
		for (int b = 0; b < t->B; b++)
			shards_read(t->val, (uint64_t)b * row + k * (uint64_t)t->T,
				    t->batch + (size_t)b * ((size_t)t->T + 1), (size_t)t->T + 1);
		check_ids(t, t->B, "validation");
		split_batch(t, t->B);
		sum += engine_forward(t->e, t->inputs, t->targets, t->B, t->T);
	}
	engine_state_set(t->e, t->state, t->B);
	return nb ? sum / (double)nb : NAN;
}

static double validate(struct trainer *t)
{
	uint64_t windows, nb = t->o.val_batches;
	double sum = 0;
	size_t off, cnt;

	if (t->lstm)
		return lstm_validate(t);
	if (t->cls)
		return cls_validate(t);
	if (t->sft)
		return sft_validate(t);
	windows = (shards_tokens(t->val) - 1) / (uint64_t)t->T;
	if (windows / (uint64_t)t->B < nb)
		nb = windows / (uint64_t)t->B;
	/* with several ranks each takes a slice of the micro-batches; the
	 * ranks cannot stop at different points, so no signal cuts it */
	dist_slice((size_t)nb, t->rank, &off, &cnt);
	for (uint64_t k = off; k < off + cnt; k++) {
		if (stop_sig && !dist_on())
			return NAN;
		for (int b = 0; b < t->B; b++)
			shards_read(t->val, (k * (uint64_t)t->B + (uint64_t)b) * (uint64_t)t->T,
				    t->batch + (size_t)b * ((size_t)t->T + 1), (size_t)t->T + 1);
		check_ids(t, t->B, "validation");
		split_batch(t, t->B);
		sum += engine_forward(t->e, t->inputs, t->targets, t->B, t->T);
	}
	dist_sum_f64(&sum, 1);
	return nb ? sum / (double)nb : NAN;
}

static void print_token(struct trainer *t, uint32_t id, FILE *f)
{
	size_t len;
	const unsigned char *p;

	if (!t->have_vocab) {
		fprintf(f, " %" PRIu32, id);
		return;
	}
	p = vocab_token(&t->vocab, id, &len);
	if (p)
		fwrite(p, 1, len, f);
}

/* A sample from the trainer's seeded generator, starting at the end of
 * text token (or id 0 when there is none), on stderr: through the
 * engine's decoder and its key/value cache, one position a token; when
 * the context is full, the last T - 1 tokens are fed again (the window
 * slides, as a forward over the last T would see it). */
static void sample(struct trainer *t)
{
	uint64_t n = t->o.sample_tokens;
	uint32_t *seq = xmalloc(xmul((size_t)n + 1, sizeof *seq));
	uint32_t eot = t->sft ? t->eot : shards_eot(t->train);
	uint32_t start = eot < (uint32_t)t->cfg.vocab_size ? eot : 0;
	struct engine_decoder *d = engine_decoder_open(t->e, t->T);
	const float *logits = engine_decoder_feed(d, &start, 1, NULL);
	size_t len = 1;

	seq[0] = start;
	fprintf(stderr, "gpt-train: step %" PRIu64 " sample:%s", t->step, t->have_vocab ? " " : "");
	for (uint64_t k = 0; k < n; k++) {
		double maxl = -INFINITY, sum = 0, r, acc = 0;
		uint32_t pick = 0;

		for (int v = 0; v < t->cfg.vocab_size; v++)
			if (logits[v] > maxl)
				maxl = logits[v];
		for (int v = 0; v < t->cfg.vocab_size; v++)
			sum += exp(logits[v] - maxl);
		r = gpt_rng_uniform(&t->rng) * sum;
		for (int v = 0; v < t->cfg.vocab_size; v++) {
			acc += exp(logits[v] - maxl);
			pick = (uint32_t)v;
			if (acc > r)
				break;
		}
		seq[len++] = pick;
		print_token(t, pick, stderr);
		if (k + 1 == n)
			break;
		if (engine_decoder_pos(d) < t->T || t->lstm) {
			logits = engine_decoder_feed(d, &pick, 1, NULL);
		} else {
			engine_decoder_rewind(d, 0);
			logits = engine_decoder_feed(d, seq + len - (size_t)(t->T - 1), t->T - 1, NULL);
		}
	}
	fputc('\n', stderr);
	engine_decoder_close(d);
	free(seq);
}

static void trainer_free(struct trainer *t)
{
	if (t->zero)
		adamw_free(&t->zopt);
	free(t->gbuf);
	free(t->state);
	free(t->gmine);
	if (t->sft) {
		sft_free(&t->st);
		sft_free(&t->sv);
		free(t->idx);
		free(t->lab_tr);
		free(t->lab_va);
		free(t->label_text);
		free(t->last);
		free(t->mb_labels);
		free(t->mb_logits);
	} else {
		shards_close(t->train);
		if (t->have_val)
			shards_close(t->val);
	}
	if (t->have_vocab)
		vocab_free(&t->vocab);
	engine_close(t->e);
	free(t->batch);
	free(t->inputs);
	free(t->targets);
}

void train_opts_free(struct train_opts *o)
{
	for (int i = 0; i < NDEFS; i++)
		if (defs[i].kind == TRAIN_STR) {
			char **p = (char **)((char *)o + defs[i].off);

			free(*p);
			*p = NULL;
		}
}

/* ---- set-up ------------------------------------------------------------- */

static void absolute(char **path)
{
	char cwd[4096], *p;
	size_t n;

	if (!*path || (*path)[0] == '/' || !getcwd(cwd, sizeof cwd))
		return;
	n = strlen(cwd) + strlen(*path) + 2;
	p = xmalloc(n);
	snprintf(p, n, "%s/%s", cwd, *path);
	free(*path);
	*path = p;
}

/* Whether the options ask for an LSTM: --arch lstm or --model char-rnn
 * (a usage error when they disagree). */
static int wants_lstm(const struct train_opts *o)
{
	int preset = o->model && strcmp(o->model, "char-rnn") == 0;

	if (o->arch && strcmp(o->arch, "lstm") != 0 && strcmp(o->arch, "gpt2") != 0)
		die_usage("unknown architecture '%s' (gpt2, lstm)", o->arch);
	if (o->arch && strcmp(o->arch, "gpt2") == 0 && preset)
		die_usage("--model char-rnn is an lstm, not --arch gpt2");
	if (o->arch && strcmp(o->arch, "lstm") == 0 && o->model && !preset)
		die_usage("--model %s is a transformer; --arch lstm takes --model char-rnn, or "
			  "--layers, --width, --embed and --context", o->model);
	return preset || (o->arch && strcmp(o->arch, "lstm") == 0);
}

/* An LSTM's shape: char-rnn's (3 layers of 512, windows of 100 bytes)
 * unless --layers, --width, --embed (default: the width) or --context say
 * otherwise; --heads has no meaning. */
static void lstm_shape(const struct train_opts *o, const int *given, uint32_t vocab,
                       struct gpt_config *c)
{
	int H = o->width ? (int)o->width : 512;

	if (given[train_opt_index("heads")])
		die_usage("--heads is for transformers; an lstm has none");
	gpt_config_lstm(c, (int)vocab, o->embed ? (int)o->embed : H, H,
	                o->layers ? (int)o->layers : 3, o->context ? (int)o->context : 100);
}

static void resolve_model(struct trainer *t, const int *given, uint32_t shard_vocab)
{
	struct train_opts *o = &t->o;
	const char *why;

	if (wants_lstm(o)) {
		lstm_shape(o, given, o->vocab_size ? (uint32_t)o->vocab_size : shard_vocab, &t->cfg);
		if ((why = gpt_config_check(&t->cfg)) != NULL)
			die_usage("bad lstm shape (%d layers, width %d, embedding %d, context %d, "
				  "vocabulary %d): %s", t->cfg.n_layer, t->cfg.n_embd, t->cfg.n_input,
				  t->cfg.n_ctx, t->cfg.vocab_size, why);
		free(o->arch);
		o->arch = xstrdup("lstm");
		o->layers = (uint64_t)t->cfg.n_layer;
		o->heads = 1;   /* the model's, as its checkpoint records it */
		o->width = (uint64_t)t->cfg.n_embd;
		o->embed = (uint64_t)t->cfg.n_input;
		o->context = (uint64_t)t->cfg.n_ctx;
		o->vocab_size = (uint64_t)t->cfg.vocab_size;
		return;
	}
	if (given[train_opt_index("embed")])
		die_usage("--embed is an lstm's embedding width; give --arch lstm");
	if (gpt_config_preset(o->model ? o->model : "d12", &t->cfg) != 0)
		die_usage("unknown model '%s' (d12, d24, d36, d48, 163m, char-rnn)", o->model);
	if (o->layers)
		t->cfg.n_layer = (int)o->layers;
	if (o->heads)
		t->cfg.n_head = (int)o->heads;
	if (o->width)
		t->cfg.n_embd = (int)o->width;
	if (o->context)
		t->cfg.n_ctx = (int)o->context;
	if (o->vocab_size)
		t->cfg.vocab_size = (int)o->vocab_size;
	else if (shard_vocab)
		t->cfg.vocab_size = (int)shard_vocab;
	gpt_config_finish(&t->cfg);
	(void)given;
	if ((why = gpt_config_check(&t->cfg)) != NULL)
		die_usage("bad model shape (%d layers, %d heads, width %d, context %d, vocabulary %d): %s",
			  t->cfg.n_layer, t->cfg.n_head, t->cfg.n_embd, t->cfg.n_ctx,
			  t->cfg.vocab_size, why);
	/* The run's settings record the resolved shape. */
	o->layers = (uint64_t)t->cfg.n_layer;
	o->heads = (uint64_t)t->cfg.n_head;
	o->width = (uint64_t)t->cfg.n_embd;
	o->context = (uint64_t)t->cfg.n_ctx;
	o->vocab_size = (uint64_t)t->cfg.vocab_size;
}

/* A checkpoint's model only makes sense on ids of its own tokenizer. */
static void check_tokenizer(const char *ckpt_name, const char *shard_name, const char *path)
{
	if (ckpt_name[0] && strcmp(ckpt_name, shard_name) != 0)
		die("checkpoint was trained on tokenizer '%s' but the shards hold '%s': '%s'",
		    ckpt_name, shard_name, path);
}

static void print_config(const struct trainer *t)
{
	const struct train_opts *o = &t->o;

	if (t->lstm)
		fprintf(stderr, "gpt-train: model lstm, %d layers, width %d, embedding %d, windows of %d, "
			"vocabulary %d (padded %d)\n", t->cfg.n_layer, t->cfg.n_embd, t->cfg.n_input,
			t->cfg.n_ctx, t->cfg.vocab_size, t->cfg.padded_vocab);
	else
		fprintf(stderr, "gpt-train: model %d layers, %d heads, width %d, context %d, vocabulary "
			"%d (padded %d), %s head, %s\n", t->cfg.n_layer, t->cfg.n_head, t->cfg.n_embd,
			t->cfg.n_ctx, t->cfg.vocab_size, t->cfg.padded_vocab,
			t->cfg.tied ? "tied" : "untied",
			t->cfg.bias ? (t->cfg.qkv_bias ? "biases" : "biases except qkv") : "no biases");
	fprintf(stderr,
		"gpt-train: %zu parameters (%zu with padding)\n"
		"gpt-train: batch %d x %d, %" PRIu64 " micro-batches per step, %" PRIu64 " tokens per step, %" PRIu64 " steps\n"
		"gpt-train: lr %g, %s schedule, warmup %" PRIu64 ", floor %g, weight decay %g, betas %g %g, eps %g, clip %g\n"
		"gpt-train: run folder '%s', %d threads, seed %" PRIu64 "\n",
		gpt_config_count_params(&t->cfg), t->e->model.n_params,
		t->B, t->T, t->accum, t->accum * (uint64_t)t->B * (uint64_t)t->T, o->steps,
		o->lr, o->schedule, o->warmup, o->min_lr_frac, o->weight_decay, o->beta1, o->beta2,
		o->eps, o->clip, o->out, omp_get_max_threads(), o->seed);
	if (o->dropout > 0 && t->lstm)
		fprintf(stderr, "gpt-train: dropout %g between the lstm layers (training passes only)\n",
			o->dropout);
	else if (o->dropout > 0)
		fprintf(stderr, "gpt-train: dropout %g on the embeddings, the attention weights and "
			"the residual branches (training passes only)\n", o->dropout);
	if (t->lstm)
		fprintf(stderr, "gpt-train: %d streams of %" PRIu64 " tokens, %" PRIu64 " windows each "
			"(steps per epoch), the state carried from window to window\n", t->B,
			t->row_len, t->row_windows);
	if (t->cls) {
		static const char *const what[] = { "the head", "the last block, ln_f and the head",
						    "every tensor" };
		char *labels = xstrdup(t->label_text);

		for (char *p = labels; *p; p++)
			if (*p == '\n')
				*p = p[1] ? ',' : 0;
		fprintf(stderr, "gpt-train: classifying into %d classes (%s): %zu texts of '%s', %" PRIu64
			" per step (%.2f epochs in this run), %" PRIu64 " tokens; %zu cut to %s; training %s\n",
			t->n_labels, labels, t->st.n, o->classify, t->W,
			(double)o->steps * (double)t->W / (double)(t->st.n ? t->st.n : 1), t->st.tokens,
			t->st.truncated, o->max_length ? "--max-length" : "the context", what[t->trainable]);
		if (t->have_val)
			fprintf(stderr, "gpt-train: validation on %zu texts (%zu cut)\n", t->sv.n,
				t->sv.truncated);
		free(labels);
	} else if (t->sft) {
		fprintf(stderr, "gpt-train: fine-tuning on %zu examples of '%s', template %s, %" PRIu64
			" per step (%.2f epochs in this run), loss on %s: %" PRIu64 " tokens, %" PRIu64
			" counted; %zu cut to the context of %d%s\n",
			t->st.n, o->sft, o->template_name, t->W,
			(double)o->steps * (double)t->W / (double)(t->st.n ? t->st.n : 1),
			o->train_on_prompt ? "every token" : "the responses", t->st.tokens, t->st.counted,
			t->st.truncated, t->T, o->pack ? "; micro-batches packed" : "");
		if (t->have_val)
			fprintf(stderr, "gpt-train: validation on %zu examples (%" PRIu64 " counted tokens; "
				"%zu cut)\n", t->sv.n, t->sv.counted, t->sv.truncated);
	} else {
		fprintf(stderr, "gpt-train: training data %" PRIu64 " tokens in %d shards (%.2f epochs in this run), tokenizer '%s'\n",
			shards_tokens(t->train), shards_count(t->train),
			(double)o->steps * (double)o->total_batch / (double)shards_tokens(t->train), t->tokenizer);
		if (t->have_val)
			fprintf(stderr, "gpt-train: validation data %" PRIu64 " tokens in %d shards\n",
				shards_tokens(t->val), shards_count(t->val));
	}
	if (t->world > 1 || t->zero) {
		size_t off, cnt;

		dist_slice((size_t)t->W, 0, &off, &cnt);
		fprintf(stderr, "gpt-train: data parallel over %d rank%s (%s, %d on this machine): "
			"each takes %zu%s of the %" PRIu64 " windows of a step, in micro-batches of up to %d; "
			"gradients summed %s\n",
			t->world, t->world == 1 ? "" : "s", dist_describe(), dist_local_world(), cnt,
			t->W % (uint64_t)t->world ? " or one more" : "", t->W, t->B,
			t->device_comm ? "by NCCL on the gpus"
				       : t->zero ? "and scattered through MPI (ZeRO-1)" : "through MPI");
	}
	if (t->zero)
		fprintf(stderr, "gpt-train: ZeRO-1: AdamW state %.1f MiB on this rank, %.1f MiB unsharded\n",
			(double)t->zcnt * 8 / 1048576.0, (double)t->e->model.n_params * 8 / 1048576.0);
}

static void write_config_file(const struct trainer *t)
{
	size_t n = strlen(t->o.out) + 16;
	char *path = xmalloc(n), *s = settings_text(&t->o), line[160];
	struct afile af;

	snprintf(path, n, "%s/config", t->o.out);
	afile_open(&af, path);
	snprintf(line, sizeof line, "# gpt-train run settings; --resume reads them from the checkpoint\n"
		 "# parameters %zu\n", gpt_config_count_params(&t->cfg));
	out_write(&af.out, line, strlen(line));
	out_write(&af.out, s, strlen(s));
	afile_commit(&af);
	free(path);
	free(s);
}

#define LOG_HEADER "step\ttokens\ttrain_loss\tval_loss\tlr\tgrad_norm\ttokens_per_s\telapsed_s\n"
/* a classifier's: the accuracies too */
#define LOG_HEADER_CLS "step\ttokens\ttrain_loss\tval_loss\tlr\tgrad_norm\ttokens_per_s\telapsed_s" \
	"\ttrain_acc\tval_acc\n"

/* On resume, keep the log lines up to the checkpoint's step (a crash may
 * have logged steps past it; the step-0 line stays) and take back the
 * elapsed time. */
static void log_trim(struct trainer *t, const char *path)
{
	size_t len;
	unsigned char *buf;
	struct afile af;
	char *line, *next;

	if (access(path, F_OK) != 0) {
		FILE *f = fopen(path, "w");

		if (!f)
			die_errno("cannot create '%s'", path);
		fputs(t->cls ? LOG_HEADER_CLS : LOG_HEADER, f);
		fclose(f);
		return;
	}
	buf = io_read_file(path, (size_t)1 << 34, &len);
	afile_open(&af, path);
	for (line = (char *)buf; line && *line; line = next) {
		char *end;
		uint64_t step;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] < '0' || line[0] > '9') {
			if (strncmp(line, "step\t", 5) == 0) {
				out_write(&af.out, line, strlen(line));
				out_putc(&af.out, '\n');
			}
			continue;
		}
		step = strtoull(line, &end, 10);
		if (step > t->step)
			continue;
		if (step == 0)
			t->logged0 = 1;
		{
			/* elapsed_s is the eighth column */
			char *p = line;

			for (int col = 0; col < 7 && p; col++) {
				p = strchr(p, '\t');
				if (p)
					p++;
			}
			if (p)
				t->elapsed0 = strtod(p, NULL);
		}
		out_write(&af.out, line, strlen(line));
		out_putc(&af.out, '\n');
	}
	afile_commit(&af);
	free(buf);
}

static void open_log(struct trainer *t, int resuming)
{
	size_t n = strlen(t->o.out) + 16;
	char *path = xmalloc(n);

	snprintf(path, n, "%s/log.tsv", t->o.out);
	if (resuming) {
		log_trim(t, path);
		t->log = fopen(path, "a");
	} else {
		t->log = fopen(path, "w");
		if (t->log)
			fputs(t->cls ? LOG_HEADER_CLS : LOG_HEADER, t->log);
	}
	if (!t->log)
		die_errno("cannot open '%s'", path);
	free(path);
}

static void log_line(struct trainer *t, double loss, double val, float lr, float norm,
		     double tps, double elapsed)
{
	char vbuf[32] = "";

	if (!isnan(val))
		snprintf(vbuf, sizeof vbuf, "%.9g", val);
	fprintf(t->log, "%" PRIu64 "\t%" PRIu64 "\t%.9g\t%s\t%.9g\t%.9g\t%.1f\t%.3f", t->step,
		t->tokens, loss, vbuf, (double)lr, (double)norm, tps, elapsed);
	if (t->cls) {
		vbuf[0] = 0;
		if (!isnan(val))
			snprintf(vbuf, sizeof vbuf, "%.6f", t->val_acc);
		fprintf(t->log, "\t%.6f\t%s", t->step_acc, vbuf);
	}
	fputc('\n', t->log);
	if (fflush(t->log) != 0)
		die_errno("cannot write the log in '%s'", t->o.out);
}

/* The step-0 line: the validation loss before the first update, the
 * baseline of the curve; no training loss, rate or norm yet. */
static void log_line0(struct trainer *t, double val, double elapsed)
{
	fprintf(t->log, "0\t%" PRIu64 "\t\t%.9g\t\t\t\t%.3f", t->tokens, val, elapsed);
	if (t->cls)
		fprintf(t->log, "\t\t%.6f", t->val_acc);
	fputc('\n', t->log);
	if (fflush(t->log) != 0)
		die_errno("cannot write the log in '%s'", t->o.out);
}

/* ---- fine-tuning data ---------------------------------------------------- */

/* --sft: the vocabulary of the checkpoint's tokenizer, the records, the
 * split (written out on a new run with --split-out), and the training
 * and validation examples tokenized and cut to the context. */
/* --classify: records d.order[lo..hi) as examples of s (tokens cut to
 * L; an empty text is one <|endoftext|>) and their classes (*labs). */
static void cls_build(struct trainer *t, struct sft_set *s, uint32_t **labs,
                      const struct cls_data *d, size_t lo, size_t hi, int L)
{
	uint64_t h = 0;

	memset(s, 0, sizeof *s);
	s->n = hi - lo;
	s->ids = xcalloc(s->n ? s->n : 1, sizeof *s->ids);
	s->mask = xcalloc(s->n ? s->n : 1, sizeof *s->mask);
	s->len = xcalloc(s->n ? s->n : 1, sizeof *s->len);
	*labs = xcalloc(s->n ? s->n : 1, sizeof **labs);
	for (size_t i = 0; i < s->n; i++) {
		const struct cls_record *r = &d->r[d->order[lo + i]];
		uint32_t *ids = NULL;
		size_t n = tokenize_text(&t->vocab, (const unsigned char *)r->text, r->len, 0, &ids);

		if (n == 0) {
			ids = xrealloc(ids, sizeof *ids);
			ids[n++] = t->eot;
		}
		if (n > (size_t)L) {
			n = (size_t)L;
			s->truncated++;
		}
		s->ids[i] = ids;
		s->len[i] = (int)n;
		s->tokens += n;
		(*labs)[i] = (uint32_t)r->label;
		h = XXH64(ids, n * sizeof *ids, h ^ (uint64_t)r->label);
	}
	s->hash = h;
}

static void cls_setup(struct trainer *t, int resuming)
{
	struct train_opts *o = &t->o;
	struct cls_data d;
	struct cls_opts co = { o->text_field, o->label_field, o->labels };
	size_t b[6] = { 0, 0, 0, 0, 0, 0 };
	int L = o->max_length && o->max_length < (uint64_t)t->T ? (int)o->max_length : t->T;
	size_t n = 0;

	if (!o->trainable)
		o->trainable = xstrdup("last-block");
	if (!strcmp(o->trainable, "head"))
		t->trainable = GPT_TRAIN_HEAD;
	else if (!strcmp(o->trainable, "last-block"))
		t->trainable = GPT_TRAIN_LAST_BLOCK;
	else if (!strcmp(o->trainable, "all"))
		t->trainable = GPT_TRAIN_ALL;
	else
		die_usage("--trainable is head, last-block or all: '%s'", o->trainable);
	if (!o->vocab && strcmp(t->tokenizer, "gpt2") != 0 && !vocab_builtin(t->tokenizer))
		die_usage("the checkpoint's tokenizer is '%s': give its vocabulary with --vocab PATH "
			  "to tokenize the texts", t->tokenizer);
	vocab_load_for(&t->vocab, o->vocab, t->tokenizer, 1);
	t->have_vocab = 1;
	if (t->vocab.n_ids > (uint32_t)t->cfg.vocab_size)
		die("the vocabulary has %" PRIu32 " ids, more than the model's %d", t->vocab.n_ids,
		    t->cfg.vocab_size);
	if (t->vocab.eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|>, which pads the texts");
	t->eot = t->vocab.eot;
	cls_load(&d, o->classify, &co);
	if (o->balance)
		cls_balance(&d, o->seed);
	b[1] = d.n;
	if (o->split) {
		cls_split(&d, o->split, o->seed, b);
		if (o->split_out && !resuming && t->rank == 0) {
			static const char *const part[3] = { "train", "val", "test" };

			io_mkdirs(o->split_out);
			for (int k = 0; k < 3; k++) {
				char *path = xasprintf("%s/%s.%s", o->split_out, part[k],
						       d.jsonl ? "jsonl" : "tsv");

				cls_write_part(&d, b[2 * k], b[2 * k + 1], path);
				free(path);
			}
			if (!t->quiet)
				fprintf(stderr, "gpt-train: split %zu texts into %zu train, %zu val, %zu test "
					"in '%s'\n", d.n, b[1] - b[0], b[3] - b[2], b[5] - b[4], o->split_out);
		}
	} else if (o->split_out) {
		die_usage("--split-out needs --split TRAIN,VAL,TEST");
	} else if (o->val_frac > 0) {
		size_t nv = (size_t)((double)d.n * o->val_frac);

		b[1] = d.n - nv;
		b[2] = b[1];
		b[3] = d.n;
	}
	if (b[1] == b[0])
		die("no training texts in '%s' after the split", o->classify);
	/* the labels, as the checkpoint keeps them */
	for (int k = 0; k < d.n_labels; k++)
		n += strlen(d.labels[k]) + 1;
	t->label_text = xmalloc(n + 1);
	n = 0;
	for (int k = 0; k < d.n_labels; k++) {
		size_t m = strlen(d.labels[k]);
		memcpy(t->label_text + n, d.labels[k], m);
		t->label_text[n + m] = '\n';
		n += m + 1;
	}
	t->label_text[n] = 0;
	t->n_labels = d.n_labels;
	if (resuming && t->cfg.n_classes != d.n_labels)
		die("the run classifies into %d classes, the data has %d: '%s'", t->cfg.n_classes,
		    d.n_labels, o->classify);
	t->cfg.n_classes = d.n_labels;
	cls_build(t, &t->st, &t->lab_tr, &d, b[0], b[1], L);
	if (o->val) {
		struct cls_data v;
		char *joined = xstrdup(t->label_text);
		struct cls_opts vo = { o->text_field, o->label_field, joined };

		for (char *p = joined; *p; p++)
			if (*p == '\n')
				*p = p[1] ? ',' : 0;
		cls_load(&v, o->val, &vo);
		cls_build(t, &t->sv, &t->lab_va, &v, 0, v.n, L);
		cls_free(&v);
		free(joined);
	} else if (b[3] > b[2]) {
		cls_build(t, &t->sv, &t->lab_va, &d, b[2], b[3], L);
	}
	t->have_val = t->sv.n > 0;
	t->idx = xmalloc(xmul((size_t)t->B, sizeof *t->idx));
	t->last = xmalloc(xmul((size_t)t->B, sizeof *t->last));
	t->mb_labels = xmalloc(xmul((size_t)t->B, sizeof *t->mb_labels));
	t->mb_logits = xmalloc(xmul(xmul((size_t)t->B, (size_t)d.n_labels), sizeof(float)));
	cls_free(&d);
}

static void sft_setup(struct trainer *t, int resuming)
{
	struct train_opts *o = &t->o;
	struct instruct_set set, vset;
	struct instruct_template *tpl = instruct_template_open(o->template_name);
	size_t b[6] = { 0, 0, 0, 0, 0, 0 };

	if (!o->vocab && strcmp(t->tokenizer, "gpt2") != 0 && !vocab_builtin(t->tokenizer))
		die_usage("the checkpoint's tokenizer is '%s': give its vocabulary with --vocab PATH "
			  "to tokenize the examples", t->tokenizer);
	vocab_load_for(&t->vocab, o->vocab, t->tokenizer, 1);
	t->have_vocab = 1;
	if (t->vocab.n_ids > (uint32_t)t->cfg.vocab_size)
		die("the vocabulary has %" PRIu32 " ids, more than the model's %d", t->vocab.n_ids,
		    t->cfg.vocab_size);
	if (t->vocab.eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|>, which ends every response");
	t->eot = t->vocab.eot;
	instruct_load(&set, o->sft);
	b[1] = set.n;
	if (o->split) {
		sft_split(set.n, o->split, b);
		if (o->split_out && !resuming && t->rank == 0) {
			static const char *const part[3] = { "train", "val", "test" };

			io_mkdirs(o->split_out);
			for (int k = 0; k < 3; k++) {
				char *path = xasprintf("%s/%s.jsonl", o->split_out, part[k]);

				sft_write_part(&set, b[2 * k], b[2 * k + 1], path);
				free(path);
			}
			if (!t->quiet)
				fprintf(stderr, "gpt-train: split %zu records into %zu train, %zu val, %zu test "
					"in '%s'\n", set.n, b[1] - b[0], b[3] - b[2], b[5] - b[4], o->split_out);
		}
	} else if (o->split_out) {
		die_usage("--split-out needs --split TRAIN,VAL,TEST");
	} else if (o->val_frac > 0) {
		/* the last records in file order */
		size_t nv = (size_t)((double)set.n * o->val_frac);

		b[1] = set.n - nv;
		b[2] = b[1];
		b[3] = set.n;
	}
	if (b[1] == b[0])
		die("no training examples in '%s' after the split", o->sft);
	sft_build(&t->st, &set, b[0], b[1], &t->vocab, tpl, t->T, (int)o->train_on_prompt);
	if (o->val) {
		instruct_load(&vset, o->val);
		sft_build(&t->sv, &vset, 0, vset.n, &t->vocab, tpl, t->T, (int)o->train_on_prompt);
		instruct_free(&vset);
	} else if (b[3] > b[2]) {
		sft_build(&t->sv, &set, b[2], b[3], &t->vocab, tpl, t->T, (int)o->train_on_prompt);
	}
	t->have_val = t->sv.n > 0;
	t->idx = xmalloc(xmul((size_t)t->B, sizeof *t->idx));
	instruct_free(&set);
	instruct_template_free(tpl);
}

/* ---- data parallel ------------------------------------------------------ */

/* --zero 1: this rank's slice of the AdamW state, decayed where the
 * model's decayed tensors overlap it. */
static void zero_init(struct trainer *t, const struct adamw_config *ac)
{
	const struct gpt_model *m = &t->e->model;

	dist_slice(m->n_params, t->rank, &t->zoff, &t->zcnt);
	adamw_init(&t->zopt, ac, t->zcnt);
	for (int i = 0; i < m->n_tensors; i++) {
		size_t lo = m->tensors[i].offset, hi = lo + m->tensors[i].size;

		if (!m->tensors[i].decay)
			continue;
		if (lo < t->zoff)
			lo = t->zoff;
		if (hi > t->zoff + t->zcnt)
			hi = t->zoff + t->zcnt;
		if (lo < hi)
			adamw_add_decay(&t->zopt, lo - t->zoff, hi - lo);
	}
	t->gmine = xmalloc(xmul(t->zcnt ? t->zcnt : 1, sizeof *t->gmine));
}

/* With several ranks on an engine that has its own collectives (NCCL on
 * the GPU): every rank loads the library, rank 0 makes the
 * communicator's id and sends it through MPI, every rank joins.  Where
 * any rank cannot load it, the gradients go through MPI on the host. */
static void comm_setup(struct trainer *t)
{
	const struct engine_ops *ops = t->e->ops;
	char id[ENGINE_COMM_ID];
	double bad;

	if (t->world == 1 || t->zero || !ops->comm_load)
		return;
	bad = ops->comm_load(t->comm_why, sizeof t->comm_why) != 0;
	dist_sum_f64(&bad, 1);
	if (bad > 0) {
		if (!t->comm_why[0])
			snprintf(t->comm_why, sizeof t->comm_why, "NCCL cannot be loaded on %.0f rank%s",
				 bad, bad == 1 ? "" : "s");
		if (!t->quiet)
			warnx("%s: summing the gradients through MPI on the host instead (slower)",
			      t->comm_why);
		return;
	}
	memset(id, 0, sizeof id);
	if (t->rank == 0)
		ops->comm_id(id);
	dist_bcast(id, sizeof id, 0);
	dist_wait_begin("joining the NCCL communicator");
	if (ops->comm_open(t->e, id, t->rank, t->world, t->o.dist_timeout, t->comm_why,
			   sizeof t->comm_why) != 0)
		die("%s", t->comm_why);
	dist_wait_end();
	t->device_comm = 1;
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
	return XXH64(&v, sizeof v, h);
}

/* Every rank must run the same job: the same settings (but the thread
 * count, and the shard globs, which may be other paths to the same
 * files on another machine), model, engine and batch; the same data by
 * content; the same step, data position and weights on resume.  One
 * all-gather of three hashes, refused naming the first rank that
 * differs. */
static void check_ranks_agree(struct trainer *t)
{
	static const char *const what[3] = {
		"runs another configuration (settings, model, device or batch) than rank 0: "
		"every rank must be given the same options",
		"reads other data than rank 0 (the training or validation shards' contents "
		"differ): every rank must see the same shards",
		"starts from another state than rank 0 (another checkpoint, step or data "
		"position): every rank must resume the same run"
	};
	uint64_t h[3], *all;
	char *set = settings_text(&t->o), *line, *next;
	const struct gpt_model *m = &t->e->model;

	if (t->world == 1) {
		free(set);
		return;
	}
	h[0] = 0;
	for (line = set; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (strncmp(line, "threads ", 8) == 0 || strncmp(line, "train ", 6) == 0 ||
		    strncmp(line, "val ", 4) == 0)
			continue;
		h[0] = XXH64(line, (size_t)(next - line), h[0]);
	}
	free(set);
	h[0] = XXH64(&t->cfg, sizeof t->cfg, h[0]);
	h[0] = XXH64(t->e->ops->name, strlen(t->e->ops->name), h[0]);
	h[0] = hash_u64(hash_u64(hash_u64(h[0], (uint64_t)t->B), t->W), (uint64_t)t->zero);
	h[1] = (uint64_t)t->have_val;
	if (t->sft)
		h[1] = hash_u64(hash_u64(h[1], t->st.hash), t->sv.hash);
	for (int k = 0; !t->sft && k < 1 + t->have_val; k++) {
		struct shards *sh = k ? t->val : t->train;

		for (int i = 0; i < shards_count(sh); i++) {
			const struct shard_header *sh_h = &shards_info(sh, i)->h;

			h[1] = hash_u64(hash_u64(hash_u64(h[1], sh_h->hash), sh_h->tokens), sh_h->vocab);
			h[1] = XXH64(sh_h->tokenizer, strlen(sh_h->tokenizer), h[1]);
		}
	}
	h[2] = hash_u64(hash_u64(hash_u64(0, t->step), t->tokens),
			t->sft ? t->sft_consumed : shards_consumed(t->train));
	h[2] = hash_u64(h[2], (uint64_t)optim_state(t)->step);
	h[2] = XXH64(m->params, m->n_params * sizeof *m->params, h[2]);
	all = xmalloc(xmul((size_t)t->world, sizeof *all));
	for (int k = 0; k < 3; k++) {
		dist_allgather_u64(h[k], all);
		for (int r = 1; r < t->world; r++)
			if (all[r] != all[0])
				die("rank %d %s", r, what[k]);
	}
	free(all);
}

/* ---- the run folder ----------------------------------------------------- */

static int run_has(const char *run, const char *name)
{
	char *p = xasprintf("%s/%s", run, name);
	struct stat st;
	int r = lstat(p, &st) == 0;

	free(p);
	return r;
}

/* A folder gpt-train made: it holds the run's log or its settings. */
static int is_run_folder(const char *run)
{
	return run_has(run, "log.tsv") || run_has(run, "config");
}

static size_t run_checkpoints(const char *run)
{
	size_t n;

	free(ckpt_run_list(run, &n));
	return n;
}

/* Whether run holds something to resume: a checkpoint, or a latest that
 * names an existing file. */
static int holds_checkpoint(const char *run)
{
	char *p = xasprintf("%s/latest", run);
	struct stat st;
	int r = run_checkpoints(run) > 0 || stat(p, &st) == 0;

	free(p);
	return r;
}

/* Whether a and b name one file or folder (one path when either is
 * missing). */
static int same_path(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	return strcmp(a, b) == 0;
}

/* RUN/lock for the life of the process: a second gpt-train on the folder
 * stops here, before it changes anything. */
static void lock_run(struct trainer *t, const char *run)
{
	char *p;
	long holder = 0;

	if (t->locked)
		return;
	p = xasprintf("%s/lock", run);
	if (io_lock(p, &holder) != 0) {
		if (holder > 0)
			die("run folder '%s' is in use by process %ld (another gpt-train); "
			    "wait for it or stop it first", run, holder);
		die("run folder '%s' is in use by another process; wait for it or stop it first", run);
	}
	t->locked = 1;
	free(p);
}

/* What --resume ARG names: a run folder (then its latest), or one of its
 * checkpoints.  Sets *run (caller frees); 1 for a checkpoint file. */
static int resume_target(const char *arg, char **run)
{
	struct stat st;
	const char *slash;

	if (stat(arg, &st) != 0)
		die_errno("cannot resume '%s'", arg);
	if (S_ISDIR(st.st_mode)) {
		*run = xstrdup(arg);
		return 0;
	}
	slash = strrchr(arg, '/');
	*run = slash ? xasprintf("%.*s", slash == arg ? 1 : (int)(slash - arg), arg) : xstrdup(".");
	if (!is_run_folder(*run))
		die_usage("'%s' is a checkpoint outside a run folder (no log.tsv or config beside it): "
			  "--resume wants a run folder or a checkpoint in one; to start a new run from "
			  "its weights use --init %s -o RUN", arg, arg);
	return 1;
}

/* A run whose checkpoint bad (the one resumed) does not load: say so, and
 * name what can be resumed instead. */
static void die_resume(const char *run, const char *bad, const char *err)
{
	char *good;

	if (run_checkpoints(run) == 0) {
		if (!is_run_folder(run))
			die("'%s' holds no run (no checkpoint, log.tsv or config); start one with -o", run);
		die("run folder '%s' has no checkpoint to resume (the run stopped before its first "
		    "save); start it over with -o %s", run, run);
	}
	good = ckpt_run_newest_good(run, bad);
	if (!good)
		die("%s; no other checkpoint in '%s' verifies", err, run);
	die("%s; the newest earlier checkpoint that verifies is '%s': --resume %s goes on from there",
	    err, good, good);
}

/* The file a --resume of run or of the checkpoint arg reads, for
 * die_resume: latest's target when it is a link. */
static char *resume_file(const char *run, const char *arg, int chosen)
{
	char *p, target[4096];
	ssize_t n;

	if (chosen)
		return xstrdup(arg);
	p = xasprintf("%s/latest", run);
	n = readlink(p, target, sizeof target - 1);
	if (n > 0 && target[0] != '/' && !memchr(target, '/', (size_t)n)) {
		free(p);
		p = xasprintf("%s/%.*s", run, (int)n, target);
	}
	return p;
}

/* On --resume a setting fixed for the life of the run (the shape, the
 * seed, --init) given again must equal the run's, so that the command
 * line of the run with --resume added works; a real change is named.
 * --model is checked by check_model, which needs the shards. */
static void check_fixed(const struct train_opts *o, const int *given, const struct ckpt *ck)
{
	struct train_opts saved;
	int *none = xcalloc((size_t)NDEFS, sizeof *none);

	train_opts_default(&saved);
	settings_apply(&saved, ck->settings, none);
	free(none);
	for (int i = 0; i < NDEFS; i++) {
		const struct train_optdef *d = &defs[i];
		const char *a = (const char *)o + d->off, *b = (const char *)&saved + d->off;
		const char *why = d->flags & TRAIN_SHAPE ? "the model shape cannot change on resume"
				: d->kind == TRAIN_STR ? "a resumed run goes on from its own checkpoint"
				: "it fixed the initialisation and the data order, so it cannot change on resume";
		uint64_t have;

		if (!given[i] || !(d->flags & (TRAIN_SHAPE | TRAIN_FIXED)) || strcmp(d->name, "model") == 0)
			continue;
		if (d->kind == TRAIN_STR) {
			const char *ga = *(char *const *)a, *sb = *(char *const *)b;

			if (!sb)
				die_usage("--%s '%s' differs from the run's, which had none; %s", d->name, ga, why);
			if (!same_path(ga, sb))
				die_usage("--%s '%s' differs from the run's '%s'; %s", d->name, ga, sb, why);
			continue;
		}
		/* the shape as the checkpoint holds it; the rest as saved */
		have = *(const uint64_t *)b;
		if (strcmp(d->name, "layers") == 0)
			have = ck->model.layers;
		else if (strcmp(d->name, "heads") == 0)
			have = ck->model.heads;
		else if (strcmp(d->name, "width") == 0)
			have = ck->model.width;
		else if (strcmp(d->name, "context") == 0)
			have = ck->model.context;
		else if (strcmp(d->name, "vocab-size") == 0)
			have = ck->model.vocab;
		if (*(const uint64_t *)a != have)
			die_usage("--%s %" PRIu64 " differs from the run's %" PRIu64 "; %s", d->name,
				  *(const uint64_t *)a, have, why);
	}
	train_opts_free(&saved);
}

/* --model given on --resume: the shape it resolves to, with the shape
 * options given and the shards' vocabulary, as a new run would, must be
 * the run's. */
static void check_model(const struct trainer *t, const int *given, const struct ckpt_model *m)
{
	const struct train_opts *o = &t->o;
	struct gpt_config want, have;

	if (m->arch == GPT_ARCH_LSTM && given[train_opt_index("arch")] &&
	    strcmp(o->arch, "lstm") != 0)
		die_usage("--arch %s differs from the run's model (an lstm)", o->arch);
	if (m->arch != GPT_ARCH_LSTM && given[train_opt_index("arch")] && strcmp(o->arch, "gpt2") != 0)
		die_usage("--arch %s differs from the run's model (gpt2)", o->arch);
	if (!given[train_opt_index("model")])
		return;
	if (m->arch == GPT_ARCH_LSTM || strcmp(o->model, "char-rnn") == 0) {
		(void)modelio_config_from_ckpt(m, &have);
		if (m->arch != GPT_ARCH_LSTM)
			die_usage("--model char-rnn differs from the run's model (a transformer)");
		if (strcmp(o->model, "char-rnn") != 0)
			die_usage("--model %s differs from the run's model (an lstm)", o->model);
		lstm_shape(o, given, (uint32_t)have.vocab_size, &want);
		if (want.n_layer != have.n_layer || want.n_embd != have.n_embd ||
		    want.n_input != have.n_input || want.n_ctx != have.n_ctx)
			die_usage("--model char-rnn differs from the run's model (%d layers, width %d, "
				  "embedding %d, context %d); the model shape cannot change on resume",
				  have.n_layer, have.n_embd, have.n_input, have.n_ctx);
		return;
	}
	if (gpt_config_preset(o->model, &want) != 0)
		die_usage("unknown model '%s' (d12, d24, d36, d48, 163m, char-rnn)", o->model);
	if (given[train_opt_index("layers")])
		want.n_layer = (int)o->layers;
	if (given[train_opt_index("heads")])
		want.n_head = (int)o->heads;
	if (given[train_opt_index("width")])
		want.n_embd = (int)o->width;
	if (given[train_opt_index("context")])
		want.n_ctx = (int)o->context;
	if (given[train_opt_index("vocab-size")])
		want.vocab_size = (int)o->vocab_size;
	else if (shards_vocab(t->train))
		want.vocab_size = (int)shards_vocab(t->train);
	gpt_config_finish(&want);
	(void)modelio_config_from_ckpt(m, &have);
	if (want.n_layer != have.n_layer || want.n_head != have.n_head ||
	    want.n_embd != have.n_embd || want.n_ctx != have.n_ctx ||
	    want.vocab_size != have.vocab_size || want.tied != have.tied ||
	    want.bias != have.bias || want.qkv_bias != have.qkv_bias)
		die_usage("--model %s differs from the run's model (%d layers, %d heads, width %d, "
			  "context %d, vocabulary %d, %s head%s); the model shape cannot change on resume",
			  o->model, have.n_layer, have.n_head, have.n_embd, have.n_ctx, have.vocab_size,
			  have.tied ? "tied" : "untied", have.qkv_bias ? "" : ", no qkv bias");
}

/* -o before anything is loaded: a folder that holds a run's checkpoints
 * is refused, one in use by another process too. */
static void check_new_run(struct trainer *t, const char *run)
{
	struct stat st;

	if (stat(run, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	lock_run(t, run);
	if (holds_checkpoint(run))
		die("run folder already holds a run; use --resume or another -o: '%s'", run);
}

/* The new run's folder, made and locked.  A run that failed before its
 * first checkpoint left only its log and config (and maybe a temporary
 * of its first save): there is nothing to resume, so it starts over. */
static void make_run_dir(struct trainer *t, const char *run)
{
	io_mkdirs(run);
	lock_run(t, run);
	if (holds_checkpoint(run))
		die("run folder already holds a run; use --resume or another -o: '%s'", run);
	if (is_run_folder(run) || run_has(run, "latest")) {
		char *p = xasprintf("%s/latest", run);   /* a dangling link, if any */

		if (unlink(p) != 0 && errno != ENOENT)
			die_errno("cannot remove '%s'", p);
		free(p);
		if (!t->quiet)
			fprintf(stderr, "gpt-train: run folder '%s' holds no checkpoint: starting it over\n", run);
	}
	ckpt_run_clean(run);
}

/* The resumed run's folder: the temporaries of a save that was killed go,
 * and a checkpoint chosen by name becomes latest, as the log now ends at
 * its step. */
static void open_run_dir(struct trainer *t, const char *file)
{
	char *named = ckpt_run_path(t->o.out, t->step), *latest = xasprintf("%s/latest", t->o.out);

	ckpt_run_clean(t->o.out);
	if (file && same_path(named, file) && !same_path(latest, file))
		ckpt_run_set_latest(t->o.out, t->step);
	free(named);
	free(latest);
}

int train_run(struct train_opts *o, const int *given)
{
	struct trainer tr, *t = &tr;
	int resuming, chosen = 0;
	struct ckpt ck;
	uint64_t start_step, toks_per_step;
	double t0, tlast;
	struct progress prog;
	char plabel[96];
	enum progress_mode pmode = o->progress;
	const struct engine_ops *ops;
	char why[256], *run = NULL, *file = NULL;

	memset(t, 0, sizeof *t);
	t->o = *o;          /* the trainer takes the caller's strings */
	memset(o, 0, sizeof *o);
	o = &t->o;
	/* Data parallel: a launcher (mpirun, srun) started this process as
	 * one of several ranks.  Rank 0 alone keeps the run folder, the log
	 * and the terminal; the others say only what goes wrong. */
	dist_init(o->dist_timeout);
	t->rank = dist_rank();
	t->world = dist_world();
	t->zero = o->zero == 1;
	if (t->rank != 0) {
		static char name[64];

		snprintf(name, sizeof name, "%s (rank %d)", prog_name, t->rank);
		prog_name = name;
		pmode = PROGRESS_QUIET;
	}
	t->quiet = pmode == PROGRESS_QUIET;
	/* Stop signals are caught from here on: a run folder is locked (and
	 * its pid shown to whoever else tries it) before the data and the
	 * checkpoint are loaded, and a SIGTERM in that time must stop the
	 * run cleanly after its first step, not kill it. */
	stop_silent = t->rank != 0;
	install_stop();
	/* one GPU per rank: the rank's index on its machine */
	engine_select_gpu(dist_local_rank());
	if (given[train_opt_index("steps")] && given[train_opt_index("tokens")])
		die_usage("--steps and --tokens exclude each other; give one");
	/* the device first: "--device cuda" where there is none fails at once */
	ops = engine_find(o->device, why, sizeof why);

	resuming = o->resume != NULL;
	if (resuming) {
		chosen = resume_target(o->resume, &run);
		if (o->out && !same_path(o->out, run))
			die_usage("-o '%s' is not the run folder '%s': --resume goes on in its own folder; drop -o",
				  o->out, run);
		if (t->rank == 0)
			lock_run(t, run);
		file = resume_file(run, o->resume, chosen);
		if (ckpt_open(&ck, chosen ? o->resume : run) != 0)
			die_resume(run, file, ck.err);
		check_fixed(o, given, &ck);
		settings_apply(o, ck.settings, given);
		free(o->out);
		o->out = run;
		free(o->init);
		o->init = NULL;
		if (!o->train && !o->sft && !o->classify)
			die("checkpoint names no training shards; give -i: '%s'", ck.path);
	} else {
		if (!o->train && !o->sft && !o->classify)
			die_usage("no training data; give -i GLOB (token shards), --sft FILE "
				  "(instruction records) or --classify FILE (labelled texts)");
		if ((o->sft || o->classify) && !o->init)
			die_usage("%s needs --init CKPT: fine-tuning starts from a trained model",
				  o->sft ? "--sft" : "--classify");
		if (!o->out)
			die_usage("no run folder; give -o RUN");
		if (t->rank == 0)
			check_new_run(t, o->out);
	}
	/* Fine-tuning: the series' recipe (AdamW at 5e-5, constant, no
	 * warmup) unless told otherwise. */
	if (o->sft || o->classify) {
		if (o->sft && !o->template_name)
			o->template_name = xstrdup("alpaca");
		if (!o->epochs)
			o->epochs = 1;
		if (!resuming) {
			if (!given[train_opt_index("lr")])
				o->lr = 5e-5;
			if (!given[train_opt_index("schedule")]) {
				free(o->schedule);
				o->schedule = xstrdup("constant");
			}
			if (!given[train_opt_index("warmup")])
				o->warmup = 0;
		}
	}
	/* The thread count is part of the run: the same count on resume
	 * gives the same bits. */
	if (!o->threads) {
		o->threads = (uint64_t)omp_get_max_threads();
		/* Ranks that share a machine and are not bound to cores (mpirun
		 * --bind-to none, srun without binding) share its processors. */
		if (dist_local_world() > 1 && !getenv("OMP_NUM_THREADS")) {
			cpu_set_t cs;
			long online = sysconf(_SC_NPROCESSORS_ONLN);

			if (sched_getaffinity(0, sizeof cs, &cs) == 0 && CPU_COUNT(&cs) >= online &&
			    online > 0) {
				o->threads = (uint64_t)online / (uint64_t)dist_local_world();
				if (o->threads < 1)
					o->threads = 1;
			}
		}
	}
	/* A run moved to a machine with fewer processors (from a GPU server
	 * to a small CPU box, say) would crawl with more threads than cores;
	 * its bits differ on another machine anyway: use the cores, say so. */
	if (resuming && !given[train_opt_index("threads")] && o->threads > (uint64_t)omp_get_num_procs()) {
		warnx("the run used %" PRIu64 " threads but this machine has %d processors: using %d "
		      "(--threads %" PRIu64 " keeps the run's count)",
		      o->threads, omp_get_num_procs(), omp_get_num_procs(), o->threads);
		o->threads = (uint64_t)omp_get_num_procs();
	}
	omp_set_num_threads((int)o->threads);
	openblas_set_num_threads((int)o->threads);
	{
		enum lr_kind k;

		if (lr_schedule_kind(o->schedule, &k) != 0)
			die_usage("unknown schedule '%s' (cosine, linear, wsd, constant)", o->schedule);
		t->sched.kind = k;
	}

	/* Data.  Globs are kept absolute so --resume works from anywhere. */
	t->cls = o->classify != NULL;
	t->sft = o->sft != NULL || t->cls;
	if (o->sft && o->classify)
		die_usage("--sft and --classify exclude each other: instruction records or labelled "
			  "texts");
	if (t->sft && o->train)
		die_usage("%s and -i exclude each other: fine-tuning reads its own records, "
			  "pretraining token shards", t->cls ? "--classify" : "--sft");
	if (t->cls && (o->template_name || o->train_on_prompt || o->pack))
		die_usage("--template, --train-on-prompt and --pack are for instruction fine-tuning "
			  "(--sft), not --classify");
	if (!t->cls && (o->trainable || o->labels || o->balance || o->max_length || o->text_field ||
			o->label_field))
		die_usage("--trainable, --labels, --balance, --max-length, --text-field and "
			  "--label-field are for classification (--classify)");
	if (t->cls && o->sample_every)
		die_usage("--sample-every has no meaning for a classifier");
	if (t->cls && o->zero)
		die_usage("--zero 1 does not take --classify yet");
	if (!t->sft && (o->template_name || o->split || o->split_out || o->val_frac > 0 ||
			o->train_on_prompt || o->pack || o->epochs))
		die_usage("--template, --split, --split-out, --val-frac, --train-on-prompt, --pack "
			  "and --epochs are for fine-tuning (--sft)");
	if (t->sft && given[train_opt_index("tokens")])
		die_usage("--tokens counts pretraining tokens; give --epochs or --steps with --sft");
	if (t->sft && o->val && (o->split || o->val_frac > 0))
		die_usage("--val, --split and --val-frac each choose the validation examples; give one");
	absolute(&o->train);
	absolute(&o->val);
	absolute(&o->sft);
	absolute(&o->classify);
	if (!t->sft) {
	t->train = shards_open(o->train);
	if (o->val) {
		t->val = shards_open(o->val);
		t->have_val = 1;
		if (shards_vocab(t->val) != shards_vocab(t->train) ||
		    strcmp(shards_tokenizer(t->val), shards_tokenizer(t->train)) != 0)
			die("validation and training shards have different tokenizers: '%s'", o->val);
	}
	snprintf(t->tokenizer, sizeof t->tokenizer, "%s", shards_tokenizer(t->train));
	}

	/* Model. */
	if (resuming) {
		if (ck.model.classes && !o->classify)
			die("a classifier's checkpoint: gpt-train cannot resume it as a language model: '%s'",
			    ck.path);
		if (!t->sft)
			check_model(t, given, &ck.model);
		(void)modelio_config_from_ckpt(&ck.model, &t->cfg); /* checked below */
		if (t->sft)
			snprintf(t->tokenizer, sizeof t->tokenizer, "%s", ck.tokenizer);
		else
			check_tokenizer(ck.tokenizer, t->tokenizer, ck.path);
	} else if (o->init) {
		struct ckpt ic;

		if (ckpt_open(&ic, o->init) != 0)
			die("%s", ic.err);
		if (ic.model.classes)
			die("a classifier of %u classes cannot start a language model's training: '%s'",
			    ic.model.classes, ic.path);
		for (int i = 0; i < NDEFS; i++)
			if (given[i] && (defs[i].flags & TRAIN_SHAPE) &&
			    !(ic.model.arch == GPT_ARCH_LSTM && i == train_opt_index("context")))
				die_usage("--%s conflicts with --init: the checkpoint fixes the model", defs[i].name);
		(void)modelio_config_from_ckpt(&ic.model, &t->cfg);
		if (t->sft)
			snprintf(t->tokenizer, sizeof t->tokenizer, "%s", ic.tokenizer);
		else
			check_tokenizer(ic.tokenizer, t->tokenizer, ic.path);
		ckpt_close(&ic);
		o->layers = (uint64_t)t->cfg.n_layer;
		o->heads = (uint64_t)t->cfg.n_head;
		o->width = (uint64_t)t->cfg.n_embd;
		/* an LSTM's context bounds its windows: the window is --context,
		 * else char-rnn's 100 where the bound allows */
		if (t->cfg.arch != GPT_ARCH_LSTM || !given[train_opt_index("context")])
			o->context = t->cfg.arch == GPT_ARCH_LSTM && t->cfg.n_ctx > 100
			                     ? 100 : (uint64_t)t->cfg.n_ctx;
		o->embed = (uint64_t)t->cfg.n_input;
		o->vocab_size = (uint64_t)t->cfg.vocab_size;
	} else {
		resolve_model(t, given, shards_vocab(t->train));
	}
	if (gpt_config_check(&t->cfg) != NULL)
		die("checkpoint has a model the engine refuses: %s", gpt_config_check(&t->cfg));
	t->lstm = t->cfg.arch == GPT_ARCH_LSTM;
	if (t->lstm) {
		if (t->sft)
			die_usage("%s fine-tunes a transformer; an lstm trains on token shards (-i)",
				  t->cls ? "--classify" : "--sft");
		if (t->world > 1 || t->zero)
			die_usage("an lstm trains in one process (no data parallel or --zero yet)");
		/* char-rnn's recipe, where the command line says nothing */
		if (!resuming) {
			static const struct { const char *name, *value; } recipe[] = {
				{ "batch", "100" }, { "lr", "3e-4" }, { "weight-decay", "0" },
				{ "clip", "5" }, { "dropout", "0.5" }, { "schedule", "constant" },
				{ "warmup", "0" },
			};
			for (size_t i = 0; i < sizeof recipe / sizeof recipe[0]; i++)
				if (!given[train_opt_index(recipe[i].name)])
					train_opts_set(o, train_opt_index(recipe[i].name), recipe[i].value);
			if (!given[train_opt_index("schedule")]) {
				enum lr_kind k;
				(void)lr_schedule_kind(o->schedule, &k);
				t->sched.kind = k;
			}
		}
		free(o->arch);
		o->arch = xstrdup("lstm");
	}
	if (!t->sft && shards_vocab(t->train) > (uint32_t)t->cfg.vocab_size)
		die("the training shards' vocabulary (%" PRIu32 ") is larger than the model's (%d): '%s'",
		    shards_vocab(t->train), t->cfg.vocab_size, o->train);
	t->B = (int)o->batch;
	t->T = t->cfg.n_ctx;
	if (t->lstm && o->context) {
		if (o->context > (uint64_t)t->cfg.n_ctx)
			die_usage("--context %" PRIu64 " is beyond the lstm's bound of %d positions",
				  o->context, t->cfg.n_ctx);
		t->T = (int)o->context;   /* the window of truncated BPTT */
	}
	if (t->cls)
		cls_setup(t, resuming);
	else if (t->sft)
		sft_setup(t, resuming);

	/* Steps and batch. */
	{
		uint64_t bt = (uint64_t)t->B * (uint64_t)t->T;

		if (!o->total_batch)
			o->total_batch = bt;
		if (o->total_batch % bt != 0)
			die_usage("--total-batch %" PRIu64 " is not a multiple of batch x context (%" PRIu64 ")",
				  o->total_batch, bt);
		t->accum = o->total_batch / bt;
		t->W = t->accum * (uint64_t)t->B;
		if (t->lstm && t->accum != 1)
			die_usage("--total-batch must be batch x context (%" PRIu64 ") for an lstm: a step "
				  "takes one window of each stream", bt);
		if (t->W < (uint64_t)t->world)
			die_usage("a step of %" PRIu64 " windows cannot be shared by %d ranks; give a "
				  "--total-batch of at least %d x %d x %d tokens", t->W, t->world,
				  t->world, t->B, t->T);
		if (given[train_opt_index("tokens")]) {
			o->steps = (o->tokens + o->total_batch - 1) / o->total_batch;
		} else if (!o->steps && t->sft) {
			/* --epochs passes over the examples, whole steps only */
			o->steps = o->epochs * (t->st.n / t->W);
			if (o->steps < 1)
				o->steps = 1;
		} else if (!o->steps) {
			uint64_t w = (shards_tokens(t->train) - 1) / (uint64_t)t->T;

			o->steps = w / ((uint64_t)t->B * t->accum);
			if (o->steps < 1)
				o->steps = 1;
		}
		if (!resuming && !given[train_opt_index("warmup")] && !t->sft && !t->lstm)
			o->warmup = o->steps / 20;
	}
	if (resuming && ck.step >= o->steps) {
		/* a finished run: nothing is written, not even the config; but
		 * its checkpoint must be sound for that to be true */
		if (ckpt_verify(&ck) != 0)
			die_resume(o->out, file, ck.err);
		if (t->rank != 0)
			;
		else if (ck.step == o->steps)
			fprintf(stderr, "gpt-train: run '%s' is already at step %" PRIu64 " of %" PRIu64
				": nothing to do (a larger --steps trains on)\n", o->out, ck.step, o->steps);
		else
			fprintf(stderr, "gpt-train: run '%s' is at step %" PRIu64 ", past --steps %" PRIu64
				": nothing to do (a larger --steps trains on)\n", o->out, ck.step, o->steps);
		ckpt_close(&ck);
		trainer_free(t);
		free(file);
		train_opts_free(o);
		dist_finalize();
		return EXIT_OK;
	}
	t->sched.lr = (float)o->lr;
	t->sched.warmup = (long)o->warmup;
	t->sched.total = (long)o->steps;
	t->sched.decay = (long)((double)o->steps * o->decay_frac);
	t->sched.floor = (float)o->min_lr_frac;

	if (!t->sft) {
	shards_iter_init(t->train, (uint32_t)t->T, o->seed, 1, 0, 1);
	if (shards_windows(t->train) < 1)
		die("training shards hold fewer than %d tokens: '%s'", t->T + 1, o->train);
	}
	if (t->lstm) {
		t->row_len = (shards_tokens(t->train) - 1) / (uint64_t)t->B;
		t->row_windows = t->row_len / (uint64_t)t->T;
		if (t->row_windows < 1)
			die("training shards hold fewer than %d x %d tokens, one window for each of the "
			    "lstm's streams: '%s'", t->B, t->T + 1, o->train);
	}
	if (!t->sft && t->have_val && shards_tokens(t->val) < (uint64_t)t->T * (uint64_t)t->B + 1)
		die("validation shards hold fewer than one batch of %d x %d tokens: '%s'",
		    t->B, t->T, o->val);

	{
		struct gpt_model m;
		struct adamw_config ac = { (float)o->beta1, (float)o->beta2, (float)o->eps,
					   (float)o->weight_decay };

		gpt_model_init(&m, &t->cfg);
		t->e = engine_open(ops == &engine_cpu ? "cpu" : o->device, &m);
		if (t->cls && !t->e->ops->classify)
			die("the %s engine cannot train a classifier yet; give --device cpu",
			    t->e->ops->name);
		if (t->zero)
			zero_init(t, &ac);
		else
			engine_optim(t->e, &ac);
		/* a classifier's frozen tensors: no update, no decay */
		for (int i = 0; t->cls && i < t->e->model.n_tensors; i++)
			if (!gpt_tensor_trainable(&t->e->model.layout, i, t->trainable, t->cfg.n_layer))
				adamw_add_frozen(&t->e->opt, t->e->model.tensors[i].offset,
						 t->e->model.tensors[i].size);
		comm_setup(t);
		t->n_state = engine_state_floats(t->e, t->B);
		if (t->lstm)
			t->state = xcalloc(t->n_state, sizeof *t->state);
		if ((t->world > 1 && !t->device_comm) || t->zero)
			t->gbuf = xmalloc(xmul(t->e->model.n_params, sizeof *t->gbuf));
	}
	gpt_rng_seed(&t->rng, o->seed);
	if (resuming) {
		struct adamw *opt = t->zero ? &t->zopt : &t->e->opt;

		modelio_match(&ck, &t->e->model);
		if (ckpt_read_params(&ck, t->e->model.params) != 0)
			die_resume(o->out, file, ck.err);
		if (!t->zero) {
			if (ckpt_read_optim(&ck, opt->m, opt->v) != 0)
				die_resume(o->out, file, ck.err);
		} else {
			/* the whole state, then this rank's slice of it */
			size_t n = t->e->model.n_params;
			float *m = xmalloc(xmul(n, sizeof *m)), *v = xmalloc(xmul(n, sizeof *v));

			if (ckpt_read_optim(&ck, m, v) != 0)
				die_resume(o->out, file, ck.err);
			memcpy(opt->m, m + t->zoff, t->zcnt * sizeof *m);
			memcpy(opt->v, v + t->zoff, t->zcnt * sizeof *v);
			free(m);
			free(v);
		}
		opt->step = (long)ck.adam_step;
		t->step = ck.step;
		t->tokens = ck.tokens;
		memcpy(t->rng.s, ck.rng, sizeof t->rng.s);
		trainer_state_restore(t, ck.loader, ck.loader_len, ck.path);
		t->last_ckpt = ckpt_run_path(o->out, t->step);
		t->saved_step = t->step;
		if (!t->quiet)
			fprintf(stderr, "gpt-train: resuming from '%s' at step %" PRIu64 "\n", t->last_ckpt, t->step);
		ckpt_close(&ck);
	} else if (o->init) {
		struct ckpt ic;

		if (ckpt_open(&ic, o->init) != 0)
			die("%s", ic.err);
		if (t->cls) {
			/* the language model's tensors come first: read them over a
			 * fresh initialisation, which gives the new head */
			struct ckpt_tensor *want = modelio_tensors(&t->e->model);

			gpt_model_init_weights(&t->e->model, o->seed);
			if (ic.n_tensors + 2 != (uint32_t)t->e->model.n_tensors ||
			    ckpt_match_tensors(&ic, want, ic.n_tensors) < 0)
				die("checkpoint does not fit the classifier's model: %s", ic.err);
			free(want);
		} else {
			modelio_match(&ic, &t->e->model);
		}
		if (ckpt_read_params(&ic, t->e->model.params) != 0)
			die("%s", ic.err);
		ckpt_close(&ic);
	} else {
		gpt_model_init_weights(&t->e->model, o->seed);
	}
	engine_plan(t->e, t->B, t->T, 1, o->recompute);
	engine_push(t->e);
	if (t->lstm)   /* the state the checkpoint carried, or zeros */
		engine_state_set(t->e, resuming ? t->state : NULL, t->B);
	if (!t->quiet) {
		char dev[320];

		engine_describe(t->e, dev, sizeof dev);
		fprintf(stderr, "gpt-train: training on %s%s%s%s\n", dev, why[0] ? ": " : "", why,
			o->recompute && t->e->ops != &engine_cpu
				? ", recomputing LayerNorm and GELU in the backward pass" : "");
	}
	if (o->recompute && t->e->ops == &engine_cpu)
		warnx("--recompute has no effect on the cpu engine (it keeps every activation)");
	t->batch = xmalloc(xmul((size_t)t->B * ((size_t)t->T + 1), sizeof *t->batch));
	t->inputs = xmalloc(xmul((size_t)t->B * (size_t)t->T, sizeof *t->inputs));
	t->targets = xmalloc(xmul((size_t)t->B * (size_t)t->T, sizeof *t->targets));

	if (!t->have_vocab && !o->vocab && vocab_builtin(t->tokenizer)) {
		/* a built-in vocabulary (bytes) needs no file to print samples */
		vocab_load(&t->vocab, t->tokenizer);
		t->have_vocab = 1;
	} else if (!t->have_vocab && (o->vocab || (getenv("GPT_VOCAB") &&
			 strcmp(t->tokenizer, "gpt2") == 0 && t->cfg.vocab_size == 50257))) {
		char *vp = vocab_locate(o->vocab, 1);

		vocab_load(&t->vocab, vp);
		free(vp);
		t->have_vocab = 1;
	}

	/* before anything is written: a job whose ranks disagree leaves the
	 * run folder as it was */
	check_ranks_agree(t);
	if (t->rank == 0) {
		if (resuming)
			open_run_dir(t, chosen ? file : NULL);
		else
			make_run_dir(t, o->out);
		open_log(t, resuming);
		write_config_file(t);
	}
	free(file);
	if (!t->quiet)
		print_config(t);

	/* Train. */
	start_step = t->step;
	toks_per_step = t->accum * (uint64_t)t->B * (uint64_t)t->T;
	progress_init(&prog, pmode, plabel, "tok",
		      o->steps > start_step ? (o->steps - start_step) * toks_per_step : 0);
	snprintf(plabel, sizeof plabel, "gpt-train");
	stop_clear_line = prog.on;
	t0 = tlast = progress_now();
	if (t->step == 0 && !t->logged0 && t->have_val && o->val_every && !stopping(t)) {
		double val = validate(t);

		if (!isnan(val)) {
			if (t->rank == 0)
				log_line0(t, val, t->elapsed0 + (progress_now() - t0));
			if (!t->quiet)
				fprintf(stderr, "gpt-train: step 0 val loss %.4f\n", val);
		}
	}
	while (t->step < o->steps && !stopping(t)) {
		float lr = lr_schedule_at(&t->sched, (long)t->step), norm;
		double loss = 0, val = NAN, now, agree[2];
		int skip = 0;

		tlast = progress_now();
		/* this rank's part, then the loss and the stop flag summed over
		 * the ranks: every rank sees the same loss and stops after the
		 * same step, whichever rank the signal reached */
		agree[0] = step_grads(t);
		agree[1] = stop_sig ? 1 : 0;
		dist_sum_f64(agree, 2);
		loss = agree[0] / (double)t->step_div;
		t->stop = agree[1] > 0;
		if (!isfinite(loss)) {
			progress_end(&prog);
			die("loss is %s at step %" PRIu64 "; stopping, the last good checkpoint is %s%s%s",
			    isnan(loss) ? "nan" : "infinite", t->step + 1,
			    t->last_ckpt ? "'" : "", t->last_ckpt ? t->last_ckpt : "none",
			    t->last_ckpt ? "'" : "");
		}
		norm = reduce_grads(t);
		if (!isfinite(norm)) {
			progress_end(&prog);
			die("gradient norm is not finite at step %" PRIu64 "; stopping, the last good checkpoint is %s%s%s",
			    t->step + 1, t->last_ckpt ? "'" : "", t->last_ckpt ? t->last_ckpt : "none",
			    t->last_ckpt ? "'" : "");
		}
		if (o->skip_z > 0) {
			double zl = ema_z(&t->loss_ema, loss), zn = ema_z(&t->norm_ema, norm);

			skip = zl > o->skip_z || zn > o->skip_z;
			if (skip) {
				progress_end(&prog);
				warnx("step %" PRIu64 " skipped: loss %.4f (%.1f sigma), grad norm %.4f (%.1f sigma)",
				      t->step + 1, loss, zl, (double)norm, zn);
			} else {
				ema_add(&t->loss_ema, loss);
				ema_add(&t->norm_ema, norm);
			}
		}
		if (!skip)
			optimizer_step(t, lr, norm);
		t->step++;
		t->tokens += t->step_tokens;
		now = progress_now();
		if (t->have_val && o->val_every && (t->step % o->val_every == 0 || t->step == o->steps))
			val = validate(t);
		if (t->rank == 0)
			log_line(t, loss, val, lr, norm, (double)t->step_tokens / (now - tlast),
				 t->elapsed0 + (progress_now() - t0));
		if (!isnan(val) && !t->quiet) {
			progress_end(&prog);
			fprintf(stderr, "gpt-train: step %" PRIu64 " val loss %.4f\n", t->step, val);
		}
		if (o->sample_every && t->step % o->sample_every == 0 && !t->quiet) {
			progress_end(&prog);
			sample(t);
		}
		if (o->ckpt_every && t->step % o->ckpt_every == 0 && t->step < o->steps && !stopping(t))
			save_checkpoint(t);
		snprintf(plabel, sizeof plabel, "step %" PRIu64 "/%" PRIu64 " loss %.4f", t->step,
			 o->steps, loss);
		progress_update(&prog, (t->step - start_step) * toks_per_step);
	}
	progress_end(&prog);
	tlast = progress_now();
	if (!t->last_ckpt || t->saved_step != t->step)
		save_checkpoint(t);
	else
		engine_pull(t->e);
	check_weights(t, 1);
	if (t->rank == 0 && fclose(t->log) != 0)
		die_errno("cannot close the log in '%s'", o->out);
	if (t->world > 1 && !t->quiet && t->step > start_step && tlast > t0) {
		double job = (double)(t->step - start_step) * (double)toks_per_step / (tlast - t0);

		fprintf(stderr, "gpt-train: %.0f tokens/s for the job, %.0f per rank (%d ranks)\n",
			job, job / t->world, t->world);
	}
	if (engine_peak_bytes(t->e) && !t->quiet)
		fprintf(stderr, "gpt-train: peak gpu memory %.2f GiB\n",
			(double)engine_peak_bytes(t->e) / 1073741824.0);
	trainer_free(t);
	if (stopping(t) && t->rank == 0)
		fprintf(stderr, "gpt-train: stopped by signal at step %" PRIu64 "; saved '%s'; continue with --resume %s\n",
			t->step, t->last_ckpt, o->out);
	else if (!t->quiet)
		fprintf(stderr, "gpt-train: done at step %" PRIu64 "; saved '%s'\n", t->step, t->last_ckpt);
	free(t->last_ckpt);
	train_opts_free(o);
	dist_finalize();
	return EXIT_OK;
}
