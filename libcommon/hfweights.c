/* hfweights: maps Hugging Face GPT2LMHeadModel tensors onto the model's named
 * parameter table and back (see hfweights.h for the rules), and sends a
 * char-lstm folder or model to lstmweights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hfweights.h"
#include "io.h"
#include "json.h"
#include "lstmweights.h"
#include "safetensors.h"

static char *join(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static int cfg_int(const struct json *cfg, const char *key, const char *alt, int lo, int hi,
                   const char *path)
{
	const struct json *v = json_get(cfg, key);

	if (!v && alt)
		v = json_get(cfg, alt);
	if (!v)
		die("config has no '%s': '%s'", key, path);
	if (v->type != JSON_NUM || v->num != floor(v->num) || v->num < lo || v->num > hi)
		die("config value of '%s' is out of range: '%s'", key, path);
	return (int)v->num;
}

/* config.json parsed; dies naming path. */
static void parse_config(const char *path, struct json *j)
{
	size_t len;
	unsigned char *text = io_read_file(path, 1u << 20, &len);
	char err[128];

	if (json_parse((const char *)text, len, j, err, sizeof err) < 0)
		die("bad config.json (%s): '%s'", err, path);
	free(text);
	if (j->type != JSON_OBJ)
		die("config.json is not an object: '%s'", path);
}

/* The family config.json describes: 0 GPT-2 (model_type "gpt2" or none,
 * as older files have), 1 the char-lstm; dies on any other. */
static int is_char_lstm(const struct json *j, const char *path)
{
	const struct json *v = json_get(j, "model_type");

	if (!v)
		return 0;
	if (v->type != JSON_STR)
		die("config's model_type is not a string: '%s'", path);
	if (strcmp(v->str, "char-lstm") == 0)
		return 1;
	if (strcmp(v->str, "gpt2") != 0)
		die("unsupported model_type \"%.40s\" (gpt2 or char-lstm): '%s'", v->str, path);
	return 0;
}

static void read_config(const struct json *cfg, const char *path, struct gpt_config *c)
{
	const struct json *j = cfg, *v;
	const char *why;

	memset(c, 0, sizeof *c);
	c->n_layer = cfg_int(j, "n_layer", "num_hidden_layers", 1, 1024, path);
	c->n_head = cfg_int(j, "n_head", "num_attention_heads", 1, 1024, path);
	c->n_embd = cfg_int(j, "n_embd", "hidden_size", 1, 1 << 16, path);
	c->n_ctx = cfg_int(j, "n_positions", "n_ctx", 1, 1 << 20, path);
	c->vocab_size = cfg_int(j, "vocab_size", NULL, 1, 1 << 24, path);
	c->tied = 1;
	if ((v = json_get(j, "tie_word_embeddings")) && v->type == JSON_BOOL)
		c->tied = v->boolean;
	c->bias = c->qkv_bias = 1;
	if ((v = json_get(j, "n_inner")) && v->type == JSON_NUM && v->num != 4.0 * c->n_embd)
		die("unsupported MLP width n_inner %g (we use 4 x n_embd): '%s'", v->num, path);
	if ((v = json_get(j, "activation_function")) && v->type == JSON_STR &&
	    strcmp(v->str, "gelu_new") != 0 && strcmp(v->str, "gelu_pytorch_tanh") != 0)
		warnx("activation %.40s is not GPT-2's tanh GELU; using tanh GELU: '%s'", v->str, path);
	if ((v = json_get(j, "layer_norm_epsilon")) && v->type == JSON_NUM &&
	    fabs(v->num - 1e-5) > 1e-9)
		warnx("layer_norm_epsilon %g is not 1e-5; using 1e-5: '%s'", v->num, path);
	if ((v = json_get(j, "scale_attn_by_inverse_layer_idx")) && v->type == JSON_BOOL &&
	    v->boolean)
		die("unsupported: scale_attn_by_inverse_layer_idx: '%s'", path);
	if ((v = json_get(j, "scale_attn_weights")) && v->type == JSON_BOOL && !v->boolean)
		die("unsupported: scale_attn_weights false: '%s'", path);
	gpt_config_finish(c);
	if ((why = gpt_config_check(c)) != NULL)
		die("unsupported GPT-2 configuration (%s): '%s'", why, path);
}

