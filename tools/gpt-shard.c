/* gpt-shard: token ids in, compressed checksummed shard files out
 * (gpt-shard(5)); `cat`, `info` and `verify` read them back. */
#include "cli.h"
#include "err.h"
#include "io.h"
#include "progress.h"
#include "shard.h"
#include "tokstream.h"
#include "vocab.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_IDS 65536

static void usage(void)
{
	printf("usage: gpt-shard [-f text|u16|u32] -o PREFIX [--val-tokens N] [--shard-tokens N]\n"
	       "                 [--start-index N] [--vocab-size N] [--tokenizer NAME] [--eot N]\n"
	       "                 [--frame-tokens N] [--level N] [-j N] [--force] [-q|--progress] [FILE...]\n"
	       "       gpt-shard cat [-f text|u16|u32] SHARD...\n"
	       "       gpt-shard info [--json] SHARD...\n"
	       "       gpt-shard verify SHARD...\n"
	       "Writes token ids (stdin or FILEs, one stream) into PREFIX-val-NNNNNN.tok.zst\n"
	       "and PREFIX-train-NNNNNN.tok.zst shards; cat, info and verify read them back.\n"
	       "  -f, --format F        id form: text (default), u16 or u32\n"
	       "  -o, --output PREFIX   path prefix of the shards\n"
	       "      --val-tokens N    first N tokens go to validation shards (default 10M)\n"
	       "      --shard-tokens N  tokens per shard (default 100M)\n"
	       "      --start-index N   number of the first shard (default 0)\n"
	       "      --vocab-size N    vocabulary size recorded and checked (default 50257)\n"
	       "      --tokenizer NAME  tokenizer name recorded (default gpt2); bytes is --vocab bytes\n"
	       "      --vocab PATH      take name, size and end-of-text id from a vocabulary\n"
	       "                        (a path, or bytes: 257 ids, end of text 256)\n"
	       "      --eot N|none      end-of-text id counted as documents (default vocab-size - 1)\n"
	       "      --frame-tokens N  tokens per zstd frame (default 65536)\n"
	       "      --level N         zstd level, 1..19 (default 3)\n"
	       "  -j, --threads N       frames compressed in parallel (default 1)\n"
	       "      --force           overwrite shards that already exist\n"
	       "      --json            info: one JSON object per shard\n"
	       "  -q, --quiet           no progress and no summary\n"
	       "      --progress        progress line even when stderr is not a terminal\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

/* ---- writing ---- */

struct sharder {
	const char *prefix;
	struct shard_params p;
	uint64_t val_tokens, shard_tokens;
	uint32_t next_index[2];         /* [0] val, [1] train */
	int force, quiet;
	struct shard_writer w;
	int open, kind;                 /* a shard is being written; its kind */
	char *path;                     /* of the open shard */
	uint64_t in_shard;              /* tokens in the open shard */
	uint64_t total;                 /* tokens taken in */
	/* what is complete, for the summary and the interruption message */
	unsigned nfiles[2];
	uint64_t tokens[2], docs[2], bytes[2];
};

static struct sharder *live;
static char stop_msg[2][256];
static const char *volatile stop_now;
static unsigned stop_files; /* complete shards stop_now counts */
static void (*io_handler[3])(int);
static const int stop_sigs[3] = { SIGINT, SIGTERM, SIGHUP };

/* The one-line account of what is on disk, kept ready for the signal
 * handler (which must not format or allocate). */
static void sharder_note(struct sharder *s)
{
	static int which;
	char *m = stop_msg[which];

	snprintf(m, sizeof stop_msg[0],
		 "%s: stopped: %u complete shards written (%llu tokens); no partial shard left\n",
		 prog_name, s->nfiles[0] + s->nfiles[1],
		 (unsigned long long)(s->tokens[0] + s->tokens[1]));
	stop_now = m;
	stop_files = s->nfiles[0] + s->nfiles[1];
	which ^= 1;
}

static void on_stop_signal(int sig)
{
	const char *m = stop_now;
	int i;

	if (m && write(STDERR_FILENO, m, strlen(m)) < 0)
		m = NULL;
	shard_unlock_prefix();
	for (i = 0; i < 3; i++)
		if (stop_sigs[i] == sig && io_handler[i])
			io_handler[i](sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* After an error, what is on disk, when anything is: an error before the
 * first shard stays the one line that says what went wrong. */
static void on_exit_early(void)
{
	if (live && stop_now && stop_files)
		fputs(stop_now, stderr);
}

/* Chains in front of io.h's temp-file removal, so an interrupted run
 * says what it left before the partial shard is removed. */
static void install_stop(void)
{
	int i;

	io_install_cleanup();
	for (i = 0; i < 3; i++) {
		struct sigaction old, sa;

		if (sigaction(stop_sigs[i], NULL, &old) != 0 ||
		    old.sa_handler == SIG_IGN || old.sa_handler == SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue;
		io_handler[i] = old.sa_handler;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_stop_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(stop_sigs[i], &sa, NULL);
	}
	atexit(on_exit_early);
}

/* mkdir -p of the folder the prefix names, so `-o data/fw` just works. */
static void make_parent(const char *prefix)
{
	const char *slash = strrchr(prefix, '/');
	char *d;

	if (!slash || slash == prefix)
		return;
	d = xstrdup(prefix);
	d[slash - prefix] = '\0';
	io_mkdirs(d);
	free(d);
}

/* Refuses, before anything is written, a run whose numbers would meet a
 * shard already there: the lowest such shard of the first kind this run
 * writes is named.  (sharder_open checks each name again.) */
static void refuse_existing(const struct sharder *s)
{
	static const char *const kinds[2] = { "val", "train" };
	const char *slash = strrchr(s->prefix, '/');
	const char *base = slash ? slash + 1 : s->prefix;
	char *dir = slash ? xasprintf("%.*s", (int)(slash - s->prefix + (slash == s->prefix)),
				      s->prefix) : xstrdup(".");
	size_t blen = strlen(base);
	int k;

	for (k = 0; k < 2; k++) {
		uint64_t low = UINT64_MAX;
		struct dirent *e;
		DIR *d;

		if (k == 0 && s->val_tokens == 0)
			continue;
		if (!(d = opendir(dir)))
			die_errno("cannot read folder '%s'", dir);
		while ((e = readdir(d))) {
			const char *p = e->d_name, *q;
			char *end;
			uint64_t v;

			if (strncmp(p, base, blen) != 0 || p[blen] != '-' ||
			    strncmp(p + blen + 1, kinds[k], strlen(kinds[k])) != 0 ||
			    p[blen + 1 + strlen(kinds[k])] != '-')
				continue;
			q = p + blen + 2 + strlen(kinds[k]);
			if (q[0] < '0' || q[0] > '9')
				continue;
			v = strtoull(q, &end, 10);
			if (end - q < 6 || strcmp(end, ".tok.zst") != 0)
				continue;
			if (v >= s->next_index[k] && v < low)
				low = v;
		}
		closedir(d);
		if (low != UINT64_MAX)
			die("shard already exists (use --force, another -o or --start-index): '%s-%s-%06llu.tok.zst'",
			    s->prefix, kinds[k], (unsigned long long)low);
	}
	free(dir);
}

static void sharder_open(struct sharder *s, int kind)
{
	size_t n = strlen(s->prefix) + 64;
	struct stat st;

	s->path = xmalloc(n);
	snprintf(s->path, n, "%s-%s-%06u.tok.zst", s->prefix,
		 kind ? "train" : "val", s->next_index[kind]);
	if (!s->force && stat(s->path, &st) == 0)
		die("shard already exists (use --force, another -o or --start-index): '%s'",
		    s->path);
	shardw_open(&s->w, s->path, &s->p);
	s->w.first = s->total;          /* ids are named by their input position */
	s->open = 1;
	s->kind = kind;
	s->in_shard = 0;
}

static void sharder_close(struct sharder *s)
{
	struct shard_header h;
	struct stat st;
	uint64_t bytes;

	shardw_commit(&s->w, &h);
	bytes = stat(s->path, &st) == 0 ? (uint64_t)st.st_size : 0;
	s->open = 0;
	s->nfiles[s->kind]++;
	s->tokens[s->kind] += h.tokens;
	s->docs[s->kind] += h.docs;
	s->bytes[s->kind] += bytes;
	s->next_index[s->kind]++;
	sharder_note(s);
	if (!s->quiet)
		fprintf(stderr, "%s: wrote %s: %llu tokens, %llu documents, %llu bytes, ratio %.2f against raw u%u\n",
			prog_name, s->path, (unsigned long long)h.tokens,
			(unsigned long long)h.docs, (unsigned long long)bytes,
			bytes ? (double)h.tokens * h.width / (double)bytes : 0.0,
			h.width * 8);
	free(s->path);
	s->path = NULL;
}

static void sharder_feed(struct sharder *s, const uint32_t *ids, size_t n)
{
	while (n > 0) {
		int kind = s->total < s->val_tokens ? 0 : 1;
		uint64_t room;
		size_t k;

		if (s->open && s->kind != kind)
			sharder_close(s);
		if (!s->open)
			sharder_open(s, kind);
		room = s->shard_tokens - s->in_shard;
		if (kind == 0 && s->val_tokens - s->total < room)
			room = s->val_tokens - s->total;
		k = n < room ? n : (size_t)room;
		shardw_write(&s->w, ids, k);
		s->in_shard += k;
		s->total += k;
		ids += k;
		n -= k;
		if (s->in_shard == s->shard_tokens)
			sharder_close(s);
	}
}

static void sharder_summary(const struct sharder *s)
{
	static const char *const kinds[2] = { "validation", "training" };
	int k;

	for (k = 0; k < 2; k++)
		if (s->nfiles[k])
			fprintf(stderr, "%s: %s: %u shards, %llu tokens, %llu documents, ratio %.2f against raw u%u\n",
				prog_name, kinds[k], s->nfiles[k],
				(unsigned long long)s->tokens[k],
				(unsigned long long)s->docs[k],
				s->bytes[k] ? (double)s->tokens[k] * (s->p.vocab <= 65536 ? 2 : 4) /
					      (double)s->bytes[k] : 0.0,
				s->p.vocab <= 65536 ? 16 : 32);
	if (s->total == 0)
		fprintf(stderr, "%s: no tokens in the input; no shards written\n", prog_name);
	else if (s->nfiles[1] == 0)
		fprintf(stderr, "%s: all %llu tokens went to validation (--val-tokens); no training shard written\n",
			prog_name, (unsigned long long)s->total);
}

/* After --force: a shard numbered right after the last one written is
 * an earlier run's, and a glob of the prefix would mix it in. */
static void warn_leftover(const struct sharder *s)
{
	static const char *const kinds[2] = { "val", "train" };
	struct stat st;
	int k;

	for (k = 0; k < 2; k++) {
		char *p;

		if (!s->nfiles[k])
			continue;
		p = xasprintf("%s-%s-%06u.tok.zst", s->prefix, kinds[k], s->next_index[k]);
		if (stat(p, &st) == 0)
			warnx("an older shard follows the last one written (remove it, or it joins this set): '%s'",
			      p);
		free(p);
	}
}

static int cmd_write(struct sharder *s, enum tok_format fmt,
		     enum progress_mode pm, char **files, int nfiles)
{
	static char *stdin_only[] = { "-" };
	uint32_t *ids;
	struct progress prog;
	int i;
	long holder;

	make_parent(s->prefix);
	if (shard_lock_prefix(s->prefix, &holder) != 0) {
		if (holder > 0)
			die("another gpt-shard (pid %ld) is writing this prefix: '%s'",
			    holder, s->prefix);
		die("another process is writing this prefix: '%s'", s->prefix);
	}
	if (!s->force)
		refuse_existing(s);
	ids = xmalloc(READ_IDS * sizeof *ids);
	if (nfiles == 0) {
		files = stdin_only;
		nfiles = 1;
	}
	install_stop();
	live = s;
	sharder_note(s);
	progress_init(&prog, pm, "gpt-shard", "tokens", 0);
	for (i = 0; i < nfiles; i++) {
		struct tokstream_in t;
		size_t n;

		tokstream_in_open(&t, files[i], fmt);
		while ((n = tokstream_in_read(&t, ids, READ_IDS)) > 0) {
			sharder_feed(s, ids, n);
			progress_update(&prog, s->total);
		}
		tokstream_in_close(&t);
	}
	if (s->open)
		sharder_close(s);
	progress_end(&prog);
	live = NULL;
	if (!s->quiet)
		sharder_summary(s);
	if (s->force)
		warn_leftover(s);
	free(ids);
	return EXIT_OK;
}

/* ---- reading back ---- */

static int cmd_cat(enum tok_format fmt, char **files, int n)
{
	struct shards *s;
	struct out o;
	struct tokstream_out t;
	uint32_t *ids = xmalloc(READ_IDS * sizeof *ids);
	uint64_t pos, total;

	if (n == 0)
		die_usage("cat needs shard files");
	if (fmt != FMT_TEXT)
		io_refuse_binary_tty(STDOUT_FILENO, "token ids");
	s = shards_open_paths(files, n);
	total = shards_tokens(s);
	out_init(&o, STDOUT_FILENO, "stdout");
	tokstream_out_init(&t, &o, fmt, shards_eot(s));
	for (pos = 0; pos < total;) {
		size_t k = total - pos < READ_IDS ? (size_t)(total - pos) : READ_IDS;

		shards_read(s, pos, ids, k);
		tokstream_out_write(&t, ids, k);
		pos += k;
	}
	tokstream_out_finish(&t);
	out_free(&o);
	shards_close(s);
	free(ids);
	return EXIT_OK;
}

static void json_string(const char *p)
{
	putchar('"');
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Each shard's lines go out as they are done; a reader that went away
 * (`| head`) ends the program quietly with status 0, as struct out does. */
static void flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return;
	if (errno == EPIPE)
		exit(EXIT_OK);
	die_errno("write error: 'stdout'");
}

static int cmd_info(int json, char **files, int n)
{
	int i;

	if (n == 0)
		die_usage("info needs shard files");
	for (i = 0; i < n; i++) {
		struct shard_header h;
		struct stat st;
		uint64_t bytes;
		double ratio;

		shard_read_header(files[i], &h);
		bytes = stat(files[i], &st) == 0 ? (uint64_t)st.st_size : 0;
		ratio = bytes ? (double)h.tokens * h.width / (double)bytes : 0.0;
		if (json) {
			printf("{\"path\":");
			json_string(files[i]);
			printf(",\"version\":%u,\"tokenizer\":", h.version);
			json_string(h.tokenizer);
			printf(",\"vocab_size\":%u,\"token_bytes\":%u,\"eot\":", h.vocab, h.width);
			if (h.eot == UINT32_MAX)
				printf("null");
			else
				printf("%u", h.eot);
			printf(",\"tokens\":%llu,\"documents\":%llu,\"frames\":%u,"
			       "\"frame_tokens\":%u,\"level\":%d,\"bytes\":%llu,"
			       "\"ratio\":%.4f,\"token_hash\":\"%016llx\"}\n",
			       (unsigned long long)h.tokens, (unsigned long long)h.docs,
			       h.nframes, h.frame_tokens, h.level,
			       (unsigned long long)bytes, ratio,
			       (unsigned long long)h.hash);
			flush_stdout();
			continue;
		}
		printf("%s\n", files[i]);
		printf("  format       gpt-shard version %u\n", h.version);
		printf("  tokenizer    %s\n", h.tokenizer);
		printf("  vocabulary   %u ids, stored as u%u\n", h.vocab, h.width * 8);
		if (h.eot == UINT32_MAX)
			printf("  end of text  none\n");
		else
			printf("  end of text  %u\n", h.eot);
		printf("  tokens       %llu\n", (unsigned long long)h.tokens);
		printf("  documents    %llu\n", (unsigned long long)h.docs);
		printf("  frames       %u of up to %u tokens\n", h.nframes, h.frame_tokens);
		printf("  zstd level   %d\n", h.level);
		printf("  size         %llu bytes, ratio %.2f against raw u%u\n",
		       (unsigned long long)bytes, ratio, h.width * 8);
		printf("  token hash   %016llx (xxh64)\n", (unsigned long long)h.hash);
		flush_stdout();
	}
	flush_stdout();
	return EXIT_OK;
}

static int cmd_verify(int quiet, char **files, int n)
{
	int i;

	if (n == 0)
		die_usage("verify needs shard files");
	for (i = 0; i < n; i++) {
		struct shard_header h;

		shard_verify(files[i]);
		if (!quiet) {
			shard_read_header(files[i], &h);
			printf("%s: ok (%llu tokens, %llu documents, %u frames)\n",
			       files[i], (unsigned long long)h.tokens,
			       (unsigned long long)h.docs, h.nframes);
			flush_stdout();
		}
	}
	flush_stdout();
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "val-tokens", required_argument, NULL, 'V' },
		{ "shard-tokens", required_argument, NULL, 'S' },
		{ "start-index", required_argument, NULL, 'I' },
		{ "vocab-size", required_argument, NULL, 'N' },
		{ "tokenizer", required_argument, NULL, 'T' },
		{ "vocab", required_argument, NULL, 'B' },
		{ "eot", required_argument, NULL, 'E' },
		{ "frame-tokens", required_argument, NULL, 'F' },
		{ "level", required_argument, NULL, 'L' },
		{ "threads", required_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct sharder s;
	enum tok_format fmt = FMT_TEXT;
	enum progress_mode pm = PROGRESS_AUTO;
	const char *cmd = NULL, *eot_arg = NULL, *vocab_path = NULL;
	int vocab_size_set = 0, tokenizer_set = 0;
	int c, json = 0;
	uint64_t start = 0;

	err_init(argv[0]);
	io_init();
	memset(&s, 0, sizeof s);
	s.val_tokens = 10000000;
	s.shard_tokens = 100000000;
	s.p.vocab = 50257;
	s.p.tokenizer = "gpt2";
	s.p.level = 3;
	s.p.frame_tokens = SHARD_DEFAULT_FRAME_TOKENS;
	if (argc > 1 && (strcmp(argv[1], "cat") == 0 || strcmp(argv[1], "info") == 0 ||
			 strcmp(argv[1], "verify") == 0)) {
		cmd = argv[1];
		argv++;
		argc--;
	}
	while ((c = cli_getopt(argc, argv, "f:o:j:qh", longopts)) != -1) {
		switch (c) {
		case 'f': fmt = cli_format("--format", optarg); break;
		case 'o': s.prefix = optarg; break;
		case 'V': s.val_tokens = cli_u64("--val-tokens", optarg, 0, UINT64_MAX); break;
		case 'S': s.shard_tokens = cli_u64("--shard-tokens", optarg, 1, UINT64_MAX); break;
		case 'I': start = cli_u64("--start-index", optarg, 0, 999999); break;
		case 'N': s.p.vocab = (uint32_t)cli_u64("--vocab-size", optarg, 1, UINT32_MAX);
			vocab_size_set = 1; break;
		case 'T': s.p.tokenizer = optarg; tokenizer_set = 1; break;
		case 'B': vocab_path = optarg; break;
		case 'E': eot_arg = optarg; break;
		case 'F': s.p.frame_tokens = (uint32_t)cli_u64("--frame-tokens", optarg, 1,
								SHARD_MAX_FRAME_TOKENS); break;
		case 'L': s.p.level = (int)cli_i64("--level", optarg, 1, 19); break;
		case 'r': s.force = 1; break;
		case 'J': json = 1; break;
		case 'j': s.p.threads = (int)cli_u64("--threads", optarg, 1, SHARD_MAX_THREADS); break;
		case 'q': s.quiet = 1; pm = PROGRESS_QUIET; break;
		case 'P': pm = PROGRESS_FORCE; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option");
		}
	}
	argv += optind;
	argc -= optind;
	if (cmd && strcmp(cmd, "cat") == 0)
		return cmd_cat(fmt, argv, argc);
	if (cmd && strcmp(cmd, "info") == 0)
		return cmd_info(json, argv, argc);
	if (cmd)
		return cmd_verify(s.quiet, argv, argc);
	if (!s.prefix)
		die_usage("missing -o PREFIX");
	/* A built-in vocabulary's name says its size and end-of-text id too. */
	if (!vocab_path && tokenizer_set && vocab_builtin(s.p.tokenizer))
		vocab_path = s.p.tokenizer;
	if (vocab_path) {
		/* The vocabulary names itself: its name, size and end-of-text id
		 * go into the header unless given explicitly. */
		struct vocab v;
		static char name[SHARD_NAME_MAX];

		vocab_load(&v, vocab_path);
		if (strlen(v.name) >= sizeof name)
			die("vocabulary name too long for a shard header: '%s'", v.name);
		memcpy(name, v.name, strlen(v.name) + 1);
		if (!tokenizer_set)
			s.p.tokenizer = name;
		if (!vocab_size_set)
			s.p.vocab = v.n_ids;
		if (!eot_arg)
			s.p.eot = v.eot;
		vocab_free(&v);
	}
	if (shard_name_check(s.p.tokenizer) && !tokenizer_set)
		die("the vocabulary's name cannot name shards (%s); give --tokenizer: '%s'",
		    shard_name_check(s.p.tokenizer), s.p.tokenizer);
	if (shard_name_check(s.p.tokenizer))
		die_usage("--tokenizer wants a name of 1 to %d printable characters without spaces: '%s'",
			  SHARD_NAME_MAX - 1, s.p.tokenizer);
	if (!eot_arg) {
		if (!vocab_path)
			s.p.eot = s.p.vocab - 1;
	} else if (strcmp(eot_arg, "none") == 0)
		s.p.eot = UINT32_MAX;
	else
		s.p.eot = (uint32_t)cli_u64("--eot", eot_arg, 0, s.p.vocab - 1);
	if (fmt == FMT_U16 && s.p.vocab > 65536)
		die_usage("a vocabulary of %u ids does not fit u16 input; use -f u32 or -f text",
			  s.p.vocab);
	s.next_index[0] = s.next_index[1] = (uint32_t)start;
	return cmd_write(&s, fmt, pm, argv, argc);
}
