/* lstmweights: PyTorch's char-lstm state dict onto the LSTM's tensor table
 * and back (lstmweights.h).  The names and order are already PyTorch's;
 * what differs is the vocabulary padding of embedding and decoder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "io.h"
#include "lstmweights.h"
#include "safetensors.h"

/* An integer field of config.json in lo..hi; dflt when absent (or dies
 * when dflt < 0). */
static int field(const struct json *cfg, const char *key, int lo, int hi, int dflt,
                 const char *path)
{
	const struct json *v = json_get(cfg, key);

	if (!v) {
		if (dflt >= 0)
			return dflt;
		die("config has no '%s': '%s'", key, path);
	}
	if (v->type != JSON_NUM || v->num != floor(v->num))
		die("config value of '%s' is not an integer: '%s'", key, path);
	if (v->num < lo || v->num > hi)
		die(fabs(v->num) < 1e15 ? "config value of '%s' is %.0f, out of range (%d-%d): '%s'"
		                         : "config value of '%s' is %g, out of range (%d-%d): '%s'",
		    key, v->num, lo, hi, path);
	return (int)v->num;
}

/* Dies when the boolean option key of nn.LSTM is present and not want. */
static void need_bool(const struct json *cfg, const char *key, int want, const char *path)
{
	const struct json *v = json_get(cfg, key);

	if (v && (v->type != JSON_BOOL || v->boolean != want))
		die("unsupported: config '%s' must be %s for a char-lstm: '%s'", key,
		    want ? "true" : "false", path);
}

static int vocab_rows(const struct gpt_layout *L, int i)
{
	return i == L->emb || i == L->dec_w || i == L->dec_b;
}

static void shape_str(char *buf, size_t cap, int ndim, const uint64_t *shape)
{
	size_t k = 0;

	k += (size_t)snprintf(buf, cap, "[");
	for (int d = 0; d < ndim && k < cap; d++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%llu", d ? ", " : "",
		                      (unsigned long long)shape[d]);
	if (k < cap)
		snprintf(buf + k, cap - k, "]");
}

void lstmweights_import(const struct json *cfg, const char *cpath, const char *wpath,
                        int context, struct gpt_model *m)
{
	const struct json *v;
	struct gpt_config c;
	struct safetensors f;
	const char *why;
	int V, E, H, L, T;

	if (cfg->type != JSON_OBJ)
		die("config.json is not an object: '%s'", cpath);
	if (!(v = json_get(cfg, "model_type")) || v->type != JSON_STR ||
	    strcmp(v->str, "char-lstm") != 0)
		die("config's model_type is not \"char-lstm\": '%s'", cpath);
	V = field(cfg, "vocab_size", 1, 1 << 24, -1, cpath);
	E = field(cfg, "embedding_dim", 1, GPT_MAX_LSTM_INPUT, -1, cpath);
	H = field(cfg, "hidden_size", 1, 65536, -1, cpath);
	L = field(cfg, "num_layers", 1, 1024, -1, cpath);
	T = field(cfg, "context_length", 1, 1 << 20, LSTMWEIGHTS_CONTEXT, cpath);
	if (context)
		T = context;
	/* nn.LSTM options our LSTM does not have */
	need_bool(cfg, "bidirectional", 0, cpath);
	need_bool(cfg, "bias", 1, cpath);
	if ((v = json_get(cfg, "proj_size")) && (v->type != JSON_NUM || v->num != 0))
		die("unsupported: config 'proj_size' must be 0 for a char-lstm: '%s'", cpath);
	gpt_config_lstm(&c, V, E, H, L, T);
	if ((why = gpt_config_check(&c)) != NULL)
		die("unsupported char-lstm configuration (%s): '%s'", why, cpath);

	if (st_open(&f, wpath) < 0)
		die("%s", f.err);
	gpt_model_init(m, &c);
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		const struct st_tensor *s = st_find(&f, t->name);
		uint64_t want[2] = {(uint64_t)t->shape[0], (uint64_t)t->shape[1]};
		char have[128], need[64];

		if (vocab_rows(&m->layout, i))
			want[0] = (uint64_t)V;
		if (!s) {
			if (st_find(&f, "wte.weight") || st_find(&f, "transformer.wte.weight"))
				die("GPT-2 weights (wte.weight), not a char-lstm's (no %s): '%s'",
				    t->name, wpath);
			die("no tensor %s in: '%s'", t->name, wpath);
		}
		if (s->ndim != t->ndim || s->shape[0] != want[0] ||
		    (t->ndim == 2 && s->shape[1] != want[1])) {
			shape_str(have, sizeof have, s->ndim, s->shape);
			shape_str(need, sizeof need, t->ndim, want);
			die("tensor %s has shape %s, expected %s: '%s'", t->name, have, need, wpath);
		}
		/* the first V rows; the padding rows after them stay zero */
		if (st_read_f32(&f, s, m->params + t->offset) < 0)
			die("%s", f.err);
	}
	for (size_t k = 0; k < f.n; k++)
		if (!gpt_model_tensor(m, f.t[k].name))
			die("unexpected tensor %.60s (a char-lstm of %d layers has none): '%s'",
			    f.t[k].name, L, wpath);
	for (size_t k = 0; k < m->n_params; k++)
		if (!isfinite(m->params[k]))
			die("weights hold a non-finite value: '%s'", wpath);
	st_close(&f);
}

void lstmweights_export(const struct gpt_model *m, const char *dir)
{
	const struct gpt_config *c = &m->cfg;
	struct st_write_tensor *ts;
	char *cpath, *wpath, line[256];
	struct afile a;

	if (c->arch != GPT_ARCH_LSTM)
		die("internal error: lstmweights_export of a model that is not an lstm");
	ts = xcalloc((size_t)m->n_tensors, sizeof *ts);
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];

		ts[i].name = t->name;
		ts[i].ndim = t->ndim;
		ts[i].shape[0] = (uint64_t)(vocab_rows(&m->layout, i) ? c->vocab_size : t->shape[0]);
		ts[i].shape[1] = (uint64_t)t->shape[1];
		ts[i].data = m->params + t->offset;
	}
	io_mkdirs(dir);
	wpath = xasprintf("%s/model.safetensors", dir);
	st_write(wpath, ts, (size_t)m->n_tensors);

	cpath = xasprintf("%s/config.json", dir);
	afile_open(&a, cpath);
	snprintf(line, sizeof line,
	         "{\"model_type\": \"char-lstm\", \"vocab_size\": %d, \"embedding_dim\": %d, "
	         "\"hidden_size\": %d, \"num_layers\": %d",
	         c->vocab_size, c->n_input, c->n_embd, c->n_layer);
	out_write(&a.out, line, strlen(line));
	if (c->n_ctx != LSTMWEIGHTS_CONTEXT) {
		snprintf(line, sizeof line, ", \"context_length\": %d", c->n_ctx);
		out_write(&a.out, line, strlen(line));
	}
	out_write(&a.out, "}\n", 2);
	afile_commit(&a);
	free(cpath);
	free(wpath);
	free(ts);
}
