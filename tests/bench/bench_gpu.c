/* bench_gpu: the C side of bench-gpu.sh.  "bench-gpu probe" exits 0 when a
 * usable GPU is present (and names it); "bench-gpu MODEL B T STEPS
 * [recompute]" trains MODEL (a preset, d12 ..., or LAYERS/HEADS/WIDTH/VOCAB: model_spec.h) at micro-batch B and
 * context T on random tokens with AdamW on the GPU and prints one line:
 * tokens/s, step time, MFU against the card's dense bf16 peak (or
 * $PEAK_TFLOPS), and peak GPU memory held by the engine (attention as
 * GPT_CUDA_ATTENTION says); exits 1 when the loss is not finite.  A step
 * is the library's (train.h's train_step on the CUDA engine).  FLOPs
 * per token are 6 N + 12 L C T (N parameters, the PaLM / nanoGPT
 * estimate), the same formula bench_gpu_torch.py uses.
 *
 * "bench-gpu phases MODEL B T STEPS [TSV]" times the phases of a step
 * (gcuda_phases_on: embedding, each sublayer, attention, head, loss,
 * optimizer; the same step make gpu-model counts: zero grad, forward and
 * backward of one micro-batch, gradient norm, AdamW) with CUDA events,
 * summed over the layers and averaged over STEPS, and prints each beside make gpu-model's
 * prediction for the same attention path and B from TSV (its -o output,
 * e.g. cuda/gpu-model.tsv) where it has one. */
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
#include "model_spec.h"

#define MAX_MARKS 4096
#define MAX_NAMES 64

/* make gpu-model's predicted ms for (att, B, T, phase), or -1. */
static double predicted(const char *tsv, const char *att, int B, int T, const char *phase)
{
	FILE *f = tsv ? fopen(tsv, "r") : NULL;
	char line[256], a[64], ph[128];
	int b, t;
	double ms, r = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%63[^\t]\t%d\t%d\t%127[^\t]\t%*d\t%*f\t%*f\t%*f\t%lf", a, &b, &t,
		           ph, &ms) == 5 && t == T &&
		    strcmp(a, att) == 0 && b == B && strcmp(ph, phase) == 0)
			r = ms;
	fclose(f);
	return r;
}

/* bench-gpu phases MODEL B T STEPS [TSV] */
static int phases(int argc, char **argv)
{
	struct gpt_config c;
	struct gpt_model m;
	struct adamw opt;
	struct adamw_config ac;
	struct gcuda_model *g;
	struct gpt_rng r;
	static const char *marks[MAX_MARKS];
	static float ms[MAX_MARKS];
	const char *names[MAX_NAMES], *tsv = argc == 7 ? argv[6] : NULL;
	const char *att = gcuda_attention_flash() ? "flash" : "batched";
	double sum[MAX_NAMES] = {0}, total = 0, ptotal = 0;
	int calls[MAX_NAMES] = {0}, nn = 0, B, T, steps;
	uint32_t *in, *tg;

	if (argc != 6 && argc != 7)
		die_usage("usage: bench-gpu phases MODEL B T STEPS [TSV]");
	if (model_spec(argv[2], &c) != 0)
		die_usage("unknown model: '%s'", argv[2]);
	B = (int)cli_u64("B", argv[3], 1, 1 << 20);
	T = (int)cli_u64("T", argv[4], 1, (uint64_t)c.n_ctx);
	steps = (int)cli_u64("STEPS", argv[5], 1, 1 << 20);
	if (!gcuda_available())
		die("no usable gpu: '%s'", gcuda_why_not());
	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, 1);
	adamw_config_default(&ac);
	gpt_model_adamw_init(&m, &opt, &ac);
	g = gcuda_model_init(&c);
	gcuda_model_upload(g, &m);
	gcuda_model_plan(g, B, T, 1, 0);
	gcuda_adamw_init(g, &opt);
	in = xcalloc((size_t)B * T, sizeof *in);
	tg = xcalloc((size_t)B * T, sizeof *tg);
	gpt_rng_seed(&r, 7);
	for (int i = 0; i < B * T; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
		tg[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
	}
	for (int s = 0; s < 3 + steps; s++) { /* 3 untimed: modules, cuBLASLt's choices */
		if (s == 3)
			gcuda_phases_on(g, 1);
		gcuda_model_zero_grad(g);
		gcuda_model_forward_backward(g, in, tg, B, T, 1.0f);
		gcuda_model_grad_norm(g); /* as train_step */
		gcuda_adamw_step(g, 3e-4f, 1.0f);
		if (s < 3)
			continue;
		int n = gcuda_phases_take(g, MAX_MARKS, marks, ms);
		for (int i = 0; i < n; i++) {
			int k;
			for (k = 0; k < nn && strcmp(names[k], marks[i]) != 0; k++)
				;
			if (k == nn) {
				if (nn == MAX_NAMES)
					die("over %d phase names", MAX_NAMES);
				names[nn++] = marks[i];
			}
			sum[k] += ms[i];
			calls[k]++;
		}
	}
	printf("phases of one step, %s B=%d T=%d, %s attention, mean of %d steps (CUDA events)\n",
	       argv[2], B, T, att, steps);
	printf("  %-20s %6s %10s %10s %8s\n", "phase", "marks", "measured", "predicted", "ratio");
	for (int k = 0; k < nn; k++) {
		double me = sum[k] / steps, pr = predicted(tsv, att, B, T, names[k]);
		total += me;
		if (pr >= 0)
			ptotal += pr;
		printf("  %-20s %6d %8.3f ms", names[k], calls[k] / steps, me);
		if (pr >= 0)
			printf(" %7.3f ms %7.2fx\n", pr, me / pr);
		else
			printf(" %10s %8s\n", "-", "-");
	}
	printf("  %-20s %6s %8.3f ms", "step", "", total);
	if (ptotal > 0)
		printf(" %7.3f ms %7.2fx\n", ptotal, total / ptotal);
	else
		printf("   (no prediction: make gpu-model -o TSV)\n");
	printf("phases: %.0f tok/s measured, %.0f predicted\n", B * T / (total / 1e3),
	       ptotal > 0 ? B * T / (ptotal / 1e3) : 0.0);
	gcuda_model_free(g);
	adamw_free(&opt);
	gpt_model_free(&m);
	free(in);
	free(tg);
	return 0;
}

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
	const char *pk = getenv("PEAK_TFLOPS");

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
	if (argc >= 2 && strcmp(argv[1], "phases") == 0)
		return phases(argc, argv);
	if (argc != 5 && !(argc == 6 && strcmp(argv[5], "recompute") == 0))
		die_usage("usage: bench-gpu probe | bench-gpu MODEL B T STEPS [recompute] | "
		          "bench-gpu phases MODEL B T STEPS [TSV]");
	if (model_spec(argv[1], &c) != 0)
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
	       gcuda_attention_flash() ? "flash attention" : "batched-product attention",
	       recompute ? ", recompute" : "");
	engine_close(e);
	free(in);
	free(tg);
	return 0;
}
