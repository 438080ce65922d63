/* eval: loss over token windows (batched full forward passes) and
 * the HellaSwag and LAMBADA scores (the key/value cache, reusing a
 * context across its endings); the rules are in eval.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "eval.h"
#include "http.h"
#include "infer.h"
#include "io.h"
#include "json.h"
#include "tokenize.h"

#define JSONL_MAX (1ull << 32)

static int is_special(const struct vocab *v, uint32_t id)
{
	if (id == v->eot)
		return 1;
	for (int i = 0; i < v->n_special; i++)
		if (v->special[i].id == id)
			return 1;
	return 0;
}

void eval_lm_loss(struct engine *e, const struct vocab *v, eval_window_fn src, void *ctx, int T,
                  int B, struct eval_loss *res, enum progress_mode pm)
{
	uint32_t *win = xmalloc(xmul(xmul((size_t)B, (size_t)T + 1), sizeof *win));
	uint32_t *inp = xmalloc(xmul(xmul((size_t)B, (size_t)T), sizeof *inp));
	size_t *len = xcalloc((size_t)B, sizeof *len);
	double *rl = xmalloc(xmul(xmul((size_t)B, (size_t)T), sizeof *rl));
	uint32_t *tgt = xmalloc(xmul(xmul((size_t)B, (size_t)T), sizeof *tgt));
	uint64_t k = 0;
	struct progress p;
	int done = 0;

	memset(res, 0, sizeof *res);
	engine_plan(e, B, T, 0, 0);
	progress_init(&p, pm, "eval", "windows", 0);
	while (!done) {
		int nb = 0, r;

		for (; nb < B; nb++) {
			len[nb] = src(ctx, k, win + (size_t)nb * (T + 1), (size_t)T + 1);
			if (len[nb] == 0) {
				done = 1;
				break;
			}
			k++;
			for (int t = 0; t < T; t++)
				inp[(size_t)nb * T + t] =
					(size_t)t < len[nb] - 1 ? win[(size_t)nb * (T + 1) + t] : 0;
		}
		if (nb == 0)
			break;
		for (r = 0; r < nb * T; r++) {
			int b = r / T, t = r % T;
			tgt[r] = (size_t)t + 1 < len[b] ? win[(size_t)b * (T + 1) + t + 1] : GPT_IGNORE;
		}
		engine_losses(e, inp, tgt, nb, T, rl);
		/* summed in a fixed order: the same result for any thread count */
		for (int b = 0; b < nb; b++)
			for (size_t t = 0; t + 1 < len[b]; t++) {
				uint32_t y = win[(size_t)b * (T + 1) + t + 1];
				double l = rl[(size_t)b * T + t];
				size_t nbytes;
				res->nats += l;
				res->tokens++;
				if (!is_special(v, y) && vocab_token(v, y, &nbytes)) {
					res->text_nats += l;
					res->bytes += nbytes;
				}
			}
		progress_update(&p, k);
	}
	progress_end(&p);
	free(win);
	free(inp);
	free(len);
	free(rl);
	free(tgt);
}

/* ---- continuation scoring through the cache ---- */

struct scorer {
	struct engine_decoder *dec;
	int pos;                 /* tokens in the cache */
	int V, Vp, n_ctx;
	uint32_t eot;
	float *rows, *last;
	size_t rows_cap;
	uint32_t *prev;          /* the prefix now in the cache */
	size_t nprev;
};

static void scorer_init(struct scorer *sc, struct engine *e, const struct vocab *v)
{
	const struct gpt_config *c = &e->model.cfg;

	memset(sc, 0, sizeof *sc);
	sc->dec = engine_decoder_open(e, c->n_ctx);
	sc->V = c->vocab_size;
	sc->Vp = c->padded_vocab;
	sc->n_ctx = c->n_ctx;
	sc->eot = v->eot;
	sc->last = xmalloc(xmul((size_t)sc->Vp, sizeof(float)));
	sc->prev = xmalloc(xmul((size_t)sc->n_ctx, sizeof *sc->prev));
}

