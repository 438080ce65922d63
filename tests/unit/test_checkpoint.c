/* test_checkpoint: gpt-checkpoint(5) files round-trip every field, and a
 * flipped byte anywhere, a truncation, a wrong magic or version are all
 * refused with a message naming the file; ckpt_verify catches a flip in
 * the weights that ckpt_open does not read; the run folder keeps `latest`,
 * prunes old checkpoints, names the newest one that verifies and loses
 * the temporaries of a killed save. */
#include "test.h"
#include "checkpoint.h"
#include "model.h"
#include "modelio.h"
#include "err.h"
#include "io.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define NP 1000u

static float params[NP], mom[NP], var[NP];
static struct ckpt_tensor tensors[3] = {
	{ "wte", 0, 2, { 10, 50, 0, 0 }, 0, 500 },
	{ "h.0.w", 0, 3, { 5, 4, 20, 0 }, 500, 400 },
	{ "ln.b", 0, 1, { 100, 0, 0, 0 }, 900, 100 },
};

static void fill(struct ckpt *c)
{
	static char loader[] = "loader\0bytes";
	static char settings[] = "lr 0.001\nbatch 4\n";

	for (unsigned i = 0; i < NP; i++) {
		params[i] = (float)i * 0.25f - 3.0f;
		mom[i] = (float)i * 1e-3f;
		var[i] = (float)i * 1e-6f;
	}
	memset(c, 0, sizeof *c);
	c->model = (struct ckpt_model){ 2, 4, 64, 32, 50257, 50304, 1, 1, 0, 0, 0, 0 };
	c->sched = (struct ckpt_schedule_cfg){ CKPT_SCHED_WSD, 6e-4, 0.1, 100, 5000, 700,
					       0.1, 0.9, 0.95, 1e-8, 1.0 };
	c->step = 1234;
	c->tokens = 987654321;
	c->adam_step = 1230;
	c->rng[0] = 1; c->rng[1] = UINT64_MAX; c->rng[2] = 3; c->rng[3] = 0x0123456789abcdefull;
	strcpy(c->tokenizer, "gpt2");
	c->n_params = NP;
	c->n_tensors = 3;
	c->has_optim = 1;
	c->tensors = tensors;
	c->params = params;
	c->m = mom;
	c->v = var;
	c->loader = loader;
	c->loader_len = sizeof loader;
	c->settings = settings;
	c->settings_len = strlen(settings);
}

static void copy_file(const char *from, const char *to)
{
	size_t n;
	unsigned char *b = io_read_file(from, 1 << 26, &n);
	FILE *f = fopen(to, "wb");

	fwrite(b, 1, n, f);
	fclose(f);
	free(b);
}

static void test_roundtrip(void)
{
	struct ckpt w, r;
	float p2[NP], m2[NP], v2[NP];
	const char *p = test_path("a.gpt");

	fill(&w);
	ckpt_write(&w, p);
	CHECK(ckpt_open(&r, p) == 0, "open: %s", r.err);
	CHECK(memcmp(&r.model, &w.model, sizeof r.model) == 0, "model config");
	CHECK(r.sched.kind == CKPT_SCHED_WSD && r.sched.lr == 6e-4 && r.sched.min_lr_frac == 0.1 &&
	      r.sched.warmup == 100 && r.sched.total_steps == 5000 && r.sched.decay == 700 && r.sched.weight_decay == 0.1 &&
	      r.sched.beta1 == 0.9 && r.sched.beta2 == 0.95 && r.sched.eps == 1e-8 &&
	      r.sched.clip == 1.0, "schedule");
	CHECK(r.step == 1234 && r.tokens == 987654321 && r.adam_step == 1230, "counters");
	CHECK(memcmp(r.rng, w.rng, sizeof r.rng) == 0, "rng");
	CHECK(strcmp(r.tokenizer, "gpt2") == 0, "tokenizer %s", r.tokenizer);
	CHECK(r.n_params == NP && r.n_tensors == 3 && r.has_optim, "sizes");
	CHECK(r.n_tensors == 3 && ckpt_match_tensors(&r, tensors, 3) == 0, "tensors: %s", r.err);
	CHECK(r.loader_len == w.loader_len && memcmp(r.loader, w.loader, w.loader_len) == 0, "loader");
	CHECK(strcmp(r.settings, w.settings) == 0, "settings '%s'", r.settings);
	CHECK(ckpt_read_params(&r, p2) == 0, "params: %s", r.err);
	CHECK(memcmp(p2, params, sizeof p2) == 0, "params equal");
	CHECK(ckpt_read_optim(&r, m2, v2) == 0, "optim: %s", r.err);
	CHECK(memcmp(m2, mom, sizeof m2) == 0 && memcmp(v2, var, sizeof v2) == 0, "m, v equal");
	ckpt_close(&r);
}

