/* gpt-fetch: corpora (parquet, JSONL, text, archives; files or URLs) to
 * NUL-ended documents on stdout, the first stage of every pipeline. */
#include "cli.h"
#include "corpus.h"
#include "err.h"
#include "http.h"
#include "io.h"
#include "progress.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	printf("usage: gpt-fetch [-c NAME] [--field NAME] [--rows START:END] [-n N]\n"
	       "                 [--where 'COL OP NUMBER'] [-o FILE] [-j N] [--cache DIR]\n"
	       "                 [--offline] [-q|--progress] INPUT...\n"
	       "       gpt-fetch --schema FILE.parquet...\n"
	       "Writes the documents of parquet, JSONL, text files and archives of them\n"
	       "(local paths, '-', https:// or hf:// URLs) to stdout, each ended by NUL.\n"
	       "  -c, --column NAME   parquet column to read (default text)\n"
	       "      --field NAME    JSONL field to read (default text)\n"
	       "      --rows A:B      rows A (from 0) up to B (excluded) of each input\n"
	       "  -n, --limit N       stop after N documents in all\n"
	       "      --where EXPR    keep rows where a numeric column or field compares\n"
	       "                      true: NAME >= <= > < == != NUMBER, e.g. 'int_score>=3'\n"
	       "      --schema        print each parquet file's columns and row groups\n"
	       "  -o, --output FILE   write there (atomically) instead of stdout\n"
	       "  -j, --jobs N        download up to N URLs ahead while reading (default 1)\n"
	       "      --cache DIR     download cache (default $XDG_CACHE_HOME/gpt)\n"
	       "      --offline       use only cached downloads\n"
	       "  -q, --quiet         no progress line\n"
	       "      --progress      progress line even when stderr is not a terminal\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

/* Download-ahead: workers fetch URLs in input order, at most `ahead`
 * inputs past the one being read; main waits for each in turn. */
struct prefetch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char **inputs, **paths;
	int n, next, reading, ahead;
	const struct http_opts *ho;
};

static char *fetch_one(const char *in, const struct http_opts *ho)
{
	return http_is_url(in) ? http_fetch(in, ho) : xstrdup(in);
}

static void *prefetch_worker(void *arg)
{
	struct prefetch *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		int i;
		char *path;

		while (p->next < p->n && p->next > p->reading + p->ahead)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->next >= p->n)
			break;
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		path = fetch_one(p->inputs[i], p->ho);
		pthread_mutex_lock(&p->mu);
		p->paths[i] = path;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* The local path of input i: from the workers when there are some (also
 * telling them how far reading has come), else fetched now. */
static char *input_path(struct prefetch *p, int i)
{
	char *path;

	if (p->ahead <= 1)
		return fetch_one(p->inputs[i], p->ho);
	pthread_mutex_lock(&p->mu);
	p->reading = i;
	pthread_cond_broadcast(&p->cv);
	while (!p->paths[i])
		pthread_cond_wait(&p->cv, &p->mu);
	path = p->paths[i];
	p->paths[i] = NULL;
	pthread_mutex_unlock(&p->mu);
	return path;
}

