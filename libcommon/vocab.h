/* vocab: a byte-level BPE vocabulary and the exact encoder over it.
 *
 * Loads OpenAI's GPT-2 files (a folder with encoder.json + vocab.bpe) or a
 * tiktoken rank file ("base64 rank" per line).  A rank file may have a
 * companion PATH.meta with lines "name NAME", "pattern gpt2|gpt4" and
 * "special TEXT ID"; without one the pattern is GPT-2's and
 * <|endoftext|> takes the id after the last rank.
 *
 *   vocab_load(v, path)      dies with a clear message on a bad file
 *   vocab_locate(explicit, offline)  finds the GPT-2 vocabulary: the given
 *                            path, $GPT_VOCAB, ROOT/gpt2 in the download
 *                            cache (cache_root), the install share folder,
 *                            else a verified download into ROOT/gpt2 unless
 *                            cache_offline(offline) (--offline,
 *                            $GPT_OFFLINE, $HF_HUB_OFFLINE)
 *   vocab_encode(v, s, n, ids, cap)  BPE of one piece (see pretok.h);
 *                            returns the number of ids (<= n)
 *   vocab_token(v, id, &len) the bytes of id (NULL when id is not a token)
 *   vocab_free(v)
 * Tokens' ids equal their ranks, as in tiktoken.  Memory belongs to the
 * vocab; vocab_locate returns a malloc'd path. */
#ifndef GPT_VOCAB_H
#define GPT_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "pretok.h"

#define VOCAB_MAX_TOKENS (1u << 24)
#define VOCAB_MAX_SPECIALS 64

struct vocab_special {
	char *text;
	uint32_t len;
	uint32_t id;
};

struct vocab {
	char name[64];              /* "gpt2", or the rank file's name */
	enum pretok_pattern pattern;
	uint32_t n_ids;             /* ids are < n_ids (ranks and specials) */
	uint32_t eot;               /* <|endoftext|>, UINT32_MAX if absent */
	unsigned char *blob;        /* bytes of every token, back to back */
	uint64_t *off;              /* off[id], len[id]; len 0: no such id */
	uint32_t *len;
	uint32_t byte_id[256];      /* id of each single byte */
	uint64_t *tab;              /* bytes -> id (open addressing) */
	uint32_t tab_mask;
	uint64_t *pair_key;         /* (left << 32 | right) -> merged id */
	uint32_t *pair_val;
	uint32_t pair_mask;
	struct vocab_special special[VOCAB_MAX_SPECIALS];
	int n_special;
};

void vocab_load(struct vocab *v, const char *path);
void vocab_free(struct vocab *v);
char *vocab_locate(const char *explicit_path, int offline);

/* id of exactly these bytes as one token, or UINT32_MAX */
uint32_t vocab_lookup(const struct vocab *v, const unsigned char *s, size_t n);
size_t vocab_encode(const struct vocab *v, const unsigned char *s, size_t n,
		    uint32_t *ids);

static inline const unsigned char *vocab_token(const struct vocab *v,
					       uint32_t id, size_t *len)
{
	if (id >= v->n_ids || v->len[id] == 0)
		return NULL;
	*len = v->len[id];
	return v->blob + v->off[id];
}

#endif
