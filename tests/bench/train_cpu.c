/* train_cpu: the C side of bench-train-cpu.sh.  "train_cpu sgemm" prints
 * the machine's sgemm GFLOP/s (the yardstick); "train_cpu L H C T B V
 * STEPS" trains a seeded model on random tokens with AdamW and prints
 * tokens/s and the model GFLOP/s of a step (forward + backward + update). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "model.h"
#include "optim.h"
#include "train.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 1 << 24)
		die_usage("bad number: '%s'", s);
	return (int)v;
}

/* Best of a few runs of an n^3 product, threaded as the model threads its
 * products (see gemm() in model.c). */
static void bench_sgemm(int n)
{
	float *a = xcalloc((size_t)n * n, 4), *b = xcalloc((size_t)n * n, 4),
	      *c = xcalloc((size_t)n * n, 4);
	double best = 0;
	openblas_set_num_threads(1);
	for (size_t i = 0; i < (size_t)n * n; i++) {
		a[i] = (float)(i % 7) * 0.1f;
		b[i] = (float)(i % 5) * 0.1f;
	}
	for (int r = 0; r < 8; r++) { /* the first is warm-up */
		double t = now();
		/* as the model runs it: single-threaded OpenBLAS, the columns
		 * split among the OpenMP threads */
#pragma omp parallel
		{
			int k = omp_get_thread_num(), nt = omp_get_num_threads();
			int lo = n * k / nt, hi = n * (k + 1) / nt;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, hi - lo, n, 1.0f, a,
			            n, b + (size_t)lo * n, n, 0.0f, c + lo, n);
		}
		t = now() - t;
		if (r && 2.0 * n * n * (double)n / t > best)
			best = 2.0 * n * n * (double)n / t;
	}
	printf("sgemm_gflops %.1f\n", best / 1e9);
	free(a);
	free(b);
	free(c);
}

int main(int argc, char **argv)
{
	struct gpt_config c;
	struct gpt_model m;
	struct engine *e;
	struct adamw_config ac;
	struct gpt_rng r;
	uint32_t *in, *tg;
	int B, T, steps;
	double t0 = 0, flops;

	err_init(argv[0]);
	if (argc == 3 && strcmp(argv[1], "sgemm") == 0) {
		bench_sgemm(arg(argv[2]));
		return 0;
	}
	if (argc != 8)
		die_usage("usage: train_cpu L H C T B V STEPS | train_cpu sgemm N");
	memset(&c, 0, sizeof c);
	c.n_layer = arg(argv[1]);
	c.n_head = arg(argv[2]);
	c.n_embd = arg(argv[3]);
	c.n_ctx = T = arg(argv[4]);
	B = arg(argv[5]);
	c.vocab_size = arg(argv[6]);
	steps = arg(argv[7]);
	c.tied = c.bias = c.qkv_bias = 1;
	gpt_config_finish(&c);
	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, 1);
	e = engine_open("cpu", &m);
	engine_plan(e, B, T, 1, 0);
	adamw_config_default(&ac);
	engine_optim(e, &ac);
	in = xcalloc((size_t)B * T, sizeof *in);
	tg = xcalloc((size_t)B * T, sizeof *tg);
	gpt_rng_seed(&r, 7);
	for (int i = 0; i < B * T; i++) {
		in[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
		tg[i] = (uint32_t)(gpt_rng_next(&r) % (uint64_t)c.vocab_size);
	}
	/* the first step warms caches and page tables; it is not timed */
	for (int s = 0; s <= steps; s++) {
		if (s == 1)
			t0 = now();
		double loss = train_step(e, in, tg, 1, B, T, 3e-4f, 1.0f, NULL);
		if (s == steps)
			fprintf(stderr, "train_cpu: last loss %.4f\n", loss);
	}
	t0 = now() - t0;
	/* matrix products (3x the forward's) plus causal attention */
	{
		double C = c.n_embd, per_tok = 2.0 * c.n_layer * 12 * C * C + 2.0 * C * c.vocab_size +
		                               c.n_layer * 2.0 * C * (T + 1);
		flops = 3.0 * per_tok * B * T * steps;
	}
	printf("tokens_per_s %.1f\nmodel_gflops %.2f\n", (double)B * T * steps / t0,
	       flops / t0 / 1e9);
	engine_close(e);
	free(in);
	free(tg);
	return 0;
}
