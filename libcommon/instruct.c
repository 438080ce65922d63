/* instruct: instruction files, prompt templates and the loss mask of
 * fine-tuning (instruct.h). */
#include "instruct.h"
#include "err.h"
#include "io.h"
#include "json.h"
#include "tokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INSTRUCT_MAX_FILE ((size_t)1 << 32)

/* What gpt-sample --chat starts its transcript with. */
const char instruct_transcript_preamble[] =
	"The following is a conversation between a User and Bot, a helpful, friendly "
	"and knowledgeable assistant who answers questions clearly and briefly.\n\n"
	"User: Hello, who are you?\n"
	"Bot: I am Bot, an assistant. How can I help you today?\n";

static const char alpaca_intro[] =
	"Below is an instruction that describes a task. Write a response that appropriately "
	"completes the request.";

/* ---- records ------------------------------------------------------------ */

static const char *where_word(const struct instruct_set *s)
{
	return s->jsonl ? "line" : "record";
}

static char *str_field(const struct json *o, const char *key, int need, const char *name,
		       const char *ww, size_t where)
{
	const struct json *v = json_get(o, key);

	if (!v) {
		if (need)
			die("%s: %s %zu: no \"%s\"", name, ww, where, key);
		return xstrdup("");
	}
	if (v->type != JSON_STR)
		die("%s: %s %zu: \"%s\" is not a string", name, ww, where, key);
	if (strlen(v->str) != v->len)
		die("%s: %s %zu: \"%s\" holds a NUL character", name, ww, where, key);
	return xstrdup(v->str);
}

static void record(struct instruct_set *s, const struct json *o, const char *name, size_t where)
{
	struct instruct_example *ex;
	const struct json *msgs;
	const char *ww = where_word(s);

	if (o->type != JSON_OBJ)
		die("%s: %s %zu: not a JSON object", name, ww, where);
	s->ex = xrealloc(s->ex, xmul(s->n + 1, sizeof *s->ex));
	ex = &s->ex[s->n];
	memset(ex, 0, sizeof *ex);
	ex->where = where;
	msgs = json_get(o, "messages");
	if (msgs) {
		int sys = 0, assistant = 0;

		if (msgs->type != JSON_ARR || msgs->n == 0)
			die("%s: %s %zu: \"messages\" is not a non-empty array", name, ww, where);
		if (msgs->n > 100000)
			die("%s: %s %zu: more than 100000 messages", name, ww, where);
		ex->chat = 1;
		ex->msgs = xcalloc(msgs->n, sizeof *ex->msgs);
		for (size_t i = 0; i < msgs->n; i++) {
			const struct json *m = &msgs->items[i], *role;
			enum instruct_role r, want;

			if (m->type != JSON_OBJ)
				die("%s: %s %zu: message %zu is not an object", name, ww, where, i + 1);
			role = json_get(m, "role");
			if (!role || role->type != JSON_STR)
				die("%s: %s %zu: message %zu has no \"role\" string", name, ww, where, i + 1);
			if (strcmp(role->str, "system") == 0)
				r = INSTRUCT_SYSTEM;
			else if (strcmp(role->str, "user") == 0)
				r = INSTRUCT_USER;
			else if (strcmp(role->str, "assistant") == 0)
				r = INSTRUCT_ASSISTANT;
			else
				die("%s: %s %zu: message %zu: role \"%s\" is none of system, user, assistant",
				    name, ww, where, i + 1, role->str);
			if (r == INSTRUCT_SYSTEM && i != 0)
				die("%s: %s %zu: message %zu: a system message may only come first", name,
				    ww, where, i + 1);
			sys += r == INSTRUCT_SYSTEM;
			want = ((i - (size_t)sys) % 2 == 0) ? INSTRUCT_USER : INSTRUCT_ASSISTANT;
			if (r != INSTRUCT_SYSTEM && r != want)
				die("%s: %s %zu: message %zu: expected the %s's turn", name, ww, where, i + 1,
				    want == INSTRUCT_USER ? "user" : "assistant");
			assistant += r == INSTRUCT_ASSISTANT;
			ex->msgs[i].role = r;
			ex->msgs[i].text = str_field(m, "content", 1, name, ww, where);
			ex->n_msgs++;
		}
		if (!assistant || ex->msgs[ex->n_msgs - 1].role != INSTRUCT_ASSISTANT)
			die("%s: %s %zu: the last message is not the assistant's (nothing to learn)",
			    name, ww, where);
	} else if (json_get(o, "instruction") || json_get(o, "output")) {
		ex->instruction = str_field(o, "instruction", 1, name, ww, where);
		ex->input = str_field(o, "input", 0, name, ww, where);
		ex->output = str_field(o, "output", 1, name, ww, where);
	} else {
		die("%s: %s %zu: neither an Alpaca record (instruction, input, output) nor a chat "
		    "record (messages)", name, ww, where);
	}
	s->n++;
}

