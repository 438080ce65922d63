/* gpt-sample: text from a checkpoint, streamed as it is generated: a
 * prompt, then tokens drawn one at a time through the key/value cache, on
 * the CPU or (in a build with nvcc) the GPU; drawing is on the CPU. */
#include "checkpoint.h"
#include "cli.h"
#include "err.h"
#include "engine.h"
#include "modelio.h"
#include "utf8out.h"
#include "instruct.h"
#include "io.h"
#include "model.h"
#include "progress.h"
#include "sampler.h"
#include "tokenize.h"
#include "vocab.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define PROMPT_MAX (64u << 20)

/* The transcript a base model continues in --chat mode: the one the
 * transcript template (instruct.h) fine-tunes on. */
#define chat_preamble instruct_transcript_preamble
static const char chat_stop[] = "\nUser:";

static void usage(void)
{
	printf("usage: gpt-sample [options] CKPT [PROMPT...]\n"
	       "Generates text from a checkpoint (or a run folder: its latest checkpoint),\n"
	       "continuing PROMPT (the words joined by spaces; stdin when none is given),\n"
	       "streamed to stdout as it is produced.\n"
	       "  -t, --temperature X  sampling temperature, 0 = greedy (default 1)\n"
	       "  -k, --top-k N        keep the N most likely tokens, 0 = all (default 40)\n"
	       "  -p, --top-p X        keep the most likely tokens up to probability X (default 1)\n"
	       "  -s, --seed N         random seed (default 1337); same seed, same text\n"
	       "  -m, --max-tokens N   tokens to generate per sample (default 256)\n"
	       "  -n, --samples N      independent samples, separated by a line \"----\"\n"
	       "      --stop STRING    end a sample where STRING appears (not printed)\n"
	       "      --ignore-eot     do not end a sample at <|endoftext|>\n"
	       "      --no-echo        print only the generated text, not the prompt\n"
	       "      --tokens         write token ids (decimal) instead of text\n"
	       "      --chat           a conversation: the prompt is a user's message set in\n"
	       "                       a transcript, the reply ends at the next user turn;\n"
	       "                       interactive when stdin is a terminal\n"
	       "      --template NAME  the prompt is an instruction, set in the template NAME\n"
	       "                       (alpaca, phi3, transcript or a file) as gpt-train --sft\n"
	       "                       renders it; only the response is printed\n"
	       "      --jsonl FILE     a response for each instruction record of FILE (JSON array\n"
	       "                       or JSONL; needs --template), written as the record with a\n"
	       "                       \"response\" field, one JSON line each; greedy unless -t\n"
	       "      --stats          tokens and tokens/s on stderr\n"
	       "      --vocab PATH     tokenizer vocabulary (default: the checkpoint's built-in\n"
	       "                       one, such as bytes, else the GPT-2 one)\n"
	       "      --offline        never download the vocabulary\n"
	       "      --device DEV     auto, cpu or cuda (default auto: the GPU when one is usable)\n"
	       "  -q, --quiet          no warnings (errors and --stats still on stderr)\n"
	       "  -h, --help, --version\n");
	exit(EXIT_OK);
}

struct opts {
	double temperature, top_p;
	int top_k, max_tokens, samples, ignore_eot, echo, tokens, chat, stats;
	uint64_t seed;
	const char *stop;
};

/* Sample output: token bytes -> stop-string filter -> UTF-8 stream. */
struct emitter {
	struct out *o;
	struct utf8out u;
	const char *stop;
	size_t stoplen;
	unsigned char *hold;
	size_t nhold, cap;
	int stopped;
	int tokens;              /* write ids instead */
	int first_id;
	/* --chat: a copy of the reply's bytes */
	unsigned char *reply;
	size_t nreply, capreply;
	int collect;             /* --jsonl: only the copy, nothing printed */
};

