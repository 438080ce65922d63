/* test_train: the trainer driven as a library (train.h), on the CPU
 * engine: a resumed run continues bit for bit and logs the step-0
 * validation loss once, a run that blows up stops naming the step and
 * keeps its last good checkpoint, gradient accumulation adds up to the
 * whole batch, a locked run folder is left alone, and AdamW's constants
 * are range checked.  Each train_run runs in a child process (test.h's
 * test_child), since the trainer exits on errors. */
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "engine.h"
#include "err.h"
#include "io.h"
#include "shard.h"
#include "train.h"

/* A little language over 40 ids: words of 2-4 ids from a fixed list,
 * separated by id 1, so that a model has something to learn. */
static void write_shard(const char *path, uint64_t seed, size_t n)
{
	static const uint32_t words[8][4] = {
		{5, 6, 0, 0}, {7, 8, 9, 0}, {10, 11, 12, 13}, {14, 15, 0, 0},
		{20, 21, 22, 0}, {30, 31, 0, 0}, {33, 34, 35, 36}, {38, 39, 0, 0},
	};
	struct shard_params p = { 40, 0, 0, 1, "tiny", 1 };
	struct shard_writer w;
	struct gpt_rng r;
	uint32_t *ids = xmalloc(n * sizeof *ids);
	size_t k = 0;

	gpt_rng_seed(&r, seed);
	while (k < n) {
		const uint32_t *wd = words[gpt_rng_next(&r) % 8];
		for (int i = 0; i < 4 && wd[i] && k < n; i++)
			ids[k++] = wd[i];
		if (k < n)
			ids[k++] = 1;
	}
	shardw_open(&w, path, &p);
	shardw_write(&w, ids, n);
	shardw_commit(&w, NULL);
	free(ids);
}

/* The settings of a tiny run into run folder out; more[] are extra
 * "name", "value" pairs, NULL-ended ("resume" first: those alone). */
static void tiny_run(struct train_opts *o, int *given, const char *out, const char *const *more)
{
	const char *base[] = {
		"train", test_path("d-train-000000.tok.zst"),
		"val", test_path("d-val-000000.tok.zst"),
		"layers", "2", "heads", "2", "width", "16", "context", "16",
		"batch", "2", "steps", "8", "lr", "3e-3", "val-every", "2",
		"val-batches", "2", "checkpoint-every", "4", "keep", "0", "threads", "1",
		"seed", "7", "device", "cpu", NULL,
	};

	train_opts_default(o);
	memset(given, 0, (size_t)train_n_optdefs * sizeof *given);
	/* a resumed run takes its settings from the checkpoint */
	for (int pass = more && strcmp(more[0], "resume") == 0; pass < 2; pass++) {
		const char *const *kv = pass ? more : base;
		for (int i = 0; kv && kv[i]; i += 2) {
			int idx = train_opt_index(kv[i]);
			if (strcmp(train_optdefs[idx].name, kv[i]) != 0) {
				fprintf(stderr, "no setting '%s'\n", kv[i]);
				exit(3);
			}
			train_opts_set(o, idx, kv[i + 1]);
			given[idx] = 1;
		}
	}
	if (out) {
		free(o->out);
		o->out = xstrdup(out);
	}
	o->progress = PROGRESS_QUIET;
}

/* What the child runs: train_run with these settings. */
static struct {
	const char *out;
	const char *const *more;
} job;

static void child_train(const char *arg)
{
	struct train_opts o;
	int given[64];

	(void)arg;
	tiny_run(&o, given, job.out, job.more);
	exit(train_run(&o, given));
}

/* Run train_run in a child with the given settings; its status, and its
 * stderr in err. */
static int run_trainer(const char *out, const char *const *more, char *err, size_t cap)
{
	job.out = out;
	job.more = more;
	return test_child(child_train, NULL, err, cap);
}

/* The weights of a checkpoint, or NULL. */
static float *ckpt_weights(const char *path, size_t *n)
{
	struct ckpt c;
	float *w;

	memset(&c, 0, sizeof c);
	if (ckpt_open(&c, path) != 0)
		return NULL;
	w = xmalloc(c.n_params * sizeof *w);
	*n = c.n_params;
	if (ckpt_read_params(&c, w) != 0) {
		free(w);
		w = NULL;
	}
	ckpt_close(&c);
	return w;
}

