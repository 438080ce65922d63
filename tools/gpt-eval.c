/* gpt-eval: measures checkpoints side by side: loss, perplexity and bits
 * per byte over token shards or a text, HellaSwag and LAMBADA accuracy, on
 * the CPU or (in a build with nvcc) the GPU. */
#include "checkpoint.h"
#include "clsdata.h"
#include "cli.h"
#include "err.h"
#include "engine.h"
#include "eval.h"
#include "modelio.h"
#include "io.h"
#include "model.h"
#include "progress.h"
#include "shard.h"
#include "tokenize.h"
#include "vocab.h"

#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#define TEXT_MAX (1ull << 32)
#define MAX_COLS 64

static void usage(void)
{
	printf("usage: gpt-eval [options] CKPT... [SHARDS]\n"
	       "Evaluates one or more checkpoints (files or run folders) and prints one row\n"
	       "per checkpoint.  SHARDS is a glob of token shards (quote it), also --val.\n"
	       "      --val GLOB       token shards to score (loss, perplexity, bits per byte)\n"
	       "      --text           score the text on stdin instead of shards\n"
	       "  -w, --windows N      score N windows spread evenly over the shards\n"
	       "                       (default: every window)\n"
	       "  -T, --context N      tokens per window (default: the model's context)\n"
	       "  -b, --batch N        windows per forward pass (default 1)\n"
	       "      --hellaswag FILE HellaSwag JSONL: accuracy by summed and by mean loss;\n"
	       "                       val downloads the validation split (checked, cached),\n"
	       "                       as does a URL\n"
	       "      --lambada FILE   LAMBADA JSONL: last-word accuracy (greedy) and perplexity\n"
	       "      --limit N        score only the first N benchmark examples\n"
	       "      --details FILE   one line per benchmark example (for checking)\n"
	       "      --classify FILE  a classifier on labelled texts (label<TAB>text or JSONL):\n"
	       "                       accuracy, per-class precision, recall and F1, confusion\n"
	       "      --json           a JSON array of objects instead of a table\n"
	       "      --tsv            tab-separated values with a header line\n"
	       "      --vocab PATH     tokenizer vocabulary (default: the first checkpoint's\n"
	       "                       built-in one, such as bytes, else the GPT-2 one)\n"
	       "      --offline        never download: the vocabulary and HellaSwag only\n"
	       "                       from the cache\n"
	       "      --device DEV     auto, cpu or cuda (default auto: the GPU when one is usable)\n"
	       "  -j, --threads N      CPU threads (default: all)\n"
	       "  -q, --quiet          no progress line\n"
	       "      --progress       progress line even when stderr is not a terminal\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

struct opts {
	const char *val, *hellaswag, *lambada, *details, *classify;
	int text, json, tsv, batch, context;
	const char *device;       /* --device */
	uint64_t windows, limit;
	enum progress_mode pm;
};

struct row {
	int n;
	const char *key[MAX_COLS];
	char val[MAX_COLS][512];
	int is_str[MAX_COLS];
};

static void put(struct row *r, const char *key, int is_str, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void put(struct row *r, const char *key, int is_str, const char *fmt, ...)
{
	va_list ap;

	if (r->n == MAX_COLS)
		die("internal error: too many columns");
	r->key[r->n] = key;
	r->is_str[r->n] = is_str;
	va_start(ap, fmt);
	vsnprintf(r->val[r->n], sizeof r->val[r->n], fmt, ap);
	va_end(ap);
	r->n++;
}

/* A checkpoint is a run folder, or any file that is not a shard: a file
 * without the checkpoint magic is then refused by name when it is opened
 * (not taken for a glob).  A shard file, or a pattern with a wildcard that
 * names no file, is a shard glob.  A name without a wildcard that names
 * nothing is a missing checkpoint. */
static int is_checkpoint(const char *path)
{
	struct stat st;
	unsigned char head[16];
	FILE *f;
	int shard;

	if (stat(path, &st) != 0)
		return strpbrk(path, "*?[") == NULL;
	if (S_ISDIR(st.st_mode))
		return 1;
	f = fopen(path, "rb");
	if (!f)
		return 1;
	/* a shard opens with a zstd skippable frame, then "GPTSHARD" */
	shard = fread(head, 1, sizeof head, f) == sizeof head && head[0] == 0x50 &&
	        head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18 &&
	        memcmp(head + 8, "GPTSHARD", 8) == 0;
	fclose(f);
	return !shard;
}

/* What the checkpoints hold, read from their headers before any work. */
struct ckpt_info {
	char tokenizer[CKPT_NAME_MAX];
	uint32_t vocab;
};

static void ckpt_peek(const char *path, struct ckpt_info *ci)
{
	struct ckpt c;

	memset(&c, 0, sizeof c);
	if (ckpt_open(&c, path) < 0)
		die("%s", c.err);
	snprintf(ci->tokenizer, sizeof ci->tokenizer, "%s", c.tokenizer);
	ci->vocab = c.model.vocab;
	ckpt_close(&c);
}

/* Shards of another tokenizer hold ids that mean other words to the
 * model: its loss on them is noise, refused as gpt-train refuses them. */
static void check_shards(const struct shards *sh, const struct ckpt_info *ci, const char *path)
{
	if (strcmp(shards_tokenizer(sh), ci->tokenizer) != 0)
		die("checkpoint was trained on tokenizer '%s' but the shards hold '%s': '%s'",
		    ci->tokenizer, shards_tokenizer(sh), path);
	if (shards_vocab(sh) > ci->vocab)
		die("shards hold ids up to %u, beyond the model's vocabulary of %u: '%s'",
		    shards_vocab(sh) - 1, ci->vocab, path);
}

struct shard_src {
	struct shards *s;
	int T;
	uint64_t W, n;           /* windows in the set, windows to score */
	int stream;              /* an LSTM: consecutive windows */
};

static size_t shard_window(void *ctx, uint64_t k, uint32_t *ids, size_t cap)
{
	struct shard_src *src = ctx;
	uint64_t w;

	if (k >= src->n)
		return 0;
	/* evenly spaced: window floor(k * W / n); an LSTM's stream: the
	 * first n in order, its state carried from each to the next */
	w = src->n == src->W || src->stream ? k : (uint64_t)((long double)k * src->W / src->n);
	shards_read(src->s, w * (uint64_t)src->T, ids, cap);
	return cap;
}

struct text_src {
	const uint32_t *ids;
	size_t n;
	int T;
};

static size_t text_window(void *ctx, uint64_t k, uint32_t *ids, size_t cap)
{
	struct text_src *src = ctx;
	size_t at = (size_t)k * (size_t)src->T, len;

	if (at + 1 >= src->n)
		return 0;
	len = src->n - at < cap ? src->n - at : cap;
	memcpy(ids, src->ids + at, len * sizeof *ids);
	return len;
}

static void put_loss(struct row *r, const struct eval_loss *l, int T)
{
	double mean = l->tokens ? l->nats / (double)l->tokens : NAN;

	put(r, "context", 0, "%d", T);
	put(r, "tokens", 0, "%llu", (unsigned long long)l->tokens);
	put(r, "loss", 0, "%.4f", mean);
	put(r, "ppl", 0, "%.3f", exp(mean));
	put(r, "bpb", 0, "%.4f", l->bytes ? l->text_nats / log(2.0) / (double)l->bytes : NAN);
}

static void eval_one(const char *ckpt, const struct opts *o, const struct vocab *v,
                     struct shards *sh, const uint32_t *text_ids, size_t ntext, FILE *details,
                     struct row *r)
{
	struct gpt_model m;
	char tokenizer[CKPT_NAME_MAX];
	int T, B, lstm;
	struct engine *e;

	modelio_load(ckpt, &m, tokenizer);
	modelio_need_lm(&m, ckpt);
	if (strcmp(tokenizer, v->name) != 0)
		warnx("checkpoint was trained with tokenizer '%s', scoring with '%s': '%s'",
		      tokenizer, v->name, ckpt);
	if ((int)v->n_ids > m.cfg.vocab_size && (o->text || o->hellaswag || o->lambada))
		die("vocabulary '%s' has %u ids, the model only %d: '%s'", v->name, v->n_ids,
		    m.cfg.vocab_size, ckpt);
	T = o->context && o->context < m.cfg.n_ctx ? o->context : m.cfg.n_ctx;
	/* An LSTM scores the text or the shards as one stream: one row, its
	 * windows in order, the state carried from each to the next (the
	 * plan starts it at zero), so the loss does not depend on -T. */
	lstm = m.cfg.arch == GPT_ARCH_LSTM;
	B = lstm ? 1 : o->batch;
	e = engine_open(o->device, &m);
	put(r, "checkpoint", 1, "%.511s", ckpt);
	put(r, "params", 0, "%zu", gpt_config_count_params(&e->model.cfg));
	if (sh) {
		struct shard_src src = {sh, T, 0, 0, lstm};
		struct eval_loss l;
		src.W = shards_tokens(sh) > 0 ? (shards_tokens(sh) - 1) / (uint64_t)T : 0;
		if (src.W == 0)
			die("the shards hold fewer than %d tokens, one window", T + 1);
		src.n = o->windows && o->windows < src.W ? o->windows : src.W;
		eval_lm_loss(e, v, shard_window, &src, T, B, &l, o->pm);
		put_loss(r, &l, T);
	}
	if (o->text) {
		struct text_src src = {text_ids, ntext, T};
		struct eval_loss l;
		if (ntext < 2)
			die("the text on stdin is shorter than two tokens");
		eval_lm_loss(e, v, text_window, &src, T, B, &l, o->pm);
		put_loss(r, &l, T);
	}
	for (int k = 0; k < 2; k++) {
		const char *path = k ? o->lambada : o->hellaswag, *name = k ? "lambada" : "hellaswag";
		struct eval_bench b;

		if (!path)
			continue;
		if (details)
			fprintf(details, "# %s %s\n", name, ckpt);
		(k ? eval_lambada : eval_hellaswag)(e, v, path, o->limit, &b, details, o->pm);
		/* put keeps the key: names are literals */
		put(r, k ? "lambada_n" : "hellaswag_n", 0, "%llu", (unsigned long long)b.n);
		put(r, name, 0, "%.4f", b.n ? (double)b.hits / (double)b.n : NAN);
		if (k)
			put(r, "lambada_ppl", 0, "%.3f", b.n ? exp(b.loss / (double)b.n) : NAN);
		else
			put(r, "hellaswag_norm", 0, "%.4f", b.n ? (double)b.hits_norm / (double)b.n : NAN);
	}
	engine_close(e);
}

static void json_string(struct out *o, const char *s);

/* --classify: checkpoint ckpt (a classifier) on the labelled texts of
 * o->classify, in batches; accuracy, macro F1, each class's precision,
 * recall and F1 into r, and the confusion matrix (rows the true classes,
 * columns the predicted) into *cm (k x k, malloc'd), its labels into
 * *labels.  The classes must be those of the first checkpoint (*k set). */
static void eval_classify(const char *ckpt, const struct opts *o, const struct vocab *v,
                          struct row *r, long **cm, char **labels, int *k)
{
	struct gpt_model m;
	struct engine *e;
	struct cls_data d;
	struct cls_opts co = { NULL, NULL, NULL };
	char *lab = NULL, *joined;
	int K, T, B = o->batch > 1 ? o->batch : 16, n = 0, width = 1;
	uint32_t *in;
	int *last;
	float *lg;
	long *c, total = 0, right = 0;
	double f1sum = 0;

	modelio_load_labels(ckpt, &m, NULL, &lab);
	if (!m.cfg.n_classes)
		die("--classify needs a classifier (gpt-train --classify), not a language model: '%s'",
		    ckpt);
	K = m.cfg.n_classes;
	T = o->context && o->context < m.cfg.n_ctx ? o->context : m.cfg.n_ctx;
	if (*labels && (K != *k || strcmp(*labels, lab) != 0))
		die("the classifiers have other classes: '%s'", ckpt);
	joined = xstrdup(lab);
	for (char *p = joined; *p; p++)
		if (*p == '\n')
			*p = p[1] ? ',' : 0;
	co.labels = joined;
	cls_load(&d, o->classify, &co);
	e = engine_open(o->device, &m);
	if (!e->ops->classify) {
		engine_close(e);
		if (strcmp(o->device, "auto") != 0)
			die("the %s engine cannot run a classifier yet; give --device cpu", o->device);
		modelio_load(ckpt, &m, NULL);
		e = engine_open("cpu", &m);
	}
	engine_plan(e, B, T, 0, 0);
	in = xcalloc(xmul((size_t)B, (size_t)T), sizeof *in);
	last = xcalloc((size_t)B, sizeof *last);
	lg = xcalloc(xmul((size_t)B, (size_t)K), sizeof *lg);
	c = xcalloc(xmul((size_t)K, (size_t)K), sizeof *c);
	for (size_t i = 0; i <= d.n; i++) {
		if (n == B || (i == d.n && n > 0)) {
			/* rows packed to the widest, padded with <|endoftext|> */
			uint32_t *packed = xmalloc(xmul((size_t)n * (size_t)width, sizeof *packed));
			for (int b = 0; b < n; b++)
				for (int j = 0; j < width; j++)
					packed[(size_t)b * width + j] = j <= last[b] ? in[(size_t)b * T + j]
					                                             : v->eot;
			engine_classify(e, packed, last, NULL, n, width);
			engine_class_logits(e, n, lg);
			free(packed);
			for (int b = 0; b < n; b++) {
				int best = 0, truth = d.r[i - (size_t)n + (size_t)b].label;
				for (int j = 1; j < K; j++)
					if (lg[(size_t)b * K + j] > lg[(size_t)b * K + best])
						best = j;
				c[(size_t)truth * K + best]++;
				right += best == truth;
				total++;
			}
			n = 0;
			width = 1;
		}
		if (i == d.n)
			break;
		{
			uint32_t *ids = NULL;
			size_t nt = tokenize_text(v, (const unsigned char *)d.r[i].text, d.r[i].len, 0, &ids);
			if (nt == 0) {
				ids = xrealloc(ids, sizeof *ids);
				ids[nt++] = v->eot;
			}
			if (nt > (size_t)T)
				nt = (size_t)T;
			for (size_t j = 0; j < nt; j++)
				if (ids[j] >= (uint32_t)e->model.cfg.vocab_size)
					die("token %u is outside the model's vocabulary of %d", ids[j],
					    e->model.cfg.vocab_size);
			memcpy(in + (size_t)n * T, ids, nt * sizeof *ids);
			last[n] = (int)nt - 1;
			width = (int)nt > width ? (int)nt : width;
			n++;
			free(ids);
		}
	}
	put(r, "checkpoint", 1, "%.511s", ckpt);
	put(r, "params", 0, "%zu", gpt_config_count_params(&e->model.cfg));
	put(r, "texts", 0, "%ld", total);
	put(r, "accuracy", 0, "%.4f", total ? (double)right / (double)total : NAN);
	/* each class's three columns while they fit the table (up to 19
	 * classes); macro F1 always */
	for (int j = 0; j < K; j++) {
		long tp = c[(size_t)j * K + j], col = 0, row = 0;
		double p, rc, f;
		for (int q = 0; q < K; q++) {
			col += c[(size_t)q * K + j];
			row += c[(size_t)j * K + q];
		}
		p = col ? (double)tp / (double)col : 0;
		rc = row ? (double)tp / (double)row : 0;
		f = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
		f1sum += f;
		if (5 + 3 * K > MAX_COLS)
			continue;
		/* the keys name the class: made once, kept for the table */
		put(r, xasprintf("precision_%s", d.labels[j]), 0, "%.4f", p);
		put(r, xasprintf("recall_%s", d.labels[j]), 0, "%.4f", rc);
		put(r, xasprintf("f1_%s", d.labels[j]), 0, "%.4f", f);
	}
	put(r, "macro_f1", 0, "%.4f", f1sum / K);
	engine_close(e);
	cls_free(&d);
	free(in);
	free(last);
	free(lg);
	free(joined);
	if (!*labels) {
		*labels = lab;
		*k = K;
	} else {
		free(lab);
	}
	*cm = c;
}

/* The confusion matrix of each checkpoint, below the table. */
static void print_confusion(struct out *o, char **ckpts, int n, long **cm, const char *labels,
                            int k, int json)
{
	char *lab = xstrdup(labels), **name = xcalloc((size_t)k, sizeof *name), buf[64];
	size_t w = 4;

	for (int j = 0, at = 0; j < k; j++) {
		char *nl = strchr(lab + at, '\n');
		*nl = 0;
		name[j] = lab + at;
		at = (int)(nl - lab) + 1;
		w = strlen(name[j]) > w ? strlen(name[j]) : w;
	}
	for (int i = 0; i < n; i++) {
		if (json) {
			out_write(o, "{\"checkpoint\": ", 15);
			json_string(o, ckpts[i]);
			out_write(o, ", \"confusion\": [", 16);
			for (int a = 0; a < k; a++) {
				out_write(o, a ? ", [" : "[", a ? 3 : 1);
				for (int b = 0; b < k; b++) {
					snprintf(buf, sizeof buf, "%s%ld", b ? ", " : "", cm[i][(size_t)a * k + b]);
					out_write(o, buf, strlen(buf));
				}
				out_putc(o, ']');
			}
			out_write(o, "]}\n", 3);
			continue;
		}
		snprintf(buf, sizeof buf, "\nconfusion of ");
		out_write(o, buf, strlen(buf));
		out_write(o, ckpts[i], strlen(ckpts[i]));
		out_write(o, " (rows: the true class, columns: the predicted)\n", 48);
		snprintf(buf, sizeof buf, "%*s", (int)w, "");
		out_write(o, buf, strlen(buf));
		for (int b = 0; b < k; b++) {
			snprintf(buf, sizeof buf, " %*s", (int)w, name[b]);
			out_write(o, buf, strlen(buf));
		}
		out_putc(o, '\n');
		for (int a = 0; a < k; a++) {
			snprintf(buf, sizeof buf, "%-*s", (int)w, name[a]);
			out_write(o, buf, strlen(buf));
			for (int b = 0; b < k; b++) {
				snprintf(buf, sizeof buf, " %*ld", (int)w, cm[i][(size_t)a * k + b]);
				out_write(o, buf, strlen(buf));
			}
			out_putc(o, '\n');
		}
	}
	free(name);
	free(lab);
}

static void json_string(struct out *o, const char *s)
{
	out_putc(o, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out_putc(o, '\\');
			out_putc(o, c);
		} else if (c < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", c);
			out_write(o, esc, 6);
		} else {
			out_putc(o, c);
		}
	}
	out_putc(o, '"');
}

static void print_rows(struct out *o, const struct row *rows, int n, const struct opts *op)
{
	if (op->json) {
		out_write(o, "[", 1);
		for (int i = 0; i < n; i++) {
			out_write(o, i ? ",\n {" : "{", i ? 4 : 1);
			for (int c = 0; c < rows[i].n; c++) {
				if (c)
					out_write(o, ", ", 2);
				json_string(o, rows[i].key[c]);
				out_write(o, ": ", 2);
				if (rows[i].is_str[c])
					json_string(o, rows[i].val[c]);
				else if (strcmp(rows[i].val[c], "nan") == 0 || strcmp(rows[i].val[c], "inf") == 0)
					out_write(o, "null", 4);
				else
					out_write(o, rows[i].val[c], strlen(rows[i].val[c]));
			}
			out_putc(o, '}');
		}
		out_write(o, "]\n", 2);
		return;
	}
	for (int line = -1; line < n; line++) {
		for (int c = 0; c < rows[0].n; c++) {
			const char *s = line < 0 ? rows[0].key[c] : rows[line].val[c];
			size_t w = strlen(rows[0].key[c]), k = strlen(s);
			if (!op->tsv)
				for (int i = 0; i < n; i++)
					w = strlen(rows[i].val[c]) > w ? strlen(rows[i].val[c]) : w;
			if (c)
				out_putc(o, op->tsv ? '\t' : ' ');
			if (!op->tsv && !rows[0].is_str[c])
				for (size_t i = k; i < w; i++)
					out_putc(o, ' ');
			out_write(o, s, k);
			if (!op->tsv && rows[0].is_str[c] && c + 1 < rows[0].n)
				for (size_t i = k; i < w; i++)
					out_putc(o, ' ');
		}
		out_putc(o, '\n');
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "val", required_argument, NULL, 'A' },
		{ "threads", required_argument, NULL, 'j' },
		{ "text", no_argument, NULL, 'X' },
		{ "windows", required_argument, NULL, 'w' },
		{ "context", required_argument, NULL, 'T' },
		{ "batch", required_argument, NULL, 'b' },
		{ "hellaswag", required_argument, NULL, 'H' },
		{ "lambada", required_argument, NULL, 'L' },
		{ "limit", required_argument, NULL, 'l' },
		{ "details", required_argument, NULL, 'D' },
		{ "classify", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'J' },
		{ "tsv", no_argument, NULL, 'S' },
		{ "vocab", required_argument, NULL, 'V' },
		{ "offline", no_argument, NULL, 'O' },
		{ "device", required_argument, NULL, 'E' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {.batch = 1};
	const char *vocab_path = NULL, *device = "auto";
	char *hellaswag_path = NULL;
	char **ckpts;
	int nckpt = 0, offline, c;
	struct vocab v;
	struct shards *sh = NULL;
	uint32_t *text_ids = NULL;
	size_t ntext = 0;
	struct row *rows;
	struct ckpt_info *info;
	struct out out;
	FILE *details = NULL;
	struct afile details_file;

	err_init(argv[0]);
	io_init();
	offline = 0; /* vocab_locate adds $GPT_OFFLINE, $HF_HUB_OFFLINE */
	while ((c = cli_getopt(argc, argv, "j:w:T:b:qh", longopts)) != -1) {
		switch (c) {
		case 'j': omp_set_num_threads((int)cli_u64("--threads", optarg, 1, 4096)); break;
		case 'A':
			if (o.val)
				die_usage("one shard glob only");
			o.val = optarg;
			break;
		case 'X': o.text = 1; break;
		case 'w': o.windows = cli_u64("--windows", optarg, 1, UINT64_MAX); break;
		case 'T': o.context = (int)cli_u64("--context", optarg, 1, 1u << 20); break;
		case 'b': o.batch = (int)cli_u64("--batch", optarg, 1, 4096); break;
		case 'H': o.hellaswag = optarg; break;
		case 'L': o.lambada = optarg; break;
		case 'l': o.limit = cli_u64("--limit", optarg, 1, UINT64_MAX); break;
		case 'D': o.details = optarg; break;
		case 'C': o.classify = optarg; break;
		case 'J': o.json = 1; break;
		case 'S': o.tsv = 1; break;
		case 'V': vocab_path = optarg; break;
		case 'O': offline = 1; break;
		case 'E': device = optarg; break;
		case 'q': o.pm = PROGRESS_QUIET; break;
		case 'P': o.pm = PROGRESS_FORCE; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option");
		}
	}
	if (o.json && o.tsv)
		die_usage("--json and --tsv cannot be used together");
	ckpts = xcalloc((size_t)argc, sizeof *ckpts);
	for (int i = optind; i < argc; i++) {
		if (is_checkpoint(argv[i]))
			ckpts[nckpt++] = argv[i];
		else if (!o.val)
			o.val = argv[i];
		else
			die_usage("a second shard glob (quote a glob so that the shell leaves it whole): '%s'",
			          argv[i]);
	}
	if (nckpt == 0)
		die_usage("expected at least one checkpoint");
	if (o.val && o.text)
		die_usage("--text and shards cannot be used together");
	if (o.classify && (o.val || o.text || o.hellaswag || o.lambada))
		die_usage("--classify evaluates classifiers alone: no shards, --text or benchmarks");
	if (!o.val && !o.text && !o.hellaswag && !o.lambada && !o.classify)
		die_usage("nothing to evaluate: give shards, --text, --hellaswag, --lambada or "
		          "--classify");
	if (engine_device_check(device) != 0)
		die_usage("unknown device '%s' (auto, cpu, cuda)", device);
	engine_find(device, NULL, 0); /* --device cuda without one fails now */
	o.device = device;
	if (o.hellaswag)
		o.hellaswag = hellaswag_path = eval_hellaswag_locate(o.hellaswag, offline,
		                                                     o.pm == PROGRESS_QUIET);

	/* every checkpoint opens before any is scored */
	info = xcalloc((size_t)nckpt, sizeof *info);
	for (int i = 0; i < nckpt; i++)
		ckpt_peek(ckpts[i], &info[i]);
	vocab_load_for(&v, vocab_path, info[0].tokenizer, offline);
	if (o.val) {
		sh = shards_open(o.val);
		for (int i = 0; i < nckpt; i++)
			check_shards(sh, &info[i], ckpts[i]);
		if (strcmp(shards_tokenizer(sh), v.name) != 0)
			warnx("shards were made with tokenizer '%s', bytes counted with '%s'",
			      shards_tokenizer(sh), v.name);
	}
	if (o.text) {
		size_t len;
		unsigned char *t = io_read_file("-", (size_t)TEXT_MAX, &len);
		ntext = tokenize_text(&v, t, len, 0, &text_ids);
		free(t);
	}
	if (o.details) {
		/* under a temporary name until every example is scored: an
		 * error on the way leaves no partial file */
		int fd;
		afile_open(&details_file, o.details);
		if ((fd = dup(details_file.fd)) < 0 || !(details = fdopen(fd, "w")))
			die_errno("cannot write '%s'", o.details);
	}
	rows = xcalloc((size_t)nckpt, sizeof *rows);
	if (o.classify) {
		long **cm = xcalloc((size_t)nckpt, sizeof *cm);
		char *labels = NULL;
		int k = 0;

		for (int i = 0; i < nckpt; i++)
			eval_classify(ckpts[i], &o, &v, &rows[i], &cm[i], &labels, &k);
		out_init(&out, STDOUT_FILENO, "stdout");
		print_rows(&out, rows, nckpt, &o);
		if (!o.tsv)
			print_confusion(&out, ckpts, nckpt, cm, labels, k, o.json);
		out_free(&out);
		for (int i = 0; i < nckpt; i++)
			free(cm[i]);
		free(cm);
		free(labels);
		free(rows);
		free(info);
		free(ckpts);
		vocab_free(&v);
		return EXIT_OK;
	}
	for (int i = 0; i < nckpt; i++)
		eval_one(ckpts[i], &o, &v, sh, text_ids, ntext, details, &rows[i]);
	if (details) {
		int bad = ferror(details);
		if (fclose(details) != 0 || bad)
			die_errno("cannot write '%s'", o.details);
		afile_commit(&details_file);
	}
	out_init(&out, STDOUT_FILENO, "stdout");
	print_rows(&out, rows, nckpt, &o);
	out_free(&out);
	if (sh)
		shards_close(sh);
	free(rows);
	free(info);
	free(ckpts);
	free(text_ids);
	free(hellaswag_path);
	vocab_free(&v);
	return EXIT_OK;
}
