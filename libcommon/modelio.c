/* modelio: a GPT-2 model to and from checkpoint files (modelio.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "modelio.h"

void modelio_config_to_ckpt(const struct gpt_config *c, struct ckpt_model *m)
{
	memset(m, 0, sizeof *m);
	m->layers = (uint32_t)c->n_layer;
	m->heads = (uint32_t)c->n_head;
	m->width = (uint32_t)c->n_embd;
	m->context = (uint32_t)c->n_ctx;
	m->vocab = (uint32_t)c->vocab_size;
	m->padded_vocab = (uint32_t)c->padded_vocab;
	m->tied = (uint32_t)c->tied;
	m->bias = (uint32_t)c->bias;
	m->qkv_bias = (uint32_t)c->qkv_bias;
	m->classes = (uint32_t)c->n_classes;
	m->arch = (uint32_t)c->arch;
	m->input = (uint32_t)c->n_input;
}

const char *modelio_config_from_ckpt(const struct ckpt_model *m, struct gpt_config *c)
{
	memset(c, 0, sizeof *c);
	c->n_layer = (int)m->layers;
	c->n_head = (int)m->heads;
	c->n_embd = (int)m->width;
	c->n_ctx = (int)m->context;
	c->vocab_size = (int)m->vocab;
	c->padded_vocab = (int)m->padded_vocab;
	c->tied = (int)m->tied;
	c->bias = (int)m->bias;
	c->qkv_bias = (int)m->qkv_bias;
	c->n_classes = (int)m->classes;
	c->arch = (int)m->arch;
	c->n_input = (int)m->input;
	/* a field past INT_MAX turned negative above and fails here */
	return gpt_config_check(c);
}

struct ckpt_tensor *modelio_tensors(const struct gpt_model *m)
{
	struct ckpt_tensor *out = xcalloc((size_t)m->n_tensors, sizeof *out);

	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		struct ckpt_tensor *e = &out[i];

		snprintf(e->name, sizeof e->name, "%s", t->name);
		e->ndim = (uint32_t)t->ndim;
		e->shape[0] = (uint64_t)t->shape[0];
		if (t->ndim == 2)
			e->shape[1] = (uint64_t)t->shape[1];
		e->offset = t->offset;
		e->count = t->size;
	}
	return out;
}

void modelio_match(struct ckpt *c, const struct gpt_model *m)
{
	struct ckpt_tensor *want;

	if (c->n_params != m->n_params)
		die("checkpoint holds %llu weights where the model has %zu: '%s'",
		    (unsigned long long)c->n_params, m->n_params, c->path);
	want = modelio_tensors(m);
	if (ckpt_match_tensors(c, want, (uint32_t)m->n_tensors) < 0)
		die("checkpoint does not fit the model: %s", c->err);
	free(want);
}

void modelio_load(const char *path, struct gpt_model *m, char *tokenizer)
{
	modelio_load_labels(path, m, tokenizer, NULL);
}

void modelio_need_lm(const struct gpt_model *m, const char *path)
{
	if (m->cfg.n_classes)
		die("a classifier of %d classes, not a language model (gpt-classify runs it): '%s'",
		    m->cfg.n_classes, path);
}

void modelio_load_labels(const char *path, struct gpt_model *m, char *tokenizer, char **labels)
{
	struct ckpt c;
	struct gpt_config cfg;
	const char *why;

	memset(&c, 0, sizeof c);
	if (ckpt_open(&c, path) < 0)
		die("%s", c.err);
	if ((why = modelio_config_from_ckpt(&c.model, &cfg)) != NULL) {
		struct gpt_config fin = cfg;

		gpt_config_finish(&fin);
		if (gpt_config_check(&fin) == NULL)
			die("checkpoint pads the vocabulary to %u, not %d: '%s'", c.model.padded_vocab,
			    fin.padded_vocab, path);
		die("bad model configuration in checkpoint: %s: '%s'", why, path);
	}
	gpt_model_init(m, &cfg);
	modelio_match(&c, m);
	if (ckpt_read_params(&c, m->params) < 0)
		die("%s", c.err);
	if (tokenizer)
		snprintf(tokenizer, CKPT_NAME_MAX, "%s", c.tokenizer);
	if (labels)
		*labels = c.labels ? xstrdup(c.labels) : NULL;
	ckpt_close(&c);
}

void modelio_save(const struct gpt_model *m, const char *tokenizer, const char *path)
{
	modelio_save_labels(m, tokenizer, NULL, path);
}

void modelio_save_labels(const struct gpt_model *m, const char *tokenizer, const char *labels,
                         const char *path)
{
	struct ckpt c;

	memset(&c, 0, sizeof c);
	modelio_config_to_ckpt(&m->cfg, &c.model);
	snprintf(c.tokenizer, sizeof c.tokenizer, "%s", tokenizer ? tokenizer : "gpt2");
	c.n_params = m->n_params;
	c.n_tensors = (uint32_t)m->n_tensors;
	c.tensors = modelio_tensors(m);
	c.params = m->params;
	if (m->cfg.n_classes) {
		if (!labels)
			die("internal error: a classifier saved without its labels");
		c.labels = (char *)labels;
		c.labels_len = strlen(labels);
	}
	c.sched.lr = 0;
	c.sched.beta1 = 0.9;
	c.sched.beta2 = 0.95;
	c.sched.eps = 1e-8;
	ckpt_write(&c, path);
	free(c.tensors);
}
