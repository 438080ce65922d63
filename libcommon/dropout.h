/* dropout: the masks of gpt-train --dropout, one definition for every
 * engine.  Header only: the CPU model (model.c) and the CUDA kernels
 * (cuda/kernels.cu, compiled by nvcc) include it, so both draw the same
 * mask from the same numbers, and a test compares the two engines with
 * dropout on.
 *
 * Where GPT-2 puts dropout (and the RTX 3090 experiment, at 0.1): on the
 * embedding output (wte + wpe), on the attention weights after the
 * softmax, and on each residual branch's output (attention's c_proj and
 * the MLP's c_proj) before it is added to the residual stream.  A kept
 * value is multiplied by 1/(1-p) ("inverted" dropout), so evaluation and
 * sampling, which never drop, need no rescaling.
 *
 * The mask is counter based: whether an element is kept is a function of
 * (key, site, index) alone, never of a generator's state, so the backward
 * pass regenerates the forward's mask instead of storing it, and a
 * resumed run draws exactly the masks the uninterrupted run drew.
 *   sites: 0 the embedding output; for layer l, 1 + 3l the attention
 *     weights, 2 + 3l the attention branch, 3 + 3l the MLP branch
 *   index of element (row, t, c) of a [rows, T, C] activation:
 *     (row * n_ctx + t) * C + c
 *   index of weight (row, h, i, j) of the attention of head h:
 *     ((row * H + h) * n_ctx + i) * n_ctx + j
 * where row = row0 + b for the micro-batch's row b: the trainer numbers
 * rows by their place in the optimizer step, so a step's masks do not
 * depend on how it is cut into micro-batches or ranks, nor on T (the
 * strides are n_ctx: a padded example draws the same mask as unpadded).
 * With x = splitmix64's output idx for the seed s (s + (idx + 1) *
 * 0x9E3779B97F4A7C15, then the splitmix64 finaliser, as model.h's
 * initialisation), s = splitmix64's finaliser of key + (site + 1) *
 * 0x9E3779B97F4A7C15, an element is dropped when x >> 32 < thr, thr =
 * p * 2^32 rounded down: a fraction p of elements, to within 2^-32.
 *
 * The trainer's key for step s (0-based) of seed S is
 * gpt_dropout_step_key(S, s). */
#ifndef GPT_DROPOUT_H
#define GPT_DROPOUT_H

#include <stdint.h>

#ifdef __CUDACC__
#define DROP_FN static inline __host__ __device__
#else
#define DROP_FN static inline
#endif

#define DROP_GOLD 0x9E3779B97F4A7C15ULL

/* What a forward with dropout needs: p in [0, 1), p == 0 meaning off. */
struct gpt_dropout {
	float p;
	float scale;        /* 1 / (1 - p) */
	uint32_t thr;       /* dropped when the draw's high 32 bits are below */
	uint64_t key;       /* this micro-batch's (the step's) key */
	uint64_t row0;      /* the number of the micro-batch's first row */
};

DROP_FN uint64_t drop_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The seed of a site's draws. */
DROP_FN uint64_t drop_site(uint64_t key, int site)
{
	return drop_mix(key + (uint64_t)(site + 1) * DROP_GOLD);
}

/* 1 when element idx of the site seeded s is kept. */
DROP_FN int drop_keep(uint64_t s, uint64_t idx, uint32_t thr)
{
	return (uint32_t)(drop_mix(s + (idx + 1) * DROP_GOLD) >> 32) >= thr;
}

/* The multiplier of element idx: scale when kept, 0 when dropped. */
DROP_FN float drop_mul(uint64_t s, uint64_t idx, const struct gpt_dropout *d)
{
	return drop_keep(s, idx, d->thr) ? d->scale : 0.0f;
}

/* d for probability p (clamped to [0, 1)), key and row0. */
DROP_FN struct gpt_dropout gpt_dropout_make(float p, uint64_t key, uint64_t row0)
{
	struct gpt_dropout d;
	double t;

	if (!(p > 0.0f))
		p = 0.0f;
	if (p > 0.999f)
		p = 0.999f;
	t = (double)p * 4294967296.0;
	d.p = p;
	d.scale = 1.0f / (1.0f - p);
	d.thr = t >= 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)t;
	d.key = key;
	d.row0 = row0;
	return d;
}

/* The key of step `step` (0-based) of a run seeded seed. */
DROP_FN uint64_t gpt_dropout_step_key(uint64_t seed, uint64_t step)
{
	return drop_mix(drop_mix(seed ^ 0x64726f706f75742eULL) + (step + 1) * DROP_GOLD);
}

#endif