/* The training-loss column of log.tsv lines from step `from` on. */
static size_t log_losses(const char *run, uint64_t from, char *out, size_t cap)
{
	size_t len = 0, k = 0;
	char name[64], *buf, *line, *next;

	snprintf(name, sizeof name, "%s/log.tsv", run);
	buf = (char *)io_read_file(test_path(name), 1 << 20, &len);

	out[0] = '\0';
	for (line = buf; line && *line; line = next) {
		char *tab;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] < '0' || line[0] > '9' || strtoull(line, NULL, 10) < from)
			continue;
		tab = strchr(strchr(line, '\t') + 1, '\t') + 1;
		*strchr(tab, '\t') = '\0';
		k += (size_t)snprintf(out + k, cap - k, "%s,", tab);
	}
	free(buf);
	return k;
}

/* A run resumed from its step-4 checkpoint (as after a crash that lost
 * steps 5-8) ends with the same weights and losses, bit for bit. */
static void test_resume_bit_for_bit(void)
{
	char err[4096], a[512], b[512];
	size_t na = 0, nb = 0;
	float *wa, *wb;

	CHECK(run_trainer(test_path("a"), NULL, err, sizeof err) == 0, "straight run: %s", err);
	CHECK(run_trainer(test_path("b"), NULL, err, sizeof err) == 0, "second run: %s", err);
	/* b loses everything after step 4 */
	unlink(test_path("b/ckpt-00000008.gpt"));
	ckpt_run_set_latest(test_path("b"), 4);
	{
		const char *more[] = { "resume", test_path("b"), NULL };
		CHECK(run_trainer(NULL, more, err, sizeof err) == 0, "resume: %s", err);
	}
	wa = ckpt_weights(test_path("a/ckpt-00000008.gpt"), &na);
	wb = ckpt_weights(test_path("b/ckpt-00000008.gpt"), &nb);
	CHECK(wa && wb && na == nb && na > 0 && memcmp(wa, wb, na * sizeof *wa) == 0,
	      "weights at step 8 differ after the resume");
	log_losses("a", 5, a, sizeof a);
	log_losses("b", 5, b, sizeof b);
	CHECK(a[0] && strcmp(a, b) == 0, "losses of steps 5-8: straight %s resumed %s", a, b);
	/* the validation loss before the first update leads the log, once */
	{
		size_t len = 0;
		char *log = (char *)io_read_file(test_path("b/log.tsv"), 1 << 20, &len), *z = strstr(log, "\n0\t0\t\t");

		CHECK(z != NULL && strchr(log, '\n') == z, "no step-0 line after the header: %s", log);
		CHECK(z && !strstr(z + 1, "\n0\t"), "the step-0 line twice: %s", log);
		CHECK(z && strtod(z + 6, NULL) > 3 && strtod(z + 6, NULL) < 4.5,
		      "step-0 validation loss not that of an untrained model (ln 40 = 3.69): %s", log);
		free(log);
	}
	/* and the run learned something: its last loss is below ln 40 */
	{
		const char *p = a, *q;
		while ((q = strchr(p, ',')) && q[1])
			p = q + 1;
		CHECK(a[0] && strtod(p, NULL) < log(40.0), "last loss %s of %s", p, a);
	}
	free(wa);
	free(wb);
}

/* A rate that blows the weights up: the run stops at the step whose loss
 * is not finite, names it and the last good checkpoint, which loads. */
static void test_nan_stop(void)
{
	const char *more[] = { "lr", "1e30", "warmup", "0", "schedule", "constant",
	                       "checkpoint-every", "1", "clip", "0", NULL };
	char err[4096];
	size_t n = 0;
	float *w;
	int st = run_trainer(test_path("n"), more, err, sizeof err);

	CHECK(st == 1, "status %d: %s", st, err);
	CHECK((strstr(err, "nan") || strstr(err, "infinite") || strstr(err, "not finite")) &&
	      strstr(err, "at step 2;") && strstr(err, "ckpt-00000001.gpt"),
	      "message: %s", err);
	w = ckpt_weights(test_path("n/latest"), &n);
	CHECK(w != NULL && n > 0, "the last good checkpoint does not load");
	for (size_t i = 0; w && i < n; i++)
		if (!isfinite(w[i])) {
			CHECK(0, "the last good checkpoint holds a weight %g at %zu", w[i], i);
			break;
		}
	free(w);
}

/* Two micro-batches of one sequence at scale 1/2 give the gradient and
 * loss of one micro-batch of two; and a run with --total-batch twice the
 * micro-batch counts the tokens of both. */