void instruct_parse(struct instruct_set *s, const char *text, size_t len, const char *name)
{
	size_t i = 0;
	char err[160];

	memset(s, 0, sizeof *s);
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	if (i < len && text[i] == '[') {
		struct json j;

		if (json_parse(text, len, &j, err, sizeof err) != 0)
			die("%s: not valid JSON: %s", name, err);
		for (size_t k = 0; k < j.n; k++)
			record(s, &j.items[k], name, k + 1);
		json_free(&j);
	} else {
		size_t line = 0;

		s->jsonl = 1;
		for (size_t at = 0; at < len;) {
			const char *nl = memchr(text + at, '\n', len - at);
			size_t end = nl ? (size_t)(nl - text) : len, k = at;
			struct json j;

			line++;
			while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
				k++;
			if (k < end) {
				if (json_parse(text + at, end - at, &j, err, sizeof err) != 0)
					die("%s: line %zu: not valid JSON: %s", name, line, err);
				record(s, &j, name, line);
				json_free(&j);
			}
			at = end + 1;
		}
	}
	if (s->n == 0)
		die("%s: no records", name);
}

void instruct_load(struct instruct_set *s, const char *path)
{
	size_t len;
	unsigned char *b = io_read_file(path, INSTRUCT_MAX_FILE, &len);

	instruct_parse(s, (const char *)b, len, path);
	free(b);
}

void instruct_free(struct instruct_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct instruct_example *ex = &s->ex[i];

		free(ex->instruction);
		free(ex->input);
		free(ex->output);
		for (int k = 0; k < ex->n_msgs; k++)
			free(ex->msgs[k].text);
		free(ex->msgs);
	}
	free(s->ex);
	memset(s, 0, sizeof *s);
}

static void json_str(struct out *o, const char *s)
{
	json_put_str(o, s, strlen(s));
}

void instruct_write_json(struct out *o, const struct instruct_example *ex, const char *response)
{
	static const char *const roles[] = { "system", "user", "assistant" };

	if (!ex->chat) {
		out_write(o, "{\"instruction\": ", 16);
		json_str(o, ex->instruction);
		out_write(o, ", \"input\": ", 11);
		json_str(o, ex->input);
		out_write(o, ", \"output\": ", 12);
		json_str(o, ex->output);
	} else {
		out_write(o, "{\"messages\": [", 14);
		for (int k = 0; k < ex->n_msgs; k++) {
			out_write(o, k ? ", {\"role\": " : "{\"role\": ", k ? 11 : 9);
			json_str(o, roles[ex->msgs[k].role]);
			out_write(o, ", \"content\": ", 13);
			json_str(o, ex->msgs[k].text);
			out_putc(o, '}');
		}
		out_putc(o, ']');
	}
	if (response) {
		out_write(o, ", \"response\": ", 14);
		json_str(o, response);
	}
	out_write(o, "}\n", 2);
}

char *instruct_prompt(const struct instruct_template *t, const struct instruct_example *ex,
		      size_t *len)
{
	struct instruct_text r;
	size_t at;
	char *p;

	instruct_render(t, ex, &r);
	at = r.len;
	for (int s = r.n_spans - 1; s >= 0; s--)
		if (r.spans[s].response) {
			at = r.spans[s].off;
			/* the whole last response, also when it is split in spans */
			while (s > 0 && r.spans[s - 1].response && !r.spans[s - 1].eot)
				at = r.spans[--s].off;
			break;
		}
	p = xmalloc(at + 1);
	memcpy(p, r.text, at);
	p[at] = '\0';
	*len = at;
	instruct_text_free(&r);
	return p;
}

