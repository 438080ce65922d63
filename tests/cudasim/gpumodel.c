/* gpumodel: make gpu-model, a roofline of one training step of the CUDA
 * engine from counted work.  On the emulator (GSIM_COUNT=1, count.h) it
 * runs one step as train_step makes it (zero grad, forward and backward
 * of one micro-batch, the gradient norm read back, AdamW) at three
 * reduced shapes, B x T = 1x256, 2x256 and 1x512, with one transformer
 * block, and gets each launch's bytes and FLOPs.  Every launch's count is fitted to a + b BT + c B T^2 (its
 * dependence on batch and context: weights, activations, attention
 * matrices) and evaluated at the target shape; the block's launches count
 * n_layer times, and the parameter-wide passes (zero grad, gradient norm,
 * AdamW) scale with the parameter count.  Each launch then costs
 *     max(bytes / bandwidth, FLOPs / tensor rate) + launch gap
 * with the ceilings and efficiencies below, and the launches add up per
 * phase (the engine's own phase marks, gcuda_phases_on).
 *
 * Usage: gpumodel [-o TSV] [-k] [-t T] [MODEL [B...]]
 *   MODEL  preset or L/H/C/V (model_spec.h; default d12); B  micro-batches
 *          at T=1024 (default 16 32)
 *   -t     the target context (default 1024)
 *   -o     also write each phase as TSV (attention, B, T, phase, launches,
 *          bytes read, bytes written, FLOPs, predicted ms), which
 *          bench-gpu phases prints beside its measurements
 *   -k     list the 12 costliest launches of each table
 * GPT_CUDA_ATTENTION picks nothing here: both paths are modelled. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "count.h"
#include "err.h"
#include "gpt_cuda.h"
#include "io.h"
#include "model.h"
#include "optim.h"
#include "../bench/model_spec.h"

/* The ceilings, measured on an H200 in this workplace (issue 15). */
#define BW_COPY 4.3e12     /* bytes/s, device-to-device copy */
#define TC_DENSE 790e12    /* FLOP/s, cuBLASLt dense bf16 GEMM, random data */
#define PEAK_SPEC 989e12   /* FLOP/s, H100/H200 dense bf16 spec: the MFU base */
/* The assumptions. */
#define EFF_KERNEL 0.75    /* a hand-written memory-bound kernel: of BW_COPY */
#define EFF_GEMM 0.80      /* cuBLASLt on d12's shapes: of TC_DENSE */
#define EFF_MMA 0.20       /* the project's WMMA (mma.sync) kernels: of TC_DENSE */
#define LAUNCH_S 2e-6      /* GPU time between back-to-back launches */
#define H2D_BW 25e9        /* pinned host to device */
#define SYNC_S 20e-6       /* a copy to the host and the host's wait */

#define MAX_PH 4096

static const int SB[3] = {1, 2, 1}, ST[3] = {256, 256, 512};
static int T_TARGET = 1024; /* -t */

struct rec {
	struct gsim_rec r;
	const char *phase;
};

struct run {
	struct rec *r;
	size_t n;
	size_t n_params;
};

static const char *const layer_phases[] = {
	"ln1", "qkv", "attention", "proj+residual", "ln2", "fc", "gelu", "fc+gelu",
	"mlp proj+residual",
	"recompute", "mlp proj bwd", "mlp proj+gelu bwd", "gelu bwd", "fc bwd", "ln2 bwd", "proj bwd",
	"attention bwd", "qkv bwd", "ln1 bwd", NULL};
static const char *const param_phases[] = {"zero grad", "grad norm", "adamw", NULL};

static int in_list(const char *s, const char *const *l)
{
	for (; *l; l++)
		if (strcmp(s, *l) == 0)
			return 1;
	return 0;
}

/* One counted step of c at B x T. */
static struct run count_step(const struct gpt_config *c, int B, int T)
{
	struct gpt_model m;
	struct adamw opt;
	struct adamw_config ac;
	struct gcuda_model *g;
	struct gpt_rng rng;
	size_t BT = (size_t)B * (size_t)T, n;
	uint32_t *in = xcalloc(BT, sizeof *in), *tg = xcalloc(BT, sizeof *tg);
	static const char *names[MAX_PH];
	static float ms[MAX_PH];
	const struct gsim_rec *gr;
	struct run out;
	int nph, ph = -1;

