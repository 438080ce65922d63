/* gpt-judge: score model responses with a larger model behind an
 * OpenAI-compatible API (Ollama, llama.cpp's server, vLLM, OpenAI,
 * gpt-serve), as the series scores its fine-tuned model; see gpt-judge(1).
 *
 * Requests go out through libcurl's multi interface, up to -j at once;
 * JSON is read and written with jansson.  Each answered record is
 * appended to the output as it comes (a journal a rerun resumes from),
 * and the output is rewritten in input order, one line a record, when
 * the run ends. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "io.h"
#include "progress.h"

#define INPUT_MAX ((size_t)1 << 31)
#define BODY_MAX ((size_t)16 << 20)   /* bytes of a judge's answer */

static void usage(void)
{
	printf("usage: gpt-judge --url URL --model NAME [options] RESPONSES.jsonl\n"
	       "Score each record's response with a judge model; see gpt-judge(1).\n"
	       "      --url URL        the judge's API base, e.g. http://localhost:11434/v1\n"
	       "                       (default $OPENAI_BASE_URL)\n"
	       "      --model NAME     the judge model, e.g. llama3\n"
	       "      --api-key KEY    sent as 'Authorization: Bearer KEY' (default $OPENAI_API_KEY)\n"
	       "      --prompt FILE    the scoring prompt, with {prompt} {instruction} {input}\n"
	       "                       {output} {response} (default: the series')\n"
	       "  -o, --output FILE    the scored records (default stdout); a rerun with the\n"
	       "                       same FILE sends only the records not yet scored\n"
	       "  -j, --jobs N         requests in flight (default 4)\n"
	       "      --timeout S      seconds a request may take (default 120)\n"
	       "      --retries N      retries of a failed request (default 5)\n"
	       "      --json           the summary as one JSON object on stderr\n"
	       "  -q, --quiet          no progress\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

/* The series' prompt (its format_input, then the scoring request). */
static const char default_prompt[] =
	"Given the input `{prompt}` and correct output `{output}`, score the model response "
	"`{response}` on a scale from 0 to 100, where 100 is the best score. Respond with the "
	"integer number only.";

struct rec {
	json_t *obj;              /* the record as read */
	char *instruction, *input, *output, *response;
	char *key;                /* identifies it in a previous output */
	json_t *result;           /* the record with its score, once known */
	int score;                /* -1: unscored */
	char reason[160];
	int attempts;
	double not_before;        /* a retry waits until then */
	int in_flight;
};

struct req {
	CURL *h;
	struct rec *r;
	char *body;
	char *resp;
	size_t n, cap;
	int too_big;
	double retry_after;       /* seconds, from the header; -1 none */
	struct curl_slist *hdr;
};

static struct {
	const char *url, *model, *key;
	char *endpoint, *tpl;
	int jobs, retries, json, quiet;
	long timeout;
} O;

static char *xstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return xstrdup(json_is_string(v) ? json_string_value(v) : "");
}

/* The record's fields: Alpaca form, or a chat whose last user message is
 * the instruction and last assistant message the reference. */
static int rec_fields(struct rec *r, const char **why)
{
	json_t *m = json_object_get(r->obj, "messages"), *resp = json_object_get(r->obj, "response");

	if (!json_is_string(resp)) {
		*why = "no \"response\" (gpt-sample --jsonl writes it)";
		return -1;
	}
	r->response = xstrdup(json_string_value(resp));
	if (json_is_array(m)) {
		size_t i;
		json_t *x;
		r->instruction = xstrdup("");
		r->output = xstrdup("");
		json_array_foreach(m, i, x) {
			json_t *role = json_object_get(x, "role"), *c = json_object_get(x, "content");
			if (!json_is_string(role) || !json_is_string(c))
				continue;
			if (!strcmp(json_string_value(role), "user")) {
				free(r->instruction);
				r->instruction = xstrdup(json_string_value(c));
			} else if (!strcmp(json_string_value(role), "assistant")) {
				free(r->output);
				r->output = xstrdup(json_string_value(c));
			}
		}
		r->input = xstrdup("");
		return 0;
	}
	if (!json_is_string(json_object_get(r->obj, "instruction"))) {
		*why = "no \"instruction\" (nor \"messages\")";
		return -1;
	}
	r->instruction = xstr(r->obj, "instruction");
	r->input = xstr(r->obj, "input");
	r->output = xstr(r->obj, "output");
	return 0;
}

static char *rec_key(const struct rec *r)
{
	json_t *k = json_pack("[ssss]", r->instruction, r->input, r->output, r->response);
	char *s = json_dumps(k, JSON_COMPACT);
	json_decref(k);
	return s;
}

static void buf_put(char **p, size_t *n, size_t *cap, const char *s, size_t len)
{
	if (*n + len + 1 > *cap) {
		*cap = (*n + len + 1) * 2;
		*p = xrealloc(*p, *cap);
	}
	memcpy(*p + *n, s, len);
	*n += len;
	(*p)[*n] = 0;
}

/* The prompt for r: the template with its placeholders filled. */
static char *render(const struct rec *r)
{
	char *out = NULL, *alp = NULL;
	size_t n = 0, cap = 0, an = 0, acap = 0;
	const char *t = O.tpl;

	/* the series' format_input: the Alpaca prompt without its response line */
	static const char head[] = "Below is an instruction that describes a task. Write a "
	                           "response that appropriately completes the request.\n\n"
	                           "### Instruction:\n";

	buf_put(&alp, &an, &acap, head, sizeof head - 1);
	buf_put(&alp, &an, &acap, r->instruction, strlen(r->instruction));
	if (*r->input) {
		buf_put(&alp, &an, &acap, "\n\n### Input:\n", 13);
		buf_put(&alp, &an, &acap, r->input, strlen(r->input));
	}
	buf_put(&out, &n, &cap, "", 0);
	while (*t) {
		static const char *const names[] = { "{prompt}", "{instruction}", "{input}", "{output}",
		                                     "{response}" };
		const char *vals[] = { alp, r->instruction, r->input, r->output, r->response };
		int hit = -1;
		for (int i = 0; i < 5; i++)
			if (!strncmp(t, names[i], strlen(names[i])))
				hit = i;
		if (hit >= 0) {
			buf_put(&out, &n, &cap, vals[hit], strlen(vals[hit]));
			t += strlen(names[hit]);
		} else {
			buf_put(&out, &n, &cap, t, 1);
			t++;
		}
	}
	free(alp);
	return out;
}

/* The score in a judge's reply: the whole reply, trimmed, an integer from
 * 0 to 100 (a trailing "." or "/100" allowed); -1 otherwise. */
static int parse_score(const char *s)
{
	size_t a = 0, b = strlen(s);
	long v = 0;

	while (a < b && strchr(" \t\r\n*`\"'", s[a]))
		a++;
	while (b > a && strchr(" \t\r\n*`\"'.", s[b - 1]))
		b--;
	if (b - a > 4 && !strncmp(s + b - 4, "/100", 4))
		b -= 4;
	if (a == b || b - a > 3)
		return -1;
	for (size_t i = a; i < b; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 100 ? (int)v : -1;
}

static void set_result(struct rec *r, int score, const char *reason)
{
	json_t *o = json_deep_copy(r->obj);

	r->score = score;
	snprintf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
	json_object_set_new(o, "score", score >= 0 ? json_integer(score) : json_null());
	if (score < 0)
		json_object_set_new(o, "judge_error", json_string(r->reason));
	else
		json_object_del(o, "judge_error");
	json_decref(r->result);
	r->result = o;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct req *q = ud;
	size_t n = sz * nm;

	if (q->n + n > BODY_MAX) {
		q->too_big = 1;
		return 0;
	}
	buf_put(&q->resp, &q->n, &q->cap, p, n);
	return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
	struct req *q = ud;
	size_t n = sz * nm;

	if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		char tmp[64];
		size_t k = n - 12 < sizeof tmp - 1 ? n - 12 : sizeof tmp - 1;
		memcpy(tmp, p + 12, k);
		tmp[k] = 0;
		q->retry_after = atof(tmp);
	}
	return n;
}

static struct req *start(CURLM *m, struct rec *r)
{
	struct req *q = xcalloc(1, sizeof *q);
	json_t *b, *msgs;
	char *prompt = render(r);

	msgs = json_pack("[{ssss}]", "role", "user", "content", prompt);
	b = json_pack("{sssosisi}", "model", O.model, "messages", msgs, "temperature", 0, "seed",
	              123);
	q->body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	free(prompt);
	q->r = r;
	q->retry_after = -1;
	q->h = curl_easy_init();
	if (!q->h || !q->body)
		die("out of memory");
	q->hdr = curl_slist_append(q->hdr, "Content-Type: application/json");
	if (O.key && *O.key) {
		char *a = xasprintf("Authorization: Bearer %s", O.key);
		q->hdr = curl_slist_append(q->hdr, a);
		free(a);
	}
	curl_easy_setopt(q->h, CURLOPT_URL, O.endpoint);
	curl_easy_setopt(q->h, CURLOPT_HTTPHEADER, q->hdr);
	curl_easy_setopt(q->h, CURLOPT_POSTFIELDS, q->body);
	curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(q->h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(q->h, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(q->h, CURLOPT_TIMEOUT, O.timeout);
	curl_easy_setopt(q->h, CURLOPT_CONNECTTIMEOUT, O.timeout < 30 ? O.timeout : 30L);
	curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
	curl_easy_setopt(q->h, CURLOPT_USERAGENT, "gpt-judge/" GPT_VERSION);
	curl_multi_add_handle(m, q->h);
	r->in_flight = 1;
	r->attempts++;
	return q;
}

static void req_free(CURLM *m, struct req *q)
{
	curl_multi_remove_handle(m, q->h);
	curl_easy_cleanup(q->h);
	curl_slist_free_all(q->hdr);
	free(q->body);
	free(q->resp);
	free(q);
}

/* A request ended: the record is scored, unscored, or to be tried again
 * (returns 1). */
static int finish(struct req *q, CURLcode cc)
{
	struct rec *r = q->r;
	long status = 0;
	char why[160];
	double wait;
	json_t *o, *content;

	r->in_flight = 0;
	curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &status);
	wait = 0.5 * pow(2.0, (double)(r->attempts - 1));
	if (wait > 20)
		wait = 20;
	if (cc != CURLE_OK) {
		if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
			if (r->attempts > O.retries)
				die("cannot reach the judge at '%s': %s", O.endpoint, curl_easy_strerror(cc));
		}
		snprintf(why, sizeof why, "%s", cc == CURLE_OPERATION_TIMEDOUT
		         ? "timed out" : curl_easy_strerror(cc));
		goto retry;
	}
	if (status == 401 || status == 403 || status == 404) {
		json_t *e = json_loadb(q->resp ? q->resp : "", q->n, 0, NULL);
		json_t *msg = json_object_get(json_object_get(e, "error"), "message");
		die("the judge at '%s' answered %ld%s%s", O.endpoint, status, json_is_string(msg)
		    ? ": " : "", json_is_string(msg) ? json_string_value(msg) : "");
		json_decref(e);
	}
	if (status == 429 || status >= 500) {
		snprintf(why, sizeof why, "http %ld", status);
		if (q->retry_after >= 0)
			wait = q->retry_after > 60 ? 60 : q->retry_after;
		goto retry;
	}
	if (status != 200) {
		json_t *e = json_loadb(q->resp ? q->resp : "", q->n, 0, NULL);
		json_t *msg = json_object_get(json_object_get(e, "error"), "message");
		snprintf(why, sizeof why, "http %ld%s%.120s", status, json_is_string(msg) ? ": " : "",
		         json_is_string(msg) ? json_string_value(msg) : "");
		json_decref(e);
		set_result(r, -1, why);
		return 0;
	}
	o = json_loadb(q->resp ? q->resp : "", q->n, 0, NULL);
	content = json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0),
	                                          "message"), "content");
	if (!json_is_string(content)) {
		json_decref(o);
		snprintf(why, sizeof why, "not an OpenAI chat completion");
		goto retry;
	}
	{
		int s = parse_score(json_string_value(content));
		char shown[64];
		size_t k = 0;
		for (const char *p = json_string_value(content); *p && k < sizeof shown - 4; p++)
			shown[k++] = *p == '\n' ? ' ' : *p;
		shown[k] = 0;
		if (s < 0)
			snprintf(why, sizeof why, "not a score: '%s%s'", shown,
			         strlen(json_string_value(content)) > k ? "..." : "");
		set_result(r, s, s < 0 ? why : NULL);
	}
	json_decref(o);
	return 0;