static void scorer_free(struct scorer *sc)
{
	engine_decoder_close(sc->dec);
	free(sc->rows);
	free(sc->last);
	free(sc->prev);
}

static void scorer_rewind(struct scorer *sc, int pos)
{
	engine_decoder_rewind(sc->dec, pos);
	sc->pos = pos;
}

static const float *scorer_feed(struct scorer *sc, const uint32_t *ids, int n, float *all)
{
	sc->pos += n;
	return engine_decoder_feed(sc->dec, ids, n, all);
}

/* Summed loss of cont given ctx, and whether each token of cont is the
 * argmax prediction. */
static double score(struct scorer *sc, const uint32_t *ctx, size_t nctx, const uint32_t *cont,
                    size_t ncont, int *greedy)
{
	size_t keep;
	const uint32_t *pre;
	double loss = 0;

	if (nctx == 0) {
		/* nothing to condition on: start after <|endoftext|>, as GPT-2 */
		ctx = &sc->eot;
		nctx = 1;
	}
	if (ncont > (size_t)sc->n_ctx - 1)
		ncont = (size_t)sc->n_ctx - 1;
	keep = nctx < (size_t)sc->n_ctx - ncont ? nctx : (size_t)sc->n_ctx - ncont;
	pre = ctx + nctx - keep;
	if (keep == sc->nprev && sc->pos >= (int)keep &&
	    memcmp(pre, sc->prev, keep * sizeof *pre) == 0) {
		scorer_rewind(sc, (int)keep);
	} else {
		const float *l;
		scorer_rewind(sc, 0);
		l = scorer_feed(sc, pre, (int)keep, NULL);
		memcpy(sc->last, l, (size_t)sc->Vp * sizeof(float));
		memcpy(sc->prev, pre, keep * sizeof *pre);
		sc->nprev = keep;
	}
	if (ncont > 1) {
		size_t need = xmul(ncont - 1, (size_t)sc->Vp);
		if (need > sc->rows_cap) {
			free(sc->rows);
			sc->rows = xmalloc(xmul(need, sizeof(float)));
			sc->rows_cap = need;
		}
		scorer_feed(sc, cont, (int)ncont - 1, sc->rows);
	}
	*greedy = 1;
	for (size_t i = 0; i < ncont; i++) {
		const float *row = i == 0 ? sc->last : sc->rows + (i - 1) * (size_t)sc->Vp;
		int best = 0;
		for (int k = 1; k < sc->V; k++)
			if (row[k] > row[best])
				best = k;
		*greedy &= (uint32_t)best == cont[i];
		loss += infer_lse(row, sc->V) - row[cont[i]];
	}
	return loss;
}

static uint32_t *encode(const struct vocab *v, const char *s, size_t n, const char *prefix,
                        size_t *nids)
{
	uint32_t *ids = NULL;

	if (prefix) {
		size_t pl = strlen(prefix);
		char *buf = xmalloc(pl + n + 1);
		memcpy(buf, prefix, pl);
		memcpy(buf + pl, s, n);
		*nids = tokenize_text(v, (const unsigned char *)buf, pl + n, 0, &ids);
		free(buf);
	} else {
		*nids = tokenize_text(v, (const unsigned char *)s, n, 0, &ids);
	}
	return ids;
}

/* Calls fn on each non-blank line of a JSONL file, parsed. */
typedef void (*line_fn)(void *ctx, const struct json *j, const char *path, uint64_t lineno);

static void jsonl_each(const char *path, uint64_t limit, line_fn fn, void *ctx,
                       enum progress_mode pm, const char *label)
{
	size_t len;
	unsigned char *text = io_read_file(path, (size_t)JSONL_MAX, &len);
	size_t at = 0;
	uint64_t lineno = 0, done = 0;
	struct progress p;