	gpt_model_init(&m, c);
	gpt_model_init_weights(&m, 1);
	adamw_config_default(&ac);
	gpt_model_adamw_init(&m, &opt, &ac);
	g = gcuda_model_init(c);
	gcuda_model_upload(g, &m);
	gcuda_model_plan(g, B, T, 1, 0);
	gcuda_adamw_init(g, &opt);
	gpt_rng_seed(&rng, 11);
	for (size_t i = 0; i < BT; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&rng) % (uint64_t)c->vocab_size);
		tg[i] = (uint32_t)(gpt_rng_next(&rng) % (uint64_t)c->vocab_size);
	}
	gcuda_phases_on(g, 1);
	gsim_count(1);
	gcuda_model_zero_grad(g);
	gcuda_model_forward_backward(g, in, tg, B, T, 1.0f);
	gcuda_model_grad_norm(g); /* as train_step: the norm first, then the step */
	gcuda_adamw_step(g, 3e-4f, 1.0f);
	nph = gcuda_phases_take(g, MAX_PH, names, ms);
	gsim_count(0);
	n = gsim_count_take(&gr);
	out.r = xcalloc(n, sizeof *out.r);
	out.n = 0;
	for (size_t i = 0; i < n; i++) {
		if (gr[i].kind == GSIM_EVENT) {
			ph++;
			continue;
		}
		if (ph < 0 || ph >= nph)
			die("a launch outside the phases: '%s'", gr[i].name);
		out.r[out.n].r = gr[i];
		out.r[out.n].phase = names[ph];
		out.n++;
	}
	if (ph != nph)
		die("%d phase marks counted, %d phases taken", ph, nph);
	out.n_params = m.n_params;
	gcuda_model_free(g);
	adamw_free(&opt);
	gpt_model_free(&m);
	free(in);
	free(tg);
	return out;
}

struct pred {
	double rd, wr, flops, s; /* at the target, all layers */
	int launches;
	const char *bound;
};

/* a + b BT + c B T^2 through the three runs' values, at B x T. */
static double fit(const double *v, int B, int T)
{
	double u1 = (double)SB[0] * ST[0], u2 = (double)SB[1] * ST[1];
	double w1 = u1 * ST[0], w2 = u2 * ST[1], w3 = (double)SB[2] * ST[2] * ST[2];
	double c = (v[2] - v[1]) / (w3 - w2); /* runs 2 and 3 have the same BT */
	double b = (v[1] - v[0] - c * (w2 - w1)) / (u2 - u1);
	double a = v[0] - b * u1 - c * w1;
	double r = a + b * B * T + c * (double)B * T * T;
	return r > 0 ? r : 0;
}

static struct pred predict(const struct run *runs, size_t i, const struct gpt_config *full,
                           size_t full_params, int B, int T)
{
	const struct rec *x = &runs[0].r[i];
	double rd[3], wr[3], fl[3], mult = 1, bytes, tmem, tflop;
	struct pred p;

	for (int s = 0; s < 3; s++) {
		rd[s] = runs[s].r[i].r.rd;
		wr[s] = runs[s].r[i].r.wr;
		fl[s] = runs[s].r[i].r.flops;
	}
	p.rd = fit(rd, B, T);
	p.wr = fit(wr, B, T);
	p.flops = fit(fl, B, T);
	if (in_list(x->phase, param_phases)) {
		p.rd *= (double)full_params / (double)runs[0].n_params;
		p.wr *= (double)full_params / (double)runs[0].n_params;
	}
	if (in_list(x->phase, layer_phases))
		mult = full->n_layer;
	bytes = p.rd + p.wr;
	switch (x->r.kind) {
	case GSIM_GEMM:
		tmem = bytes / BW_COPY;
		tflop = p.flops / (TC_DENSE * EFF_GEMM);
		p.bound = tflop > tmem ? "gemm" : "memory";
		p.s = (tflop > tmem ? tflop : tmem) + LAUNCH_S;
		break;
	case GSIM_KERNEL:
		tmem = bytes / (BW_COPY * EFF_KERNEL);
		tflop = p.flops / (TC_DENSE * EFF_MMA);
		p.bound = tflop > tmem ? "mma" : "memory";
		p.s = (tflop > tmem ? tflop : tmem) + LAUNCH_S;
		break;
	case GSIM_MEMSET:
	case GSIM_COPY:
		p.bound = "memory";
		p.s = bytes / BW_COPY + LAUNCH_S;
		break;
	case GSIM_H2D:
		p.bound = "pcie";
		p.s = bytes / H2D_BW + SYNC_S / 2;
		break;
	default: /* GSIM_D2H */
		p.bound = "sync";
		p.s = SYNC_S;
		break;
	}
	p.rd *= mult;
	p.wr *= mult;
	p.flops *= mult;
	p.s *= mult;
	p.launches = (int)mult;
	return p;
}