/* The safetensors tensor for our name, with or without the prefix. */
static const struct st_tensor *find(struct safetensors *f, const char *name)
{
	char full[96];
	const struct st_tensor *t = st_find(f, name);

	if (t)
		return t;
	snprintf(full, sizeof full, "transformer.%s", name);
	return st_find(f, full);
}

static int is_conv1d(const char *name)
{
	return strstr(name, ".weight") && (strstr(name, "attn.c_attn") || strstr(name, "c_proj") ||
	                                   strstr(name, "mlp.c_fc"));
}

static void import_tensor(struct safetensors *f, const struct gpt_tensor *t, float *dst,
                          int vocab, const char *path)
{
	const struct st_tensor *s = find(f, t->name);
	int rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
	int vocab_rows = strcmp(t->name, "wte.weight") == 0 || strcmp(t->name, "lm_head.weight") == 0;
	uint64_t want0, want1;
	float *tmp;

	if (!s) {
		if (st_find(f, "lstm.weight_ih_l0"))
			die("char-lstm weights (lstm.weight_ih_l0), not GPT-2's (no %s); a char-lstm "
			    "folder's config.json says model_type \"char-lstm\": '%s'", t->name, path);
		die("no tensor %s in: '%s'", t->name, path);
	}
	if (vocab_rows)
		rows = vocab;
	want0 = (uint64_t)rows;
	want1 = (uint64_t)cols;
	if (is_conv1d(t->name)) {
		want0 = (uint64_t)cols;
		want1 = (uint64_t)rows;
	}
	if (t->ndim == 1 ? s->ndim != 1 || s->shape[0] != want0
	                 : s->ndim != 2 || s->shape[0] != want0 || s->shape[1] != want1)
		die("tensor %s has shape [%llu%s%llu], expected [%llu, %llu]: '%s'", t->name,
		    (unsigned long long)(s->ndim ? s->shape[0] : 0), s->ndim == 2 ? ", " : "",
		    (unsigned long long)(s->ndim == 2 ? s->shape[1] : 0), (unsigned long long)want0,
		    t->ndim == 2 ? (unsigned long long)want1 : 1ull, path);
	if (!is_conv1d(t->name)) {
		if (st_read_f32(f, s, dst) < 0)
			die("%s", f->err);
		return;
	}
	tmp = xmalloc(xmul(st_count(s), sizeof(float)));
	if (st_read_f32(f, s, tmp) < 0)
		die("%s", f->err);
	/* tmp is [cols][rows] (in, out); ours is [rows][cols] (out, in) */
	for (int r = 0; r < rows; r++)
		for (int k = 0; k < cols; k++)
			dst[(size_t)r * cols + k] = tmp[(size_t)k * rows + r];
	free(tmp);
}

void hfweights_import(const char *dir, struct gpt_model *m)
{
	char *cpath = join(dir, "config.json"), *wpath = join(dir, "model.safetensors");

	hfweights_import_files(cpath, wpath, m);
	free(cpath);
	free(wpath);
}

void hfweights_import_files(const char *cpath, const char *wpath, struct gpt_model *m)
{
	hfweights_import_context(cpath, wpath, 0, m);
}

void hfweights_import_context(const char *cpath, const char *wpath, int context,
                              struct gpt_model *m)
{
	struct gpt_config c;
	struct safetensors f;
	struct json j;

	parse_config(cpath, &j);
	if (is_char_lstm(&j, cpath)) {
		lstmweights_import(&j, cpath, wpath, context, m);
		json_free(&j);
		return;
	}
	read_config(&j, cpath, &c);
	json_free(&j);
	if (context && context != c.n_ctx)
		die("a GPT-2 model's context is its n_positions, %d, not %d: '%s'", c.n_ctx, context,
		    cpath);
	if (st_open(&f, wpath) < 0)
		die("%s", f.err);
	if (!c.tied && !find(&f, "lm_head.weight"))
		die("config unties the head but there is no lm_head.weight: '%s'", wpath);
	gpt_model_init(m, &c);
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		import_tensor(&f, t, m->params + t->offset, c.vocab_size, wpath);
	}
	for (size_t k = 0; k < m->n_params; k++)
		if (!isfinite(m->params[k]))
			die("weights hold a non-finite value: '%s'", wpath);
	st_close(&f);
}