static void emit_text(struct emitter *e, const unsigned char *p, size_t n)
{
	if (e->reply) {
		if (e->nreply + n > e->capreply) {
			e->capreply = (e->nreply + n) * 2;
			e->reply = xrealloc(e->reply, e->capreply);
		}
		memcpy(e->reply + e->nreply, p, n);
		e->nreply += n;
	}
	if (!e->collect)
		utf8out_push(&e->u, p, n, e->o);
}

/* Adds bytes; holds back a tail that may be the start of the stop string.
 * Returns 1 once the stop string has appeared. */
static int emit_bytes(struct emitter *e, const unsigned char *p, size_t n)
{
	unsigned char *hit;
	size_t keep;

	if (!e->stoplen) {
		emit_text(e, p, n);
		return 0;
	}
	if (e->nhold + n > e->cap) {
		e->cap = (e->nhold + n) * 2;
		e->hold = xrealloc(e->hold, e->cap);
	}
	memcpy(e->hold + e->nhold, p, n);
	e->nhold += n;
	hit = memmem(e->hold, e->nhold, e->stop, e->stoplen);
	if (hit) {
		emit_text(e, e->hold, (size_t)(hit - e->hold));
		e->nhold = 0;
		e->stopped = 1;
		return 1;
	}
	keep = e->stoplen - 1 < e->nhold ? e->stoplen - 1 : e->nhold;
	emit_text(e, e->hold, e->nhold - keep);
	memmove(e->hold, e->hold + e->nhold - keep, keep);
	e->nhold = keep;
	return 0;
}

static void emit_finish(struct emitter *e)
{
	if (e->nhold && !e->stopped)
		emit_text(e, e->hold, e->nhold);
	e->nhold = 0;
	if (!e->collect)
		utf8out_finish(&e->u, e->o);
}

static void emit_id(struct emitter *e, uint32_t id)
{
	if (!e->first_id)
		out_putc(e->o, ' ');
	e->first_id = 0;
	out_u64(e->o, id);
}

struct session {
	struct engine *e;        /* the model, on the device --device picked */
	struct engine_decoder *dec; /* its key/value cache */
	int n_ctx, vocab_size;
	struct vocab v;
	struct sampler smp;
	int vocab;               /* ids the sampler may choose */
	uint64_t generated;
	double gen_seconds;
};

/* The cache, on whichever device holds it (engine.h's decoder). */
static int cache_pos(const struct session *S)
{
	return engine_decoder_pos(S->dec);
}

static void cache_rewind(struct session *S, int pos)
{
	engine_decoder_rewind(S->dec, pos);
}

static const float *cache_feed(struct session *S, const uint32_t *ids, int n)
{
	return engine_decoder_feed(S->dec, ids, n, NULL);
}

/* Feeds the tail of seq[0..n) when the cache cannot hold it all, keeping
 * three quarters of the context. */
static const float *feed_window(struct session *S, const uint32_t *seq, size_t n,
                                size_t fed_from)
{
	int ctx = S->n_ctx;
	size_t todo = n - fed_from;

	if ((size_t)cache_pos(S) + todo > (size_t)ctx) {
		size_t keep = (size_t)ctx * 3 / 4;
		if (keep < 1)
			keep = 1;
		if (keep > n)
			keep = n;
		cache_rewind(S, 0);
		return cache_feed(S, seq + n - keep, (int)keep);
	}
	return cache_feed(S, seq + fed_from, (int)todo);
}

/* One sample continuing prompt ids; writes to e.  Returns the sequence
 * length reached (prompt + generated), and the full sequence in *seqp. */
