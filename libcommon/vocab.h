/* vocab: a byte-level BPE vocabulary and the exact encoder over it.
 *
 * Loads OpenAI's GPT-2 files (a folder with encoder.json + vocab.bpe) or a
 * tiktoken rank file ("base64 rank" per line).  A rank file may have a
 * companion PATH.meta with lines "name NAME", "pattern gpt2|gpt4" and
 * "special TEXT ID"; without one the pattern is GPT-2's and
 * <|endoftext|> takes the id after the last rank.
 *
 * Built-in vocabularies are named, not read from a file: "bytes" has the
 * 256 bytes as ids 0-255 (no merges) and <|endoftext|> as id 256, 257 ids
 * in all.  The name wins over a file of that name; "./bytes" is the file.
 *
 *   vocab_load(v, path)      a built-in name or a path; dies with a clear
 *                            message on a bad file
 *   vocab_builtin(name)      whether name is a built-in vocabulary's
 *   vocab_locate(explicit, offline)  finds the GPT-2 vocabulary: the given
 *                            path, $GPT_VOCAB, ROOT/gpt2 in the download
 *                            cache (cache_root), the install share folder,
 *                            else a verified download into ROOT/gpt2 unless
 *                            cache_offline(offline) (--offline,
 *                            $GPT_OFFLINE, $HF_HUB_OFFLINE)
 *   vocab_load_for(v, explicit, tokenizer, offline)  the vocabulary for ids
 *                            of the tokenizer a checkpoint or shard names:
 *                            explicit (--vocab) when given, else the
 *                            built-in one when tokenizer names one (NULL:
 *                            none), else what vocab_locate finds
 *   vocab_encode(v, s, n, ids, cap)  BPE of one piece (see pretok.h);
 *                            returns the number of ids (<= n); with no
 *                            merges (n_merges 0) any text, piece or not
 *   vocab_encode_text(v, s, n, &pos, &ids, &cap)  the pieces of the text
 *                            s[0..n) from pos on, encoded into *ids (a
 *                            malloc'd array of *cap, grown when one piece
 *                            needs more) while they fit; advances pos and
 *                            returns the number of ids; call again until
 *                            pos reaches n
 *   vocab_encode_algo(v, s, n, ids, algo)  one piece by the named
 *                            algorithm, no caches: VOCAB_MERGE (tiktoken's
 *                            repeated lowest-rank merge) or VOCAB_BACKTRACK
 *                            (VOCAB_MERGE where v->backtrack is 0), so
 *                            that tests can hold one against the other
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
	uint32_t n_merges;          /* 0: every text encodes byte by byte,
				       whatever its pieces */
	uint64_t *tab;              /* bytes -> id (open addressing) */
	uint32_t tab_mask;
	uint64_t *tab_bits;         /* a bit per token's hash: maybe_token */
	/* (left, right) -> merged id, open addressing: where ids fit in
	 * pair_bits <= 21 bits (every vocabulary in use), one word per
	 * entry, (left << pb | right) << pb | id, so a probe is one load;
	 * wider ones keep keys (left << 32 | right) and ids apart. */
	uint64_t *pair;
	uint64_t *pair_key;
	uint32_t *pair_val;
	uint32_t pair_mask;
	unsigned pair_bits;
	uint32_t *byte_pair;        /* [x << 8 | y]: the merge of bytes x, y */
	/* The backtracking encoder's tables, built when every token is its
	 * own BPE (backtrack 1): each token's last merge (split_l, split_r;
	 * a byte is its own split), its longest proper prefix that is a
	 * token, and a trie of the tokens' bytes, edges hashed below the
	 * second byte. */
	int backtrack;
	uint32_t *split_l, *split_r;
	uint32_t *prefix;
	uint64_t *trie;             /* (node << 8 | byte) << 28 | child */
	uint32_t trie_mask;
	uint32_t n_nodes;           /* nodes below n_ids are those tokens */
	uint32_t root[256];         /* node of each first byte */
	uint32_t *root2;            /* [x << 8 | y]: node of x, y or UINT32_MAX */
	struct vocab_special special[VOCAB_MAX_SPECIALS];
	int n_special;
	void *map;                  /* the cached build the arrays lie in, */
	size_t map_len;             /* or NULL (vocab.c's vc_load) */
	uint64_t serial;            /* this load's number, unique in the process:
	                               what per-thread caches are keyed by */
};

void vocab_load(struct vocab *v, const char *path);
void vocab_free(struct vocab *v);
int vocab_builtin(const char *name);
char *vocab_locate(const char *explicit_path, int offline);
void vocab_load_for(struct vocab *v, const char *explicit_path, const char *tokenizer,
		    int offline);

/* id of exactly these bytes as one token, or UINT32_MAX */
uint32_t vocab_lookup(const struct vocab *v, const unsigned char *s, size_t n);
size_t vocab_encode(const struct vocab *v, const unsigned char *s, size_t n,
		    uint32_t *ids);
enum vocab_algo { VOCAB_MERGE, VOCAB_BACKTRACK };
size_t vocab_encode_algo(const struct vocab *v, const unsigned char *s, size_t n,
			 uint32_t *ids, enum vocab_algo algo);
size_t vocab_encode_text(const struct vocab *v, const unsigned char *s, size_t n,
			 size_t *pos, uint32_t **ids, size_t *cap);
/* The same into ids[0..cap), cap >= 4096, which is never grown: returns 0
 * and leaves *pos where it was when the next piece's ids may not fit. */
size_t vocab_encode_text_to(const struct vocab *v, const unsigned char *s, size_t n,
			    size_t *pos, uint32_t *ids, size_t cap);

static inline const unsigned char *vocab_token(const struct vocab *v,
					       uint32_t id, size_t *len)
{
	if (id >= v->n_ids || v->len[id] == 0)
		return NULL;
	*len = v->len[id];
	return v->blob + v->off[id];
}

#endif
