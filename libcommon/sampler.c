/* sampler: temperature, top-k and top-p sampling with a seeded generator
 * (see sampler.h), so that a seed always gives the same tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sampler.h"

void sampler_init(struct sampler *s, int vocab, double temperature, int top_k,
                  double top_p, uint64_t seed)
{
	memset(s, 0, sizeof *s);
	if (vocab < 1)
		die("sampler: empty vocabulary");
	s->vocab = vocab;
	s->temperature = temperature < 0 ? 0 : temperature;
	s->top_k = top_k < 0 || top_k >= vocab ? 0 : top_k;
	s->top_p = top_p <= 0 || top_p > 1 ? 1 : top_p;
	gpt_rng_seed(&s->rng, seed);
	s->idx = xcalloc((size_t)vocab, sizeof *s->idx);
	s->prob = xcalloc((size_t)vocab, sizeof *s->prob);
}

void sampler_free(struct sampler *s)
{
	free(s->idx);
	free(s->prob);
	memset(s, 0, sizeof *s);
}

uint32_t sampler_argmax(const float *logits, int vocab)
{
	uint32_t best = 0;

	for (int i = 1; i < vocab; i++)
		if (logits[i] > logits[best])
			best = (uint32_t)i;
	return best;
}

/* Candidate order: larger logit first, lower id among equals. */
static const float *cmp_logits;

static int before(const float *l, uint32_t a, uint32_t b)
{
	return l[a] > l[b] || (l[a] == l[b] && a < b);
}

static int cmp_cand(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	if (a == b)
		return 0;
	return before(cmp_logits, a, b) ? -1 : 1;
}

/* Min-heap (by candidate order, worst on top) of the best k ids. */
static void heap_down(const float *l, uint32_t *h, int n, int i)
{
	for (;;) {
		int w = i, a = 2 * i + 1, b = a + 1;
		uint32_t t;
		if (a < n && before(l, h[w], h[a]))
			w = a;
		if (b < n && before(l, h[w], h[b]))
			w = b;
		if (w == i)
			return;
		t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static int select_top_k(const float *l, uint32_t *h, int V, int k)
{
	for (int i = 0; i < k; i++)
		h[i] = (uint32_t)i;
	for (int i = k / 2 - 1; i >= 0; i--)
		heap_down(l, h, k, i);
	for (int i = k; i < V; i++)
		if (before(l, (uint32_t)i, h[0])) {
			h[0] = (uint32_t)i;
			heap_down(l, h, k, 0);
		}
	return k;
}

uint32_t sampler_next(struct sampler *s, const float *logits)
{
	int V = s->vocab, n;
	double mx, total = 0, u;

	if (s->temperature == 0 || s->top_k == 1)
		return sampler_argmax(logits, V);
	/* The sort order is only needed to cut; qsort's comparator has no
	 * context argument, hence the file-level pointer (one thread). */
	cmp_logits = logits;
	if (s->top_k) {
		n = select_top_k(logits, s->idx, V, s->top_k);
		qsort(s->idx, (size_t)n, sizeof *s->idx, cmp_cand);
	} else {
		n = V;
		for (int i = 0; i < V; i++)
			s->idx[i] = (uint32_t)i;
		if (s->top_p < 1)
			qsort(s->idx, (size_t)n, sizeof *s->idx, cmp_cand);
	}
	mx = logits[sampler_argmax(logits, V)];
	for (int i = 0; i < n; i++) {
		s->prob[i] = exp(((double)logits[s->idx[i]] - mx) / s->temperature);
		total += s->prob[i];
	}
	if (s->top_p < 1) {
		double want = s->top_p * total, cum = 0;
		int keep = n;
		for (int i = 0; i < n; i++) {
			cum += s->prob[i];
			if (cum >= want) {
				keep = i + 1;
				break;
			}
		}
		n = keep;
		total = cum;
	}
	u = gpt_rng_uniform(&s->rng) * total;
	for (int i = 0; i < n; i++) {
		u -= s->prob[i];
		if (u < 0)
			return s->idx[i];
	}
	/* rounding left u at (or just above) zero: the last candidate */
	for (int i = n - 1; i > 0; i--)
		if (s->prob[i] > 0)
			return s->idx[i];
	return s->idx[0];
}
