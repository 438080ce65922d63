/* instruct.h: instruction files (JSON array, JSONL, Alpaca and chat
 * records, bad records named), the templates byte for byte, template
 * files, and the loss mask of the encoded tokens on GPT-2's vocabulary. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "instruct.h"
#include "model.h"
#include "sft.h"
#include "tokenize.h"
#include "vocab.h"
#include "test.h"

static const char INTRO[] = "Below is an instruction that describes a task. Write a response "
			    "that appropriately completes the request.";

/* The prompt and the response text of a rendering with one response. */
static void split(const struct instruct_text *r, char *prompt, char *resp, size_t cap)
{
	size_t np = 0, nr = 0;

	for (int s = 0; s < r->n_spans; s++) {
		const struct instruct_span *sp = &r->spans[s];
		char *d = sp->response ? resp : prompt;
		size_t *n = sp->response ? &nr : &np;

		if (*n + sp->len < cap) {
			memcpy(d + *n, r->text + sp->off, sp->len);
			*n += sp->len;
		}
	}
	prompt[np] = resp[nr] = '\0';
}

static void render_one(const char *tpl, const char *json, char *prompt, char *resp, size_t cap,
		       int *eots)
{
	struct instruct_set s;
	struct instruct_template *t = instruct_template_open(tpl);
	struct instruct_text r;

	instruct_parse(&s, json, strlen(json), "test");
	instruct_render(t, &s.ex[0], &r);
	split(&r, prompt, resp, cap);
	*eots = 0;
	for (int k = 0; k < r.n_spans; k++)
		*eots += r.spans[k].eot;
	instruct_text_free(&r);
	instruct_free(&s);
	instruct_template_free(t);
}

static void test_templates(void)
{
	char p[4096], r[1024], want[4096];
	int e;

	/* the series' format, with and without the input */
	render_one("alpaca", "[{\"instruction\": \"Edit the following sentence for grammar.\", "
		   "\"input\": \"He go to the park every day.\", \"output\": \"He goes to the park "
		   "every day.\"}]", p, r, sizeof p, &e);
	snprintf(want, sizeof want, "%s\n\n### Instruction:\nEdit the following sentence for "
		 "grammar.\n\n### Input:\nHe go to the park every day.\n\n### Response:\n", INTRO);
	CHECK(strcmp(p, want) == 0, "alpaca prompt with input: '%s'", p);
	CHECK(strcmp(r, "He goes to the park every day.") == 0, "alpaca response '%s'", r);
	CHECK(e == 1, "one <|endoftext|>, got %d", e);
	render_one("alpaca", "{\"instruction\": \"Convert 45 kilometers to meters.\", \"input\": "
		   "\"\", \"output\": \"45 kilometers is 45000 meters.\"}\n", p, r, sizeof p, &e);
	snprintf(want, sizeof want, "%s\n\n### Instruction:\nConvert 45 kilometers to meters."
		 "\n\n### Response:\n", INTRO);
	CHECK(strcmp(p, want) == 0, "alpaca prompt without input: '%s'", p);
	/* no "input" at all is an empty input */
	render_one("alpaca", "{\"instruction\": \"Say hi.\", \"output\": \"Hi.\"}", p, r, sizeof p, &e);
	CHECK(strstr(p, "### Input") == NULL, "missing input shows no Input section: '%s'", p);

	render_one("phi3", "[{\"instruction\": \"Identify the correct spelling.\", \"input\": "
		   "\"Ocassion\", \"output\": \"Occasion.\"}]", p, r, sizeof p, &e);
	CHECK(strcmp(p, "<|user|>\nIdentify the correct spelling.\nOcassion\n<|assistant|>\n") == 0,
	      "phi3 prompt '%s'", p);
	CHECK(strcmp(r, "Occasion.") == 0, "phi3 response '%s'", r);

	render_one("transcript", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, "
		   "{\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", "
		   "\"content\": \"Bye\"}, {\"role\": \"assistant\", \"content\": \"Bye.\"}]}",
		   p, r, sizeof p, &e);
	snprintf(want, sizeof want, "%sUser: Hi\nBot:User: Bye\nBot:", instruct_transcript_preamble);
	CHECK(strcmp(p, want) == 0, "transcript prompts '%s'", p);
	CHECK(strcmp(r, " Hello!\n Bye.\n") == 0, "transcript responses '%s'", r);
	CHECK(e == 2, "two turns, two <|endoftext|>, got %d", e);

	render_one("alpaca", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
		   "{\"role\": \"user\", \"content\": \"Why?\"}, {\"role\": \"assistant\", "
		   "\"content\": \"Because.\"}]}", p, r, sizeof p, &e);
	CHECK(strcmp(p, "Be brief.\n\n### Instruction:\nWhy?\n\n### Response:\n") == 0,
	      "alpaca chat with a system message '%s'", p);
	render_one("phi3", "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, "
		   "{\"role\": \"user\", \"content\": \"U\"}, {\"role\": \"assistant\", "
		   "\"content\": \"A\"}]}", p, r, sizeof p, &e);
	CHECK(strcmp(p, "<|system|>\nS\n<|user|>\nU\n<|assistant|>\n") == 0, "phi3 system '%s'", p);
}

