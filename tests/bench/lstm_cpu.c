/* lstm_cpu: the C side of bench-lstm.sh.  "lstm_cpu V E H L T B STEPS"
 * trains a seeded char-rnn LSTM on the CPU engine with Adam (AdamW, decay
 * 0) on random byte windows, the state carried from window to window as
 * truncated BPTT has it, and prints tokens/s (wall) and tokens per
 * CPU-second (user + system time of every thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine.h"
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

static double cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		die("getrusage failed");
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static int arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 1 << 24)
		die_usage("bad number: '%s'", s);
	return (int)v;
}

int main(int argc, char **argv)
{
	struct gpt_config c;
	struct gpt_model m;
	struct engine *e;
	struct adamw_config ac;
	struct gpt_rng r;
	uint32_t *in, *tg;
	int V, E, H, L, T, B, steps;
	size_t n;
	double t0 = 0, cpu0 = 0, loss = 0;

	err_init(argv[0]);
	if (argc != 8)
		die_usage("usage: lstm_cpu V E H L T B STEPS");
	V = arg(argv[1]);
	E = arg(argv[2]);
	H = arg(argv[3]);
	L = arg(argv[4]);
	T = arg(argv[5]);
	B = arg(argv[6]);
	steps = arg(argv[7]);
	gpt_config_lstm(&c, V, E, H, L, T);
	gpt_model_init(&m, &c);
	gpt_model_init_weights(&m, 1);
	e = engine_open("cpu", &m);
	engine_plan(e, B, T, 1, 0);
	/* Adam as char-rnn and torch.optim.Adam's defaults have it */
	adamw_config_default(&ac);
	ac.beta1 = 0.9;
	ac.beta2 = 0.999;
	ac.eps = 1e-8;
	ac.weight_decay = 0.0;
	engine_optim(e, &ac);
	/* a fresh window of random bytes for every step, drawn beforehand */
	n = (size_t)B * T;
	in = xcalloc(n * (size_t)(steps + 1), sizeof *in);
	tg = xcalloc(n * (size_t)(steps + 1), sizeof *tg);
	gpt_rng_seed(&r, 7);
	for (size_t i = 0; i < n * (size_t)(steps + 1); i++) {
		in[i] = (uint32_t)(gpt_rng_next(&r) % 256);
		tg[i] = (uint32_t)(gpt_rng_next(&r) % 256);
	}
	/* the first step warms caches and page tables; it is not timed.  The
	 * state is never reset: each window continues the last. */
	for (int s = 0; s <= steps; s++) {
		if (s == 1) {
			t0 = now();
			cpu0 = cpu_seconds();
		}
		loss = train_step(e, in + n * (size_t)s, tg + n * (size_t)s, 1, B, T, 2e-3f, 5.0f,
		                  NULL);
	}
	t0 = now() - t0;
	cpu0 = cpu_seconds() - cpu0;
	fprintf(stderr, "lstm_cpu: last loss %.4f\n", loss);
	printf("tokens_per_s %.1f\ncpu_tokens_per_s %.1f\n", (double)n * steps / t0,
	       (double)n * steps / cpu0);
	engine_close(e);
	free(in);
	free(tg);
	if (fflush(stdout) != 0 || ferror(stdout))
		die("cannot write stdout");
	return 0;
}