static void test_weights_only(void)
{
	struct ckpt w, r;
	float p2[NP], m2[NP], v2[NP];
	struct ckpt_tensor other[3];
	const char *p = test_path("w.gpt");

	fill(&w);
	w.has_optim = 0;
	w.loader = NULL;
	w.settings = NULL;
	ckpt_write(&w, p);
	CHECK(ckpt_open(&r, p) == 0, "open: %s", r.err);
	CHECK(!r.has_optim && r.loader_len == 0 && r.settings_len == 0, "no optimizer state");
	CHECK(ckpt_read_params(&r, p2) == 0 && memcmp(p2, params, sizeof p2) == 0, "params");
	CHECK(ckpt_read_optim(&r, m2, v2) != 0 && strstr(r.err, "weights only"), "optim refused: %s", r.err);
	memcpy(other, tensors, sizeof other);
	other[1].shape[0] = 4;
	other[1].shape[1] = 5;
	CHECK(ckpt_match_tensors(&r, other, 3) != 0 && strstr(r.err, "h.0.w"), "mismatch: %s", r.err);
	ckpt_close(&r);
}

/* Flip one byte at many offsets: every section's damage must be caught,
 * either at open or when the section is read. */
static void test_corrupt_every_region(void)
{
	struct ckpt w, r;
	float p2[NP], m2[NP], v2[NP];
	const char *good = test_path("a.gpt"), *bad = test_path("bad.gpt");
	struct stat st;
	int missed = 0, tried = 0;
	char msg[sizeof r.err];

	fill(&w);
	ckpt_write(&w, good);
	stat(good, &st);
	for (off_t off = 0; off < st.st_size; off += 37) {
		int fd, caught;
		unsigned char b;

		copy_file(good, bad);
		fd = open(bad, O_RDWR);
		pread(fd, &b, 1, off);
		b ^= 0x40;
		pwrite(fd, &b, 1, off);
		close(fd);
		tried++;
		caught = ckpt_open(&r, bad) != 0;
		if (!caught) {
			caught = ckpt_read_params(&r, p2) != 0 || ckpt_read_optim(&r, m2, v2) != 0;
			memcpy(msg, r.err, sizeof msg);
			ckpt_close(&r);
		} else {
			memcpy(msg, r.err, sizeof msg);
		}
		/* Padding between sections is not covered: it is zero and
		 * carries nothing. */
		if (!caught) {
			uint64_t o = (uint64_t)off;
			int in_section = 0;

			fill(&w);
			ckpt_open(&r, good);
			for (int s = 0; s < CKPT_NSEC; s++)
				if (o >= r.sec_off[s] && o < r.sec_off[s] + r.sec_len[s])
					in_section = 1;
			ckpt_close(&r);
			if (o < CKPT_HEADER_BYTES || in_section)
				missed++;
		} else {
			CHECK(strstr(msg, bad) != NULL, "message names the file: %s", msg);
		}
	}
	CHECK(tried > 50 && missed == 0, "%d of %d flips missed", missed, tried);
}

static void test_truncated(void)
{
	struct ckpt w, r;
	const char *good = test_path("a.gpt"), *bad = test_path("short.gpt");
	struct stat st;

	fill(&w);
	ckpt_write(&w, good);
	stat(good, &st);
	copy_file(good, bad);
	CHECK(truncate(bad, st.st_size - 1) == 0, "truncate");
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "truncated"), "one byte short: %s", r.err);
	CHECK(truncate(bad, 100) == 0, "truncate");
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "truncated"), "header cut: %s", r.err);
	CHECK(truncate(bad, 0) == 0, "truncate");
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "truncated"), "empty: %s", r.err);
	copy_file(good, bad);
	{
		FILE *f = fopen(bad, "ab");

		fputs("x", f);
		fclose(f);
	}
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "trailing"), "longer: %s", r.err);
	CHECK(ckpt_open(&r, test_path("missing.gpt")) != 0 && strstr(r.err, "missing.gpt"),
	      "missing: %s", r.err);
}

