/* gpt-serve: a checkpoint behind the OpenAI-compatible HTTP API that chat
 * clients, the openai package and gpt-judge speak; see gpt-serve(1).
 *
 * HTTP is libmicrohttpd's (a thread per connection); request JSON is
 * parsed and responses written with jansson.  One worker thread owns the
 * model and its key/value cache and generates for one request at a time,
 * in arrival order; the connections wait for their job (or stream its
 * chunks as they come) and the worker watches each job's socket, so a
 * client that hangs up stops its generation. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "engine.h"
#include "err.h"
#include "instruct.h"
#include "modelio.h"
#include "progress.h"
#include "sampler.h"
#include "tokenize.h"
#include "vocab.h"

#include "chat_page.h"   /* chat_page[]: tools/chat.html, made by make */

#define BODY_MAX (1u << 20)    /* bytes of a request body */
#define STOP_MAX 4             /* stop strings a request may give */
#define STOP_LEN 256           /* bytes of one */
#define N_MAX 8                /* choices a request may ask for */
#define MSG_MAX 1024           /* messages of a chat request */

static void usage(void)
{
	printf("usage: gpt-serve [options] CHECKPOINT|RUN\n"
	       "Serve a model over the OpenAI-compatible HTTP API; see gpt-serve(1).\n"
	       "      --host ADDR      address to listen on (default 127.0.0.1)\n"
	       "  -p, --port N         port (default 8080; 0: any free port, printed)\n"
	       "      --template NAME  chat template: transcript, alpaca, phi3 or a file\n"
	       "                       (default transcript)\n"
	       "      --model-name S   the model's id in responses (default: the path's name)\n"
	       "      --api-key KEY    require 'Authorization: Bearer KEY' (also GPT_SERVE_API_KEY)\n"
	       "      --queue N        requests waiting behind the one generating (default 16);\n"
	       "                       more are answered 429\n"
	       "      --max-tokens N   default and bound of max_tokens (default: the context)\n"
	       "      --vocab PATH     tokenizer vocabulary (default: found as gpt-sample does)\n"
	       "      --offline        never download the vocabulary\n"
	       "      --device DEV     auto, cpu or cuda (default auto)\n"
	       "  -j, --threads N      CPU threads\n"
	       "  -q, --quiet          no request log on stderr\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

/* ---- text: bytes out of the tokenizer, valid UTF-8 into JSON ---- */

struct buf {
	char *p;
	size_t n, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

/* The length of the UTF-8 sequence starting s[0..n): 1..4 when complete
 * and valid, 0 when it may complete with more bytes, -1 when invalid. */
static int utf8_seq(const unsigned char *s, size_t n)
{
	int len;
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return -1;
	for (int i = 1; i < len; i++) {
		unsigned lo = 0x80, hi = 0xBF;
		if (i == 1 && c == 0xE0)
			lo = 0xA0;
		else if (i == 1 && c == 0xED)
			hi = 0x9F;
		else if (i == 1 && c == 0xF0)
			lo = 0x90;
		else if (i == 1 && c == 0xF4)
			hi = 0x8F;
		if ((size_t)i >= n)
			return 0;
		if (s[i] < lo || s[i] > hi)
			return -1;
	}
	return len;
}

/* Appends s[0..n) to out as valid UTF-8, an invalid byte as U+FFFD;
 * unless final, stops before a sequence that may still complete.
 * Returns the bytes consumed. */
static size_t utf8_clean(const unsigned char *s, size_t n, int final, struct buf *out)
{
	size_t i = 0;

	while (i < n) {
		int k = utf8_seq(s + i, n - i);
		if (k == 0 && !final)
			break;
		if (k <= 0) {
			buf_add(out, "\xEF\xBF\xBD", 3);
			i++;
			continue;
		}
		buf_add(out, s + i, (size_t)k);
		i += (size_t)k;
	}
	return i;
}

/* ---- jobs ---- */

enum finish { FIN_STOP, FIN_LENGTH, FIN_CANCEL };
static const char *const finish_name[] = { "stop", "length", "cancelled" };

struct job {
	int refs;                 /* the connection's and the worker's */
	int chat, stream, n, max_tokens, include_usage;
	double temperature, top_p;
	uint64_t seed;
	char *stops[STOP_MAX + 1];
	int n_stops;
	uint32_t *prompt;
	size_t n_prompt;
	int fd;                   /* the client's socket */
	char id[48];
	long created;
	/* made by the worker, read by the connection, under the lock */
	struct buf out;           /* the body, or the stream's bytes */
	size_t sent;
	int done, cancel, started;
	long completion_tokens;
	double t0, seconds;
	struct job *next;
};

struct server {
	struct engine *e;
	struct engine_decoder *dec;
	struct vocab v;
	int n_ctx, vocab_size, vocab, max_tokens;
	struct instruct_template *tpl;
	const char *tstop;        /* the template's next turn */
	char *model_name;
	const char *api_key;
	int queue_max, quiet;
	pthread_mutex_t mu;
	pthread_cond_t work, progress;
	struct job *head, *tail;
	int queued, running, open_jobs, draining, stopping;
	uint64_t next_id;
};

static struct server S;

static void job_release(struct job *j)
{
	int last;

	pthread_mutex_lock(&S.mu);
	last = --j->refs == 0;
	if (last)
		S.open_jobs--;
	pthread_cond_broadcast(&S.progress);
	pthread_mutex_unlock(&S.mu);
	if (!last)
		return;
	for (int i = 0; i < j->n_stops; i++)
		free(j->stops[i]);
	free(j->prompt);
	free(j->out.p);
	free(j);
}

/* The job's bytes so far become visible to its connection. */
static void job_publish(struct job *j, const char *p, size_t n)
{
	pthread_mutex_lock(&S.mu);
	buf_add(&j->out, p, n);
	pthread_cond_broadcast(&S.progress);
	pthread_mutex_unlock(&S.mu);
}

/* 1 when the client went away (or the job was cancelled). */
static int job_gone(struct job *j)
{
	struct pollfd p = { .fd = j->fd, .events = POLLRDHUP };
	int c;

	pthread_mutex_lock(&S.mu);
	c = j->cancel;
	pthread_mutex_unlock(&S.mu);
	if (c)
		return 1;
	if (j->fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		pthread_mutex_lock(&S.mu);
		j->cancel = 1;
		pthread_mutex_unlock(&S.mu);
		return 1;
	}
	return 0;
}

/* ---- generation (the worker) ---- */

static char *dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (!s)
		die("out of memory");
	return s;
}

/* One server-sent event with a chunk of choice `index`: text (NULL: the
 * role's opening chunk), or the finish reason. */
static void send_chunk(struct job *j, int index, const char *text, size_t len, const char *finish)
{
	json_t *c = json_object(), *ch = json_object(), *arr = json_array();
	char *s;

	json_object_set_new(c, "id", json_string(j->id));
	json_object_set_new(c, "object",
			    json_string(j->chat ? "chat.completion.chunk" : "text_completion"));
	json_object_set_new(c, "created", json_integer(j->created));
	json_object_set_new(c, "model", json_string(S.model_name));
	json_object_set_new(ch, "index", json_integer(index));
	if (j->chat) {
		json_t *d = json_object();
		if (!text && !finish) {
			json_object_set_new(d, "role", json_string("assistant"));
			json_object_set_new(d, "content", json_string(""));
		} else if (text) {
			json_object_set_new(d, "content", json_stringn(text, len));
		}
		json_object_set_new(ch, "delta", d);
	} else {
		json_object_set_new(ch, "text", json_stringn(text ? text : "", text ? len : 0));
		json_object_set_new(ch, "logprobs", json_null());
	}
	json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
	json_array_append_new(arr, ch);
	json_object_set_new(c, "choices", arr);
	s = dump(c);
	job_publish(j, "data: ", 6);
	job_publish(j, s, strlen(s));
	job_publish(j, "\n\n", 2);
	free(s);
}

struct choice {
	struct buf text;          /* valid UTF-8 */
	enum finish fin;
	long tokens;
};

/* Clean bytes of raw[0..n) into the choice's text (and the stream). */
static size_t emit(struct job *j, int index, struct choice *ch, const unsigned char *raw, size_t n,
                   int final)
{
	size_t before = ch->text.n, used = utf8_clean(raw, n, final, &ch->text);

	if (j->stream && ch->text.n > before)
		send_chunk(j, index, ch->text.p + before, ch->text.n - before, NULL);
	return used;
}

static void generate(struct job *j, int index, struct choice *ch)
{
	struct sampler smp;
	struct buf pend = { 0 };   /* bytes not yet emitted: a stop may start there */
	size_t hold = 0;
	const float *lg;
	int pos;

	memset(ch, 0, sizeof *ch);
	for (int i = 0; i < j->n_stops; i++)
		if (strlen(j->stops[i]) - 1 > hold)
			hold = strlen(j->stops[i]) - 1;
	sampler_init(&smp, S.vocab, j->temperature, 0, j->top_p, j->seed + (uint64_t)index);
	engine_decoder_rewind(S.dec, 0);
	lg = engine_decoder_feed(S.dec, j->prompt, (int)j->n_prompt, NULL);
	pos = (int)j->n_prompt;
	ch->fin = FIN_LENGTH;
	for (int t = 0; t < j->max_tokens; t++) {
		uint32_t id;
		const unsigned char *b;
		size_t len, used;
		int hit = 0;

		if (job_gone(j)) {
			ch->fin = FIN_CANCEL;
			break;
		}
		id = sampler_next(&smp, lg);
		ch->tokens++;
		if (id == S.v.eot) {
			ch->fin = FIN_STOP;
			break;
		}
		if ((b = vocab_token(&S.v, id, &len)) != NULL)
			buf_add(&pend, b, len);
		for (int i = 0; i < j->n_stops && pend.n; i++) {
			char *h = memmem(pend.p, pend.n, j->stops[i], strlen(j->stops[i]));
			if (h && (!hit || (size_t)(h - pend.p) < pend.n)) {
				pend.n = (size_t)(h - pend.p);
				hit = 1;
			}
		}
		if (hit) {
			emit(j, index, ch, (unsigned char *)pend.p, pend.n, 1);
			pend.n = 0;
			ch->fin = FIN_STOP;
			break;
		}
		used = pend.n > hold ? emit(j, index, ch, (unsigned char *)pend.p, pend.n - hold, 0) : 0;
		memmove(pend.p, pend.p + used, pend.n - used);
		pend.n -= used;
		if (t + 1 == j->max_tokens || pos + 1 > S.n_ctx - 1) {
			ch->fin = FIN_LENGTH;
			break;
		}
		lg = engine_decoder_feed(S.dec, &id, 1, NULL);
		pos++;
	}
	if (pend.n && ch->fin != FIN_CANCEL)
		emit(j, index, ch, (unsigned char *)pend.p, pend.n, 1);
	free(pend.p);
	sampler_free(&smp);
}

static json_t *usage_json(const struct job *j, long completion)
{
	json_t *u = json_object();
	json_object_set_new(u, "prompt_tokens", json_integer((json_int_t)j->n_prompt));
	json_object_set_new(u, "completion_tokens", json_integer(completion));
	json_object_set_new(u, "total_tokens", json_integer((json_int_t)j->n_prompt + completion));
	return u;
}

static void run_job(struct job *j)
{
	struct choice ch[N_MAX];
	long completion = 0;
	int cancelled = 0;

	j->t0 = progress_now();
	for (int i = 0; i < j->n && !cancelled; i++) {
		if (j->stream && j->chat)
			send_chunk(j, i, NULL, 0, NULL);
		generate(j, i, &ch[i]);
		completion += ch[i].tokens;
		cancelled = ch[i].fin == FIN_CANCEL;
		if (j->stream && !cancelled)
			send_chunk(j, i, j->chat ? NULL : "", 0, finish_name[ch[i].fin]);
		if (j->stream)
			free(ch[i].text.p);
	}
	j->completion_tokens = completion;
	j->seconds = progress_now() - j->t0;
	if (cancelled) {
		if (!j->stream)
			for (int i = 0; i < j->n; i++)
				free(ch[i].text.p);
		return;
	}
	if (j->stream) {
		if (j->include_usage) {
			json_t *c = json_object();
			char *s;
			json_object_set_new(c, "id", json_string(j->id));
			json_object_set_new(c, "object", json_string(j->chat ? "chat.completion.chunk"
			                                                   : "text_completion"));
			json_object_set_new(c, "created", json_integer(j->created));
			json_object_set_new(c, "model", json_string(S.model_name));
			json_object_set_new(c, "choices", json_array());
			json_object_set_new(c, "usage", usage_json(j, completion));
			s = dump(c);
			job_publish(j, "data: ", 6);
			job_publish(j, s, strlen(s));
			job_publish(j, "\n\n", 2);
			free(s);
		}
		job_publish(j, "data: [DONE]\n\n", 14);
		return;
	}
	{
		json_t *r = json_object(), *arr = json_array();
		char *s;
		json_object_set_new(r, "id", json_string(j->id));
		json_object_set_new(r, "object",
				    json_string(j->chat ? "chat.completion" : "text_completion"));
		json_object_set_new(r, "created", json_integer(j->created));
		json_object_set_new(r, "model", json_string(S.model_name));
		for (int i = 0; i < j->n; i++) {
			json_t *c = json_object();
			json_object_set_new(c, "index", json_integer(i));
			if (j->chat) {
				json_t *m = json_object();
				json_object_set_new(m, "role", json_string("assistant"));
				json_object_set_new(m, "content", json_stringn(ch[i].text.p ? ch[i].text.p
				                                                           : "",
				                                               ch[i].text.n));
				json_object_set_new(c, "message", m);
			} else {
				json_object_set_new(c, "text", json_stringn(ch[i].text.p ? ch[i].text.p
				                                                        : "",
				                                            ch[i].text.n));
				json_object_set_new(c, "logprobs", json_null());
			}
			json_object_set_new(c, "finish_reason", json_string(finish_name[ch[i].fin]));
			json_array_append_new(arr, c);
			free(ch[i].text.p);
		}
		json_object_set_new(r, "choices", arr);
		json_object_set_new(r, "usage", usage_json(j, completion));
		s = dump(r);
		job_publish(j, s, strlen(s));
		free(s);
	}
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&S.mu);
		while (!S.head && !S.stopping)
			pthread_cond_wait(&S.work, &S.mu);
		if (!S.head) {
			pthread_mutex_unlock(&S.mu);
			return NULL;
		}
		j = S.head;
		S.head = j->next;
		if (!S.head)
			S.tail = NULL;
		S.queued--;
		S.running = 1;
		j->started = 1;
		pthread_mutex_unlock(&S.mu);
		if (!job_gone(j))
			run_job(j);
		pthread_mutex_lock(&S.mu);
		j->done = 1;
		S.running = 0;
		pthread_cond_broadcast(&S.progress);
		pthread_mutex_unlock(&S.mu);
		if (!S.quiet)
			fprintf(stderr, "gpt-serve: %s %zu+%ld tokens in %.2f s%s\n", j->id, j->n_prompt,
			        j->completion_tokens, j->seconds, j->cancel ? " (client gone)" : "");
		job_release(j);
	}
}

