/* optim: AdamW over a flat parameter buffer, global gradient-norm
 * clipping and learning-rate schedules.  The update follows PyTorch's
 * AdamW step by step so that tests can compare parameters to 1e-5. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "optim.h"

void adamw_config_default(struct adamw_config *c)
{
	c->beta1 = 0.9;
	c->beta2 = 0.95;
	c->eps = 1e-8;
	c->weight_decay = 0.1;
}

void adamw_init(struct adamw *opt, const struct adamw_config *c, size_t n)
{
	memset(opt, 0, sizeof *opt);
	opt->cfg = *c;
	opt->n = n;
	opt->m = xcalloc(n ? n : 1, sizeof(float));
	opt->v = xcalloc(n ? n : 1, sizeof(float));
}

void adamw_add_decay(struct adamw *opt, size_t offset, size_t count)
{
	if (offset > opt->n || count > opt->n - offset)
		die("adamw: decay range out of bounds: '%zu+%zu'", offset, count);
	opt->decay = xrealloc(opt->decay,
	                      xmul((size_t)opt->n_decay + 1, sizeof *opt->decay));
	opt->decay[opt->n_decay].offset = offset;
	opt->decay[opt->n_decay].count = count;
	opt->n_decay++;
}

/* The update of params[lo..hi), with or without decay.  Scalars are
 * computed once, in double as PyTorch does, and rounded to float. */
static void adamw_update(struct adamw *opt, float *p, const float *g,
                         size_t lo, size_t hi, float lr, float grad_scale,
                         int decay)
{
	const float b2 = (float)opt->cfg.beta2, eps = (float)opt->cfg.eps;
	const float one_b1 = (float)(1.0 - opt->cfg.beta1);
	const float one_b2 = (float)(1.0 - opt->cfg.beta2);
	double bc1 = 1.0 - pow(opt->cfg.beta1, (double)opt->step);
	double bc2 = 1.0 - pow(opt->cfg.beta2, (double)opt->step);
	const float step_size = (float)((double)lr / bc1);
	const float bc2_sqrt = (float)sqrt(bc2);
	const float keep = decay ? (float)(1.0 - (double)lr * opt->cfg.weight_decay)
	                         : 1.0f;
	float *m = opt->m, *v = opt->v;
	long i;

#pragma omp parallel for schedule(static) if (hi - lo > 32768)
	for (i = (long)lo; i < (long)hi; i++) {
		float gi = g[i] * grad_scale;
		float pi = p[i] * keep;
		float mi = m[i] + one_b1 * (gi - m[i]);
		float vi = v[i] * b2 + one_b2 * gi * gi;
		float denom = sqrtf(vi) / bc2_sqrt + eps;
		m[i] = mi;
		v[i] = vi;
		p[i] = pi - step_size * (mi / denom);
	}
}

void adamw_add_frozen(struct adamw *opt, size_t offset, size_t count)
{
	if (offset + count > opt->n || (opt->n_frozen &&
	    offset < opt->frozen[opt->n_frozen - 1].offset + opt->frozen[opt->n_frozen - 1].count))
		die("adamw: frozen ranges out of order or beyond the buffer: '%zu'", offset);
	opt->frozen = xrealloc(opt->frozen,
	                       xmul((size_t)opt->n_frozen + 1, sizeof *opt->frozen));
	opt->frozen[opt->n_frozen].offset = offset;
	opt->frozen[opt->n_frozen].count = count;
	opt->n_frozen++;
}

/* adamw_update over [lo, hi) less the frozen ranges. */
static void update_unfrozen(struct adamw *opt, float *p, const float *g, size_t lo, size_t hi,
                            float lr, float grad_scale, int decay)
{
	for (int r = 0; r < opt->n_frozen && lo < hi; r++) {
		size_t fa = opt->frozen[r].offset, fb = fa + opt->frozen[r].count;
		if (fb <= lo || fa >= hi)
			continue;
		if (fa > lo)
			adamw_update(opt, p, g, lo, fa, lr, grad_scale, decay);
		lo = fb;
	}
	if (lo < hi)
		adamw_update(opt, p, g, lo, hi, lr, grad_scale, decay);
}