static void generate(struct session *S, const struct opts *o, uint32_t **seqp, size_t *np,
                     size_t *capp, struct emitter *e)
{
	uint32_t *seq = *seqp;
	size_t n = *np, cap = *capp;
	const float *lg;
	double t0 = progress_now();

	cache_rewind(S, 0);
	lg = feed_window(S, seq, n, 0);
	for (int i = 0; i < o->max_tokens; i++) {
		uint32_t id = sampler_next(&S->smp, lg);
		size_t len;
		const unsigned char *b;

		S->generated++;
		if (id == S->v.eot && !o->ignore_eot)
			break;
		if (n == cap) {
			cap *= 2;
			seq = xrealloc(seq, xmul(cap, sizeof *seq));
		}
		seq[n++] = id;
		if (e->tokens) {
			emit_id(e, id);
		} else if ((b = vocab_token(&S->v, id, &len)) != NULL) {
			if (emit_bytes(e, b, len))
				break;
		}
		out_flush(e->o);
		if (i + 1 < o->max_tokens)
			lg = feed_window(S, seq, n, n - 1);
	}
	S->gen_seconds += progress_now() - t0;
	*seqp = seq;
	*np = n;
	*capp = cap;
}

static uint32_t *encode(struct session *S, const char *text, size_t len, size_t *n, size_t *cap)
{
	uint32_t *ids = NULL;
	size_t k = tokenize_text(&S->v, (const unsigned char *)text, len, 1, &ids);
	*cap = k + 64;
	ids = xrealloc(ids, xmul(*cap, sizeof *ids));
	if (k == 0) {
		/* nothing to continue: start as GPT-2 does, after <|endoftext|> */
		if (S->v.eot == UINT32_MAX)
			die("empty prompt and the vocabulary has no <|endoftext|>");
		ids[k++] = S->v.eot;
	}
	*n = k;
	return ids;
}

static void check_ids(struct session *S, const uint32_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] >= (uint32_t)S->vocab_size)
			die("prompt token %u is outside the model's vocabulary of %d", ids[i],
			    S->vocab_size);
}

static void run_plain(struct session *S, const struct opts *o, const char *prompt, size_t plen,
                      struct out *out)
{
	for (int k = 0; k < o->samples; k++) {
		struct emitter e = {.o = out, .stop = o->stop, .tokens = o->tokens, .first_id = 1};
		size_t n, cap;
		uint32_t *seq = encode(S, prompt, plen, &n, &cap);
		int eot_only = n == 1 && seq[0] == S->v.eot && plen == 0;

		check_ids(S, seq, n);
		e.stoplen = o->stop ? strlen(o->stop) : 0;
		utf8out_init(&e.u);
		if (k > 0)
			out_write(out, "----\n", 5);
		if (o->echo && !eot_only) {
			if (o->tokens)
				for (size_t i = 0; i < n; i++)
					emit_id(&e, seq[i]);
			else
				utf8out_push(&e.u, (const unsigned char *)prompt, plen, out);
		}
		generate(S, o, &seq, &n, &cap, &e);
		emit_finish(&e);
		out_putc(out, '\n');
		out_flush(out);
		free(e.hold);
		free(seq);
	}
}

/* --chat: each user message is added to the transcript, the reply is
 * generated up to the next "User:" turn and becomes part of it. */
