/* gpt-tokenize: text to GPT-2 token ids and back, exactly as tiktoken. */
#include "cli.h"
#include "err.h"
#include "io.h"
#include "tokenize.h"
#include "vocab.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	printf("usage: gpt-tokenize [-d] [-z] [-c] [-f text|u16|u32] [-j N] [--vocab PATH]\n"
	       "                    [--allow-special] [--offline] [-q|--progress] [FILE...]\n"
	       "Encodes text (stdin or FILEs, read as one stream) into GPT-2 token ids;\n"
	       "with -d decodes ids back into bytes.\n"
	       "  -d, --decode        ids in, bytes out\n"
	       "  -z, --zero          NUL-terminated documents; NUL <-> <|endoftext|>\n"
	       "  -c, --count         print the number of tokens (per document with -z)\n"
	       "  -f, --format F      id form: text (default), u16 or u32\n"
	       "  -j, --threads N     encoding threads (default 1)\n"
	       "      --vocab PATH    folder with encoder.json + vocab.bpe, a .tiktoken file,\n"
	       "                      or bytes: ids 0-255 are the bytes, 256 <|endoftext|>\n"
	       "      --allow-special the text <|endoftext|> becomes its id\n"
	       "      --offline       never download the vocabulary\n"
	       "  -q, --quiet         no progress line\n"
	       "      --progress      progress line even when stderr is not a terminal\n"
	       "      --chunk N       bytes per unit of parallel work (default 1Mi); for tests\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "decode", no_argument, NULL, 'd' },
		{ "zero", no_argument, NULL, 'z' },
		{ "count", no_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "threads", required_argument, NULL, 'j' },
		{ "vocab", required_argument, NULL, 'V' },
		{ "allow-special", no_argument, NULL, 'S' },
		{ "offline", no_argument, NULL, 'O' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'P' },
		{ "chunk", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct tokenize_opts opt = { 0 };
	const char *vocab_path = NULL;
	int decode = 0, offline = 0, c;
	struct vocab v;
	struct out o;

	err_init(argv[0]);
	io_init();
	opt.threads = 1;
	while ((c = cli_getopt(argc, argv, "dzcf:j:qh", longopts)) != -1) {
		switch (c) {
		case 'd': decode = 1; break;
		case 'z': opt.zero = 1; break;
		case 'c': opt.count = 1; break;
		case 'f': opt.fmt = cli_format("--format", optarg); break;
		case 'j': opt.threads = (int)cli_u64("--threads", optarg, 1, 256); break;
		case 'V': vocab_path = optarg; break;
		case 'S': opt.allow_special = 1; break;
		case 'O': offline = 1; break;
		case 'q': opt.progress = PROGRESS_QUIET; break;
		case 'P': opt.progress = PROGRESS_FORCE; break;
		case 'C': opt.chunk = cli_u64("--chunk", optarg, 64, 1ULL << 30); break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option");
		}
	}
	if (decode && opt.count)
		die_usage("-c and -d cannot be used together");
	if (!decode && !opt.count && opt.fmt != FMT_TEXT)
		io_refuse_binary_tty(STDOUT_FILENO, "binary token ids");

	vocab_load_for(&v, vocab_path, NULL, offline);
	if (opt.fmt == FMT_U16 && v.n_ids > 65536)
		die_usage("vocabulary of %u ids does not fit u16; use -f u32", v.n_ids);

	out_init(&o, STDOUT_FILENO, "stdout");
	if (decode)
		detokenize_stream(&v, argv + optind, argc - optind, &o, opt.fmt, opt.zero);
	else
		tokenize_stream(&v, argv + optind, argc - optind, &o, &opt);
	out_free(&o);
	vocab_free(&v);
	return EXIT_OK;
}
