/* gpt-bpe: learns a byte-level BPE vocabulary from text and writes it as a
 * tiktoken rank file plus a .meta companion (name, split pattern,
 * <|endoftext|>), the form gpt-tokenize --vocab reads. */
#include "bpetrain.h"
#include "cli.h"
#include "err.h"
#include "io.h"
#include "progress.h"
#include "vocab.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)

static void usage(void)
{
	printf("usage: gpt-bpe -v SIZE [-o FILE] [--pattern gpt2|gpt4] [-z] [--max-chars N]\n"
	       "               [--doc-cap N] [--name NAME] [--merges FILE] [-q|--progress]\n"
	       "               [FILE...]\n"
	       "Learns a byte-level BPE vocabulary of SIZE tokens (256 bytes, the merges,\n"
	       "<|endoftext|>) from text (stdin or FILEs, read as one stream).\n"
	       "  -v, --vocab-size N  tokens in all, 257 or more (K/M suffixes allowed)\n"
	       "  -o, --output FILE   tiktoken rank file, plus FILE.meta (default: the\n"
	       "                      ranks on stdout, no .meta)\n"
	       "      --pattern P     split pattern: gpt2 (default) or gpt4\n"
	       "  -z, --zero          NUL-terminated documents, each split on its own\n"
	       "      --max-chars N   use at most N characters of input in all\n"
	       "      --doc-cap N     use at most N characters of each document\n"
	       "      --name NAME     name in FILE.meta (default: FILE's base name)\n"
	       "      --merges FILE   also write the merges, \"LEFT RIGHT NEW\" ids per line\n"
	       "  -q, --quiet         no progress line and no summary\n"
	       "      --progress      progress line even when stderr is not a terminal\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

/* The file's base name without its extension. */
static char *default_name(const char *path)
{
	const char *base = strrchr(path, '/');
	char *name, *dot;

	name = xstrdup(base ? base + 1 : path);
	dot = strrchr(name, '.');
	if (dot && dot != name)
		*dot = '\0';
	return name;
}

static void check_name(const char *name)
{
	const unsigned char *p;

	if (!*name || strlen(name) > 63)
		die_usage("--name must have 1 to 63 bytes: '%s'", name);
	for (p = (const unsigned char *)name; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			die_usage("--name cannot hold white space or control characters: '%s'", name);
}

static uint64_t input_size(char *const *paths, int n)
{
	uint64_t total = 0;
	struct stat st;
	int i;

	for (i = 0; i < n; i++) {
		if (strcmp(paths[i], "-") == 0 || stat(paths[i], &st) != 0 ||
		    !S_ISREG(st.st_mode))
			return 0;
		total += (uint64_t)st.st_size;
	}
	return total;
}

/* Feeds every input to the trainer until it wants no more. */
static void read_inputs(struct bpetrain *t, char *const *paths, int n,
			enum progress_mode pmode)
{
	unsigned char *buf = xmalloc(READ_CHUNK);
	struct progress prog;
	int i, more = 1;

	progress_init(&prog, pmode, "reading", "B", input_size(paths, n));
	for (i = 0; i < n && more; i++) {
		struct in r;
		size_t got;

		in_open(&r, paths[i]);
		while (more && (got = in_read(&r, buf, READ_CHUNK)) > 0) {
			more = bpetrain_feed(t, buf, got);
			progress_update(&prog, t->bytes_in);
		}
		in_close(&r);
	}
	progress_end(&prog);
	bpetrain_end(t);
	free(buf);
}

static void write_meta(struct out *o, const char *name,
		       enum pretok_pattern pat, uint32_t eot)
{
	out_write(o, "name ", 5);
	out_write(o, name, strlen(name));
	out_write(o, "\npattern ", 9);
	out_write(o, pretok_name(pat), strlen(pretok_name(pat)));
	out_write(o, "\nspecial <|endoftext|> ", 23);
	out_u64(o, eot);
	out_putc(o, '\n');
}

/* The rank file and its .meta are one vocabulary: a new .meta beside an
 * old rank file does not load.  So both are written and synced under
 * temporary names first (a full disk fails there, before any rename),
 * the old .meta is kept under a backup name, the .meta is renamed and
 * the rank file last; when that last rename fails, the old .meta comes
 * back (or the new one goes), so a failure leaves the old pair or none.
 * Signals wait while the names change. */
static struct {
	const char *meta;               /* the final .meta path */
	char *backup;                   /* the old .meta, linked; NULL if none */
	int armed;                      /* .meta renamed, rank file not yet */
} pair;

static void pair_undo(void)
{
	if (pair.armed && pair.backup)
		rename(pair.backup, pair.meta);
	else if (pair.armed)
		unlink(pair.meta);
	else if (pair.backup)
		unlink(pair.backup);
	pair.armed = 0;
	pair.backup = NULL;
}

static void sync_out(struct afile *a)
{
	out_flush(&a->out);
	if (fsync(a->fd) != 0)
		die_errno("cannot sync '%s'", a->tmp);
}

static void commit_pair(struct afile *ranks, struct afile *meta, const char *metapath)
{
	sigset_t stop, old;

	sync_out(ranks);
	sync_out(meta);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, &old);
	pair.meta = metapath;
	pair.backup = xasprintf("%s.old.tmp.%ld", metapath, (long)getpid());
	unlink(pair.backup);
	if (link(metapath, pair.backup) != 0) {
		/* no old .meta; or a file system without hard links, where a
		 * failed last rename can only take the new .meta away */
		if (errno != ENOENT && errno != EPERM && errno != EOPNOTSUPP)
			die_errno("cannot keep the old '%s'", metapath);
		free(pair.backup);
		pair.backup = NULL;
	}
	atexit(pair_undo);
	afile_commit(meta);
	pair.armed = 1;
	afile_commit(ranks);    /* on failure, exit() runs pair_undo */
	pair.armed = 0;
	if (pair.backup) {
		unlink(pair.backup);
		free(pair.backup);
		pair.backup = NULL;
		io_sync_dir(metapath);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "vocab-size", required_argument, NULL, 'v' },
		{ "output", required_argument, NULL, 'o' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "zero", no_argument, NULL, 'z' },
		{ "max-chars", required_argument, NULL, 'M' },
		{ "doc-cap", required_argument, NULL, 'D' },
		{ "name", required_argument, NULL, 'N' },
		{ "merges", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct bpe_opts opt = { PRETOK_GPT2, 0, BPE_NO_LIMIT, BPE_NO_LIMIT };
	enum progress_mode pmode = PROGRESS_AUTO;
	const char *outpath = NULL, *mergepath = NULL;
	char *name = NULL, *metapath;
	static char *stdin_path[] = { "-" };
	char *const *paths;
	uint32_t size = 0, n_tok;
	int c, npaths, p;
	struct bpetrain t;
	struct progress prog;
	struct afile ranks, meta, mfile;
	struct out so;
	double t0;

	err_init(argv[0]);
	io_init();
	while ((c = cli_getopt(argc, argv, "v:o:zqh", longopts)) != -1) {
		switch (c) {
		case 'v':
			size = (uint32_t)cli_u64("-v", optarg, 257, VOCAB_MAX_TOKENS);
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'p':
			p = pretok_parse(optarg);
			if (p < 0)
				die_usage("unknown pattern, expected gpt2 or gpt4: '%s'", optarg);
			opt.pattern = (enum pretok_pattern)p;
			break;
		case 'z':
			opt.zero = 1;
			break;
		case 'M':
			opt.max_chars = cli_u64("--max-chars", optarg, 1, BPE_NO_LIMIT - 1);
			break;
		case 'D':
			opt.doc_cap = cli_u64("--doc-cap", optarg, 1, BPE_NO_LIMIT - 1);
			break;
		case 'N':
			free(name);
			name = xstrdup(optarg);
			check_name(name);
			break;
		case 'm':
			mergepath = optarg;
			break;
		case 'q':
			pmode = PROGRESS_QUIET;
			break;
		case 'P':
			pmode = PROGRESS_FORCE;
			break;
		case 'h':
			usage();
			break;
		case 'V':
			cli_version();
			break;
		default:
			die_usage("unknown option");
		}
	}
	if (size == 0)
		die_usage("the vocabulary size is missing: give -v SIZE");
	if (outpath && strcmp(outpath, "-") == 0)
		outpath = NULL;
	if (outpath && !name) {
		name = default_name(outpath);
		if (!*name || strlen(name) > 63 || strpbrk(name, " \t\r\n"))
			die_usage("no usable name from the file name, give --name: '%s'", outpath);
	}
	npaths = argc - optind;
	paths = npaths ? argv + optind : stdin_path;
	if (!npaths)
		npaths = 1;

	t0 = progress_now();
	bpetrain_init(&t, &opt);
	read_inputs(&t, paths, npaths, pmode);
	progress_init(&prog, pmode, "merging", "merges", size - 257);
	n_tok = bpetrain_learn(&t, size - 1, &prog);
	progress_end(&prog);
	if (n_tok < size - 1)
		warnx("the input holds pairs for only %u tokens, not %u: <|endoftext|> is %u",
		      n_tok + 1, size, n_tok);

	if (mergepath) {
		afile_open(&mfile, mergepath);
		bpetrain_write_merges(&t, &mfile.out);
	}
	if (outpath) {
		metapath = xasprintf("%s.meta", outpath);
		afile_open(&ranks, outpath);
		bpetrain_write_ranks(&t, &ranks.out);
		afile_open(&meta, metapath);
		write_meta(&meta.out, name, opt.pattern, n_tok);
		if (mergepath)
			sync_out(&mfile);
		commit_pair(&ranks, &meta, metapath);
		if (mergepath)
			afile_commit(&mfile);
		free(metapath);
	} else {
		out_init(&so, STDOUT_FILENO, "stdout");
		bpetrain_write_ranks(&t, &so);
		out_free(&so);
		if (mergepath)
			afile_commit(&mfile);
	}
	if (pmode != PROGRESS_QUIET)
		fprintf(stderr, "%s: %zu merges, %u tokens, %zu unique pieces from "
			"%.1f MB in %llu documents, %.1f s\n", prog_name,
			t.n_merges, n_tok + 1, bpetrain_unique(&t),
			(double)t.bytes_used / 1e6, (unsigned long long)t.docs,
			progress_now() - t0);
	bpetrain_free(&t);
	free(name);
	return EXIT_OK;
}