retry:
	if (r->attempts > O.retries) {
		set_result(r, -1, why);
		return 0;
	}
	r->not_before = progress_now() + wait;
	snprintf(r->reason, sizeof r->reason, "%s", why);
	return 1;
}

/* Reads a previous output: key -> the last line written for it. */
static json_t *read_previous(const char *path)
{
	json_t *map = json_object();
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (!f) {
		if (errno != ENOENT)
			die_errno("cannot read '%s'", path);
		return map;
	}
	while (getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);
		struct rec t;
		const char *why;
		if (!json_is_object(o)) {  /* a line cut short by a crash */
			json_decref(o);
			continue;
		}
		memset(&t, 0, sizeof t);
		t.obj = o;
		if (rec_fields(&t, &why) == 0) {
			char *k = rec_key(&t);
			json_object_set(map, k, o);
			free(k);
		}
		free(t.instruction);
		free(t.input);
		free(t.output);
		free(t.response);
		json_decref(o);
	}
	free(line);
	fclose(f);
	return map;
}

static void write_line(FILE *f, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!s)
		die("out of memory");
	fputs(s, f);
	fputc('\n', f);
	free(s);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "url", required_argument, NULL, 'U' },
		{ "model", required_argument, NULL, 'M' },
		{ "api-key", required_argument, NULL, 'K' },
		{ "prompt", required_argument, NULL, 'P' },
		{ "output", required_argument, NULL, 'o' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "retries", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out_path = NULL, *prompt_path = NULL;
	struct rec *R = NULL;
	size_t n = 0, cap = 0, len, done = 0, resumed = 0, pending;
	unsigned char *text;
	char *line, *next;
	json_t *prev;
	FILE *journal = NULL;
	CURLM *m;
	struct progress prog;
	int opt;

	err_init(argv[0]);
	io_init();
	O.jobs = 4;
	O.retries = 5;
	O.timeout = 120;
	while ((opt = cli_getopt(argc, argv, "ho:j:q", lopts)) != -1) {
		switch (opt) {
		case 'U': O.url = optarg; break;
		case 'M': O.model = optarg; break;
		case 'K': O.key = optarg; break;
		case 'P': prompt_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'j': O.jobs = (int)cli_u64("--jobs", optarg, 1, 256); break;
		case 'T': O.timeout = (long)cli_u64("--timeout", optarg, 1, 86400); break;
		case 'R': O.retries = (int)cli_u64("--retries", optarg, 0, 100); break;
		case 'J': O.json = 1; break;
		case 'q': O.quiet = 1; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option (see --help)");
		}
	}
	if (!O.url)
		O.url = getenv("OPENAI_BASE_URL");
	if (!O.key)
		O.key = getenv("OPENAI_API_KEY");
	if (!O.url || !*O.url)
		die_usage("--url is needed (or OPENAI_BASE_URL), e.g. http://localhost:11434/v1");
	if (strncmp(O.url, "http://", 7) && strncmp(O.url, "https://", 8))
		die_usage("--url must start with http:// or https://: '%s'", O.url);
	if (!O.model)
		die_usage("--model is needed: the judge model's name");
	if (optind + 1 != argc)
		die_usage("give one file of responses (see --help)");
	{
		size_t k = strlen(O.url);
		while (k && O.url[k - 1] == '/')
			k--;
		O.endpoint = xasprintf("%.*s/chat/completions", (int)k, O.url);
	}
	if (prompt_path) {
		size_t pl;
		O.tpl = (char *)io_read_file(prompt_path, 1 << 20, &pl);
		if (!strstr(O.tpl, "{response}"))
			die("the prompt '%s' has no {response}: the judge would not see the answer",
			    prompt_path);
	} else {
		O.tpl = xstrdup(default_prompt);
	}

	/* the records, all checked before anything is sent */
	text = io_read_file(argv[optind], INPUT_MAX, &len);
	for (line = (char *)text; line && *line; line = next) {
		json_error_t e;
		const char *why;
		size_t ll;
		next = strchr(line, '\n');
		ll = next ? (size_t)(next - line) : strlen(line);
		if (next)
			next++;
		if (ll == 0 || strspn(line, " \t\r") == ll)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			R = xrealloc(R, cap * sizeof *R);
		}
		memset(&R[n], 0, sizeof R[n]);
		R[n].obj = json_loadb(line, ll, JSON_PRESERVE_ORDER, &e);
		if (!json_is_object(R[n].obj))
			die("%s: line %zu: not a JSON object%s%s", argv[optind], n + 1,
			    R[n].obj ? "" : ": ", R[n].obj ? "" : e.text);
		if (rec_fields(&R[n], &why) != 0)
			die("%s: line %zu: %s", argv[optind], n + 1, why);
		R[n].key = rec_key(&R[n]);
		R[n].score = -1;
		n++;
	}
	free(text);
	if (n == 0)
		die("%s: no records", argv[optind]);

	/* what a previous run scored already */
	if (out_path) {
		prev = read_previous(out_path);
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object_get(prev, R[i].key);
			json_t *s = json_object_get(o, "score");
			if (json_is_integer(s)) {
				R[i].result = json_incref(o);
				R[i].score = (int)json_integer_value(s);
				done++;
				resumed++;
			}
		}
		json_decref(prev);
		journal = fopen(out_path, "a");
		if (!journal)
			die_errno("cannot write '%s'", out_path);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(m = curl_multi_init()))
		die("cannot start libcurl");
	progress_init(&prog, O.quiet ? PROGRESS_QUIET : PROGRESS_AUTO, "judged", "records",
	              (uint64_t)n);
	progress_update(&prog, done);
	pending = n - done;
	{
		size_t nextrec = 0, flying = 0;
		while (pending > 0) {
			int running, left;
			CURLMsg *msg;
			double now = progress_now();
			/* start what may start: new records in order, then retries due */
			for (size_t i = 0; i < n && flying < (size_t)O.jobs; i++) {
				struct rec *r = &R[i];
				if (r->result || r->in_flight || r->not_before > now)
					continue;
				if (r->attempts == 0 && i > nextrec)
					nextrec = i;
				start(m, r);
				flying++;
			}
			curl_multi_perform(m, &running);
			while ((msg = curl_multi_info_read(m, &left)) != NULL) {
				struct req *q;
				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
				flying--;
				if (!finish(q, msg->data.result)) {
					pending--;
					done++;
					progress_update(&prog, done);
					if (journal) {
						write_line(journal, q->r->result);
						fflush(journal);
					}
				}
				req_free(m, q);
			}
			if (pending > 0)
				curl_multi_poll(m, NULL, 0, flying ? 100 : 50, NULL);
		}
	}
	progress_end(&prog);
	curl_multi_cleanup(m);
	curl_global_cleanup();

	/* the output: one line a record, in input order */
	if (out_path) {
		struct afile a;
		fclose(journal);
		afile_open(&a, out_path);
		for (size_t i = 0; i < n; i++) {
			char *s = json_dumps(R[i].result, JSON_COMPACT | JSON_PRESERVE_ORDER);
			out_write(&a.out, s, strlen(s));
			out_putc(&a.out, '\n');
			free(s);
		}
		afile_commit(&a);
	} else {
		for (size_t i = 0; i < n; i++)
			write_line(stdout, R[i].result);
		if (fflush(stdout) != 0)
			die_errno("cannot write the scores");
	}

	/* the summary */
	{
		int *sc = xcalloc(n, sizeof *sc), ns = 0;
		double sum = 0, median = NAN;
		json_t *reasons = json_object();
		for (size_t i = 0; i < n; i++) {
			if (R[i].score >= 0) {
				sc[ns++] = R[i].score;
				sum += R[i].score;
			} else {
				/* the reason's kind: up to its ':' */
				char kind[64];
				size_t k = strcspn(R[i].reason, ":");
				snprintf(kind, sizeof kind, "%.*s", (int)(k < 63 ? k : 63), R[i].reason);
				json_object_set_new(reasons, kind, json_integer(
					json_integer_value(json_object_get(reasons, kind)) + 1));
			}
		}
		qsort(sc, (size_t)ns, sizeof *sc, cmp_int);
		if (ns)
			median = ns % 2 ? sc[ns / 2] : (sc[ns / 2 - 1] + sc[ns / 2]) / 2.0;
		if (O.json) {
			json_t *s = json_pack("{sIsisisOsssssI}", "records", (json_int_t)n, "scored", ns,
			                      "unscored", (int)n - ns, "reasons", reasons, "judge",
			                      O.model, "url", O.url, "resumed", (json_int_t)resumed);
			json_object_set_new(s, "mean", ns ? json_real(sum / ns) : json_null());
			json_object_set_new(s, "median", ns ? json_real(median) : json_null());
			write_line(stderr, s);
			json_decref(s);
		} else {
			const char *k;
			json_t *v;
			int first = 1;
			fprintf(stderr, "gpt-judge: %zu records, %d scored, %d unscored", n, ns,
			        (int)n - ns);
			json_object_foreach(reasons, k, v) {
				fprintf(stderr, "%s%" JSON_INTEGER_FORMAT " %s", first ? " (" : ", ",
				        json_integer_value(v), k);
				first = 0;
			}
			fprintf(stderr, "%s", first ? "" : ")");
			if (ns)
				fprintf(stderr, "; mean %.2f, median %g", sum / ns, median);
			fputc('\n', stderr);
			if (resumed)
				fprintf(stderr, "gpt-judge: %zu of them scored by an earlier run\n",
				        resumed);
		}
		json_decref(reasons);
		free(sc);
	}
	for (size_t i = 0; i < n; i++) {
		json_decref(R[i].obj);
		json_decref(R[i].result);
		free(R[i].instruction);
		free(R[i].input);
		free(R[i].output);
		free(R[i].response);
		free(R[i].key);
	}
	free(R);
	free(O.endpoint);
	free(O.tpl);
	return EXIT_OK;
}
