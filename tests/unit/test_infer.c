/* test_infer: the key/value-cache engine against gpt_model_forward on the
 * whole sequence (logits within 1e-5, greedy continuations identical),
 * the sampler's rules (top-k 1 is greedy, same seed same tokens, top-k and
 * top-p cuts, frequencies), UTF-8-safe streaming, and the Hugging Face
 * fixture (tests/gen_hf_fixtures.py): logits after import within 1e-4 of
 * transformers', the same greedy tokens, export and import again losing
 * nothing, and safetensors files with lying headers refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfweights.h"
#include "infer.h"
#include "io.h"
#include "json.h"
#include "model.h"
#include "safetensors.h"
#include "sampler.h"
#include "utf8out.h"
#include "test.h"
#include "tokenize.h"
#include "vocab.h"

static void small_model(struct gpt_model *m, int tied, int bias, int ctx, uint64_t seed)
{
	struct gpt_config c = {.n_layer = 2, .n_head = 4, .n_embd = 32, .n_ctx = ctx,
	                       .vocab_size = 300, .tied = tied, .bias = bias, .qkv_bias = bias};
	gpt_config_finish(&c);
	gpt_model_init(m, &c);
	gpt_model_init_weights(m, seed);
	/* larger LayerNorm gains so the logits are not all near zero */
	for (int i = 0; i < m->n_tensors; i++)
		if (strstr(m->tensors[i].name, "ln_f.weight"))
			for (size_t k = 0; k < m->tensors[i].size; k++)
				m->params[m->tensors[i].offset + k] = 20.0f;
}

/* Largest |a-b| over the real vocabulary, relative to the row's scale. */
static double row_diff(const float *a, const float *b, int V)
{
	double d = 0, scale = 1e-6;
	for (int i = 0; i < V; i++) {
		double e = fabs((double)a[i] - b[i]);
		d = e > d ? e : d;
		scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
	}
	return d / (scale > 1 ? scale : 1);
}

static void check_cache(int tied, int bias, int ctx, int T, int prefill)
{
	struct gpt_model m;
	struct infer s;
	uint32_t *ids = malloc((size_t)T * sizeof *ids);
	float *full, *all;
	double worst = 0;
	int V, Vp;

	small_model(&m, tied, bias, ctx, 7 + (uint64_t)tied);
	V = m.cfg.vocab_size;
	Vp = m.cfg.padded_vocab;
	for (int i = 0; i < T; i++)
		ids[i] = (uint32_t)((i * 37 + 11) % V);
	gpt_model_plan(&m, 1, T, 0);
	gpt_model_forward(&m, ids, NULL, 1, T);
	full = gpt_model_logits(&m);
	all = malloc((size_t)prefill * Vp * sizeof *all);

	infer_init(&s, &m);
	infer_feed(&s, ids, prefill, all);
	for (int t = 0; t < prefill; t++) {
		double d = row_diff(all + (size_t)t * Vp, full + (size_t)t * Vp, V);
		worst = d > worst ? d : worst;
		CHECK(isinf(all[(size_t)t * Vp + Vp - 1]) || V == Vp, "padding logit not -inf");
	}
	for (int t = prefill; t < T; t++) {
		const float *lg = infer_feed(&s, ids + t, 1, NULL);
		double d = row_diff(lg, full + (size_t)t * Vp, V);
		worst = d > worst ? d : worst;
	}
	CHECK(worst < 1e-5, "cache logits differ by %g (tied %d bias %d T %d)", worst, tied, bias, T);
	CHECK(s.pos == T, "position %d after %d tokens", s.pos, T);

	/* rewinding and feeding again gives the same logits */
	infer_rewind(&s, prefill - 1);
	{
		const float *lg = infer_feed(&s, ids + prefill - 1, 1, NULL);
		double d = row_diff(lg, full + (size_t)(prefill - 1) * Vp, V);
		CHECK(d < 1e-5, "after rewind logits differ by %g", d);
	}
	infer_free(&s);
	free(all);
	free(ids);
	gpt_model_free(&m);
}

static void test_cache_matches_forward(void)
{
	check_cache(1, 1, 64, 40, 9);
	check_cache(0, 0, 64, 64, 1);
	check_cache(1, 0, 64, 30, 30);
	/* a prefill longer than one internal chunk */
	check_cache(0, 1, 200, 180, 150);
}

