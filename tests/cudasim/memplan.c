/* memplan: the GPU memory the CUDA engine allocates to train a preset
 * model at micro-batch B and context T, counted by its own allocator
 * (gcuda_model_peak_bytes) after planning a training step and the
 * optimizer.  Run on the emulator with GSIM_LAZY=1 it needs neither a GPU
 * nor the memory: it answers "does d12 at B=16, T=1024 fit in 24 GB"
 * from the engine's code rather than arithmetic.  The CUDA context and
 * cuBLASLt's own buffers (a few hundred MiB on a GPU) are not included.
 * Usage: memplan MODEL B T [recompute] */
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
	int B, T, recompute;
	size_t weights;
	const char *att = getenv("GPT_CUDA_ATTENTION");

	err_init(argv[0]);
	if (argc != 4 && !(argc == 5 && strcmp(argv[4], "recompute") == 0))
		die_usage("usage: memplan MODEL B T [recompute]");
	if (gpt_config_preset(argv[1], &c) != 0)
		die_usage("unknown model: '%s'", argv[1]);
	B = atoi(argv[2]);
	T = atoi(argv[3]);
	recompute = argc == 5;
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
	gcuda_model_free(g);
	adamw_free(&opt);
	gpt_model_free(&m);
	return 0;
}