	progress_init(&p, pm, label, "examples", 0);
	while (at < len && (!limit || done < limit)) {
		unsigned char *nl = memchr(text + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - text) : len, k = at;
		struct json j;
		char err[128];

		lineno++;
		while (k < end && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
			k++;
		if (k < end) {
			if (json_parse((const char *)text + at, end - at, &j, err, sizeof err) < 0)
				die("bad JSON (%s) on line %llu: '%s'", err, (unsigned long long)lineno, path);
			fn(ctx, &j, path, lineno);
			json_free(&j);
			done++;
			progress_update(&p, done);
		}
		at = end + 1;
	}
	progress_end(&p);
	free(text);
	if (done == 0) /* an accuracy of nothing is not 0 */
		die("no examples in the %s file: '%s'", label, path);
}

struct bench_ctx {
	struct scorer sc;
	const struct vocab *v;
	struct eval_bench *r;
	FILE *detail;
};

static const struct json *field(const struct json *j, const char *key, enum json_type type,
                                const char *path, uint64_t lineno)
{
	const struct json *f = json_get(j, key);
	if (!f || f->type != type)
		die("line %llu has no %s \"%s\": '%s'", (unsigned long long)lineno,
		    type == JSON_STR ? "string" : type == JSON_ARR ? "array" : "number", key, path);
	return f;
}

static void hellaswag_line(void *vctx, const struct json *j, const char *path, uint64_t lineno)
{
	struct bench_ctx *b = vctx;
	const struct json *ctx = field(j, "ctx", JSON_STR, path, lineno);
	const struct json *ends = field(j, "endings", JSON_ARR, path, lineno);
	const struct json *lab = json_get(j, "label");
	double best_sum = INFINITY, best_mean = INFINITY;
	int label = -1, pred = 0, pred_norm = 0;
	size_t nctx;
	uint32_t *cids;
	double *sums, *means;

	if (lab && lab->type == JSON_NUM && lab->num == floor(lab->num))
		label = (int)lab->num;
	else if (lab && lab->type == JSON_STR && lab->len > 0 && lab->len < 4 &&
	         strspn(lab->str, "0123456789") == lab->len)
		label = atoi(lab->str);
	if (ends->n < 1 || ends->n > 64 || label < 0 || (size_t)label >= ends->n)
		die("line %llu needs 1 to 64 endings and a label among them: '%s'",
		    (unsigned long long)lineno, path);
	cids = encode(b->v, ctx->str, ctx->len, NULL, &nctx);
	sums = xcalloc(ends->n, sizeof *sums);
	means = xcalloc(ends->n, sizeof *means);
	for (size_t e = 0; e < ends->n; e++) {
		size_t ne;
		uint32_t *eids;
		int g;
		if (ends->items[e].type != JSON_STR)
			die("line %llu: ending %zu is not a string: '%s'", (unsigned long long)lineno, e,
			    path);
		eids = encode(b->v, ends->items[e].str, ends->items[e].len, " ", &ne);
		sums[e] = score(&b->sc, cids, nctx, eids, ne, &g);
		means[e] = sums[e] / (double)ne;
		if (sums[e] < best_sum) {
			best_sum = sums[e];
			pred = (int)e;
		}
		if (means[e] < best_mean) {
			best_mean = means[e];
			pred_norm = (int)e;
		}
		free(eids);
	}
	b->r->n++;
	b->r->hits += pred == label;
	b->r->hits_norm += pred_norm == label;
	if (b->detail) {
		fprintf(b->detail, "%llu %d %d %d", (unsigned long long)(b->r->n - 1), label, pred,
		        pred_norm);
		for (size_t e = 0; e < ends->n; e++)
			fprintf(b->detail, " %.6f", sums[e]);
		for (size_t e = 0; e < ends->n; e++)
			fprintf(b->detail, " %.6f", means[e]);
		fputc('\n', b->detail);
	}
	free(sums);
	free(means);
	free(cids);
}

static void lambada_line(void *vctx, const struct json *j, const char *path, uint64_t lineno)
{
	struct bench_ctx *b = vctx;
	const struct json *t = field(j, "text", JSON_STR, path, lineno);
	const char *sp;
	size_t nctx, ntgt, clen;
	uint32_t *cids, *tids;
	double loss;
	int hit;

	/* strip trailing white space, then split at the last space */
	clen = t->len;
	while (clen > 0 && (t->str[clen - 1] == ' ' || t->str[clen - 1] == '\n' ||
	                    t->str[clen - 1] == '\t' || t->str[clen - 1] == '\r'))
		clen--;
	sp = clen ? memrchr(t->str, ' ', clen) : NULL;
	if (!sp || (size_t)(sp - t->str) + 1 >= clen)
		die("line %llu has no last word to predict: '%s'", (unsigned long long)lineno, path);
	cids = encode(b->v, t->str, (size_t)(sp - t->str), NULL, &nctx);
	tids = encode(b->v, sp + 1, clen - (size_t)(sp - t->str) - 1, " ", &ntgt);
	loss = score(&b->sc, cids, nctx, tids, ntgt, &hit);
	b->r->n++;
	b->r->hits += hit;
	b->r->loss += loss;
	if (b->detail)
		fprintf(b->detail, "%llu %d %.6f\n", (unsigned long long)(b->r->n - 1), hit, loss);
	free(cids);
	free(tids);
}

static void run_bench(struct engine *e, const struct vocab *v, const char *path, uint64_t limit,
                      struct eval_bench *r, FILE *detail, enum progress_mode pm, line_fn fn,
                      const char *label)
{
	struct bench_ctx b;

	memset(r, 0, sizeof *r);
	scorer_init(&b.sc, e, v);
	b.v = v;
	b.r = r;
	b.detail = detail;
	jsonl_each(path, limit, fn, &b, pm, label);
	scorer_free(&b.sc);
}

void eval_hellaswag(struct engine *e, const struct vocab *v, const char *path, uint64_t limit,
                    struct eval_bench *r, FILE *detail, enum progress_mode pm)
{
	run_bench(e, v, path, limit, r, detail, pm, hellaswag_line, "hellaswag");
}

void eval_lambada(struct engine *e, const struct vocab *v, const char *path, uint64_t limit,
                  struct eval_bench *r, FILE *detail, enum progress_mode pm)
{
	run_bench(e, v, path, limit, r, detail, pm, lambada_line, "lambada");
}

/* HellaSwag's validation split as its authors publish it: rowanz/hellaswag,
 * data/hellaswag_val.jsonl, 10,042 examples.  It is checked by the one
 * thing about it that could be read without downloading it: its git blob
 * id in that repository's tree (`git ls-tree a29ff8e data/`, the commit
 * master names), SHA-1 over "blob SIZE\0" and the bytes, so the size is
 * checked too.  raw.githubusercontent.com serves the blob's bytes as they
 * are (the repository has no LFS). */
#define HELLASWAG_VAL_URL \
	"https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
#define HELLASWAG_VAL_BLOB "0f5ee25d72216f12317d5d8a7b92deafa423d81e"

char *eval_hellaswag_locate(const char *spec, int offline, int quiet)
{
	struct http_opts ho = { 0 };
	const char *url = spec, *env;

	if (strcmp(spec, "val") != 0 && !http_is_url(spec))
		return xstrdup(spec);
	ho.offline = offline;
	ho.quiet_progress = quiet;
	if (strcmp(spec, "val") == 0) {
		url = (env = getenv("GPT_HELLASWAG_URL")) && *env ? env : HELLASWAG_VAL_URL;
		ho.git_blob = (env = getenv("GPT_HELLASWAG_BLOB")) && *env ? env
		            : HELLASWAG_VAL_BLOB;
		ho.label = "hellaswag_val.jsonl";
	}
	return http_fetch(url, &ho);
}
