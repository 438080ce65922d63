/* bench_gpu: the C side of bench-gpu.sh.  "bench-gpu probe" exits 0 when a
 * usable GPU is present (and names it); "bench-gpu MODEL B T STEPS
 * [recompute]" trains the preset MODEL (d12 ...) at micro-batch B and
 * context T on random tokens with AdamW on the GPU and prints one line:
 * tokens/s, step time, MFU against the card's dense bf16 peak (or
 * $PEAK_TFLOPS), and peak GPU memory held by the engine (attention as
 * GPT_CUDA_ATTENTION says); exits 1 when the loss is not finite.  A step
 * is the library's (train.h's train_step on the CUDA engine).  FLOPs
 * per token are 6 N + 12 L C T (N parameters, the PaLM / nanoGPT
 * estimate), the same formula bench_gpu_torch.py uses. */
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
#include "progress.h"
#include "train.h"

/* Wait for every step queued: the norm is read back once they are done. */
static void wait_steps(struct engine *e)
{
	(void)engine_grad_norm(e);
}

int main(int argc, char **argv)
{
	struct gpt_config c;
	struct gpt_model m;
	struct engine *e;
	struct gcuda_device d;
	struct adamw_config ac;
	struct gpt_rng r;
	uint32_t *in, *tg;
	int B, T, steps, warm = 3, recompute;
	double t0, dt, flops_tok, peak;
	float loss = 0;
	const char *pk = getenv("PEAK_TFLOPS"), *att = getenv("GPT_CUDA_ATTENTION");

	err_init(argv[0]);
	if (argc == 2 && strcmp(argv[1], "probe") == 0) {
		if (!gcuda_available()) {
			fprintf(stderr, "bench-gpu: no usable gpu: %s\n", gcuda_why_not());
			return 1;
		}
		gcuda_device_info(&d);
		printf("%s (sm_%d%d, %d SMs, %.1f GiB, bf16 dense peak %.0f TFLOP/s%s)\n", d.name,
		       d.sm_major, d.sm_minor, d.multiprocessors, d.total_bytes / 1073741824.0,
		       pk ? atof(pk) : d.peak_bf16_tflops,
		       pk ? " from PEAK_TFLOPS" : d.peak_bf16_tflops > 0 ? "" : ": unknown card, set PEAK_TFLOPS");
		printf("peak_tflops %g\n", pk ? atof(pk) : d.peak_bf16_tflops);
		return 0;
	}
	if (argc != 5 && !(argc == 6 && strcmp(argv[5], "recompute") == 0))
		die_usage("usage: bench-gpu probe | bench-gpu MODEL B T STEPS [recompute]");
	if (gpt_config_preset(argv[1], &c) != 0)
		die_usage("unknown model: '%s'", argv[1]);
	B = (int)cli_u64("B", argv[2], 1, 1 << 20);
	T = (int)cli_u64("T", argv[3], 1, 1 << 20);
	steps = (int)cli_u64("STEPS", argv[4], 1, 1 << 20);
	recompute = argc == 6;
	if (T > c.n_ctx)
		die_usage("context beyond the model's: '%d'", T);
	if (!gcuda_available())
		die("no usable gpu: '%s'", gcuda_why_not());
	gcuda_device_info(&d);
	peak = pk ? atof(pk) : d.peak_bf16_tflops;

	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, 1);
	e = engine_open("cuda", &m);
	engine_plan(e, B, T, 1, recompute);
	adamw_config_default(&ac);
	engine_optim(e, &ac);
	in = xcalloc((size_t)B * T, sizeof *in);
	tg = xcalloc((size_t)B * T, sizeof *tg);
	gpt_rng_seed(&r, 7);
	for (int i = 0; i < B * T; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
		tg[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
	}
	/* a few untimed steps load modules and pick cuBLASLt algorithms */
	t0 = progress_now();
	for (int s = 0; s < warm + steps; s++) {
		if (s == warm) {
			wait_steps(e);
			t0 = progress_now();
		}
		loss = (float)train_step(e, in, tg, 1, B, T, 3e-4f, 1.0f, NULL);
	}
	wait_steps(e);
	dt = (progress_now() - t0) / steps;
	/* a broken engine must not pass for a fast one */
	if (!isfinite(loss))
		die("the loss is not finite after %d steps: '%g'", warm + steps, (double)loss);
	flops_tok = 6.0 * (double)gpt_config_count_params(&c) +
	            12.0 * c.n_layer * (double)c.n_embd * T;
	printf("cuda    %s B=%-3d T=%d  %9.0f tok/s  step %7.1f ms  MFU %5.1f%%  peak %6.2f GiB  "
	       "loss %.3f  (%s%s)\n",
	       argv[1], B, T, B * T / dt, dt * 1e3,
	       peak > 0 ? 100.0 * flops_tok * B * T / dt / (peak * 1e12) : 0.0,
	       engine_peak_bytes(e) / 1073741824.0, loss,
	       att && strcmp(att, "flash") == 0 ? "flash attention" : "batched-product attention",
	       recompute ? ", recompute" : "");
	engine_close(e);
	free(in);
	free(tg);
	return 0;
}