struct phase_sum {
	const char *name;
	double rd, wr, flops, s;
	int launches;
	double by[3]; /* seconds memory / tensor / other bound */
};

static int by_time(const void *a, const void *b)
{
	double x = ((const double *)a)[0], y = ((const double *)b)[0];
	return x < y ? 1 : x > y ? -1 : 0;
}

static void table(FILE *tsv, const char *att, const struct run *runs, const struct gpt_config *full,
                  size_t full_params, int B, int list)
{
	struct phase_sum ph[64];
	int nph = 0, launches = 0;
	double total = 0, bytes = 0, flops = 0, model_flops, tps;
	double(*cost)[2] = xcalloc(runs[0].n, sizeof *cost);

	for (size_t i = 0; i < runs[0].n; i++) {
		struct pred p = predict(runs, i, full, full_params, B, T_TARGET);
		const char *name = runs[0].r[i].phase;
		int k;
		for (k = 0; k < nph && strcmp(ph[k].name, name) != 0; k++)
			;
		if (k == nph) {
			if (nph == 64)
				die("over 64 phases");
			memset(&ph[nph], 0, sizeof ph[nph]);
			ph[nph++].name = name;
		}
		ph[k].rd += p.rd;
		ph[k].wr += p.wr;
		ph[k].flops += p.flops;
		ph[k].s += p.s;
		ph[k].launches += p.launches;
		ph[k].by[strcmp(p.bound, "memory") == 0 ? 0 : strcmp(p.bound, "gemm") == 0 ||
		                                                     strcmp(p.bound, "mma") == 0
		                                                 ? 1
		                                                 : 2] += p.s;
		total += p.s;
		bytes += p.rd + p.wr;
		flops += p.flops;
		launches += p.launches;
		cost[i][0] = p.s;
		cost[i][1] = (double)i;
	}
	model_flops = (6.0 * (double)full_params + 12.0 * full->n_layer * full->n_embd * T_TARGET) *
	              (double)B * T_TARGET;
	tps = (double)B * T_TARGET / total;
	printf("\n%s attention, B=%d T=%d (%d tokens a step)\n", att, B, T_TARGET, B * T_TARGET);
	printf("  %-20s %8s %9s %9s %8s %6s %s\n", "phase", "launches", "GB", "TFLOP", "ms", "share",
	       "bound by (memory/tensor/other ms)");
	for (int k = 0; k < nph; k++) {
		printf("  %-20s %8d %9.3f %9.3f %8.3f %5.1f%% %.2f/%.2f/%.2f\n", ph[k].name,
		       ph[k].launches, (ph[k].rd + ph[k].wr) / 1e9, ph[k].flops / 1e12, ph[k].s * 1e3,
		       100 * ph[k].s / total, ph[k].by[0] * 1e3, ph[k].by[1] * 1e3, ph[k].by[2] * 1e3);
		if (tsv)
			fprintf(tsv, "%s\t%d\t%d\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.4f\n", att, B, T_TARGET,
			        ph[k].name,
			        ph[k].launches, ph[k].rd, ph[k].wr, ph[k].flops, ph[k].s * 1e3);
	}
	printf("  %-20s %8d %9.3f %9.3f %8.3f\n", "step", launches, bytes / 1e9, flops / 1e12,
	       total * 1e3);
	printf("  predicted: %.1f ms a step, %.0fk tokens/s, MFU %.1f%% (6N + 12 L C T = %.2f "
	       "TFLOP a step, of %.0f TFLOP/s)\n",
	       total * 1e3, tps / 1e3, 100 * model_flops / total / PEAK_SPEC, model_flops / 1e12,
	       PEAK_SPEC / 1e12);
	if (list) {
		qsort(cost, runs[0].n, sizeof *cost, by_time);
		printf("  costliest launches (ms, all layers):\n");
		for (size_t j = 0; j < 12 && j < runs[0].n; j++) {
			size_t i = (size_t)cost[j][1];
			printf("    %8.3f  %-16s %s\n", cost[j][0] * 1e3, runs[0].r[i].phase,
			       runs[0].r[i].r.name);
		}
	}
	free(cost);
}