static void gpt2_export(const struct gpt_model *m, const char *dir)
{
	const struct gpt_config *c = &m->cfg;
	int C = c->n_embd, V = c->vocab_size;
	struct st_write_tensor *ts = xcalloc((size_t)m->n_tensors + 4 * (size_t)c->n_layer + 1,
	                                     sizeof *ts);
	char **names = xcalloc((size_t)m->n_tensors + 4 * (size_t)c->n_layer + 1, sizeof *names);
	float **own = xcalloc((size_t)m->n_tensors + 4 * (size_t)c->n_layer + 1, sizeof *own);
	size_t n = 0, nown = 0;
	char *cpath, *wpath;
	struct afile a;
	char line[256];

	io_mkdirs(dir);
	for (int i = 0; i < m->n_tensors; i++) {
		const struct gpt_tensor *t = &m->tensors[i];
		const float *src = m->params + t->offset;
		int rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
		char name[96];

		if (strcmp(t->name, "wte.weight") == 0 || strcmp(t->name, "lm_head.weight") == 0)
			rows = V;
		snprintf(name, sizeof name, "%s%s",
		         strcmp(t->name, "lm_head.weight") == 0 ? "" : "transformer.", t->name);
		names[n] = xstrdup(name);
		ts[n].name = names[n];
		ts[n].ndim = t->ndim;
		if (is_conv1d(t->name)) {
			float *d = own[nown++] = xmalloc(xmul((size_t)rows * cols, sizeof(float)));
			for (int r = 0; r < rows; r++)
				for (int k = 0; k < cols; k++)
					d[(size_t)k * rows + r] = src[(size_t)r * cols + k];
			ts[n].shape[0] = (uint64_t)cols;
			ts[n].shape[1] = (uint64_t)rows;
			ts[n].data = d;
		} else {
			ts[n].shape[0] = (uint64_t)rows;
			ts[n].shape[1] = (uint64_t)cols;
			ts[n].data = src;
		}
		n++;
	}
	/* Hugging Face GPT-2 always has these biases: zeros where we have none */
	for (int l = 0; l < c->n_layer; l++) {
		static const char *const kinds[] = {"attn.c_attn.bias", "attn.c_proj.bias",
		                                    "mlp.c_fc.bias", "mlp.c_proj.bias"};
		static const int width[] = {3, 1, 4, 1};
		for (int k = 0; k < 4; k++) {
			char ours[64], name[96];
			snprintf(ours, sizeof ours, "h.%d.%s", l, kinds[k]);
			if (gpt_model_tensor(m, ours))
				continue;
			snprintf(name, sizeof name, "transformer.%s", ours);
			names[n] = xstrdup(name);
			ts[n].name = names[n];
			ts[n].ndim = 1;
			ts[n].shape[0] = (uint64_t)(width[k] * C);
			ts[n].data = own[nown++] = xcalloc((size_t)(width[k] * C), sizeof(float));
			n++;
		}
	}
	wpath = join(dir, "model.safetensors");
	st_write(wpath, ts, n);

	cpath = join(dir, "config.json");
	afile_open(&a, cpath);
#define PUT(...) (snprintf(line, sizeof line, __VA_ARGS__), out_write(&a.out, line, strlen(line)))
	PUT("{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n");
	PUT("  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": 1e-05,\n");
	PUT("  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_embd\": %d,\n", c->n_layer, c->n_head, C);
	PUT("  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_inner\": null,\n", c->n_ctx, c->n_ctx);
	PUT("  \"vocab_size\": %d,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n", V, V - 1,
	    V - 1);
	PUT("  \"tie_word_embeddings\": %s,\n", c->tied ? "true" : "false");
	PUT("  \"embd_pdrop\": 0.0,\n  \"attn_pdrop\": 0.0,\n  \"resid_pdrop\": 0.0,\n");
	PUT("  \"initializer_range\": 0.02,\n  \"scale_attn_weights\": true,\n");
	PUT("  \"torch_dtype\": \"float32\"\n}\n");
#undef PUT
	afile_commit(&a);

	for (size_t i = 0; i < n; i++)
		free(names[i]);
	for (size_t i = 0; i < nown; i++)
		free(own[i]);
	free(names);
	free(own);
	free(ts);
	free(cpath);
	free(wpath);
}

void hfweights_export(const struct gpt_model *m, const char *dir)
{
	if (m->cfg.arch == GPT_ARCH_LSTM)
		lstmweights_export(m, dir);
	else
		gpt2_export(m, dir);
}
