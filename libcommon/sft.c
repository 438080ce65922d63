/* sft: fine-tuning examples for the trainer (sft.h). */
#include "sft.h"
#include "err.h"
#include "io.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void sft_build(struct sft_set *s, const struct instruct_set *set, size_t lo, size_t hi,
	       const struct vocab *v, const struct instruct_template *t, int T,
	       int train_on_prompt)
{
	memset(s, 0, sizeof *s);
	s->n = hi - lo;
	s->ids = xcalloc(s->n ? s->n : 1, sizeof *s->ids);
	s->mask = xcalloc(s->n ? s->n : 1, sizeof *s->mask);
	s->len = xcalloc(s->n ? s->n : 1, sizeof *s->len);
	for (size_t i = 0; i < s->n; i++) {
		size_t n = instruct_encode(v, t, &set->ex[lo + i], &s->ids[i], &s->mask[i]);

		if (n > (size_t)T + 1) {
			n = (size_t)T + 1;
			s->truncated++;
		}
		if (train_on_prompt)
			memset(s->mask[i], 1, n);
		s->len[i] = (int)n;
		s->tokens += n;
		s->counted += (uint64_t)sft_counted(s, i);
		s->hash = XXH64(s->ids[i], n * sizeof *s->ids[i], s->hash);
		s->hash = XXH64(s->mask[i], n, s->hash);
	}
}

void sft_free(struct sft_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->ids[i]);
		free(s->mask[i]);
	}
	free(s->ids);
	free(s->mask);
	free(s->len);
	free(s->perm);
	memset(s, 0, sizeof *s);
}

long sft_counted(const struct sft_set *s, size_t i)
{
	long c = 0;

	for (int p = 1; p < s->len[i]; p++)
		c += s->mask[i][p];
	return c;
}

void sft_split(size_t n, const char *spec, size_t b[6])
{
	unsigned a, v, t;
	char end;
	size_t ntr, nte;

	if (sscanf(spec, "%u,%u,%u%c", &a, &v, &t, &end) != 3 || a + v + t != 100 || a == 0)
		die_usage("--split takes TRAIN,VAL,TEST percentages adding up to 100, e.g. 85,5,10: '%s'",
			  spec);
	ntr = n * a / 100;
	nte = n * t / 100;
	/* the series' order: train, then test, then validation */
	b[0] = 0;
	b[1] = ntr;
	b[4] = ntr;
	b[5] = ntr + nte;
	b[2] = ntr + nte;
	b[3] = n;
}

void sft_write_part(const struct instruct_set *set, size_t lo, size_t hi, const char *path)
{
	struct afile a;

	afile_open(&a, path);
	for (size_t i = lo; i < hi; i++)
		instruct_write_json(&a.out, &set->ex[i], NULL);
	afile_commit(&a);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t sft_at(struct sft_set *s, uint64_t seed, uint64_t k)
{
	uint64_t e = k / s->n, st;

	if (!s->have_perm || s->perm_epoch != e) {
		if (!s->perm)
			s->perm = xmalloc(xmul(s->n, sizeof *s->perm));
		for (size_t i = 0; i < s->n; i++)
			s->perm[i] = i;
		st = mix(mix(seed) ^ (e + 1));
		for (size_t i = s->n; i > 1; i--) {
			size_t j;

			st = mix(st);
			j = (size_t)(st % i);
			uint64_t x = s->perm[i - 1];
			s->perm[i - 1] = s->perm[j];
			s->perm[j] = x;
		}
		s->perm_epoch = e;
		s->have_perm = 1;
	}
	return s->perm[k % s->n];
}

int sft_fill(const struct sft_set *s, const uint64_t *idx, int rows, int pack, int T,
	     uint32_t eot, uint32_t *in, uint32_t *tg, int *Tm)
{
	int nrow = 0, width = 0, *fill = xcalloc((size_t)rows, sizeof *fill);

	/* the row each example goes to, and the rows' length */
	for (int r = 0; r < rows; r++) {
		int need = s->len[idx[r]] - 1, row = nrow;

		if (need < 1)
			need = 1;
		if (pack)
			for (row = 0; row < nrow && fill[row] + need > T; row++)
				;
		if (row == nrow)
			nrow++;
		fill[row] += need;
		if (fill[row] > width)
			width = fill[row];
	}
	for (size_t i = 0; i < (size_t)nrow * (size_t)width; i++) {
		in[i] = eot;
		tg[i] = GPT_IGNORE;
	}
	memset(fill, 0, (size_t)rows * sizeof *fill);
	nrow = 0;
	for (int r = 0; r < rows; r++) {
		const size_t e = idx[r];
		int need = s->len[e] - 1, row = nrow;

		if (need < 1)
			need = 1;
		if (pack)
			for (row = 0; row < nrow && fill[row] + need > T; row++)
				;
		if (row == nrow)
			nrow++;
		for (int p = 0; p + 1 < s->len[e]; p++) {
			size_t at = (size_t)row * (size_t)width + (size_t)(fill[row] + p);

			in[at] = s->ids[e][p];
			tg[at] = s->mask[e][p + 1] ? s->ids[e][p + 1] : GPT_IGNORE;
		}
		if (s->len[e] == 1)
			in[(size_t)row * (size_t)width + (size_t)fill[row]] = s->ids[e][0];
		fill[row] += need;
	}
	free(fill);
	*Tm = width;
	return nrow;
}
