/* clsdata: labelled texts for classification fine-tuning; see clsdata.h. */
#include "clsdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "io.h"
#include "json.h"
#include "model.h"

#define CLS_FILE_MAX ((size_t)1 << 32)

static int label_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_label(char **labels, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(labels[i], s) == 0)
			return i;
	return -1;
}

/* A label may not hold control bytes: it becomes a line of its own in
 * checkpoints and a field of gpt-classify's tab-separated output. */
static int label_ok(const char *s)
{
	if (!*s)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

void cls_parse(struct cls_data *d, const char *text, size_t len, const char *name,
               const struct cls_opts *o)
{
	const char *tf = o && o->text_field ? o->text_field : "text";
	const char *lf = o && o->label_field ? o->label_field : "label";
	char **raw = NULL;          /* each record's label text, until indexed */
	size_t cap = 0, line = 0, p = 0;
	int fixed = o && o->labels;

	memset(d, 0, sizeof *d);
	d->path = xstrdup(name);
	while (p < len && strchr(" \t\r\n", text[p]))
		p++;
	d->jsonl = p < len && text[p] == '{';
	for (p = 0; p < len;) {
		const char *s = text + p, *nl = memchr(s, '\n', len - p);
		size_t n = nl ? (size_t)(nl - s) : len - p, k;
		char *lab;
		struct cls_record *r;

		p += n + (nl ? 1 : 0);
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		for (k = 0; k < n && strchr(" \t", s[k]); k++)
			;
		if (k == n)
			continue;
		if (d->n == cap) {
			cap = cap ? 2 * cap : 1024;
			d->r = xrealloc(d->r, xmul(cap, sizeof *d->r));
			raw = xrealloc(raw, xmul(cap, sizeof *raw));
		}
		r = &d->r[d->n];
		r->line = line;
		if (d->jsonl) {
			struct json j;
			const struct json *t, *l;
			char err[128];

			if (json_parse(s, n, &j, err, sizeof err) != 0)
				die("%s: line %zu: not a JSON object (%s)", name, line, err);
			if (j.type != JSON_OBJ)
				die("%s: line %zu: not a JSON object", name, line);
			t = json_get(&j, tf);
			l = json_get(&j, lf);
			if (!t || t->type != JSON_STR)
				die("%s: line %zu: no text field \"%s\"", name, line, tf);
			if (!l || (l->type != JSON_STR && l->type != JSON_NUM))
				die("%s: line %zu: no label field \"%s\"", name, line, lf);
			r->text = xmalloc(t->len + 1);
			memcpy(r->text, t->str, t->len + 1);
			r->len = t->len;
			if (l->type == JSON_STR)
				lab = xstrdup(l->str);
			else
				lab = xasprintf("%.17g", l->num);
			json_free(&j);
		} else {
			const char *tab = memchr(s, '\t', n);
			if (!tab)
				die("%s: line %zu: no tab between the label and the text", name, line);
			lab = xmalloc((size_t)(tab - s) + 1);
			memcpy(lab, s, (size_t)(tab - s));
			lab[tab - s] = 0;
			r->len = n - (size_t)(tab - s) - 1;
			r->text = xmalloc(r->len + 1);
			memcpy(r->text, tab + 1, r->len);
			r->text[r->len] = 0;
		}
		if (!label_ok(lab))
			die("%s: line %zu: an empty label, or one with control characters", name, line);
		raw[d->n++] = lab;
	}
	if (d->n == 0)
		die("no labelled records in '%s'", name);
	if (fixed) {
		char *list = xstrdup(o->labels), *tok, *save = NULL;
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!label_ok(tok) || find_label(d->labels, d->n_labels, tok) >= 0)
				die_usage("--labels takes distinct, non-empty labels: '%s'", o->labels);
			if (d->n_labels >= GPT_MAX_CLASSES)
				die_usage("--labels names more than %d classes", GPT_MAX_CLASSES);
			d->labels = xrealloc(d->labels, xmul((size_t)d->n_labels + 1, sizeof *d->labels));
			d->labels[d->n_labels++] = xstrdup(tok);
		}
		free(list);
		if (d->n_labels < 2)
			die_usage("--labels needs two classes or more: '%s'", o->labels);
	} else {
		for (size_t i = 0; i < d->n; i++) {
			if (find_label(d->labels, d->n_labels, raw[i]) >= 0)
				continue;
			if (d->n_labels >= GPT_MAX_CLASSES)
				die("'%s' has more than %d classes; a classifier here has at most %d",
				    name, GPT_MAX_CLASSES, GPT_MAX_CLASSES);
			d->labels = xrealloc(d->labels, xmul((size_t)d->n_labels + 1, sizeof *d->labels));
			d->labels[d->n_labels++] = xstrdup(raw[i]);
		}
		qsort(d->labels, (size_t)d->n_labels, sizeof *d->labels, label_cmp);
		if (d->n_labels < 2)
			die("'%s' holds one class only ('%s'): a classifier needs two", name,
			    d->labels[0]);
	}
	for (size_t i = 0; i < d->n; i++) {
		d->r[i].label = find_label(d->labels, d->n_labels, raw[i]);
		if (d->r[i].label < 0)
			die("%s: line %zu: label '%s' is not one of --labels", name, d->r[i].line, raw[i]);
		free(raw[i]);
	}
	free(raw);
	d->order = xmalloc(xmul(d->n, sizeof *d->order));
	for (size_t i = 0; i < d->n; i++)
		d->order[i] = i;
}

