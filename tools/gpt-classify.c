/* gpt-classify: a classifier checkpoint (gpt-train --classify) as a
 * filter: one text a line (or NUL-ended documents with -z) in, the label
 * and its probability out; see gpt-classify(1). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "engine.h"
#include "err.h"
#include "io.h"
#include "json.h"
#include "modelio.h"
#include "tokenize.h"
#include "vocab.h"

#define TEXT_MAX ((size_t)64 << 20)   /* bytes of one text */

static void usage(void)
{
	printf("usage: gpt-classify [options] CHECKPOINT [FILE...]\n"
	       "Label each line of the files (or of stdin) with a classifier; see gpt-classify(1).\n"
	       "  -z, --null           texts are NUL-ended documents, not lines\n"
	       "  -a, --all            every class's probability, in the checkpoint's order\n"
	       "      --json           one JSON object a text\n"
	       "  -b, --batch N        texts per forward pass (default 16)\n"
	       "      --max-length N   cut texts to N tokens (default: the context)\n"
	       "      --vocab PATH     tokenizer vocabulary (default: found as gpt-sample does)\n"
	       "      --offline        never download the vocabulary\n"
	       "      --device DEV     auto, cpu or cuda (default auto)\n"
	       "  -j, --threads N      CPU threads\n"
	       "  -q, --quiet          no warnings\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

struct clf {
	struct engine *e;
	struct vocab v;
	char **labels;
	int k, T, L, B, all, json;
	/* the batch being filled */
	uint32_t *in;
	int *last, n, width;
	char **texts;
	size_t *tlen;
	float *logits;
	struct out o;
};

static void flush_batch(struct clf *c)
{
	if (c->n == 0)
		return;
	/* pad every row to the widest with <|endoftext|> */
	for (int b = 0; b < c->n; b++)
		for (int i = c->last[b] + 1; i < c->width; i++)
			c->in[(size_t)b * c->T + i] = c->v.eot;
	{
		uint32_t *packed = xmalloc(xmul((size_t)c->n * (size_t)c->width, sizeof *packed));
		for (int b = 0; b < c->n; b++)
			memcpy(packed + (size_t)b * c->width, c->in + (size_t)b * c->T,
			       (size_t)c->width * sizeof *packed);
		engine_classify(c->e, packed, c->last, NULL, c->n, c->width);
		free(packed);
	}
	engine_class_logits(c->e, c->n, c->logits);
	for (int b = 0; b < c->n; b++) {
		const float *lg = c->logits + (size_t)b * c->k;
		double mx = lg[0], sum = 0, p[1024];
		int best = 0;

		for (int j = 1; j < c->k; j++)
			if (lg[j] > lg[best])
				best = j;
		mx = lg[best];
		for (int j = 0; j < c->k; j++)
			sum += p[j] = exp((double)lg[j] - mx);
		for (int j = 0; j < c->k; j++)
			p[j] /= sum;
		if (c->json) {
			char num[32];
			out_write(&c->o, "{\"label\": ", 10);
			json_put_str(&c->o, c->labels[best], strlen(c->labels[best]));
			snprintf(num, sizeof num, ", \"probability\": %.6f", p[best]);
			out_write(&c->o, num, strlen(num));
			if (c->all) {
				out_write(&c->o, ", \"probabilities\": {", 20);
				for (int j = 0; j < c->k; j++) {
					if (j)
						out_write(&c->o, ", ", 2);
					json_put_str(&c->o, c->labels[j], strlen(c->labels[j]));
					snprintf(num, sizeof num, ": %.6f", p[j]);
					out_write(&c->o, num, strlen(num));
				}
				out_putc(&c->o, '}');
			}
			out_write(&c->o, "}\n", 2);
		} else {
			char num[32];
			out_write(&c->o, c->labels[best], strlen(c->labels[best]));
			snprintf(num, sizeof num, "\t%.6f", p[best]);
			out_write(&c->o, num, strlen(num));
			for (int j = 0; c->all && j < c->k; j++) {
				snprintf(num, sizeof num, "\t%.6f", p[j]);
				out_write(&c->o, num, strlen(num));
			}
			out_putc(&c->o, '\n');
		}
	}
	out_flush(&c->o);
	c->n = 0;
	c->width = 1;
}

static void add_text(struct clf *c, const char *s, size_t len)
{
	uint32_t *ids = NULL;
	size_t n;

	if (len && s[len - 1] == '\r')
		len--;
	n = tokenize_text(&c->v, (const unsigned char *)s, len, 0, &ids);
	if (n == 0) {
		ids = xrealloc(ids, sizeof *ids);
		ids[n++] = c->v.eot;
	}
	if (n > (size_t)c->L)
		n = (size_t)c->L;
	for (size_t i = 0; i < n; i++)
		if (ids[i] >= (uint32_t)c->e->model.cfg.vocab_size)
			die("token %u is outside the model's vocabulary of %d", ids[i],
			    c->e->model.cfg.vocab_size);
	memcpy(c->in + (size_t)c->n * c->T, ids, n * sizeof *ids);
	c->last[c->n] = (int)n - 1;
	if ((int)n > c->width)
		c->width = (int)n;
	free(ids);
	if (++c->n == c->B)
		flush_batch(c);
}

/* Texts of one input: lines, or NUL-ended documents (a last one without
 * its NUL counts too). */
static void run_input(struct clf *c, const char *path, int nul)
{
	size_t len;
	unsigned char *buf = io_read_file(path, TEXT_MAX * 16, &len);
	const char *p = (const char *)buf, *end = p + len;
	char sep = nul ? '\0' : '\n';

	while (p < end) {
		const char *q = memchr(p, sep, (size_t)(end - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(end - p);

		if (n > TEXT_MAX)
			die("a text of more than %zu bytes: '%s'", TEXT_MAX, path);
		add_text(c, p, n);
		p += n + (q ? 1 : 0);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "null", no_argument, NULL, 'z' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'J' },
		{ "batch", required_argument, NULL, 'b' },
		{ "max-length", required_argument, NULL, 'L' },
		{ "vocab", required_argument, NULL, 'V' },
		{ "offline", no_argument, NULL, 'O' },
		{ "device", required_argument, NULL, 'D' },
		{ "threads", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	struct clf c;
	const char *device = "auto", *vocab_path = NULL;
	char tokenizer[CKPT_NAME_MAX], *labels = NULL;
	int nul = 0, offline = 0, quiet = 0, opt;
	long maxlen = 0;
	struct gpt_model m;

	err_init(argv[0]);
	io_init();
	memset(&c, 0, sizeof c);
	c.B = 16;
	while ((opt = cli_getopt(argc, argv, "hzab:j:q", lopts)) != -1) {
		switch (opt) {
		case 'z': nul = 1; break;
		case 'a': c.all = 1; break;
		case 'J': c.json = 1; break;
		case 'b': c.B = (int)cli_u64("--batch", optarg, 1, 4096); break;
		case 'L': maxlen = (long)cli_u64("--max-length", optarg, 1, 1 << 20); break;
		case 'V': vocab_path = optarg; break;
		case 'O': offline = 1; break;
		case 'D': device = optarg; break;
		case 'j': {
			char n[32];
			snprintf(n, sizeof n, "%llu", (unsigned long long)cli_u64("--threads", optarg, 1,
			                                                            4096));
			setenv("OMP_NUM_THREADS", n, 1);
			break;
		}
		case 'q': quiet = 1; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option (see --help)");
		}
	}
	if (optind >= argc)
		die_usage("give a classifier checkpoint (see --help)");
	if (engine_device_check(device) != 0)
		die_usage("unknown device '%s' (auto, cpu, cuda)", device);
	modelio_load_labels(argv[optind], &m, tokenizer, &labels);
	if (!m.cfg.n_classes)
		die("a language model, not a classifier (gpt-train --classify makes one): '%s'",
		    argv[optind]);
	c.k = m.cfg.n_classes;
	c.T = m.cfg.n_ctx;
	c.L = maxlen && maxlen < c.T ? (int)maxlen : c.T;
	c.labels = xcalloc((size_t)c.k, sizeof *c.labels);
	{
		char *p = labels;
		for (int j = 0; j < c.k; j++) {
			char *nl = strchr(p, '\n');
			*nl = 0;
			c.labels[j] = p;
			p = nl + 1;
		}
	}
	c.e = engine_open(device, &m);
	if (!c.e->ops->classify) {
		engine_close(c.e);
		c.e = NULL;
		if (strcmp(device, "auto") != 0)
			die("the %s engine cannot run a classifier yet; give --device cpu", device);
		modelio_load_labels(argv[optind], &m, tokenizer, NULL);
		c.e = engine_open("cpu", &m);
	}
	engine_plan(c.e, c.B, c.T, 0, 0);
	vocab_load_for(&c.v, vocab_path, tokenizer, offline);
	if (c.v.eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|>, which pads the texts");
	if (strcmp(tokenizer, c.v.name) != 0 && !quiet)
		warnx("the classifier was trained with tokenizer '%s', reading with '%s'", tokenizer,
		      c.v.name);
	c.in = xcalloc(xmul((size_t)c.B, (size_t)c.T), sizeof *c.in);
	c.last = xcalloc((size_t)c.B, sizeof *c.last);
	c.logits = xcalloc(xmul((size_t)c.B, (size_t)c.k), sizeof *c.logits);
	c.width = 1;
	out_init(&c.o, STDOUT_FILENO, "stdout");
	if (optind + 1 == argc)
		run_input(&c, "-", nul);
	for (int i = optind + 1; i < argc; i++)
		run_input(&c, argv[i], nul);
	flush_batch(&c);
	out_free(&c.o);
	engine_close(c.e);
	vocab_free(&c.v);
	free(c.in);
	free(c.last);
	free(c.logits);
	free(c.labels);
	free(labels);
	return EXIT_OK;
}