static void test_accumulation(void)
{
	struct gpt_config c = { .n_layer = 2, .n_head = 2, .n_embd = 16, .n_ctx = 16,
	                        .vocab_size = 40, .tied = 1, .bias = 1, .qkv_bias = 1 };
	struct gpt_model m;
	struct engine *e;
	uint32_t in[32], tg[32];
	float *g1, *g2;
	double l1, l2, worst = 0;
	struct gpt_rng r;

	gpt_config_finish(&c);
	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, 3);
	e = engine_open("cpu", &m);
	engine_plan(e, 2, 16, 1, 0);
	gpt_rng_seed(&r, 11);
	for (int i = 0; i < 32; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&r) % 40);
		tg[i] = (uint32_t)(gpt_rng_next(&r) % 40);
	}
	g1 = xmalloc(e->model.n_params * sizeof *g1);
	g2 = xmalloc(e->model.n_params * sizeof *g2);
	l1 = train_grads(e, in, tg, 1, 2, 16);
	engine_grads_get(e, g1);
	l2 = train_grads(e, in, tg, 2, 1, 16);
	engine_grads_get(e, g2);
	for (size_t i = 0; i < e->model.n_params; i++) {
		double d = fabs((double)g1[i] - g2[i]) / (fabs(g1[i]) + 1e-6);
		worst = d > worst ? d : worst;
	}
	CHECK(fabs(l1 - l2) < 1e-5 * l1, "loss %.9g vs accumulated %.9g", l1, l2);
	CHECK(worst < 1e-3, "accumulated gradient off by %g", worst);
	CHECK(engine_grad_norm(e) > 0, "no gradient");
	free(g1);
	free(g2);
	engine_close(e);

	{
		const char *more[] = { "total-batch", "64", "steps", "2", NULL };
		char err[4096], *log;
		size_t len = 0;

		CHECK(run_trainer(test_path("acc"), more, err, sizeof err) == 0, "run: %s", err);
		log = (char *)io_read_file(test_path("acc/log.tsv"), 1 << 20, &len);
		CHECK(strstr(log, "\n2\t128\t") != NULL, "two steps of 2 x 2 x 16 tokens: %s", log);
		free(log);
	}
}

/* A run folder another process holds (here the test itself, by
 * io_lock) is refused at once, naming the holder, and left as it was. */
static void test_locked_folder(void)
{
	char err[4096], want[64];
	long holder = 0;
	int st;

	mkdir(test_path("lk"), 0755);
	CHECK(io_lock(test_path("lk/lock"), &holder) == 0, "cannot take the lock");
	st = run_trainer(test_path("lk"), NULL, err, sizeof err);
	snprintf(want, sizeof want, "in use by process %ld", (long)getpid());
	CHECK(st == 1 && strstr(err, want), "status %d: %s", st, err);
	CHECK(access(test_path("lk/log.tsv"), F_OK) != 0 && access(test_path("lk/config"), F_OK) != 0,
	      "the refused run wrote its log or config");
	{
		const char *more[] = { "resume", test_path("lk"), NULL };

		st = run_trainer(NULL, more, err, sizeof err);
		CHECK(st == 1 && strstr(err, want), "--resume: status %d: %s", st, err);
	}
}

static void child_set(const char *arg)
{
	struct train_opts o;
	char name[32];
	const char *eq = strchr(arg, '=');

	snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
	train_opts_default(&o);
	train_opts_set(&o, train_opt_index(name), eq + 1);
	exit(0);
}

/* AdamW's betas in [0, 1), eps > 0: a usage error as the option is read. */
static void test_adamw_ranges(void)
{
	static const char *const bad[] = { "beta1=1", "beta2=1", "beta1=-0.5", "eps=0", "eps=-1e-9" };
	static const char *const good[] = { "beta1=0", "beta2=0.999999", "eps=1e-30", "eps=1" };
	char err[512];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = test_child(child_set, bad[i], err, sizeof err);

		CHECK(st == 2 && strstr(err, "must be"), "%s: status %d: %s", bad[i], st, err);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int st = test_child(child_set, good[i], err, sizeof err);

		CHECK(st == 0, "%s: status %d: %s", good[i], st, err);
	}
}

int main(void)
{
	err_init("test_train");
	write_shard(test_path("d-train-000000.tok.zst"), 1, 20000);
	write_shard(test_path("d-val-000000.tok.zst"), 2, 2000);
	RUN(test_accumulation);
	RUN(test_resume_bit_for_bit);
	RUN(test_nan_stop);
	RUN(test_locked_folder);
	RUN(test_adamw_ranges);
	return TEST_END();
}
