/* train_step: one optimizer step on an engine (train.h), the step that
 * train_run takes and that tests and benchmarks take without a run
 * folder; in a file of its own so that they link only the engine. */
#include <math.h>

#include "engine.h"
#include "train.h"

double train_grads_from(struct engine *e, train_batch_fn next, void *ctx, uint64_t accum, int B,
                        int T)
{
	double loss = 0;

	engine_zero_grad(e);
	for (uint64_t a = 0; a < accum; a++) {
		const uint32_t *in, *tg;
		float l;

		next(ctx, a, &in, &tg);
		l = engine_forward_backward(e, in, tg, B, T, 1.0f / (float)accum);
		if (!isfinite(l))
			return l;
		loss += l;
	}
	return loss / (double)accum;
}

struct arrays {
	const uint32_t *in, *tg;
	size_t n;
};

static void next_array(void *ctx, uint64_t a, const uint32_t **in, const uint32_t **tg)
{
	const struct arrays *x = ctx;

	*in = x->in + a * x->n;
	*tg = x->tg + a * x->n;
}

double train_grads(struct engine *e, const uint32_t *in, const uint32_t *tg, int accum, int B,
                   int T)
{
	struct arrays x = { in, tg, (size_t)B * (size_t)T };

	return train_grads_from(e, next_array, &x, (uint64_t)accum, B, T);
}

double train_step(struct engine *e, const uint32_t *in, const uint32_t *tg, int accum, int B,
                  int T, float lr, float clip, float *norm)
{
	double loss = train_grads(e, in, tg, accum, B, T);
	float n = isfinite(loss) ? engine_grad_norm(e) : NAN;

	if (norm)
		*norm = n;
	if (isfinite(loss) && isfinite(n))
		engine_step(e, lr, clip);
	return loss;
}
