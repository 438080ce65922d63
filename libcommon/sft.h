/* sft: the examples of supervised fine-tuning as the trainer uses them
 * (gpt-train --sft): instruction records (instruct.h) rendered through a
 * template and tokenized, cut to the context, in a seeded order epoch
 * after epoch, and packed into micro-batches of inputs and targets whose
 * prompt and padding positions carry no loss (GPT_IGNORE).
 *
 *   sft_build(&s, set, lo, hi, v, tpl, T, train_on_prompt)
 *       records [lo, hi) of set as examples of at most T + 1 tokens
 *       (longer ones are cut and counted in s.truncated)
 *   sft_split(n, spec, bounds)
 *       "85,5,10": the series' split of n records into train, test and
 *       validation parts in file order (train the first floor(0.85 n),
 *       test the next floor(0.10 n), validation the rest): bounds[0..5]
 *       of the parts train, val, test as [lo, hi) pairs
 *   sft_write_part(set, lo, hi, path)
 *       those records as JSONL (the input's fields), atomically
 *   sft_at(&s, seed, k)
 *       the k-th example of the training order: epoch k / n is a
 *       permutation of all n examples seeded by (seed, epoch)
 *   sft_fill(&s, idx, rows, pack, T, eot, in, tg, &Tm)
 *       examples idx[0..rows) as one micro-batch: padded (each its own
 *       row, the rows as long as the longest, pads EOT in and GPT_IGNORE
 *       out) or packed (pack: examples placed whole one after another in
 *       rows of T, first fit, in order); returns the rows, *Tm their
 *       length; the positions that count are the targets whose token is
 *       a response's (or every real one with train_on_prompt)
 *   sft_counted(&s, i)          the positions of example i that count
 *
 * A set owns its arrays (sft_free). */
#ifndef GPT_SFT_H
#define GPT_SFT_H

#include <stddef.h>
#include <stdint.h>

#include "instruct.h"
#include "vocab.h"

struct sft_set {
	size_t n;
	uint32_t **ids;
	unsigned char **mask;   /* 1: the token's target position counts */
	int *len;               /* tokens of each, at most T + 1 */
	size_t truncated;       /* examples cut to the context */
	uint64_t tokens, counted;
	uint64_t hash;          /* of every example's ids and mask */
	uint64_t *perm;         /* the order of epoch perm_epoch */
	uint64_t perm_epoch;
	int have_perm;
};

void sft_build(struct sft_set *s, const struct instruct_set *set, size_t lo, size_t hi,
	       const struct vocab *v, const struct instruct_template *t, int T,
	       int train_on_prompt);
void sft_free(struct sft_set *s);
void sft_split(size_t n, const char *spec, size_t bounds[6]);
void sft_write_part(const struct instruct_set *set, size_t lo, size_t hi, const char *path);
uint64_t sft_at(struct sft_set *s, uint64_t seed, uint64_t k);
int sft_fill(const struct sft_set *s, const uint64_t *idx, int rows, int pack, int T,
	     uint32_t eot, uint32_t *in, uint32_t *tg, int *Tm);
long sft_counted(const struct sft_set *s, size_t i);

#endif