void adamw_step(struct adamw *opt, float *params, const float *grads,
                float lr, float grad_scale)
{
	size_t at = 0;

	opt->step++;
	/* Ranges are walked in buffer order; gaps between them are not
	 * decayed.  Ranges are expected sorted and disjoint (as the model's
	 * table gives them); overlapping ones die rather than double-step. */
	for (int r = 0; r < opt->n_decay; r++) {
		const struct adamw_range *d = &opt->decay[r];
		if (d->offset < at)
			die("adamw: decay ranges overlap or are unsorted: '%zu'", d->offset);
		if (d->offset > at)
			update_unfrozen(opt, params, grads, at, d->offset, lr, grad_scale, 0);
		update_unfrozen(opt, params, grads, d->offset, d->offset + d->count,
		                lr, grad_scale, 1);
		at = d->offset + d->count;
	}
	if (at < opt->n)
		update_unfrozen(opt, params, grads, at, opt->n, lr, grad_scale, 0);
}

void adamw_free(struct adamw *opt)
{
	free(opt->m);
	free(opt->v);
	free(opt->decay);
	free(opt->frozen);
	memset(opt, 0, sizeof *opt);
}

/* A fixed chunk size (not a per-thread split) keeps the summation order
 * independent of the number of threads. */
#define NORM_CHUNK 65536

float grad_global_norm(const float *g, size_t n)
{
	size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
	double stackbuf[64], *part = nchunks <= 64 ? stackbuf
	                                           : xmalloc(xmul(nchunks, sizeof(double)));
	double total = 0;
	long c;

#pragma omp parallel for schedule(static) if (nchunks > 1)
	for (c = 0; c < (long)nchunks; c++) {
		size_t lo = (size_t)c * NORM_CHUNK;
		size_t hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
		double s[4] = {0, 0, 0, 0};
		size_t i = lo;
		for (; i + 4 <= hi; i += 4)
			for (int k = 0; k < 4; k++)
				s[k] += (double)g[i + k] * g[i + k];
		for (; i < hi; i++)
			s[0] += (double)g[i] * g[i];
		part[c] = (s[0] + s[1]) + (s[2] + s[3]);
	}
	for (size_t k = 0; k < nchunks; k++)
		total += part[k];
	if (part != stackbuf)
		free(part);
	return (float)sqrt(total);
}

float grad_clip_scale(float norm, float max_norm)
{
	if (max_norm <= 0 || !(norm > max_norm))
		return 1.0f;
	return max_norm / (norm + 1e-6f);
}

float lr_schedule_at(const struct lr_schedule *s, long step)
{
	double lr = s->lr, low = (double)s->lr * s->floor, progress;
	long span;

	if (step < s->warmup)
		return (float)(lr * (double)(step + 1) / (double)s->warmup);
	if (step >= s->total)
		return s->kind == LR_CONSTANT ? (float)lr : (float)low;
	switch (s->kind) {
	case LR_CONSTANT:
		return (float)lr;
	case LR_WSD:
		span = s->decay < s->total - s->warmup ? s->decay : s->total - s->warmup;
		if (step < s->total - span)
			return (float)lr;
		progress = (double)(step - (s->total - span)) / (double)span;
		return (float)(lr - (lr - low) * progress);
	case LR_LINEAR:
		progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);
		return (float)(lr - (lr - low) * progress);
	case LR_COSINE:
	default:
		progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);
		return (float)(low + 0.5 * (lr - low) * (1.0 + cos(M_PI * progress)));
	}
}

int lr_schedule_kind(const char *name, enum lr_kind *kind)
{
	static const struct { const char *name; enum lr_kind kind; } tab[] = {
		{"cosine", LR_COSINE}, {"linear", LR_LINEAR},
		{"constant", LR_CONSTANT}, {"wsd", LR_WSD},
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(name, tab[i].name) == 0) {
			*kind = tab[i].kind;
			return 0;
		}
	return -1;
}