/* Greedy decoding: full forward on the growing sequence each step versus
 * the cache; the tokens must be the same. */
static void test_greedy_cache_equals_no_cache(void)
{
	struct gpt_model m;
	struct infer s;
	uint32_t seq[48] = {5, 17, 99, 250};
	uint32_t seq2[48] = {5, 17, 99, 250};
	const float *lg;
	int n = 4, T = 40;

	small_model(&m, 1, 1, 64, 3);
	gpt_model_plan(&m, 1, T, 0);
	for (int t = n; t < T; t++) {
		gpt_model_forward(&m, seq, NULL, 1, t);
		seq[t] = sampler_argmax(gpt_model_logits(&m) + (size_t)(t - 1) * m.cfg.padded_vocab,
		                        m.cfg.vocab_size);
	}
	infer_init(&s, &m);
	lg = infer_feed(&s, seq2, n, NULL);
	for (int t = n; t < T; t++) {
		seq2[t] = sampler_argmax(lg, m.cfg.vocab_size);
		if (t + 1 < T)
			lg = infer_feed(&s, seq2 + t, 1, NULL);
	}
	CHECK(memcmp(seq, seq2, sizeof(uint32_t) * (size_t)T) == 0, "greedy tokens differ");
	{
		int distinct = 0;
		for (int t = n + 1; t < T; t++)
			distinct += seq[t] != seq[t - 1];
		CHECK(distinct > 0, "greedy continuation is one repeated token");
	}
	infer_free(&s);
	gpt_model_free(&m);
}

static void random_logits(float *l, int V, uint64_t seed)
{
	struct gpt_rng r;
	gpt_rng_seed(&r, seed);
	for (int i = 0; i < V; i++)
		l[i] = (float)(gpt_rng_uniform(&r) * 6 - 3);
}

static void test_sampler_rules(void)
{
	enum { V = 1000 };
	static float l[V];
	struct sampler a, b, k1;
	int same = 1, differs_from_greedy = 0;

	random_logits(l, V, 42);
	sampler_init(&a, V, 1.0, 0, 1.0, 9);
	sampler_init(&b, V, 1.0, 0, 1.0, 9);
	sampler_init(&k1, V, 1.0, 1, 1.0, 123);
	for (int i = 0; i < 200; i++) {
		uint32_t x = sampler_next(&a, l), y = sampler_next(&b, l);
		same &= x == y;
		differs_from_greedy |= x != sampler_argmax(l, V);
		CHECK(sampler_next(&k1, l) == sampler_argmax(l, V), "top-k 1 is not greedy");
		l[i % V] += 0.5f;
	}
	CHECK(same, "same seed gave different tokens");
	CHECK(differs_from_greedy, "temperature 1 sampling always picked the argmax");
	sampler_free(&a);
	sampler_free(&b);
	sampler_free(&k1);

	/* ties: greedy takes the lowest id */
	for (int i = 0; i < V; i++)
		l[i] = 0;
	l[7] = l[3] = 1;
	CHECK(sampler_argmax(l, V) == 3, "tie broken to %u", sampler_argmax(l, V));
}

/* How often each of 4 tokens of probabilities 0.6, 0.25, 0.1, 0.05 is
 * drawn in n draws of a sampler with these settings. */
static void draw_counts(int cnt[4], int n, double temperature, int top_k, double top_p,
			uint64_t seed)
{
	const float l[4] = {logf(0.6f), logf(0.25f), logf(0.1f), logf(0.05f)};
	struct sampler s;

	memset(cnt, 0, 4 * sizeof *cnt);
	sampler_init(&s, 4, temperature, top_k, top_p, seed);
	for (int i = 0; i < n; i++)
		cnt[sampler_next(&s, l)]++;
	sampler_free(&s);
}