static void test_magic_version(void)
{
	struct ckpt w, r;
	const char *good = test_path("a.gpt"), *bad = test_path("v.gpt");
	unsigned char b = 4;
	int fd;

	fill(&w);
	ckpt_write(&w, good);
	copy_file(good, bad);
	fd = open(bad, O_RDWR);
	pwrite(fd, &b, 1, 8);
	close(fd);
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "version 4"), "version: %s", r.err);
	fd = open(bad, O_RDWR);
	pwrite(fd, "GPTX", 4, 0);
	close(fd);
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "magic"), "magic: %s", r.err);
}

/* A classifier's checkpoint is version 2, with its classes and labels;
 * a language model's stays version 1, as every earlier reader expects;
 * labels that do not name the classes are refused. */
static void test_classifier(void)
{
	struct ckpt w, r;
	const char *lm = test_path("lm.gpt"), *cl = test_path("cls.gpt"), *bad = test_path("b.gpt");
	static char labels[] = "ham\nspam\neggs\n", two[] = "ham\nspam\n";
	unsigned char v[4];
	int fd;

	fill(&w);
	ckpt_write(&w, lm);
	fd = open(lm, O_RDONLY);
	CHECK(pread(fd, v, 4, 8) == 4 && v[0] == 1 && !v[1] && !v[2] && !v[3], "a language model: version 1");
	close(fd);
	CHECK(ckpt_open(&r, lm) == 0 && r.model.classes == 0 && r.labels == NULL, "no labels: %s", r.err);
	ckpt_close(&r);
	w.model.classes = 3;
	w.labels = labels;
	w.labels_len = strlen(labels);
	ckpt_write(&w, cl);
	fd = open(cl, O_RDONLY);
	CHECK(pread(fd, v, 4, 8) == 4 && v[0] == 2, "a classifier: version 2");
	close(fd);
	CHECK(ckpt_open(&r, cl) == 0, "open: %s", r.err);
	CHECK(r.model.classes == 3 && r.labels && strcmp(r.labels, labels) == 0,
	      "classes %u, labels '%s'", r.model.classes, r.labels ? r.labels : "");
	CHECK(strcmp(r.settings, w.settings) == 0 && r.step == 1234, "the rest as before");
	ckpt_close(&r);
	w.labels = two;
	w.labels_len = strlen(two);
	ckpt_write(&w, bad);
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "labels do not name its 3 classes"),
	      "two labels for three classes: %s", r.err);
	w.labels = NULL;
	w.labels_len = 0;
	ckpt_write(&w, bad);
	CHECK(ckpt_open(&r, bad) != 0 && strstr(r.err, "without labels"), "no labels: %s", r.err);
}

/* A classifier through modelio: saved with its labels, loaded back with
 * the same weights and labels; programs of language models refuse it. */
static void need_lm_child(const char *path)
{
	struct gpt_model m;
	modelio_load(path, &m, NULL);
	modelio_need_lm(&m, path);
}

static void test_classifier_model(void)
{
	struct gpt_config c = { .n_layer = 2, .n_head = 2, .n_embd = 16, .n_ctx = 8, .vocab_size = 61,
				 .tied = 1, .bias = 1, .qkv_bias = 1, .n_classes = 3 };
	struct gpt_model m, b;
	const char *path = test_path("clsm.gpt");
	char *labels = NULL, err[512];
	int st;

	gpt_config_finish(&c);
	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, 5);
	modelio_save_labels(&m, "gpt2", "no\nyes\nmaybe\n", path);
	modelio_load_labels(path, &b, NULL, &labels);
	CHECK(b.cfg.n_classes == 3 && b.n_params == m.n_params &&
	      memcmp(b.params, m.params, m.n_params * sizeof(float)) == 0, "weights back");
	CHECK(labels && strcmp(labels, "no\nyes\nmaybe\n") == 0, "labels back: '%s'",
	      labels ? labels : "");
	st = test_child(need_lm_child, path, err, sizeof err);
	CHECK(st == 1 && strstr(err, "a classifier of 3 classes, not a language model"),
	      "a language-model program refuses it: %d '%s'", st, err);
	free(labels);
	gpt_model_free(&b);
	gpt_model_free(&m);
}