static void run_chat(struct session *S, const struct opts *o, const char *first, size_t flen,
                     int interactive, struct out *out)
{
	size_t tcap = strlen(chat_preamble) + 1 + 4096, tlen = strlen(chat_preamble);
	char *t = xmalloc(tcap);
	char *line = NULL;
	size_t lcap = 0;
	struct opts co = *o;

	memcpy(t, chat_preamble, tlen);
	co.stop = chat_stop;
	for (;;) {
		const char *msg;
		size_t mlen, n, cap;
		uint32_t *seq;
		struct emitter e = {.o = out, .stop = chat_stop, .stoplen = strlen(chat_stop)};

		if (interactive) {
			ssize_t k;
			fputs("User: ", stderr);
			fflush(stderr);
			k = getline(&line, &lcap, stdin);
			if (k < 0)
				break;
			while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r'))
				k--;
			if (k == 0)
				continue;
			msg = line;
			mlen = (size_t)k;
		} else {
			msg = first;
			mlen = flen;
			while (mlen > 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == '\r'))
				mlen--;
		}
		while (tlen + mlen + 32 > tcap) {
			tcap *= 2;
			t = xrealloc(t, tcap);
		}
		tlen += (size_t)snprintf(t + tlen, tcap - tlen, "User: %.*s\nBot:", (int)mlen, msg);
		seq = encode(S, t, tlen, &n, &cap);
		check_ids(S, seq, n);
		utf8out_init(&e.u);
		e.reply = xmalloc(256);
		e.capreply = 256;
		if (interactive) {
			fputs("Bot:", stderr);
			fflush(stderr);
		}
		generate(S, &co, &seq, &n, &cap, &e);
		emit_finish(&e);
		out_putc(out, '\n');
		out_flush(out);
		while (tlen + e.nreply + 2 > tcap) {
			tcap *= 2;
			t = xrealloc(t, tcap);
		}
		memcpy(t + tlen, e.reply, e.nreply);
		tlen += e.nreply;
		t[tlen++] = '\n';
		free(e.reply);
		free(e.hold);
		free(seq);
		if (!interactive)
			break;
	}
	free(line);
	free(t);
}

/* The response to one prompt set in a template: generated up to
 * <|endoftext|> or the template's next turn (or --stop), into e. */
static void respond(struct session *S, const struct opts *o, const struct instruct_template *tpl,
		    const char *prompt, size_t plen, struct emitter *e)
{
	struct opts to = *o;
	size_t n, cap;
	uint32_t *seq = encode(S, prompt, plen, &n, &cap);

	if (!to.stop)
		to.stop = instruct_template_stop(tpl);
	e->stop = to.stop;
	e->stoplen = to.stop ? strlen(to.stop) : 0;
	check_ids(S, seq, n);
	utf8out_init(&e->u);
	generate(S, &to, &seq, &n, &cap, e);
	emit_finish(e);
	free(e->hold);
	e->hold = NULL;
	free(seq);
}

/* --template with a prompt: the prompt is one instruction. */
static void run_template(struct session *S, const struct opts *o,
			 const struct instruct_template *tpl, const char *prompt, size_t plen,
			 struct out *out)
{
	struct instruct_example ex = {0};
	char *text, *instr = xmalloc(plen + 1);
	size_t tlen;

	memcpy(instr, prompt, plen);
	instr[plen] = '\0';
	while (plen > 0 && (instr[plen - 1] == '\n' || instr[plen - 1] == '\r'))
		instr[--plen] = '\0';
	ex.instruction = instr;
	ex.input = ex.output = (char *)"";
	text = instruct_prompt(tpl, &ex, &tlen);
	for (int k = 0; k < o->samples; k++) {
		struct emitter e = {.o = out, .tokens = o->tokens, .first_id = 1};

		if (k > 0)
			out_write(out, "----\n", 5);
		respond(S, o, tpl, text, tlen, &e);
		out_putc(out, '\n');
		out_flush(out);
	}
	free(text);
	free(instr);
}