/* ---- templates ---------------------------------------------------------- */

enum tkind { T_ALPACA, T_PHI3, T_TRANSCRIPT, T_FILE };

struct instruct_template {
	enum tkind kind;
	char *name;
	char *text;          /* T_FILE: the file */
	size_t len;
	size_t out_at;       /* where {output} begins, and its end */
	size_t out_end;
};

/* Checks a template file: placeholders known, blocks closed, {output}
 * once and last. */
static void file_check(struct instruct_template *t, const char *path)
{
	int outs = 0, block = 0;

	for (size_t i = 0; i < t->len; i++) {
		const char *p = t->text + i;
		size_t rest = t->len - i;

		if (*p == '}' && rest > 1 && p[1] == '}') {
			i++;
			continue;
		}
		if (*p != '{')
			continue;
		if (rest > 1 && p[1] == '{') {
			i++;
			continue;
		}
		if (rest >= 8 && memcmp(p, "{output}", 8) == 0) {
			if (block)
				die("template '%s': {output} inside {?input}", path);
			outs++;
			t->out_at = i;
			t->out_end = i + 8;
		} else if (rest >= 8 && memcmp(p, "{?input}", 8) == 0) {
			if (block)
				die("template '%s': {?input} inside {?input}", path);
			block = 1;
		} else if (rest >= 8 && memcmp(p, "{/input}", 8) == 0) {
			if (!block)
				die("template '%s': {/input} without {?input}", path);
			block = 0;
		} else if (!(rest >= 13 && memcmp(p, "{instruction}", 13) == 0) &&
			   !(rest >= 7 && memcmp(p, "{input}", 7) == 0) &&
			   !(rest >= 8 && memcmp(p, "{system}", 8) == 0)) {
			size_t n = 0;

			while (n < rest && n < 30 && p[n] != '}' && p[n] != '\n')
				n++;
			die("template '%s': unknown placeholder '%.*s' (instruction, input, system, "
			    "output, ?input, /input; {{ for a brace)", path, (int)n + 1, p);
		}
		i += (size_t)(strchr(p, '}') - p);
	}
	if (block)
		die("template '%s': {?input} is not closed by {/input}", path);
	if (outs != 1)
		die("template '%s': {output} must appear once (it is where the response goes), "
		    "found %d", path, outs);
	for (size_t i = t->out_end; i < t->len; i++)
		if (t->text[i] != '\n' || i + 1 != t->len)
			die("template '%s': text after {output}: the response ends with <|endoftext|>",
			    path);
}

struct instruct_template *instruct_template_open(const char *name)
{
	struct instruct_template *t = xcalloc(1, sizeof *t);

	t->name = xstrdup(name);
	if (strcmp(name, "alpaca") == 0) {
		t->kind = T_ALPACA;
	} else if (strcmp(name, "phi3") == 0) {
		t->kind = T_PHI3;
	} else if (strcmp(name, "transcript") == 0) {
		t->kind = T_TRANSCRIPT;
	} else if (strchr(name, '/') || strchr(name, '.')) {
		t->kind = T_FILE;
		t->text = (char *)io_read_file(name, (size_t)1 << 20, &t->len);
		if (memchr(t->text, '\0', t->len))
			die("template '%s': holds a NUL byte", name);
		file_check(t, name);
	} else {
		die("unknown template '%s' (alpaca, phi3, transcript, or a file's path)", name);
	}
	return t;
}

const char *instruct_template_stop(const struct instruct_template *t)
{
	switch (t->kind) {
	case T_ALPACA: return "\n\n### Instruction:";
	case T_PHI3: return "<|user|>";
	case T_TRANSCRIPT: return "\nUser:";
	default: return NULL;
	}
}

const char *instruct_template_name(const struct instruct_template *t) { return t->name; }

void instruct_template_free(struct instruct_template *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->text);
	free(t);
}

/* ---- rendering ------------------------------------------------------------ */

struct builder {
	struct instruct_text *r;
	size_t cap;
	int span_cap;
};