/* ---- requests ---- */

struct req {
	struct buf body;
	int too_big;
	struct job *job;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
	                                                         MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	MHD_add_response_header(r, "Content-Type", type);
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *v,
                                  const char *retry_after)
{
	char *s = dump(v);
	enum MHD_Result ok = reply(c, status, "application/json", s, strlen(s), retry_after);
	free(s);
	return ok;
}

/* OpenAI's error object. */
static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *param, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *param, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *e = json_object(), *o = json_object();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_object_set_new(e, "message", json_string(msg));
	json_object_set_new(e, "type", json_string(type));
	json_object_set_new(e, "param", param ? json_string(param) : json_null());
	json_object_set_new(e, "code", code ? json_string(code) : json_null());
	json_object_set_new(o, "error", e);
	return reply_json(c, status, o, status == 429 || status == 503 ? "1" : NULL);
}

#define BAD(param, ...) error(c, 400, "invalid_request_error", param, NULL, __VA_ARGS__)

/* A message's text: a string, or an array of {"type": "text", "text"}
 * parts; NULL when neither. */
static const char *content_text(json_t *v, struct buf *tmp)
{
	size_t i;
	json_t *p;

	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_array(v))
		return NULL;
	tmp->n = 0;
	buf_add(tmp, "", 0);
	json_array_foreach(v, i, p) {
		json_t *t = json_object_get(p, "text");
		if (!json_is_string(t) || !json_is_string(json_object_get(p, "type")) ||
		    strcmp(json_string_value(json_object_get(p, "type")), "text") != 0)
			return NULL;
		buf_add(tmp, json_string_value(t), json_string_length(t));
	}
	return tmp->p;
}