int main(int argc, char **argv)
{
	struct gpt_config full, one;
	const char *model = "d12", *tsv_path = NULL;
	int Bs[8] = {16, 32}, nB = 0, list = 0, i = 1;
	size_t full_params;
	FILE *tsv = NULL;

	err_init(argv[0]);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			tsv_path = argv[++i];
		else if (strcmp(argv[i], "-k") == 0)
			list = 1;
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			T_TARGET = atoi(argv[++i]);
		else
			die_usage("usage: gpumodel [-o TSV] [-k] [-t T] [MODEL [B...]]");
	}
	if (i < argc)
		model = argv[i++];
	for (; i < argc && nB < 8; i++)
		Bs[nB++] = atoi(argv[i]) > 0 ? atoi(argv[i]) : (die_usage("bad batch: '%s'", argv[i]), 1);
	if (nB == 0)
		nB = 2;
	if (T_TARGET < 1 || T_TARGET > 1 << 20)
		die_usage("bad context for -t");
	if (model_spec(model, &full) != 0)
		die_usage("unknown model: '%s'", model);
	if (setenv("GSIM_COUNT", "1", 1) != 0)
		die_errno("setenv");
	if (!gcuda_available())
		die("no usable gpu: '%s'", gcuda_why_not());
	{
		struct gpt_layout L;
		gpt_layout_init(&L, &full);
		full_params = L.n_params;
		gpt_layout_free(&L);
	}
	one = full;
	one.n_layer = 1;
	if (tsv_path && !(tsv = fopen(tsv_path, "w")))
		die_errno("cannot write '%s'", tsv_path);
	if (tsv)
		fprintf(tsv, "attention\tB\tT\tphase\tlaunches\tread\twritten\tflops\tms\n");
	printf("gpu-model: %s (%zu parameters, padding included), one training step, predicted "
	       "for an H200\n",
	       model, full_params);
	printf("counted on the emulator at B x T = 1x256, 2x256, 1x512 with one block, fitted to "
	       "a + b BT + c B T^2 per launch\n");
	printf("ceilings (measured on an H200): %.1f TB/s device copy, %.0f TFLOP/s dense bf16 "
	       "GEMM\n",
	       BW_COPY / 1e12, TC_DENSE / 1e12);
	printf("assumed: hand-written memory-bound kernels at %.0f%% of the copy rate; cuBLASLt "
	       "at %.0f%% of the GEMM ceiling; the project's WMMA kernels at %.0f%% of it; %.0f us "
	       "a launch; scalar arithmetic free; each launch's pages counted once (cache-resident "
	       "reuse)\n",
	       100 * EFF_KERNEL, 100 * EFF_GEMM, 100 * EFF_MMA, LAUNCH_S * 1e6);
	for (int a = 0; a < 2; a++) {
		const char *att = a ? "flash" : "batched";
		struct run runs[3];
		if (setenv("GPT_CUDA_ATTENTION", a ? "flash" : "matmul", 1) != 0)
			die_errno("setenv");
		for (int s = 0; s < 3; s++) {
			runs[s] = count_step(&one, SB[s], ST[s]);
			if (runs[s].n != runs[0].n)
				die("%s: %zu launches at %dx%d, %zu at %dx%d: the sequence depends on the "
				    "shape",
				    att, runs[s].n, SB[s], ST[s], runs[0].n, SB[0], ST[0]);
			for (size_t k = 0; k < runs[0].n; k++)
				if (strcmp(runs[s].r[k].r.name, runs[0].r[k].r.name) != 0 &&
				    runs[s].r[k].r.kind != GSIM_GEMM)
					die("%s: launch %zu is '%s' at %dx%d, '%s' at %dx%d", att, k,
					    runs[s].r[k].r.name, SB[s], ST[s], runs[0].r[k].r.name, SB[0],
					    ST[0]);
		}
		for (int b = 0; b < nB; b++)
			table(tsv, att, runs, &full, full_params, Bs[b], list);
		for (int s = 0; s < 3; s++)
			free(runs[s].r);
		fflush(stdout);
	}
	if (tsv && fclose(tsv) != 0)
		die_errno("cannot write '%s'", tsv_path);
	return 0;
}