/* --jsonl: a response for every record, streamed as JSON lines. */
static void run_jsonl(struct session *S, const struct opts *o, const struct instruct_template *tpl,
		      const char *path, struct out *out, enum progress_mode pmode)
{
	struct instruct_set set;
	struct progress prog;
	char label[64];

	instruct_load(&set, path);
	snprintf(label, sizeof label, "gpt-sample");
	progress_init(&prog, pmode, label, "rec", set.n);
	for (size_t i = 0; i < set.n; i++) {
		struct emitter e = {.o = out, .collect = 1, .first_id = 1};
		size_t tlen, a = 0, b;
		char *text = instruct_prompt(tpl, &set.ex[i], &tlen), *resp;

		e.reply = xmalloc(256);
		e.capreply = 256;
		respond(S, o, tpl, text, tlen, &e);
		/* the response without the white space around it, as the series
		 * takes it */
		b = e.nreply;
		while (a < b && (e.reply[a] == ' ' || e.reply[a] == '\n' || e.reply[a] == '\t' ||
				 e.reply[a] == '\r'))
			a++;
		while (b > a && (e.reply[b - 1] == ' ' || e.reply[b - 1] == '\n' ||
				 e.reply[b - 1] == '\t' || e.reply[b - 1] == '\r'))
			b--;
		resp = xmalloc(b - a + 1);
		memcpy(resp, e.reply + a, b - a);
		resp[b - a] = '\0';
		/* a NUL from the model would cut the string: drop them */
		for (size_t k = 0, w = 0; k <= b - a; k++)
			if (resp[k] || k == b - a)
				resp[w++] = resp[k];
		instruct_write_json(out, &set.ex[i], resp);
		out_flush(out);
		progress_update(&prog, i + 1);
		free(resp);
		free(e.reply);
		free(text);
	}
	progress_end(&prog);
	instruct_free(&set);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "temperature", required_argument, NULL, 't' },
		{ "top-k", required_argument, NULL, 'k' },
		{ "top-p", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 's' },
		{ "max-tokens", required_argument, NULL, 'm' },
		{ "samples", required_argument, NULL, 'n' },
		{ "stop", required_argument, NULL, 'S' },
		{ "ignore-eot", no_argument, NULL, 'E' },
		{ "no-echo", no_argument, NULL, 'N' },
		{ "tokens", no_argument, NULL, 'T' },
		{ "chat", no_argument, NULL, 'C' },
		{ "stats", no_argument, NULL, 'A' },
		{ "template", required_argument, NULL, 'P' },
		{ "jsonl", required_argument, NULL, 'J' },
		{ "vocab", required_argument, NULL, 'V' },
		{ "offline", no_argument, NULL, 'O' },
		{ "device", required_argument, NULL, 'D' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {.temperature = 1.0, .top_p = 1.0, .top_k = 40, .max_tokens = 256,
	                 .samples = 1, .echo = 1, .seed = 1337};
	const char *vocab_path = NULL, *ckpt, *device = "auto", *template_name = NULL,
		   *jsonl = NULL;
	int t_given = 0;
	struct instruct_template *tpl = NULL;
	char tokenizer[CKPT_NAME_MAX], *prompt;
	size_t plen = 0;
	int offline, c, interactive = 0, have_prompt, quiet = 0;
	struct session S;
	struct out out;

	err_init(argv[0]);
	io_init();
	offline = 0; /* vocab_locate adds $GPT_OFFLINE, $HF_HUB_OFFLINE */
	while ((c = cli_getopt(argc, argv, "+t:k:p:s:m:n:qh", longopts)) != -1) {
		switch (c) {
		case 't':
			o.temperature = cli_double("--temperature", optarg, 0, 100);
			t_given = 1;
			break;
		case 'P': template_name = optarg; break;
		case 'J': jsonl = optarg; break;
		case 'k': o.top_k = (int)cli_u64("--top-k", optarg, 0, 1u << 24); break;
		case 'p': o.top_p = cli_double("--top-p", optarg, 1e-9, 1); break;
		case 's': o.seed = cli_u64("--seed", optarg, 0, UINT64_MAX); break;
		case 'm': o.max_tokens = (int)cli_u64("--max-tokens", optarg, 0, 1u << 30); break;
		case 'n': o.samples = (int)cli_u64("--samples", optarg, 1, 1u << 20); break;
		case 'S':
			if (!*optarg)
				die_usage("--stop needs a non-empty string");
			o.stop = optarg;
			break;
		case 'E': o.ignore_eot = 1; break;
		case 'N': o.echo = 0; break;
		case 'T': o.tokens = 1; break;
		case 'C': o.chat = 1; break;
		case 'A': o.stats = 1; break;
		case 'V': vocab_path = optarg; break;
		case 'O': offline = 1; break;
		case 'D': device = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': usage(); break;
		case 'v': cli_version(); break;
		default: die_usage("unknown option");
		}
	}
	if (optind >= argc)
		die_usage("expected a checkpoint");
	if (o.chat && o.tokens)
		die_usage("--chat and --tokens cannot be used together");
	if (jsonl && !template_name)
		die_usage("--jsonl needs --template: the records are rendered through it");
	if (template_name && o.chat)
		die_usage("--template and --chat exclude each other (--template transcript is the chat's)");
	if (jsonl && (o.tokens || o.samples > 1))
		die_usage("--jsonl writes one text response a record: no --tokens or --samples");
	if (template_name)
		tpl = instruct_template_open(template_name);
	/* evaluation answers are greedy unless told otherwise */
	if (jsonl && !t_given)
		o.temperature = 0;
	ckpt = argv[optind++];
	have_prompt = optind < argc;
	if (engine_device_check(device) != 0)
		die_usage("unknown device '%s' (auto, cpu, cuda)", device);
	engine_find(device, NULL, 0); /* --device cuda without one fails now */

	memset(&S, 0, sizeof S);
	{
		struct gpt_model m;

		modelio_load(ckpt, &m, tokenizer);
		modelio_need_lm(&m, ckpt);
		S.n_ctx = m.cfg.n_ctx;
		/* an LSTM's state carries on: no window to slide, a bound only */
		if (m.cfg.arch == GPT_ARCH_LSTM)
			S.n_ctx = 1 << 20;
		S.vocab_size = m.cfg.vocab_size;
		S.e = engine_open(device, &m);
	}
	vocab_load_for(&S.v, vocab_path, tokenizer, offline);
	if (strcmp(tokenizer, S.v.name) != 0 && !quiet)
		warnx("checkpoint was trained with tokenizer '%s', decoding with '%s'", tokenizer,
		      S.v.name);
	S.vocab = S.vocab_size < (int)S.v.n_ids ? S.vocab_size : (int)S.v.n_ids;
	sampler_init(&S.smp, S.vocab, o.temperature, o.top_k, o.top_p, o.seed);
	S.dec = engine_decoder_open(S.e, S.n_ctx);
	out_init(&out, STDOUT_FILENO, "stdout");

	if (jsonl) {
		if (have_prompt)
			die_usage("--jsonl takes its prompts from FILE, not from the command line");
		prompt = xstrdup("");
	} else if (have_prompt) {
		size_t cap = 1;
		for (int i = optind; i < argc; i++)
			cap += strlen(argv[i]) + 1;
		prompt = xmalloc(cap);
		for (int i = optind; i < argc; i++) {
			size_t k = strlen(argv[i]);
			if (i > optind)
				prompt[plen++] = ' ';
			memcpy(prompt + plen, argv[i], k);
			plen += k;
		}
		prompt[plen] = 0;
	} else if (o.chat && isatty(STDIN_FILENO)) {
		interactive = 1;
		prompt = xstrdup("");
	} else {
		prompt = (char *)io_read_file("-", PROMPT_MAX, &plen);
	}
	if (jsonl)
		run_jsonl(&S, &o, tpl, jsonl, &out, quiet ? PROGRESS_QUIET : PROGRESS_AUTO);
	else if (tpl)
		run_template(&S, &o, tpl, prompt, plen, &out);
	else if (o.chat)
		run_chat(&S, &o, prompt, plen, interactive, &out);
	else
		run_plain(&S, &o, prompt, plen, &out);
	instruct_template_free(tpl);
	out_free(&out);
	if (o.stats)
		fprintf(stderr, "gpt-sample: %llu tokens in %.2f s, %.1f tokens/s\n",
		        (unsigned long long)S.generated, S.gen_seconds,
		        S.gen_seconds > 0 ? (double)S.generated / S.gen_seconds : 0.0);
	free(prompt);
	sampler_free(&S.smp);
	engine_decoder_close(S.dec);
	engine_close(S.e);
	vocab_free(&S.v);
	return EXIT_OK;
}