/* The chat's prompt text from messages, through the template; NULL and
 * *why when the messages cannot be rendered. */
static char *chat_prompt(json_t *msgs, size_t *len, const char **why)
{
	struct instruct_example ex;
	struct instruct_msg *m;
	struct buf tmp = { 0 };
	size_t i, n = 0, users = 0;
	json_t *v;
	char *p = NULL;

	*why = NULL;
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		*why = "messages must be a non-empty array";
		return NULL;
	}
	if (json_array_size(msgs) > MSG_MAX) {
		*why = "too many messages";
		return NULL;
	}
	m = xcalloc(json_array_size(msgs) + 1, sizeof *m);
	json_array_foreach(msgs, i, v) {
		json_t *r = json_object_get(v, "role");
		const char *role = json_is_string(r) ? json_string_value(r) : "";
		const char *text = content_text(json_object_get(v, "content"), &tmp);
		enum instruct_role ro;

		if (!strcmp(role, "system") || !strcmp(role, "developer"))
			ro = INSTRUCT_SYSTEM;
		else if (!strcmp(role, "user"))
			ro = INSTRUCT_USER;
		else if (!strcmp(role, "assistant"))
			ro = INSTRUCT_ASSISTANT;
		else {
			*why = "each message's role must be system, user or assistant";
			goto out;
		}
		if (!text) {
			*why = "each message's content must be text";
			goto out;
		}
		if (ro == INSTRUCT_SYSTEM && n > 0) {
			*why = "a system message may only come first";
			goto out;
		}
		if (n > 0 && m[n - 1].role == ro) { /* two turns in a row: one */
			size_t a = strlen(m[n - 1].text), b = strlen(text);
			m[n - 1].text = xrealloc(m[n - 1].text, a + b + 3);
			memcpy(m[n - 1].text + a, "\n\n", 2);
			memcpy(m[n - 1].text + a + 2, text, b + 1);
			continue;
		}
		if ((n == 0 || m[n - 1].role == INSTRUCT_SYSTEM) && ro == INSTRUCT_ASSISTANT) {
			*why = "the conversation must start with a user message";
			goto out;
		}
		users += ro == INSTRUCT_USER;
		m[n].role = ro;
		m[n++].text = xstrdup(text);
	}
	if (m[n - 1].role != INSTRUCT_USER) {
		*why = "the last message must be the user's";
		goto out;
	}
	if (!instruct_template_stop(S.tpl) && (users != 1 || m[0].role == INSTRUCT_SYSTEM)) {
		*why = "this server's template file takes one user message";
		goto out;
	}
	m[n].role = INSTRUCT_ASSISTANT;     /* the reply to make */
	m[n++].text = xstrdup("");
	memset(&ex, 0, sizeof ex);
	ex.chat = 1;
	ex.msgs = m;
	ex.n_msgs = (int)n;
	p = instruct_prompt(S.tpl, &ex, len);
