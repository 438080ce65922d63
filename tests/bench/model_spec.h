/* model_spec.h: the MODEL argument of bench-gpu and gpumodel: a preset
 * name (model.h's gpt_config_preset: d12, 163m, ...) or a small shape
 * "LAYERS/HEADS/WIDTH/VOCAB" (tied, with biases, context 1024) for the
 * emulator, where a preset takes minutes.  0, or -1 when it is neither. */
#ifndef GPT_BENCH_MODEL_SPEC_H
#define GPT_BENCH_MODEL_SPEC_H

#include <stdio.h>
#include <string.h>

#include "model.h"

static inline int model_spec(const char *s, struct gpt_config *c)
{
	int l, h, w, v;
	char end;
	if (gpt_config_preset(s, c) == 0)
		return 0;
	if (sscanf(s, "%d/%d/%d/%d%c", &l, &h, &w, &v, &end) != 4)
		return -1;
	memset(c, 0, sizeof *c);
	c->n_layer = l;
	c->n_head = h;
	c->n_embd = w;
	c->n_ctx = 1024;
	c->vocab_size = v;
	c->tied = 1;
	c->bias = 1;
	c->qkv_bias = 1;
	gpt_config_finish(c);
	return gpt_config_check(c) ? -1 : 0;
}

#endif