static void test_sampler_frequencies(void)
{
	int cnt[4];
	enum { N = 20000 };

	draw_counts(cnt, N, 1.0, 0, 1.0, 1);
	CHECK(fabs(cnt[0] / (double)N - 0.6) < 0.02 && fabs(cnt[3] / (double)N - 0.05) < 0.01,
	      "frequencies %d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);

	draw_counts(cnt, N, 1.0, 2, 1.0, 2);
	CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[1] > 0, "top-k 2 gave %d %d %d %d",
	      cnt[0], cnt[1], cnt[2], cnt[3]);
	CHECK(fabs(cnt[0] / (double)N - 0.6 / 0.85) < 0.02, "top-k 2 renormalised %d", cnt[0]);

	/* top-p 0.8: 0.6 alone is short, 0.6 + 0.25 reaches it */
	draw_counts(cnt, N, 1.0, 0, 0.8, 3);
	CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[1] > 0, "top-p 0.8 gave %d %d %d %d",
	      cnt[0], cnt[1], cnt[2], cnt[3]);

	/* a low temperature sharpens */
	draw_counts(cnt, 2000, 0.1, 0, 1.0, 4);
	CHECK(cnt[0] > 1990, "temperature 0.1 picked the top token %d times", cnt[0]);
}

/* Feeds pieces through a utf8out into a temporary file and returns
 * what came out after each piece, joined with '|'. */
static void stream_pieces(const char *const *pieces, int n, char *got, size_t cap)
{
	FILE *f = tmpfile();
	struct out o;
	struct utf8out u;
	size_t at = 0;
	long prev = 0;

	out_init(&o, fileno(f), "tmp");
	utf8out_init(&u);
	for (int i = 0; i <= n; i++) {
		long now;
		if (i < n)
			utf8out_push(&u, (const unsigned char *)pieces[i], strlen(pieces[i]), &o);
		else
			utf8out_finish(&u, &o);
		out_flush(&o);
		now = lseek(fileno(f), 0, SEEK_END);
		if (pread(fileno(f), got + at, (size_t)(now - prev), prev) != now - prev)
			break;
		at += (size_t)(now - prev);
		prev = now;
		if (at + 2 < cap)
			got[at++] = '|';
	}
	got[at] = 0;
	out_free(&o);
	fclose(f);
}

static void test_utf8_stream(void)
{
	char got[256];
	/* "é" = C3 A9, "€" = E2 82 AC, "😀" = F0 9F 98 80 split over pieces */
	const char *p1[] = {"a\xC3", "\xA9" "b\xE2\x82", "\xAC\xF0\x9F", "\x98", "\x80!"};
	const char *p2[] = {"x\xE2\x82", "y"};
	const char *p3[] = {"\xFF" "z", "\xED\xA0"};
	const char *p4[] = {"end\xF0\x9F"};

	stream_pieces(p1, 5, got, sizeof got);
	CHECK(strcmp(got, "a|\xC3\xA9" "b|\xE2\x82\xAC||\xF0\x9F\x98\x80!||") == 0,
	      "split characters: '%s'", got);
	stream_pieces(p2, 2, got, sizeof got);
	CHECK(strcmp(got, "x|\xEF\xBF\xBD\xEF\xBF\xBDy||") == 0, "broken sequence: '%s'", got);
	stream_pieces(p3, 2, got, sizeof got);
	CHECK(strcmp(got, "\xEF\xBF\xBDz|\xEF\xBF\xBD\xEF\xBF\xBD||") == 0,
	      "invalid lead and surrogate: '%s'", got);
	stream_pieces(p4, 1, got, sizeof got);
	CHECK(strcmp(got, "end|\xEF\xBF\xBD\xEF\xBF\xBD|") == 0, "cut at the end: '%s'", got);
}

static int load_expected(struct json *j)
{
	const char *p = test_fixture("hf/expected.json");
	char err[128];
	size_t len;
	unsigned char *text = io_read_file(p, 16u << 20, &len);
	int r = json_parse((const char *)text, len, j, err, sizeof err);
	free(text);
	return r;
}