out:
	for (size_t k = 0; k < n; k++)
		free(m[k].text);
	free(m);
	free(tmp.p);
	return p;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct job *j = cls;
	size_t n;

	(void)pos;
	pthread_mutex_lock(&S.mu);
	while (j->sent == j->out.n && !j->done)
		pthread_cond_wait(&S.progress, &S.mu);
	n = j->out.n - j->sent;
	if (n > max)
		n = max;
	memcpy(buf, j->out.p + j->sent, n);
	j->sent += n;
	pthread_mutex_unlock(&S.mu);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct job *j = cls;

	pthread_mutex_lock(&S.mu);
	if (!j->done)
		j->cancel = 1;
	pthread_mutex_unlock(&S.mu);
	job_release(j);
}

/* A job that was never queued. */
static void job_drop(struct job *j)
{
	for (int i = 0; i < j->n_stops; i++)
		free(j->stops[i]);
	free(j->prompt);
	free(j);
}

static int get_number(json_t *o, const char *key, double lo, double hi, double *v)
{
	json_t *x = json_object_get(o, key);
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_number(x) || !(json_number_value(x) >= lo && json_number_value(x) <= hi))
		return -1;
	*v = json_number_value(x);
	return 1;
}

static int get_int(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *v)
{
	json_t *x = json_object_get(o, key);
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
		return -1;
	*v = json_integer_value(x);
	return 1;
}