static void parse_rows(const char *arg, struct corpus_opts *o)
{
	const char *colon = strchr(arg, ':');
	char buf[64];
	size_t n;

	if (!colon)
		die_usage("--rows wants START:END: '%s'", arg);
	n = (size_t)(colon - arg);
	if (n >= sizeof buf)
		die_usage("--rows wants START:END: '%s'", arg);
	memcpy(buf, arg, n);
	buf[n] = 0;
	o->row_start = n ? cli_u64("--rows", buf, 0, UINT64_MAX - 1) : 0;
	o->row_end = colon[1] ? cli_u64("--rows", colon + 1, 0, UINT64_MAX) : UINT64_MAX;
	if (o->row_end < o->row_start)
		die_usage("--rows end before start: '%s'", arg);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "column", required_argument, NULL, 'c' },
		{ "field", required_argument, NULL, 'F' },
		{ "rows", required_argument, NULL, 'R' },
		{ "limit", required_argument, NULL, 'n' },
		{ "where", required_argument, NULL, 'W' },
		{ "schema", no_argument, NULL, 'S' },
		{ "output", required_argument, NULL, 'o' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "cache", required_argument, NULL, 'C' },
		{ "offline", no_argument, NULL, 'O' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct corpus_opts o = { .row_end = UINT64_MAX };
	struct corpus_stats st = { 0 };
	struct http_opts ho = { 0 };
	enum progress_mode pmode = PROGRESS_AUTO;
	struct progress prog;
	struct prefetch pf;
	pthread_t *threads = NULL;
	const char *output = NULL;
	struct afile af = { 0 };
	struct out so, *out;
	int schema = 0, jobs = 1, c, i, n;

	err_init(argv[0]);
	io_init();
	while ((c = cli_getopt(argc, argv, "c:n:o:j:qh", longopts)) != -1) {
		switch (c) {
		case 'c': o.column = optarg; break;
		case 'F': o.field = optarg; break;
		case 'R': parse_rows(optarg, &o); break;
		case 'n': o.limit = cli_u64("--limit", optarg, 1, UINT64_MAX); break;
		case 'W':
			if (corpus_parse_where(optarg, &o) < 0)
				die_usage("--where wants NAME OP NUMBER (OP one of >= <= > < == !=): '%s'",
					  optarg);
			break;
		case 'S': schema = 1; break;
		case 'o': output = optarg; break;
		case 'j': jobs = (int)cli_u64("--jobs", optarg, 1, 64); break;
		case 'C': ho.cache_dir = optarg; break;
		case 'O': ho.offline = 1; break;
		case 'q': pmode = PROGRESS_QUIET; ho.quiet_progress = 1; break;
		case 'P': pmode = PROGRESS_FORCE; ho.force_progress = 1; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option");
		}
	}
	n = argc - optind;
	if (n < 1)
		die_usage("no input; give a file, '-' or a URL");

	memset(&pf, 0, sizeof pf);
	pthread_mutex_init(&pf.mu, NULL);
	pthread_cond_init(&pf.cv, NULL);
	pf.inputs = argv + optind;
	pf.paths = xcalloc((size_t)n, sizeof *pf.paths);
	pf.n = n;
	pf.ahead = jobs;
	pf.ho = &ho;
	if (jobs > 1) {
		threads = xcalloc((size_t)jobs, sizeof *threads);
		for (i = 0; i < jobs; i++)
			if (pthread_create(&threads[i], NULL, prefetch_worker, &pf) != 0)
				die("cannot start a download thread");
	}

	if (schema) {
		for (i = 0; i < n; i++) {
			char *path = input_path(&pf, i);

			if (n > 1)
				printf("%s%s:\n", i ? "\n" : "", pf.inputs[i]);
			corpus_schema(path, stdout);
			free(path);
			/* a reader that went away (`| head`) ends it quietly,
			 * as struct out does */
			if (fflush(stdout) || ferror(stdout)) {
				if (errno == EPIPE)
					exit(EXIT_OK);
				die_errno("cannot write the schema");
			}
		}
		free(pf.paths);
		exit(EXIT_OK);
	}

	if (output) {
		afile_open(&af, output);
		out = &af.out;
	} else {
		out_init(&so, 1, "stdout");
		out = &so;
	}
	progress_init(&prog, pmode, "gpt-fetch", "B", 0);
	o.progress = &prog;
	for (i = 0; i < n; i++) {
		char *path = input_path(&pf, i);
		int stop;

		o.label = pf.inputs[i];
		stop = corpus_read(path, &o, out, &st);
		free(path);
		progress_update(&prog, st.bytes);
		if (stop)
			break;
	}
	progress_end(&prog);
	if (output)
		afile_commit(&af);
	else
		out_free(&so);
	if (pmode == PROGRESS_FORCE)
		fprintf(stderr, "gpt-fetch: %llu documents, %llu bytes from %llu rows\n",
			(unsigned long long)st.written, (unsigned long long)st.bytes,
			(unsigned long long)st.rows);
	/* Download threads may still be fetching inputs past a --limit;
	 * leaving them is what exit() is for. */
	if (!threads)
		free(pf.paths);
	exit(EXIT_OK);
}
