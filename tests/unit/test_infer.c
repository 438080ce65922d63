/* test_infer: the key/value-cache engine against gpt_model_forward on the
 * whole sequence (logits within 1e-5, greedy continuations identical),
 * the sampler's rules (top-k 1 is greedy, same seed same tokens, top-k and
 * top-p cuts, frequencies), and UTF-8-safe streaming. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infer.h"
#include "io.h"
#include "model.h"
#include "sampler.h"
#include "test.h"

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

static void test_sampler_frequencies(void)
{
	float l[4] = {logf(0.6f), logf(0.25f), logf(0.1f), logf(0.05f)};
	struct sampler s;
	int cnt[4] = {0};
	enum { N = 20000 };

	sampler_init(&s, 4, 1.0, 0, 1.0, 1);
	for (int i = 0; i < N; i++)
		cnt[sampler_next(&s, l)]++;
	CHECK(fabs(cnt[0] / (double)N - 0.6) < 0.02 && fabs(cnt[3] / (double)N - 0.05) < 0.01,
	      "frequencies %d %d %d %d", cnt[0], cnt[1], cnt[2], cnt[3]);
	sampler_free(&s);

	memset(cnt, 0, sizeof cnt);
	sampler_init(&s, 4, 1.0, 2, 1.0, 2);
	for (int i = 0; i < N; i++)
		cnt[sampler_next(&s, l)]++;
	CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[1] > 0, "top-k 2 gave %d %d %d %d",
	      cnt[0], cnt[1], cnt[2], cnt[3]);
	CHECK(fabs(cnt[0] / (double)N - 0.6 / 0.85) < 0.02, "top-k 2 renormalised %d", cnt[0]);
	sampler_free(&s);

	/* top-p 0.8: 0.6 alone is short, 0.6 + 0.25 reaches it */
	memset(cnt, 0, sizeof cnt);
	sampler_init(&s, 4, 1.0, 0, 0.8, 3);
	for (int i = 0; i < N; i++)
		cnt[sampler_next(&s, l)]++;
	CHECK(cnt[2] == 0 && cnt[3] == 0 && cnt[1] > 0, "top-p 0.8 gave %d %d %d %d",
	      cnt[0], cnt[1], cnt[2], cnt[3]);
	sampler_free(&s);

	/* a low temperature sharpens */
	memset(cnt, 0, sizeof cnt);
	sampler_init(&s, 4, 0.1, 0, 1.0, 4);
	for (int i = 0; i < 2000; i++)
		cnt[sampler_next(&s, l)]++;
	CHECK(cnt[0] > 1990, "temperature 0.1 picked the top token %d times", cnt[0]);
	sampler_free(&s);
}

/* Feeds pieces through a utf8_stream into a temporary file and returns
 * what came out after each piece, joined with '|'. */
static void stream_pieces(const char *const *pieces, int n, char *got, size_t cap)
{
	FILE *f = tmpfile();
	struct out o;
	struct utf8_stream u;
	size_t at = 0;
	long prev = 0;

	out_init(&o, fileno(f), "tmp");
	utf8_init(&u);
	for (int i = 0; i <= n; i++) {
		long now;
		if (i < n)
			utf8_push(&u, (const unsigned char *)pieces[i], strlen(pieces[i]), &o);
		else
			utf8_finish(&u, &o);
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

int main(void)
{
	RUN(test_cache_matches_forward);
	RUN(test_greedy_cache_equals_no_cache);
	RUN(test_sampler_rules);
	RUN(test_sampler_frequencies);
	RUN(test_utf8_stream);
	return TEST_END();
}