static enum MHD_Result completions(struct MHD_Connection *c, struct req *rq, int chat)
{
	json_error_t jerr;
	json_t *o = json_loadb(rq->body.p ? rq->body.p : "", rq->body.n, 0, &jerr), *x;
	struct job *j;
	char *text;
	size_t len;
	json_int_t k;
	const char *why;
	int queued;
	enum MHD_Result res;

	if (!json_is_object(o)) {
		json_decref(o);
		return BAD(NULL, "the body is not a JSON object: %s", jerr.text);
	}
	j = xcalloc(1, sizeof *j);
	j->chat = chat;
	j->n = 1;
	j->temperature = 1.0;
	j->top_p = 1.0;
	j->fd = -1;
#define FAIL(...) do { res = BAD(__VA_ARGS__); goto fail; } while (0)
	if (get_number(o, "temperature", 0, 2, &j->temperature) < 0)
		FAIL("temperature", "temperature must be a number from 0 to 2");
	if (get_number(o, "top_p", 0, 1, &j->top_p) < 0 || !(j->top_p > 0))
		FAIL("top_p", "top_p must be a number above 0 and at most 1");
	if (get_int(o, "n", 1, N_MAX, &k) < 0)
		FAIL("n", "n must be an integer from 1 to %d", N_MAX);
	else if (json_object_get(o, "n") && !json_is_null(json_object_get(o, "n")))
		j->n = (int)k;
	if (get_int(o, "seed", INT64_MIN, INT64_MAX, &k) < 0)
		FAIL("seed", "seed must be an integer");
	else if (json_is_integer(json_object_get(o, "seed")))
		j->seed = (uint64_t)k;
	else
		j->seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + S.next_id;
	x = json_object_get(o, "stream");
	if (x && !json_is_null(x) && !json_is_boolean(x))
		FAIL("stream", "stream must be true or false");
	j->stream = json_is_true(x);
	x = json_object_get(json_object_get(o, "stream_options"), "include_usage");
	j->include_usage = json_is_true(x);
	x = json_object_get(o, "stop");
	if (json_is_string(x) || json_is_array(x)) {
		size_t i;
		json_t *s;
		json_t *one = json_is_string(x) ? json_pack("[O]", x) : json_incref(x);
		if (json_array_size(one) > STOP_MAX) {
			json_decref(one);
			FAIL("stop", "stop takes at most %d strings", STOP_MAX);
		}
		json_array_foreach(one, i, s) {
			if (!json_is_string(s) || json_string_length(s) == 0 ||
			    json_string_length(s) > STOP_LEN || strlen(json_string_value(s)) !=
			    json_string_length(s)) {
				json_decref(one);
				FAIL("stop", "each stop must be a string of 1 to %d bytes", STOP_LEN);
			}
			j->stops[j->n_stops++] = xstrdup(json_string_value(s));
		}
		json_decref(one);
	} else if (x && !json_is_null(x)) {
		FAIL("stop", "stop must be a string or an array of strings");
	}
	if (chat) {
		text = chat_prompt(json_object_get(o, "messages"), &len, &why);
		if (!text)
			FAIL("messages", "%s", why);
		if (S.tstop)
			j->stops[j->n_stops++] = xstrdup(S.tstop);
		j->n_prompt = tokenize_text(&S.v, (unsigned char *)text, len, 0, &j->prompt);
		free(text);
	} else {
		x = json_object_get(o, "prompt");
		if (json_is_array(x) && json_array_size(x) == 1)
			x = json_array_get(x, 0);
		if (!json_is_string(x))
			FAIL("prompt", "prompt must be a string");
		j->n_prompt = tokenize_text(&S.v, (const unsigned char *)json_string_value(x),
		                            json_string_length(x), 1, &j->prompt);
		if (j->n_prompt == 0) { /* as GPT-2 starts: after <|endoftext|> */
			j->prompt = xrealloc(j->prompt, sizeof *j->prompt);
			j->prompt[j->n_prompt++] = S.v.eot;
		}
	}
	for (size_t i = 0; i < j->n_prompt; i++)
		if (j->prompt[i] >= (uint32_t)S.vocab_size)
			FAIL(chat ? "messages" : "prompt", "token %u of the prompt is outside the model's "
			     "vocabulary of %d", j->prompt[i], S.vocab_size);
	if (j->n_prompt >= (size_t)S.n_ctx)
		FAIL(chat ? "messages" : "prompt", "this model's maximum context length is %d "
		     "tokens; the prompt has %zu", S.n_ctx, j->n_prompt);
	j->max_tokens = S.n_ctx - (int)j->n_prompt;
	if (j->max_tokens > S.max_tokens)
		j->max_tokens = S.max_tokens;
	{
		const char *key = json_object_get(o, "max_completion_tokens") ? "max_completion_tokens"
		                                                             : "max_tokens";
		int r = get_int(o, key, 1, INT32_MAX, &k);
		if (r < 0)
			FAIL(key, "%s must be a positive integer", key);
		if (r > 0 && (k > S.n_ctx - (json_int_t)j->n_prompt || k > S.max_tokens))
			FAIL(key, "this model's maximum context length is %d tokens; the prompt has %zu "
			     "and %s asks for %lld more (at most %d here)", S.n_ctx, j->n_prompt, key,
			     (long long)k, k > S.max_tokens ? S.max_tokens :
			     S.n_ctx - (int)j->n_prompt);
		if (r > 0)
			j->max_tokens = (int)k;
	}
	json_decref(o);
	o = NULL;
	if (0) {
fail:
		json_decref(o);
		job_drop(j);
		return res;
	}
#undef FAIL
	{
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		j->fd = ci ? ci->connect_fd : -1;
	}
	pthread_mutex_lock(&S.mu);
	if (S.draining) {
		pthread_mutex_unlock(&S.mu);
		job_drop(j);
		return error(c, 503, "server_error", NULL, NULL, "the server is shutting down");
	}
	queued = S.queued;
	if (S.queued + S.running > S.queue_max) {
		pthread_mutex_unlock(&S.mu);
		job_drop(j);
		return error(c, 429, "rate_limit_error", NULL, "queue_full",
		             "%d requests are waiting already; try again shortly", queued);
	}
	snprintf(j->id, sizeof j->id, "%s-%" PRIu64, chat ? "chatcmpl" : "cmpl", ++S.next_id);
	j->created = (long)time(NULL);
	j->refs = 2;
	S.open_jobs++;
	if (S.tail)
		S.tail->next = j;
	else
		S.head = j;
	S.tail = j;
	S.queued++;
	pthread_cond_signal(&S.work);
	rq->job = j;
	if (j->stream) {
		struct MHD_Response *r;
		enum MHD_Result ok;
		pthread_mutex_unlock(&S.mu);
		rq->job = NULL; /* the response holds it now */
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j,
		                                      stream_free);
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
		ok = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ok;
	}
	while (!j->done)
		pthread_cond_wait(&S.progress, &S.mu);
	pthread_mutex_unlock(&S.mu);
	if (j->cancel)
		return MHD_NO; /* nobody to answer */
	return reply(c, MHD_HTTP_OK, "application/json", j->out.p, j->out.n, NULL);
}

