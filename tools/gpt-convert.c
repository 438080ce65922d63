/* gpt-convert: Hugging Face GPT-2 weights, or a PyTorch char-lstm's
 * (config.json + model.safetensors), into a gpt checkpoint, and a
 * checkpoint's weights back out. */
#include "cli.h"
#include "err.h"
#include "hfweights.h"
#include "http.h"
#include "modelio.h"
#include "io.h"
#include "model.h"
#include "shard.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(void)
{
	printf("usage: gpt-convert import HF_DIR -o CKPT [--tokenizer NAME] [--context N] [--offline]\n"
	       "                          [--force] [-q]\n"
	       "       gpt-convert export CKPT -o HF_DIR [--force]\n"
	       "Moves GPT-2 weights between a Hugging Face folder (config.json and\n"
	       "model.safetensors, the layout of openai-community/gpt2) and a gpt checkpoint;\n"
	       "a folder whose config.json says model_type \"char-lstm\" holds a PyTorch\n"
	       "character-level LSTM (embedding, lstm, decoder) instead.\n"
	       "HF_DIR may be a local folder or a URL (hf://ORG/NAME, https://...), whose\n"
	       "two files are downloaded into the cache.\n"
	       "  -o, --output PATH   the checkpoint (import) or folder (export) to write\n"
	       "      --tokenizer N   tokenizer name recorded in the checkpoint (default gpt2;\n"
	       "                      bytes for a char-lstm of vocabulary 256 or 257)\n"
	       "      --context N     a char-lstm's context (default its config's\n"
	       "                      context_length, else 65536)\n"
	       "      --offline       use only cached downloads\n"
	       "      --force         overwrite an existing checkpoint or exported files\n"
	       "  -q, --quiet         no download progress, no summary line\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

/* URL + "/" + name, without doubling a trailing slash. */
static char *url_join(const char *base, const char *name)
{
	size_t bl = strlen(base);

	return xasprintf("%.*s/%s", (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, name);
}

/* Dies when path exists, unless --force. */
static void refuse_existing(const char *path, int force)
{
	struct stat st;

	if (!force && lstat(path, &st) == 0)
		die("output already exists (use --force to overwrite it): '%s'", path);
}

/* The tokenizer an import records when --tokenizer is not given: a
 * char-lstm of 256 or 257 ids reads bytes (256 the end of text). */
static const char *default_tokenizer(const struct gpt_config *c)
{
	if (c->arch == GPT_ARCH_LSTM && (c->vocab_size == 256 || c->vocab_size == 257))
		return "bytes";
	return "gpt2";
}

static void summary(const struct gpt_config *c, const char *tokenizer, const char *out)
{
	if (c->arch == GPT_ARCH_LSTM)
		fprintf(stderr, "gpt-convert: char-lstm, %d layers, hidden %d, embedding %d, "
		        "context %d, vocabulary %d, %zu parameters, tokenizer %s -> %s\n", c->n_layer,
		        c->n_embd, c->n_input, c->n_ctx, c->vocab_size, gpt_config_count_params(c),
		        tokenizer, out);
	else
		fprintf(stderr, "gpt-convert: %d layers, %d heads, width %d, context %d, vocabulary %d, "
		        "%zu parameters -> %s\n", c->n_layer, c->n_head, c->n_embd, c->n_ctx,
		        c->vocab_size, gpt_config_count_params(c), out);
}

static void import(const char *src, const char *out, const char *tokenizer, int context,
                   const struct http_opts *ho)
{
	struct gpt_model m;
	char *cp, *wp;

	if (http_is_url(src)) {
		char *cu = url_join(src, "config.json"), *wu = url_join(src, "model.safetensors");
		cp = http_fetch(cu, ho);
		wp = http_fetch(wu, ho);
		free(cu);
		free(wu);
	} else {
		cp = xasprintf("%s/config.json", src);
		wp = xasprintf("%s/model.safetensors", src);
	}
	hfweights_import_context(cp, wp, context, &m);
	free(cp);
	free(wp);
	if (!tokenizer)
		tokenizer = default_tokenizer(&m.cfg);
	modelio_save(&m, tokenizer, out);
	if (!ho->quiet_progress)
		summary(&m.cfg, tokenizer, out);
	gpt_model_free(&m);
}

static void export(const char *src, const char *out, int force)
{
	struct gpt_model m;
	char *cfg = xasprintf("%s/config.json", out), *w = xasprintf("%s/model.safetensors", out);

	refuse_existing(cfg, force);
	refuse_existing(w, force);
	free(cfg);
	free(w);
	modelio_load(src, &m, NULL);
	modelio_need_lm(&m, src);
	hfweights_export(&m, out);
	gpt_model_free(&m);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "tokenizer", required_argument, NULL, 'T' },
		{ "context", required_argument, NULL, 'C' },
		{ "offline", no_argument, NULL, 'O' },
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct http_opts ho = { 0 };
	const char *out = NULL, *tokenizer = NULL;
	int c, force = 0, context = 0;

	err_init(argv[0]);
	io_init();
	while ((c = cli_getopt(argc, argv, "o:qh", longopts)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'T':
			/* the rule of gpt-shard's: a checkpoint and its shards
			 * must be able to carry the same name */
			if (shard_name_check(optarg))
				die_usage("--tokenizer wants a name of 1 to %d printable characters without spaces: '%s'",
					  SHARD_NAME_MAX - 1, optarg);
			tokenizer = optarg;
			break;
		case 'C': context = (int)cli_u64("--context", optarg, 1, 1u << 20); break;
		case 'O': ho.offline = 1; break;
		case 'F': force = 1; break;
		case 'q': ho.quiet_progress = 1; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option");
		}
	}
	if (argc - optind != 2)
		die_usage("expected a command (import or export) and a source");
	if (!out)
		die_usage("-o is required");
	if (strcmp(argv[optind], "import") == 0) {
		refuse_existing(out, force);
		import(argv[optind + 1], out, tokenizer, context, &ho);
	} else if (strcmp(argv[optind], "export") == 0) {
		if (context)
			die_usage("--context is for import");
		export(argv[optind + 1], out, force);
	}
	else
		die_usage("unknown command: '%s'", argv[optind]);
	return EXIT_OK;
}
