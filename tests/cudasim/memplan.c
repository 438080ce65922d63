/* memplan: the GPU memory the CUDA engine allocates to train a preset
 * model at micro-batch B and context T, counted by its own allocator
 * (gcuda_model_peak_bytes) after planning a training step and the
 * optimizer.  Run on the emulator with GSIM_LAZY=1 it needs neither a GPU
 * nor the memory: it answers "does d12 at B=16, T=1024 fit in 24 GB" from
 * the engine's code rather than arithmetic.  The CUDA context and
 * cuBLASLt's own buffers (a few hundred MiB on a GPU) are not included.
 * With "step" after the shape it then trains one step of the library's
 * (train.h's train_step on engine_open("cuda")) on random tokens and
 * prints the loss: on the emulator, a check of the kernels' index
 * arithmetic at full size (slow: minutes).  Counting alone uploads no
 * weights, which on the emulator would take longer than the count.
 * Usage: memplan MODEL B T [recompute] [step] */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "err.h"
#include "gpt_cuda.h"
#include "model.h"
#include "optim.h"
#include "train.h"

/* One step on random tokens from the model's initial weights. */
static void one_step(const struct gpt_config *c, int B, int T, int recompute)
{
	struct gpt_model m;
	struct adamw_config ac;
	struct engine *e;
	struct gpt_rng r;
	size_t BT = (size_t)B * (size_t)T;
	uint32_t *in = xcalloc(BT, sizeof *in), *tg = xcalloc(BT, sizeof *tg);
	double loss;
	float norm;

	gpt_model_init(&m, c);
	gpt_model_init_weights(&m, 1);
	e = engine_open("cuda", &m);
	engine_plan(e, B, T, 1, recompute);
	adamw_config_default(&ac);
	engine_optim(e, &ac);
	gpt_rng_seed(&r, 7);
	for (size_t i = 0; i < BT; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c->vocab_size);
		tg[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c->vocab_size);
	}
	loss = train_step(e, in, tg, 1, B, T, 3e-4f, 1.0f, &norm);
	printf("one step: loss %.4f (ln V = %.4f), gradient norm %.4f\n", loss,
	       log((double)c->vocab_size), norm);
	if (!(loss > 0 && loss < 20 && norm > 0 && norm < 1e6))
		die("the step is not sane: loss %g, norm %g", loss, (double)norm);
	engine_close(e);
	free(in);
	free(tg);
}

int main(int argc, char **argv)
{
	struct gpt_config c;
	struct gpt_model m;
	struct adamw opt;
	struct adamw_config ac;
	struct gcuda_model *g;
	int B, T, recompute = 0, step = 0;
	size_t weights;

	err_init(argv[0]);
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "recompute") == 0)
			recompute = 1;
		else if (strcmp(argv[i], "step") == 0)
			step = 1;
		else
			die_usage("usage: memplan MODEL B T [recompute] [step]");
	}
	if (argc < 4)
		die_usage("usage: memplan MODEL B T [recompute] [step]");
	if (gpt_config_preset(argv[1], &c) != 0)
		die_usage("unknown model: '%s'", argv[1]);
	B = (int)cli_u64("B", argv[2], 1, INT_MAX);
	T = (int)cli_u64("T", argv[3], 1, (uint64_t)c.n_ctx);
	if (!gcuda_available())
		die("no usable gpu: '%s'", gcuda_why_not());
	gpt_model_init(&m, &c);
	adamw_config_default(&ac);
	gpt_model_adamw_init(&m, &opt, &ac);
	g = gcuda_model_init(&c);
	weights = gcuda_model_bytes(g);
	gcuda_model_plan(g, B, T, 1, recompute);
	gcuda_adamw_init(g, &opt);
	printf("%s B=%d T=%d %s%s: %.2f GiB (weights %.2f GiB; gradients, AdamW and "
	       "activations %.2f GiB)\n",
	       argv[1], B, T, gcuda_attention_flash() ? "flash" : "batched",
	       recompute ? " recompute" : "", gcuda_model_peak_bytes(g) / 1073741824.0,
	       weights / 1073741824.0, (gcuda_model_peak_bytes(g) - weights) / 1073741824.0);
	fflush(stdout);
	gcuda_model_free(g);
	adamw_free(&opt);
	gpt_model_free(&m);
	if (step)
		one_step(&c, B, T, recompute);
	return 0;
}