static enum MHD_Result models(struct MHD_Connection *c)
{
	json_t *o = json_object(), *arr = json_array(), *m = json_object();

	json_object_set_new(m, "id", json_string(S.model_name));
	json_object_set_new(m, "object", json_string("model"));
	json_object_set_new(m, "created", json_integer(0));
	json_object_set_new(m, "owned_by", json_string("gpt-serve"));
	json_object_set_new(m, "context_length", json_integer(S.n_ctx));
	json_array_append_new(arr, m);
	json_object_set_new(o, "object", json_string("list"));
	json_object_set_new(o, "data", arr);
	return reply_json(c, MHD_HTTP_OK, o, NULL);
}

static int authorized(struct MHD_Connection *c)
{
	const char *h;

	if (!S.api_key)
		return 1;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	return h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, S.api_key) == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;
	int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;

	(void)cls;
	(void)version;
	if (!rq) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		rq = xcalloc(1, sizeof *rq);
		*con_cls = rq;
		if (cl && strtoull(cl, NULL, 10) > BODY_MAX)
			return error(c, 413, "invalid_request_error", NULL, NULL,
			             "the body is larger than %u bytes", BODY_MAX);
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->body.n + *upload_size > BODY_MAX)
			rq->too_big = 1;
		else
			buf_add(&rq->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_big)
		return error(c, 413, "invalid_request_error", NULL, NULL,
		             "the body is larger than %u bytes", BODY_MAX);
	if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
		if (!get)
			goto method;
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", chat_page,
		             strlen(chat_page), NULL);
	}
	if (!strcmp(url, "/health")) {
		if (!get)
			goto method;
		return reply(c, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}", 15, NULL);
	}
	if (strncmp(url, "/v1/", 4) != 0)
		goto unknown;
	if (!authorized(c))
		return error(c, 401, "invalid_request_error", NULL, "invalid_api_key",
		             "incorrect API key provided: give 'Authorization: Bearer KEY'");
	if (!strcmp(url, "/v1/models")) {
		if (!get)
			goto method;
		return models(c);
	}
	if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions")) {
		if (!post)
			goto method;
		return completions(c, rq, url[4] == 'c' && url[5] == 'h');
	}
