/* clsdata: labelled texts for classification fine-tuning (gpt-train
 * --classify, issue 19): the files, their labels, balancing and the split.
 *
 *   cls_load(&d, path, &opts)
 *       label<TAB>text lines (the SMS Spam Collection's own form: the
 *       label is everything before the first tab, the text the rest of
 *       the line; a trailing CR is dropped), or, when the file's first
 *       non-blank byte is '{', JSONL objects with a text and a label
 *       field (opts.text_field, opts.label_field: default "text",
 *       "label"; a label may be a string or an integer).  Blank lines are
 *       skipped.  The labels are opts.labels ("spam,ham": that order, and
 *       every record's label must be one of them) or the data's distinct
 *       labels, sorted bytewise.  Dies with one line naming the file and
 *       line on: a line without a tab, an empty label, a JSONL line that
 *       is not an object or lacks a field, a label not in opts.labels, no
 *       records, one class only, more than GPT_MAX_CLASSES classes.
 *   cls_balance(&d, seed)
 *       undersamples every class to the size of the rarest (the series
 *       undersamples "ham" to the number of "spam"): a seeded choice of
 *       which records stay, kept in file order.
 *   cls_split(&d, "70,10,20", seed, bounds)
 *       shuffles the records by seed, then the first floor(70% n) are
 *       the training part, the next floor(10% n) validation, the rest
 *       test (the series' random_split): bounds[0..5] as [lo, hi) pairs
 *       over d.order.
 *   cls_write_part(&d, lo, hi, path)
 *       records d.order[lo..hi) in the input's form, atomically.
 *   cls_counts(&d, lo, hi, counts)
 *       records of each label among d.order[lo..hi).
 *
 * Memory: d owns its records and labels (cls_free). */
#ifndef GPT_CLSDATA_H
#define GPT_CLSDATA_H

#include <stddef.h>
#include <stdint.h>

struct cls_record {
	char *text;
	size_t len;
	int label;              /* index into labels */
	size_t line;            /* in the file, for messages */
};

struct cls_data {
	char *path;
	struct cls_record *r;
	size_t n;
	size_t *order;          /* n record indices: the split's order */
	char **labels;
	int n_labels;
	int jsonl;
};

struct cls_opts {
	const char *text_field, *label_field;  /* JSONL; NULL: "text", "label" */
	const char *labels;                    /* "a,b,c" or NULL */
};

void cls_load(struct cls_data *d, const char *path, const struct cls_opts *o);
/* The same from memory; name is the file's name for messages. */
void cls_parse(struct cls_data *d, const char *text, size_t len, const char *name,
               const struct cls_opts *o);
void cls_balance(struct cls_data *d, uint64_t seed);
void cls_split(struct cls_data *d, const char *spec, uint64_t seed, size_t bounds[6]);
void cls_write_part(const struct cls_data *d, size_t lo, size_t hi, const char *path);
void cls_counts(const struct cls_data *d, size_t lo, size_t hi, size_t *counts);
void cls_free(struct cls_data *d);

#endif