static void put(struct builder *b, const char *s, size_t n, int response)
{
	struct instruct_text *r = b->r;
	struct instruct_span *last = r->n_spans ? &r->spans[r->n_spans - 1] : NULL;

	if (!n)
		return;
	while (r->len + n + 1 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		r->text = xrealloc(r->text, b->cap);
	}
	memcpy(r->text + r->len, s, n);
	if (last && last->response == response && !last->eot) {
		last->len += n;
	} else {
		if (r->n_spans == b->span_cap) {
			b->span_cap = b->span_cap ? b->span_cap * 2 : 8;
			r->spans = xrealloc(r->spans, xmul((size_t)b->span_cap, sizeof *r->spans));
		}
		r->spans[r->n_spans].off = r->len;
		r->spans[r->n_spans].len = n;
		r->spans[r->n_spans].response = response;
		r->spans[r->n_spans].eot = 0;
		r->n_spans++;
	}
	r->len += n;
	r->text[r->len] = '\0';
}

static void puts_(struct builder *b, const char *s, int response)
{
	put(b, s, strlen(s), response);
}

/* The response just put is closed by <|endoftext|>. */
static void eot(struct builder *b)
{
	b->r->spans[b->r->n_spans - 1].eot = 1;
}

static void response(struct builder *b, const char *pre, const char *s, const char *post)
{
	struct instruct_text *r;

	puts_(b, pre, 1);
	puts_(b, s, 1);
	puts_(b, post, 1);
	r = b->r;
	if (!r->n_spans || !r->spans[r->n_spans - 1].response || r->spans[r->n_spans - 1].eot) {
		/* an empty response: still a span, for its <|endoftext|> */
		if (r->n_spans == b->span_cap) {
			b->span_cap = b->span_cap ? b->span_cap * 2 : 8;
			r->spans = xrealloc(r->spans, xmul((size_t)b->span_cap, sizeof *r->spans));
		}
		r->spans[r->n_spans].off = r->len;
		r->spans[r->n_spans].len = 0;
		r->spans[r->n_spans].response = 1;
		r->spans[r->n_spans].eot = 0;
		r->n_spans++;
		if (!r->text)
			r->text = xcalloc(1, 1);
	}
	eot(b);
}

/* One user turn (instruction and input) in a built-in template. */
static void user_turn(struct builder *b, enum tkind k, const char *instr, const char *input,
		      int first)
{
	int has_input = input && *input;

	switch (k) {
	case T_ALPACA:
		puts_(b, "\n\n### Instruction:\n", 0);
		puts_(b, instr, 0);
		if (has_input) {
			puts_(b, "\n\n### Input:\n", 0);
			puts_(b, input, 0);
		}
		puts_(b, "\n\n### Response:\n", 0);
		break;
	case T_PHI3:
		puts_(b, "<|user|>\n", 0);
		puts_(b, instr, 0);
		if (has_input) {
			puts_(b, "\n", 0);
			puts_(b, input, 0);
		}
		puts_(b, "\n<|assistant|>\n", 0);
		break;
	default:
		puts_(b, "User: ", 0);
		puts_(b, instr, 0);
		if (has_input) {
			puts_(b, " ", 0);
			puts_(b, input, 0);
		}
		puts_(b, "\nBot:", 0);
		break;
	}
	(void)first;
}

static void assistant_turn(struct builder *b, enum tkind k, const char *out)
{
	if (k == T_TRANSCRIPT)
		response(b, " ", out, "\n");
	else
		response(b, "", out, "");
}

/* A template file over instruction, input, system; the prompt ends at
 * {output}. */
static void render_file(struct builder *b, const struct instruct_template *t, const char *instr,
			const char *input, const char *sys, const char *out)
{
	int skip = 0;

	for (size_t i = 0; i < t->out_at; i++) {
		const char *p = t->text + i;

		if ((*p == '{' && p[1] == '{') || (*p == '}' && p[1] == '}')) {
			if (!skip)
				put(b, p, 1, 0);
			i++;
			continue;
		}
		if (*p != '{') {
			if (!skip)
				put(b, p, 1, 0);
			continue;
		}
		if (strncmp(p, "{?input}", 8) == 0)
			skip = !(input && *input);
		else if (strncmp(p, "{/input}", 8) == 0)
			skip = 0;
		else if (!skip && strncmp(p, "{instruction}", 13) == 0)
			puts_(b, instr, 0);
		else if (!skip && strncmp(p, "{input}", 7) == 0)
			puts_(b, input ? input : "", 0);
		else if (!skip && strncmp(p, "{system}", 8) == 0)
			puts_(b, sys ? sys : "", 0);
		i += (size_t)(strchr(p, '}') - p);
	}
	response(b, "", out, "");
}