static void test_run_folder(void)
{
	struct ckpt w, r;
	const char *run = test_path("run");
	size_t n;
	uint64_t *steps;
	char target[64];
	ssize_t tl;

	mkdir(run, 0755);
	fill(&w);
	for (uint64_t s = 10; s <= 50; s += 10) {
		char *p = ckpt_run_path(run, s);

		w.step = s;
		ckpt_write(&w, p);
		ckpt_run_set_latest(run, s);
		free(p);
	}
	steps = ckpt_run_list(run, &n);
	CHECK(n == 5 && steps[0] == 10 && steps[4] == 50, "list %zu", n);
	free(steps);
	tl = readlink(test_path("run/latest"), target, sizeof target - 1);
	CHECK(tl > 0, "latest is a link");
	target[tl > 0 ? tl : 0] = '\0';
	CHECK(strcmp(target, "ckpt-00000050.gpt") == 0, "latest -> %s", target);
	CHECK(ckpt_open(&r, run) == 0 && r.step == 50, "open the run folder: %s", r.err);
	ckpt_close(&r);
	/* latest names an older one: pruning must keep it. */
	ckpt_run_set_latest(run, 20);
	CHECK(ckpt_run_prune(run, 2) == 3, "pruned three");
	steps = ckpt_run_list(run, &n);
	CHECK(n == 2 && steps[0] == 20 && steps[1] == 50, "kept 20 and 50 (%zu)", n);
	free(steps);
	CHECK(ckpt_run_prune(run, 0) == 0, "keep 0 keeps all");
}

/* Touch RUN/NAME (empty). */
static void touch(const char *run, const char *name)
{
	char p[1024];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", run, name);
	f = fopen(p, "w");
	if (f)
		fclose(f);
}

/* A flip in the weights passes ckpt_open but not ckpt_verify; the newest
 * checkpoint that verifies skips it and every newer one; the temporaries
 * of a killed save go, other files stay. */
static void test_verify_and_clean(void)
{
	struct ckpt w, r;
	const char *run = test_path("vrun");
	char *p, *good;
	int fd;

	mkdir(run, 0755);
	fill(&w);
	for (uint64_t s = 1; s <= 3; s++) {
		p = ckpt_run_path(run, s);
		w.step = s;
		ckpt_write(&w, p);
		free(p);
	}
	ckpt_run_set_latest(run, 3);
	CHECK(ckpt_open(&r, run) == 0 && ckpt_verify(&r) == 0, "a sound file verifies: %s", r.err);
	ckpt_close(&r);
	good = ckpt_run_newest_good(run, NULL);
	CHECK(good && strstr(good, "ckpt-00000003.gpt"), "newest good of all: %s", good ? good : "none");
	free(good);
	/* flip a byte in the AdamW first moments of step 3 */
	p = ckpt_run_path(run, 3);
	CHECK(ckpt_open(&r, p) == 0, "open: %s", r.err);
	{
		off_t at = (off_t)r.sec_off[CKPT_SEC_M] + 8;

		ckpt_close(&r);
		fd = open(p, O_WRONLY);
		CHECK(fd >= 0 && pwrite(fd, "\x55", 1, at) == 1, "flip");
		close(fd);
	}
	CHECK(ckpt_open(&r, p) == 0, "the flip is in the weights or moments: %s", r.err);
	CHECK(ckpt_verify(&r) != 0 && strstr(r.err, "corrupt") && strstr(r.err, "ckpt-00000003.gpt"),
	      "verify: %s", r.err);
	ckpt_close(&r);
	good = ckpt_run_newest_good(run, NULL);
	CHECK(good && strstr(good, "ckpt-00000002.gpt"), "newest good: %s", good ? good : "none");
	free(good);
	{
		char *two = ckpt_run_path(run, 2);

		good = ckpt_run_newest_good(run, two);
		CHECK(good && strstr(good, "ckpt-00000001.gpt"), "older than 2: %s", good ? good : "none");
		free(good);
		free(two);
	}
	free(p);

	touch(run, ".ckpt-00000004.gpt.tmp.Ab12Cd");
	touch(run, ".latest.tmp.1234");
	touch(run, ".log.tsv.tmp.xYz123");
	touch(run, ".config.tmp.000000");
	touch(run, ".notes.tmp.1");
	touch(run, "ckpt-notes.tmp.1");
	CHECK(ckpt_run_clean(run) == 4, "four temporaries removed");
	CHECK(access(test_path("vrun/.notes.tmp.1"), F_OK) == 0 &&
	      access(test_path("vrun/ckpt-notes.tmp.1"), F_OK) == 0, "other files stay");
	CHECK(access(test_path("vrun/.latest.tmp.1234"), F_OK) != 0, "latest's temporary went");
	CHECK(ckpt_run_clean(run) == 0, "nothing left to remove");
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_weights_only);
	RUN(test_corrupt_every_region);
	RUN(test_truncated);
	RUN(test_magic_version);
	RUN(test_classifier);
	RUN(test_classifier_model);
	RUN(test_run_folder);
	RUN(test_verify_and_clean);
	return TEST_END();
}