static void test_template_file(void)
{
	char *path = test_path("t.txt"), p[1024], r[256];
	FILE *f = fopen(path, "w");
	int e;

	fputs("Q: {instruction}{?input} ({input}){/input} {{ok}}\nA: {output}\n", f);
	fclose(f);
	render_one(path, "{\"instruction\": \"2+2?\", \"input\": \"sum\", \"output\": \"4\"}", p, r,
		   sizeof p, &e);
	CHECK(strcmp(p, "Q: 2+2? (sum) {ok}\nA: ") == 0, "file template with input '%s'", p);
	CHECK(strcmp(r, "4") == 0 && e == 1, "file template response '%s'", r);
	render_one(path, "{\"instruction\": \"2+2?\", \"output\": \"4\"}", p, r, sizeof p, &e);
	CHECK(strcmp(p, "Q: 2+2? {ok}\nA: ") == 0, "file template without input '%s'", p);
}

static void bad_template(const char *text)
{
	char *path = test_path("bad.txt");
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	instruct_template_free(instruct_template_open(path));
}

static void open_template(const char *name)
{
	instruct_template_free(instruct_template_open(name));
}

static void parse_text(const char *text)
{
	struct instruct_set s;

	instruct_parse(&s, text, strlen(text), "data.jsonl");
	instruct_free(&s);
}

static void test_errors(void)
{
	static const struct { const char *text, *msg; } bad[] = {
		{ "{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"a\"}\n",
		  "data.jsonl: line 3: no \"output\"" },
		{ "[{\"instruction\": \"a\", \"output\": \"b\"}, {\"input\": 1}]",
		  "data.jsonl: record 2: neither an Alpaca record" },
		{ "[{\"instruction\": \"a\", \"input\": 5, \"output\": \"b\"}]",
		  "record 1: \"input\" is not a string" },
		{ "{\"instruction\": \"a\", \"output\": \"b\"}\n{not json}\n",
		  "data.jsonl: line 2: not valid JSON" },
		{ "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
		  "line 1: the last message is not the assistant's" },
		{ "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"user\", "
		  "\"content\": \"y\"}]}", "message 2: expected the assistant's turn" },
		{ "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}",
		  "role \"robot\" is none of system, user, assistant" },
		{ "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"system\", "
		  "\"content\": \"y\"}]}", "a system message may only come first" },
		{ "\n\n", "data.jsonl: no records" },
		{ "[1]", "record 1: not a JSON object" },
	};
	static const struct { const char *text, *msg; } badt[] = {
		{ "Q: {instruction}\n", "{output} must appear once" },
		{ "{output} {output}", "{output} must appear once" },
		{ "Q: {instrucion} {output}", "unknown placeholder '{instrucion}'" },
		{ "{?input}{input} {output}", "{output} inside {?input}" },
		{ "{instruction} {output} more", "text after {output}" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = test_child(parse_text, bad[i].text, err, sizeof err);

		CHECK(st == 1 && strstr(err, bad[i].msg),
		      "bad data %zu: status %d, '%s' (wanted '%s')", i, st, err, bad[i].msg);
		CHECK(strchr(err, '\n') == strrchr(err, '\n'), "bad data %zu: one line: '%s'", i, err);
	}
	for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++) {
		int st = test_child(bad_template, badt[i].text, err, sizeof err);

		CHECK(st == 1 && strstr(err, badt[i].msg), "bad template %zu: status %d, '%s'", i, st,
		      err);
	}
	{
		int st = test_child(open_template, "alpacca", err, sizeof err);

		CHECK(st == 1 && strstr(err, "unknown template 'alpacca'"), "unknown name: '%s'", err);
	}
}

/* The shared instruction data; its tokens on GPT-2's vocabulary: the
 * mask covers exactly the response's tokens and the <|endoftext|>, and
 * the tokens spell the rendered text. */