static void test_hf_import_matches_transformers(void)
{
	struct gpt_model m;
	struct infer s;
	struct json exp;
	struct vocab v;
	const struct json *ids, *logits, *greedy;
	const char *dir = test_fixture("hf/random"), *vpath = test_fixture("hf/tiny.tiktoken");
	const char *prompt;
	uint32_t tok[64], *enc = NULL;
	size_t n, nenc;
	double worst = 0;
	const float *lg = NULL;

	CHECK(load_expected(&exp) == 0, "cannot read expected.json");
	if (test_failed_now)
		return;
	ids = json_get(&exp, "ids");
	logits = json_get(&exp, "logits");
	greedy = json_get(&exp, "greedy");
	prompt = json_get(&exp, "prompt")->str;
	n = ids->n;

	/* the tiny vocabulary tokenizes the prompt as tiktoken did */
	vocab_load(&v, vpath);
	nenc = tokenize_text(&v, (const unsigned char *)prompt, strlen(prompt), 0, &enc);
	CHECK(nenc == n, "prompt is %zu tokens, tiktoken made %zu", nenc, n);
	for (size_t i = 0; i < n && i < nenc; i++)
		CHECK(enc[i] == (uint32_t)ids->items[i].num, "token %zu differs", i);
	CHECK(v.n_ids == 512 && v.eot == 511, "tiny vocabulary has %u ids, eot %u", v.n_ids, v.eot);

	hfweights_import(dir, &m);
	CHECK(m.cfg.n_layer == 2 && m.cfg.n_embd == 32 && m.cfg.vocab_size == 512 && m.cfg.tied,
	      "imported configuration");
	for (size_t i = 0; i < n; i++)
		tok[i] = (uint32_t)ids->items[i].num;
	infer_init(&s, &m);
	for (size_t t = 0; t < n; t++) {
		lg = infer_feed(&s, tok + t, 1, NULL);
		for (int k = 0; k < 512; k++) {
			double d = fabs(lg[k] - logits->items[t].items[k].num);
			worst = d > worst ? d : worst;
		}
	}
	CHECK(worst < 1e-4, "logits differ from transformers by %g", worst);

	/* greedy continuation: the same tokens as transformers */
	for (size_t g = 0; lg && g < greedy->n; g++) {
		uint32_t next = sampler_argmax(lg, m.cfg.vocab_size);
		CHECK(next == (uint32_t)greedy->items[g].num, "greedy token %zu: %u, want %g", g, next,
		      greedy->items[g].num);
		lg = infer_feed(&s, &next, 1, NULL);
	}
	infer_free(&s);
	gpt_model_free(&m);
	vocab_free(&v);
	free(enc);
	json_free(&exp);
}

/* Import, export, import again: the very same weights; the untied bigram
 * model keeps its head. */
static void test_hf_export_round_trip(void)
{
	const char *names[] = {"random", "bigram"}, *dirs[] = {"hf/random", "hf/bigram"};
	for (int k = 0; k < 2; k++) {
		struct gpt_model a, b;
		const char *dir = test_fixture(dirs[k]);
		const char *sub = test_path(names[k]);

		hfweights_import(dir, &a);
		hfweights_export(&a, sub);
		hfweights_import(sub, &b);
		CHECK(a.n_params == b.n_params && a.cfg.tied == b.cfg.tied &&
		      memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0,
		      "%s: weights changed on the round trip", names[k]);
		CHECK(a.cfg.tied == (k == 0), "%s: tied %d", names[k], a.cfg.tied);
		/* padding rows of the embedding are zero */
		{
			const struct gpt_tensor *t = gpt_model_tensor(&a, "wte.weight");
			int pad = 0;
			for (size_t i = (size_t)a.cfg.vocab_size * a.cfg.n_embd; i < t->size; i++)
				pad |= a.params[t->offset + i] != 0;
			CHECK(!pad || a.cfg.padded_vocab == a.cfg.vocab_size, "padding rows not zero");
		}
		CHECK(test_rm_rf(sub) == 0, "cleanup");
		gpt_model_free(&a);
		gpt_model_free(&b);
	}
}

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(p, 1, n, f) == n;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* Headers that lie about sizes and offsets are refused, never trusted;
 * F16 and BF16 convert. */
