/* memplan: the GPU memory the CUDA engine allocates to train a preset
 * model at micro-batch B and context T, counted by its own allocator
 * (gcuda_model_peak_bytes) after planning a training step and the
 * optimizer.  Run on the emulator with GSIM_LAZY=1 it needs neither a GPU
 * nor the memory: it answers "does d12 at B=16, T=1024 fit in 24 GB"
 * from the engine's code rather than arithmetic.  The CUDA context and
 * cuBLASLt's own buffers (a few hundred MiB on a GPU) are not included.
 * With "step" after the shape it also trains one step on random tokens
 * and prints the loss: on the emulator, a check of the kernels' index
 * arithmetic at full size (slow: minutes).
 * Usage: memplan MODEL B T [recompute] [step] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpt_cuda.h"
#include "model.h"
#include "optim.h"

int main(int argc, char **argv)
{
	struct gpt_config c;
	struct gpt_model m;
	struct adamw opt;
	struct adamw_config ac;
	struct gcuda_model *g;
	int B, T, recompute = 0, step = 0;
	size_t weights;
	const char *att = getenv("GPT_CUDA_ATTENTION");

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
	B = atoi(argv[2]);
	T = atoi(argv[3]);
	if (B < 1 || T < 1 || T > c.n_ctx)
		die_usage("bad B or T");
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
	       argv[1], B, T, att && strcmp(att, "flash") == 0 ? "flash" : "batched",
	       recompute ? " recompute" : "", gcuda_model_peak_bytes(g) / 1073741824.0,
	       weights / 1073741824.0, (gcuda_model_peak_bytes(g) - weights) / 1073741824.0);
	if (step) {
		struct gpt_rng r;
		uint32_t *in = xcalloc((size_t)B * T, sizeof *in), *tg = xcalloc((size_t)B * T, sizeof *tg);
		float loss, norm;
		gpt_model_init_weights(&m, 1);
		gcuda_model_upload(g, &m);
		gpt_rng_seed(&r, 7);
		for (size_t i = 0; i < (size_t)B * T; i++) {
			in[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
			tg[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
		}
		gcuda_model_zero_grad(g);
		loss = gcuda_model_forward_backward(g, in, tg, B, T, 1.0f);
		gcuda_adamw_step(g, 3e-4f, 1.0f);
		norm = gcuda_adamw_last_norm(g);
		printf("one step: loss %.4f (ln V = %.4f), gradient norm %.4f\n", loss,
		       log((double)c.vocab_size), norm);
		free(in);
		free(tg);
		if (!(loss > 0 && loss < 20 && norm > 0 && norm < 1e6))
			die("the step is not sane: loss %g, norm %g", (double)loss, (double)norm);
	}
	gcuda_model_free(g);
	adamw_free(&opt);
	gpt_model_free(&m);
	return 0;
}