static void test_encode(void)
{
	struct instruct_set s;
	struct instruct_template *t = instruct_template_open("alpaca");
	struct vocab v;
	char *vp = test_data("gpt2");
	uint32_t *ids;
	unsigned char *mask;
	size_t n, total_resp = 0, want_resp = 0;

	char *dp = test_data("instruct/instruction-data.json");

	instruct_load(&s, dp);
	CHECK(s.n == 1100 && !s.jsonl, "the shared data holds %zu records", s.n);
	vocab_load(&v, vp);
	for (size_t i = 0; i < s.n && i < 200; i++) {
		struct instruct_text r;
		uint32_t *out;
		size_t nout, pos = 0, nresp = 0, k;
		int ok = 1;

		n = instruct_encode(&v, t, &s.ex[i], &ids, &mask);
		instruct_render(t, &s.ex[i], &r);
		for (k = 0; k + 1 < n; k++) {
			size_t tl = 0;
			const unsigned char *b = vocab_token(&v, ids[k], &tl);

			ok &= b && pos + tl <= r.len && memcmp(r.text + pos, b, tl) == 0;
			pos += tl;
			nresp += mask[k];
			/* prompt tokens come first, then the response's */
			if (k && mask[k - 1] && !mask[k])
				ok = 0;
		}
		CHECK(ok && pos == r.len, "record %zu: the tokens spell the text", i + 1);
		CHECK(ids[n - 1] == v.eot && mask[n - 1] == 1, "record %zu: ends with a masked eot", i + 1);
		/* "\n" ends the prompt, so the response tokenizes on its own */
		nout = tokenize_text(&v, (const unsigned char *)s.ex[i].output,
				     strlen(s.ex[i].output), 0, &out);
		total_resp += nresp;
		want_resp += nout;
		CHECK(nresp == nout, "record %zu: %zu response tokens, the output alone is %zu", i + 1,
		      nresp, nout);
		free(out);
		free(ids);
		free(mask);
		instruct_text_free(&r);
	}
	CHECK(total_resp == want_resp && total_resp > 1000, "response tokens %zu", total_resp);
	vocab_free(&v);
	instruct_free(&s);
	instruct_template_free(t);
}

/* sft.h's micro-batches: padded rows as long as the longest example,
 * prompt and pad targets ignored, pads EOT, response targets the next
 * token; packed, the same examples in fewer rows with the same targets
 * counted. */
static void test_sft_fill(void)
{
	static const char data[] =
		"{\"instruction\": \"Say hi.\", \"output\": \"Hi there, friend.\"}\n"
		"{\"instruction\": \"Name a color.\", \"input\": \"one word\", \"output\": \"Blue.\"}\n";
	struct instruct_set set;
	struct instruct_template *t = instruct_template_open("alpaca");
	struct vocab v;
	struct sft_set s;
	uint64_t idx[2] = { 0, 1 };
	uint32_t in[2 * 256], tg[2 * 256];
	int Tm, rows, w;
	long counted = 0, seen = 0;

	vocab_load(&v, test_data("gpt2"));
	instruct_parse(&set, data, strlen(data), "fill");
	sft_build(&s, &set, 0, 2, &v, t, 255, 0);
	rows = sft_fill(&s, idx, 2, 0, 255, v.eot, in, tg, &Tm);
	w = (s.len[0] > s.len[1] ? s.len[0] : s.len[1]) - 1;
	CHECK(rows == 2 && Tm == w, "padded: %d rows of %d, wanted 2 of %d", rows, Tm, w);
	for (int r = 0; r < 2; r++) {
		counted += sft_counted(&s, (size_t)r);
		for (int p = 0; p < Tm; p++) {
			uint32_t x = in[r * Tm + p], y = tg[r * Tm + p];

			if (p + 1 < s.len[r]) {
				CHECK(x == s.ids[r][p], "row %d pos %d: input", r, p);
				CHECK(s.mask[r][p + 1] ? y == s.ids[r][p + 1] : y == GPT_IGNORE,
				      "row %d pos %d: target %u (mask %d)", r, p, y, s.mask[r][p + 1]);
			} else {
				CHECK(x == v.eot && y == GPT_IGNORE, "row %d pos %d: a pad", r, p);
			}
			seen += y != GPT_IGNORE;
		}
	}
	CHECK(seen == counted && counted > 3, "counted targets %ld, sft_counted %ld", seen, counted);
	CHECK(tg[(s.len[0] - 2)] == v.eot, "the last target of example 1 is its <|endoftext|>");
	rows = sft_fill(&s, idx, 2, 1, 255, v.eot, in, tg, &Tm);
	seen = 0;
	for (int i = 0; i < rows * Tm; i++)
		seen += tg[i] != GPT_IGNORE;
	CHECK(rows == 1 && Tm == s.len[0] + s.len[1] - 2 && seen == counted,
	      "packed: %d rows of %d, %ld counted", rows, Tm, seen);
	sft_free(&s);
	instruct_free(&set);
	instruct_template_free(t);
	vocab_free(&v);
}

int main(int argc, char **argv)
{
	(void)argc;
	err_init(argv[0]);
	RUN(test_templates);
	RUN(test_template_file);
	RUN(test_errors);
	RUN(test_encode);
	RUN(test_sft_fill);
	return TEST_END();
}