void cls_load(struct cls_data *d, const char *path, const struct cls_opts *o)
{
	size_t len;
	unsigned char *text = io_read_file(path, CLS_FILE_MAX, &len);

	cls_parse(d, (const char *)text, len, path, o);
	free(text);
}

/* Fisher-Yates over a[0..n) with gpt_rng seeded by seed. */
static void shuffle(size_t *a, size_t n, uint64_t seed)
{
	struct gpt_rng r;

	gpt_rng_seed(&r, seed);
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(gpt_rng_next(&r) % i), t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x > y) - (x < y);
}

void cls_balance(struct cls_data *d, uint64_t seed)
{
	size_t *counts = xcalloc((size_t)d->n_labels, sizeof *counts), least = SIZE_MAX, kept = 0;
	size_t *keep = xmalloc(xmul(d->n, sizeof *keep));
	struct cls_record *r;

	cls_counts(d, 0, d->n, counts);
	for (int k = 0; k < d->n_labels; k++)
		if (counts[k] < least)
			least = counts[k];
	if (least == 0)
		die("'%s' has no records of class '%s': --balance would keep nothing", d->path,
		    d->labels[0]);
	for (int k = 0; k < d->n_labels; k++) {
		size_t m = 0, *idx = xmalloc(xmul(counts[k], sizeof *idx));
		for (size_t i = 0; i < d->n; i++)
			if (d->r[i].label == k)
				idx[m++] = i;
		shuffle(idx, m, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(k + 1)));
		memcpy(keep + kept, idx, least * sizeof *idx);
		kept += least;
		free(idx);
	}
	qsort(keep, kept, sizeof *keep, size_cmp);   /* file order */
	r = xmalloc(xmul(kept, sizeof *r));
	for (size_t i = 0, k = 0; i < d->n; i++) {
		if (k < kept && keep[k] == i)
			r[k++] = d->r[i];
		else
			free(d->r[i].text);
	}
	free(d->r);
	d->r = r;
	d->n = kept;
	for (size_t i = 0; i < d->n; i++)
		d->order[i] = i;
	free(keep);
	free(counts);
}

void cls_split(struct cls_data *d, const char *spec, uint64_t seed, size_t b[6])
{
	unsigned a, v, t;
	char end;
	size_t ntr, nva;

	if (sscanf(spec, "%u,%u,%u%c", &a, &v, &t, &end) != 3 || a + v + t != 100 || a == 0)
		die_usage("--split takes TRAIN,VAL,TEST percentages adding up to 100, e.g. "
		          "70,10,20: '%s'", spec);
	for (size_t i = 0; i < d->n; i++)
		d->order[i] = i;
	shuffle(d->order, d->n, seed);
	ntr = d->n * a / 100;
	nva = d->n * v / 100;
	b[0] = 0;
	b[1] = ntr;
	b[2] = ntr;
	b[3] = ntr + nva;
	b[4] = ntr + nva;
	b[5] = d->n;
}

void cls_write_part(const struct cls_data *d, size_t lo, size_t hi, const char *path)
{
	struct afile a;

	afile_open(&a, path);
	for (size_t i = lo; i < hi; i++) {
		const struct cls_record *r = &d->r[d->order[i]];
		const char *lab = d->labels[r->label];
		if (d->jsonl) {
			out_write(&a.out, "{\"text\": ", 9);
			json_put_str(&a.out, r->text, r->len);
			out_write(&a.out, ", \"label\": ", 11);
			json_put_str(&a.out, lab, strlen(lab));
			out_write(&a.out, "}\n", 2);
		} else {
			out_write(&a.out, lab, strlen(lab));
			out_putc(&a.out, '\t');
			out_write(&a.out, r->text, r->len);
			out_putc(&a.out, '\n');
		}
	}
	afile_commit(&a);
}

void cls_counts(const struct cls_data *d, size_t lo, size_t hi, size_t *counts)
{
	memset(counts, 0, (size_t)d->n_labels * sizeof *counts);
	for (size_t i = lo; i < hi; i++)
		counts[d->r[d->order[i]].label]++;
}

void cls_free(struct cls_data *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->r[i].text);
	for (int k = 0; k < d->n_labels; k++)
		free(d->labels[k]);
	free(d->labels);
	free(d->r);
	free(d->order);
	free(d->path);
	memset(d, 0, sizeof *d);
}