void instruct_render(const struct instruct_template *t, const struct instruct_example *ex,
		     struct instruct_text *r)
{
	struct builder b = { r, 0, 0 };
	const char *sys = NULL;
	int m = 0;

	memset(r, 0, sizeof *r);
	if (ex->chat && ex->msgs[0].role == INSTRUCT_SYSTEM)
		sys = ex->msgs[m++].text;
	if (t->kind == T_FILE) {
		if (!ex->chat) {
			render_file(&b, t, ex->instruction, ex->input, "", ex->output);
		} else {
			if (ex->n_msgs - m != 2)
				die("record %zu: template '%s' takes one user and one assistant message, "
				    "this chat has %d messages", ex->where, t->name, ex->n_msgs);
			render_file(&b, t, ex->msgs[m].text, "", sys, ex->msgs[m + 1].text);
		}
		return;
	}
	switch (t->kind) {
	case T_ALPACA:
		puts_(&b, sys ? sys : alpaca_intro, 0);
		break;
	case T_PHI3:
		if (sys) {
			puts_(&b, "<|system|>\n", 0);
			puts_(&b, sys, 0);
			puts_(&b, "\n", 0);
		}
		break;
	default:
		if (sys) {
			puts_(&b, sys, 0);
			puts_(&b, "\n", 0);
		} else {
			puts_(&b, instruct_transcript_preamble, 0);
		}
		break;
	}
	if (!ex->chat) {
		user_turn(&b, t->kind, ex->instruction, ex->input, 1);
		assistant_turn(&b, t->kind, ex->output);
		return;
	}
	for (; m + 1 < ex->n_msgs; m += 2) {
		user_turn(&b, t->kind, ex->msgs[m].text, NULL, m <= 1);
		assistant_turn(&b, t->kind, ex->msgs[m + 1].text);
	}
}

void instruct_text_free(struct instruct_text *r)
{
	free(r->text);
	free(r->spans);
	memset(r, 0, sizeof *r);
}

/* ---- tokens and mask -------------------------------------------------------- */

size_t instruct_encode(const struct vocab *v, const struct instruct_template *t,
		       const struct instruct_example *ex, uint32_t **ids_out,
		       unsigned char **mask_out)
{
	struct instruct_text r;
	uint32_t *ids = NULL;
	unsigned char *mask = NULL;
	size_t n = 0, cap = 0;
	int s0 = 0;

	if (v->eot == UINT32_MAX)
		die("the vocabulary has no <|endoftext|> to end responses with");
	instruct_render(t, ex, &r);
	while (s0 < r.n_spans) {
		int s1 = s0;
		size_t lo = r.spans[s0].off, hi, pos, k, got;
		uint32_t *part;

		/* spans s0..s1: the text up to the next <|endoftext|> */
		while (s1 + 1 < r.n_spans && !r.spans[s1].eot)
			s1++;
		hi = r.spans[s1].off + r.spans[s1].len;
		got = tokenize_text(v, (const unsigned char *)r.text + lo, hi - lo, 0, &part);
		if (n + got + 1 > cap) {
			cap = (n + got + 1) * 2;
			ids = xrealloc(ids, xmul(cap, sizeof *ids));
			mask = xrealloc(mask, cap);
		}
		pos = lo;
		for (k = 0; k < got; k++) {
			size_t tl = 0, end;
			int resp = 0;

			vocab_token(v, part[k], &tl);
			end = pos + tl;
			for (int s = s0; s <= s1; s++)
				if (r.spans[s].response && r.spans[s].len &&
				    pos < r.spans[s].off + r.spans[s].len && end > r.spans[s].off)
					resp = 1;
			ids[n] = part[k];
			mask[n++] = (unsigned char)resp;
			pos = end;
		}
		if (pos != hi)
			die("internal error: the tokens of record %zu do not cover its text", ex->where);
		free(part);
		if (r.spans[s1].eot) {
			ids[n] = v->eot;
			mask[n++] = 1;
		}
		s0 = s1 + 1;
	}
	instruct_text_free(&r);
	*ids_out = ids;
	*mask_out = mask;
	return n;
}