unknown:
	return error(c, 404, "invalid_request_error", NULL, "unknown_url", "unknown URL: %s %s",
	             method, url);
method:
	return error(c, 405, "invalid_request_error", NULL, NULL, "%s is not allowed on %s", method,
	             url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (!rq)
		return;
	if (rq->job) {
		pthread_mutex_lock(&S.mu);
		if (!rq->job->done)
			rq->job->cancel = 1;
		pthread_mutex_unlock(&S.mu);
		job_release(rq->job);
	}
	free(rq->body.p);
	free(rq);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (S.quiet)
		return;
	fputs("gpt-serve: libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "template", required_argument, NULL, 'T' },
		{ "model-name", required_argument, NULL, 'N' },
		{ "api-key", required_argument, NULL, 'K' },
		{ "queue", required_argument, NULL, 'Q' },
		{ "max-tokens", required_argument, NULL, 'm' },
		{ "vocab", required_argument, NULL, 'V' },
		{ "offline", no_argument, NULL, 'O' },
		{ "device", required_argument, NULL, 'D' },
		{ "threads", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	const char *host = "127.0.0.1", *tname = "transcript", *vocab_path = NULL;
	const char *device = "auto";
	char tokenizer[CKPT_NAME_MAX], *name = NULL;
	int port = 8080, offline = 0, opt, sig;
	long max_tokens = 0;
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	pthread_t wt;
	sigset_t set;

	err_init(argv[0]);
	io_init();
	S.queue_max = -1;
	while ((opt = cli_getopt(argc, argv, "hqp:j:", lopts)) != -1) {
		switch (opt) {
		case 'H': host = optarg; break;
		case 'p': port = (int)cli_u64("--port", optarg, 0, 65535); break;
		case 'T': tname = optarg; break;
		case 'N': name = optarg; break;
		case 'K': S.api_key = optarg; break;
		case 'Q': S.queue_max = (int)cli_u64("--queue", optarg, 0, 100000); break;
		case 'm': max_tokens = (long)cli_u64("--max-tokens", optarg, 1, 1 << 24); break;
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
		case 'q': S.quiet = 1; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option (see --help)");
		}
	}
	if (optind + 1 != argc)
		die_usage("give one checkpoint or run folder (see --help)");
	if (S.queue_max < 0)
		S.queue_max = 16;
	if (!S.api_key && getenv("GPT_SERVE_API_KEY") && *getenv("GPT_SERVE_API_KEY"))
		S.api_key = getenv("GPT_SERVE_API_KEY");
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die_usage("--host must be an IPv4 address: '%s'", host);
	if (engine_device_check(device) != 0)
		die_usage("unknown device '%s' (auto, cpu, cuda)", device);
	S.tpl = instruct_template_open(tname);
	S.tstop = instruct_template_stop(S.tpl);
	{
		struct gpt_model m;
		modelio_load(argv[optind], &m, tokenizer);
		modelio_need_lm(&m, argv[optind]);
		S.n_ctx = m.cfg.n_ctx;
		/* an LSTM's state carries on: no window to slide, a bound only */
		if (m.cfg.arch == GPT_ARCH_LSTM)
			S.n_ctx = 1 << 20;
		S.vocab_size = m.cfg.vocab_size;
		S.e = engine_open(device, &m);
	}
	vocab_load_for(&S.v, vocab_path, tokenizer, offline);
	if (S.v.eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|>: a server needs it to end replies");
	S.vocab = S.vocab_size < (int)S.v.n_ids ? S.vocab_size : (int)S.v.n_ids;
	S.max_tokens = max_tokens && max_tokens < S.n_ctx ? (int)max_tokens : S.n_ctx;
	S.dec = engine_decoder_open(S.e, S.n_ctx);
	if (name) {
		S.model_name = xstrdup(name);
	} else {
		char *p = xstrdup(argv[optind]), *s;
		while (strlen(p) > 1 && p[strlen(p) - 1] == '/')
			p[strlen(p) - 1] = 0;
		s = strrchr(p, '/');
		S.model_name = xstrdup(s ? s + 1 : p);
		free(p);
	}
	pthread_mutex_init(&S.mu, NULL);
	pthread_cond_init(&S.work, NULL);
	pthread_cond_init(&S.progress, NULL);

	/* SIGTERM and SIGINT wait for sigwait below; SIGPIPE is ignored */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&wt, NULL, worker, NULL) != 0)
		die("cannot start the generation thread");
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                     MHD_USE_ITC | MHD_USE_ERROR_LOG,
	                     (uint16_t)port, NULL, NULL, handle, NULL,
	                     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)(S.queue_max + 64),
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	                     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	                     MHD_OPTION_END);
	if (!d)
		die("cannot listen on %s:%d: %s", host, port, strerror(errno));
	{
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		char desc[300];
		engine_describe(S.e, desc, sizeof desc);
		/* one line a script can read the port from */
		fprintf(stderr, "gpt-serve: serving '%s' (context %d, template %s) on %s on "
		        "http://%s:%u/\n", S.model_name, S.n_ctx, instruct_template_name(S.tpl), desc,
		        host, di ? di->port : (unsigned)port);
		fflush(stderr);
	}
	sigwait(&set, &sig);
	/* drain: no new connections, no new requests; those queued and the
	 * one generating finish, then the connections close */
	pthread_mutex_lock(&S.mu);
	S.draining = 1;
	pthread_mutex_unlock(&S.mu);
	{
		MHD_socket ls = MHD_quiesce_daemon(d);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	if (!S.quiet)
		fprintf(stderr, "gpt-serve: %s: finishing the requests in hand\n", strsignal(sig));
	pthread_mutex_lock(&S.mu);
	while (S.open_jobs > 0)
		pthread_cond_wait(&S.progress, &S.mu);
	S.stopping = 1;
	pthread_cond_broadcast(&S.work);
	pthread_mutex_unlock(&S.mu);
	pthread_join(wt, NULL);
	MHD_stop_daemon(d);
	engine_decoder_close(S.dec);
	engine_close(S.e);
	vocab_free(&S.v);
	instruct_template_free(S.tpl);
	free(S.model_name);
	if (!S.quiet)
		fprintf(stderr, "gpt-serve: stopped\n");
	return EXIT_OK;
}
