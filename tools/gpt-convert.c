/* gpt-convert: Hugging Face GPT-2 weights (config.json + model.safetensors)
 * into a gpt checkpoint, and a checkpoint's weights back out. */
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
	printf("usage: gpt-convert import HF_DIR -o CKPT [--tokenizer NAME] [--offline] [--force] [-q]\n"
	       "       gpt-convert export CKPT -o HF_DIR [--force]\n"
	       "Moves GPT-2 weights between a Hugging Face folder (config.json and\n"
	       "model.safetensors, the layout of openai-community/gpt2) and a gpt checkpoint.\n"
	       "HF_DIR may be a local folder or a URL (hf://ORG/NAME, https://...), whose\n"
	       "two files are downloaded into the cache.\n"
	       "  -o, --output PATH   the checkpoint (import) or folder (export) to write\n"
	       "      --tokenizer N   tokenizer name recorded in the checkpoint (default gpt2)\n"
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

static void import(const char *src, const char *out, const char *tokenizer,
                   const struct http_opts *ho)
{
	struct gpt_model m;

	if (http_is_url(src)) {
		char *cu = url_join(src, "config.json"), *wu = url_join(src, "model.safetensors");
		char *cp = http_fetch(cu, ho), *wp = http_fetch(wu, ho);
		hfweights_import_files(cp, wp, &m);
		free(cu);
		free(wu);
		free(cp);
		free(wp);
	} else {
		hfweights_import(src, &m);
	}
	modelio_save(&m, tokenizer, out);
	if (!ho->quiet_progress)
		fprintf(stderr, "gpt-convert: %d layers, %d heads, width %d, context %d, vocabulary %d, "
	        "%zu parameters -> %s\n", m.cfg.n_layer, m.cfg.n_head, m.cfg.n_embd, m.cfg.n_ctx,
	        m.cfg.vocab_size, gpt_config_count_params(&m.cfg), out);
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
		{ "offline", no_argument, NULL, 'O' },
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct http_opts ho = { 0 };
	const char *out = NULL, *tokenizer = "gpt2";
	int c, force = 0;

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
		import(argv[optind + 1], out, tokenizer, &ho);
	} else if (strcmp(argv[optind], "export") == 0)
		export(argv[optind + 1], out, force);
	else
		die_usage("unknown command: '%s'", argv[optind]);
	return EXIT_OK;
}