static void test_safetensors_bounds(void)
{
	static const struct { const char *json; const char *why; } bad[] = {
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", "past the end"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "size/shape"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "reversed"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", "negative"},
		{"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", "dtype"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
		 "overflow"},
		{"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "truncated json"},
		{"[1,2]", "not an object"},
	};
	const char *path = test_path("bad.safetensors");
	unsigned char buf[512];
	struct safetensors f;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t hl = strlen(bad[i].json);
		memset(buf, 0, sizeof buf);
		for (int b = 0; b < 8; b++)
			buf[b] = (unsigned char)((uint64_t)hl >> (8 * b));
		memcpy(buf + 8, bad[i].json, hl);
		write_file(path, buf, 8 + hl + 8);
		CHECK(st_open(&f, path) < 0, "accepted a bad header (%s)", bad[i].why);
		CHECK(f.err[0] != 0, "no reason given (%s)", bad[i].why);
	}
	/* a header length beyond the file */
	memset(buf, 0, sizeof buf);
	buf[0] = 0xff;
	buf[3] = 0x7f;
	write_file(path, buf, 16);
	CHECK(st_open(&f, path) < 0, "accepted a header longer than the file");

	/* F16 1.5, -2 and BF16 0.5 */
	{
		const char *j = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
		                "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]}}";
		size_t hl = strlen(j);
		unsigned char data[6] = {0x00, 0x3e, 0x00, 0xc0, 0x00, 0x3f};
		float out[2];
		for (int b = 0; b < 8; b++)
			buf[b] = (unsigned char)((uint64_t)hl >> (8 * b));
		memcpy(buf + 8, j, hl);
		memcpy(buf + 8 + hl, data, 6);
		write_file(path, buf, 8 + hl + 6);
		CHECK(st_open(&f, path) == 0, "good file refused: %s", f.err);
		if (!test_failed_now) {
			CHECK(st_read_f32(&f, st_find(&f, "h"), out) == 0 && out[0] == 1.5f &&
			      out[1] == -2.0f, "F16 read %g %g", out[0], out[1]);
			CHECK(st_read_f32(&f, st_find(&f, "b"), out) == 0 && out[0] == 0.5f,
			      "BF16 read %g", out[0]);
			st_close(&f);
		}
	}
	unlink(path);
}

/* The JSON reader under the safetensors header and the benchmark files. */
static void test_json(void)
{
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\" 1}", "\"abc", "\"\\q\"", "\"\\u12\"", "01x", "tru",
		"{\"a\":1} x", "\"a\tb\"", "[1 2]", "-", "{1:2}",
	};
	char deep[200], err[128];
	struct json j;
	const char *ok = " {\"s\": \"a\\u00e9\\ud83d\\ude00\\n\\\"\", \"n\": -12.5e1, "
	                 "\"a\": [true, false, null, []], \"o\": {}, \"lone\": \"\\ud800x\"} ";

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(json_parse(bad[i], strlen(bad[i]), &j, err, sizeof err) < 0,
		      "accepted bad JSON '%s'", bad[i]);
		CHECK(err[0] != 0, "no reason for '%s'", bad[i]);
	}
	memset(deep, '[', sizeof deep);
	CHECK(json_parse(deep, sizeof deep, &j, err, sizeof err) < 0, "accepted 200 open brackets");
	CHECK(json_parse(ok, strlen(ok), &j, err, sizeof err) == 0, "refused good JSON: %s", err);
	if (test_failed_now)
		return;
	CHECK(strcmp(json_get(&j, "s")->str, "a\xC3\xA9\xF0\x9F\x98\x80\n\"") == 0, "escapes decoded");
	CHECK(json_get(&j, "n")->num == -125.0, "number %g", json_get(&j, "n")->num);
	CHECK(json_get(&j, "a")->n == 4 && json_get(&j, "a")->items[0].boolean == 1 &&
	      json_get(&j, "a")->items[2].type == JSON_NULL, "array members");
	CHECK(strcmp(json_get(&j, "lone")->str, "\xEF\xBF\xBDx") == 0, "lone surrogate is U+FFFD");
	CHECK(json_get(&j, "missing") == NULL, "missing key found");
	json_free(&j);
}

int main(void)
{
	RUN(test_cache_matches_forward);
	RUN(test_greedy_cache_equals_no_cache);
	RUN(test_sampler_rules);
	RUN(test_sampler_frequencies);
	RUN(test_utf8_stream);
	RUN(test_hf_import_matches_transformers);
	RUN(test_hf_export_round_trip);
	RUN(test_safetensors_bounds);
	RUN(test_json);
	return TEST_END();
}
