/* vocab: loading GPT-2 / tiktoken vocabularies (and the built-in byte
 * vocabulary) and the byte-pair merge.
 * The merge is tiktoken's: repeatedly join the adjacent pair whose joined
 * bytes have the lowest rank, the leftmost on a tie.  Pairs are looked up
 * by (left id, right id) in a table built once at load time.  Long pieces
 * go to the backtracking encoder of GitHub's bpe crate, which reaches the
 * same tokens without merging (see encode_backtrack); where a vocabulary
 * does not allow it, to a heap so that a 100 KB run stays O(n log n). */
#include "vocab.h"
#include "cache.h"
#include "err.h"
#include "http.h"
#include "io.h"
#include "json.h"
#include "unicode.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MAX_TOKEN_BYTES 4096
#define MAX_VOCAB_FILE (64u << 20)

/* Pieces are mostly under 16 bytes: hash those inline (two loads and a
 * multiply-mix), longer ones with XXH3.  A piece of up to 16 bytes is
 * keyed by two words and its length: its first 8 bytes and the rest,
 * each padded with zero bytes (the loads overlap or repeat bytes, but the
 * shifts and masks leave each byte once), so the piece cache compares
 * words; key_words_wide makes the same two words from two full loads
 * where 16 bytes may be read. */
static inline void key_words(const unsigned char *s, size_t n, uint64_t *pa,
			     uint64_t *pb)
{
	uint64_t a = 0, b = 0;

	if (n >= 8) {
		memcpy(&a, s, 8);
		if (n > 8) {
			memcpy(&b, s + n - 8, 8);
			b >>= 8 * (16 - n);
		}
	} else if (n >= 4) {
		uint32_t x, y;

		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		a = x | ((uint64_t)y >> (8 * (8 - n))) << 32;
	} else if (n) {
		a = ((uint64_t)s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16) &
		    ~(~0ull << (8 * n));
	}
	*pa = a;
	*pb = b;
}

/* key_words for 1 <= n <= 16 where s[0..16) may be read: no branch. */
static inline void key_words_wide(const unsigned char *s, size_t n, uint64_t *pa,
				  uint64_t *pb)
{
	uint64_t a, b;
	size_t lo = n < 8 ? n : 8, hi = n - lo;

	memcpy(&a, s, 8);
	memcpy(&b, s + 8, 8);
	*pa = a & ~0ull >> (8 * (8 - lo));
	*pb = hi ? b & ~0ull >> (8 * (8 - hi)) : 0;
}

static inline uint64_t hash_words(uint64_t a, uint64_t b, size_t n)
{
	a ^= 0x9E3779B97F4A7C15ULL * (n + 1);
	b ^= 0xC2B2AE3D27D4EB4FULL;
	{
		__uint128_t m = (__uint128_t)a * b;

		a = (uint64_t)m ^ (uint64_t)(m >> 64);
	}
	a *= 0xff51afd7ed558ccdULL;
	return a ^ (a >> 29);
}

static inline uint64_t hash_bytes(const unsigned char *s, size_t n)
{
	uint64_t a, b;

	if (n > 16)
		return XXH3_64bits(s, n);
	key_words(s, n, &a, &b);
	return hash_words(a, b, n);
}

/* The first and the last w bytes (w is 4 or 8) of a and b agree: for n
 * from w to 2w that is all of them, in two overlapping loads. */
static inline int ends_eq(const unsigned char *a, const unsigned char *b, size_t n,
			  size_t w)
{
	uint64_t x = 0, y = 0, x2 = 0, y2 = 0;

	memcpy(&x, a, w);
	memcpy(&y, b, w);
	memcpy(&x2, a + n - w, w);
	memcpy(&y2, b + n - w, w);
	return x == y && x2 == y2;
}

/* Equality of two short byte strings without a call to memcmp: two
 * overlapping loads cover any length from 4 to 32. */
static inline int bytes_eq(const unsigned char *a, const unsigned char *b, size_t n)
{
	if (n >= 8 && n <= 16)
		return ends_eq(a, b, n, 8);
	if (n >= 4 && n < 8)
		return ends_eq(a, b, n, 4);
	if (n > 16 && n <= 32)
		return ends_eq(a, b, 16, 8) && ends_eq(a + n - 16, b + n - 16, 16, 8);
	if (n && n < 4)
		return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
	return memcmp(a, b, n) == 0;
}

static uint64_t hash_pair(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

#define TAB_FILTER_BITS (1u << 13) /* words of the token filter */

/* Table entries are (high half of the hash << 32 | id), so most misses
 * are settled without touching the token bytes. */
static inline uint32_t lookup_hashed(const struct vocab *v, uint64_t h,
				     const unsigned char *s, size_t n)
{
	uint32_t i = (uint32_t)h & v->tab_mask, tag = (uint32_t)(h >> 32);
	uint64_t e;

	while ((e = v->tab[i]) != UINT64_MAX) {
		uint32_t id = (uint32_t)e;

		if ((uint32_t)(e >> 32) == tag && v->len[id] == n &&
		    bytes_eq(v->blob + v->off[id], s, n))
			return id;
		i = (i + 1) & v->tab_mask;
	}
	return UINT32_MAX;
}

/* Whether a token may hash to h: a bit per hash in 64 KB, which
 * stays in a core's cache where the table does not, so most pieces that
 * are not tokens (four in five of those the piece cache misses) are
 * settled without a load from the table. */
static inline int maybe_token(const struct vocab *v, uint64_t h)
{
	return v->tab_bits[h >> 17 & (TAB_FILTER_BITS - 1)] >> (h >> 11 & 63) & 1;
}

uint32_t vocab_lookup(const struct vocab *v, const unsigned char *s, size_t n)
{
	return lookup_hashed(v, hash_bytes(s, n), s, n);
}

static inline uint32_t pair_rank(const struct vocab *v, uint32_t a, uint32_t b)
{
	uint64_t k;
	uint32_t i;

	if (__builtin_expect(v->pair != NULL, 1)) {
		unsigned pb = v->pair_bits;

		k = (uint64_t)a << pb | b;
		i = (uint32_t)hash_pair(k) & v->pair_mask;
		for (;;) {
			uint64_t e = v->pair[i];

			if (e >> pb == k)
				return (uint32_t)e & (((uint32_t)1 << pb) - 1);
			if (e == UINT64_MAX)
				return UINT32_MAX;
			i = (i + 1) & v->pair_mask;
		}
	}
	k = (uint64_t)a << 32 | b;
	i = (uint32_t)hash_pair(k) & v->pair_mask;
	for (;;) {
		uint64_t got = v->pair_key[i];

		if (got == k)
			return v->pair_val[i];
		if (got == UINT64_MAX)
			return UINT32_MAX;
		i = (i + 1) & v->pair_mask;
	}
}

/* Token table under construction: ids may arrive in any order. */
struct builder {
	unsigned char *blob;
	size_t blen, bcap;
	uint64_t *off;
	uint32_t *len;
	uint32_t cap;           /* entries in off/len */
	uint32_t max_id;        /* one past the largest id seen */
	uint32_t count;
	const char *src;        /* file name for messages */
};

static void builder_add(struct builder *b, uint32_t id, const unsigned char *s,
			size_t n)
{
	if (id >= VOCAB_MAX_TOKENS)
		die("token id %u out of range (max %u): '%s'", id,
		    VOCAB_MAX_TOKENS - 1, b->src);
	if (n == 0 || n > MAX_TOKEN_BYTES)
		die("token %u has a bad length %zu: '%s'", id, n, b->src);
	if (id >= b->cap) {
		uint32_t nc = b->cap ? b->cap : 1024;

		while (nc <= id)
			nc *= 2;
		b->off = xrealloc(b->off, xmul(nc, sizeof *b->off));
		b->len = xrealloc(b->len, xmul(nc, sizeof *b->len));
		memset(b->len + b->cap, 0, (nc - b->cap) * sizeof *b->len);
		memset(b->off + b->cap, 0, (nc - b->cap) * sizeof *b->off);
		b->cap = nc;
	}
	if (b->len[id])
		die("token id %u appears twice: '%s'", id, b->src);
	if (b->blen + n > b->bcap) {
		b->bcap = (b->blen + n) * 2;
		b->blob = xrealloc(b->blob, b->bcap);
	}
	memcpy(b->blob + b->blen, s, n);
	b->off[id] = b->blen;
	b->len[id] = (uint32_t)n;
	b->blen += n;
	if (id + 1 > b->max_id)
		b->max_id = id + 1;
	b->count++;
}

static void add_special(struct vocab *v, const char *text, size_t n, uint32_t id)
{
	struct vocab_special *sp;

	if (v->n_special >= VOCAB_MAX_SPECIALS)
		die("too many special tokens");
	sp = &v->special[v->n_special++];
	sp->text = xmalloc(n + 1);
	memcpy(sp->text, text, n);
	sp->text[n] = '\0';
	sp->len = (uint32_t)n;
	sp->id = id;
	if (n == 13 && memcmp(text, "<|endoftext|>", 13) == 0)
		v->eot = id;
}

/* ---- the backtracking encoder's tables --------------------------------- */

#define TRIE_CHILD_BITS 28
#define TRIE_CHILD_MASK ((1u << TRIE_CHILD_BITS) - 1)

static inline uint32_t trie_child(const struct vocab *v, uint32_t node,
				  unsigned char c)
{
	uint64_t key = (uint64_t)node << 8 | c;
	uint32_t i = (uint32_t)hash_pair(key) & v->trie_mask;
	uint64_t e;

	while ((e = v->trie[i]) != UINT64_MAX) {
		if (e >> TRIE_CHILD_BITS == key)
			return (uint32_t)e & TRIE_CHILD_MASK;
		i = (i + 1) & v->trie_mask;
	}
	return UINT32_MAX;
}

/* Whether BPE of the bytes of a then b gives exactly a, b: undo the two
 * tokens' merges from the last one down, and at each step ask whether the
 * tokens that then meet at the boundary would have merged first.  The
 * left one's merge (rank a) beats a boundary merge of equal rank, the
 * right one's loses to it: tiktoken takes the leftmost of equal ranks.
 * limit is the rank a boundary merge must reach: UINT32_MAX when
 * encoding, the token a + b itself when asking whether it is a's and b's
 * merge. */
static int pair_ok(const struct vocab *v, uint32_t a, uint32_t b, uint32_t limit)
{
	for (;;) {
		uint32_t c = pair_rank(v, a, b);

		if (c < limit)
			return 0;
		if (a > b) {
			limit = a;
			a = v->split_r[a];
			if (a == limit) {
				limit = b + 1;
				b = v->split_l[b];
				if (b + 1 == limit)
					return 1;
			}
		} else {
			limit = b + 1;
			b = v->split_l[b];
			if (b + 1 == limit) {
				limit = a;
				a = v->split_r[a];
				if (a == limit)
					return 1;
			}
		}
	}
}

static void backtrack_free(struct vocab *v)
{
	free(v->split_l);
	free(v->split_r);
	free(v->prefix);
	free(v->trie);
	free(v->root2);
	v->root2 = NULL;
	v->split_l = v->split_r = v->prefix = NULL;
	v->trie = NULL;
	v->backtrack = 0;
}

/* The trie of all tokens' bytes.  A node that spells a token is numbered
 * by the token's id (vocab_lookup's, where two tokens share their bytes),
 * the others from n_ids up, so a node is a token exactly when it is below
 * n_ids and the encoder's walk needs no table to tell; root[c], the node
 * of byte c, is its token.  Returns 1 when two tokens have the same bytes,
 * else 0. */
static int trie_build(struct vocab *v, uint32_t max_id, size_t bytes)
{
	uint32_t id, nodes = v->n_ids, cap;
	int c, dup = 0;

	if ((uint64_t)bytes + v->n_ids >= TRIE_CHILD_MASK)
		die("vocabulary too large: %zu bytes of tokens", bytes);
	/* A token adds at most one edge a byte past its first. */
	for (cap = 1024; cap < bytes + bytes / 3; cap *= 2)
		;
	v->trie_mask = cap - 1;
	v->trie = xmalloc(xmul(cap, sizeof *v->trie));
	memset(v->trie, 0xff, cap * sizeof *v->trie);
	for (c = 0; c < 256; c++)
		v->root[c] = v->byte_id[c];
	for (id = 0; id < max_id; id++) {
		const unsigned char *s = v->blob + v->off[id];
		uint32_t n = v->len[id], k, node;

		if (!n)
			continue;
		node = v->root[s[0]];
		for (k = 1; k < n; k++) {
			uint32_t next = trie_child(v, node, s[k]);

			if (next == UINT32_MAX) {
				uint64_t key = (uint64_t)node << 8 | s[k];
				uint32_t i = (uint32_t)hash_pair(key) & v->trie_mask;

				while (v->trie[i] != UINT64_MAX)
					i = (i + 1) & v->trie_mask;
				next = vocab_lookup(v, s, k + 1);
				if (next == UINT32_MAX)
					next = nodes++;
				v->trie[i] = key << TRIE_CHILD_BITS | next;
			}
			node = next;
		}
		dup |= node != id;
	}
	v->n_nodes = nodes;
	return dup;
}

/* Each token's longest proper prefix token, and each token's last merge:
 * the longest prefix a, with the rest a token b, both of lower rank, whose
 * BPE is a, b.  A token without one is not its own BPE (tiktoken never
 * makes it); the greedy encoder would, so such a vocabulary keeps the
 * heap.  The trie is built (trie_build) and the prefixes found (vocab_finish,
 * on the same walk as the merges); splits[first[id]..first[id + 1]) are
 * id's splits (left << 32 | right) by growing prefix, or splits is NULL
 * when two tokens share their bytes and each prefix's suffix is looked up
 * instead. */
static void backtrack_build(struct vocab *v, uint32_t max_id, const uint64_t *splits,
			    const uint32_t *first)
{
	uint32_t id;

	v->backtrack = 0;
	if (v->n_merges == 0) {
		backtrack_free(v);
		return;
	}
	v->split_l = xmalloc(xmul(v->n_ids, sizeof *v->split_l));
	v->split_r = xmalloc(xmul(v->n_ids, sizeof *v->split_r));
	for (id = 0; id < max_id; id++) {
		const unsigned char *s = v->blob + v->off[id];
		uint32_t n = v->len[id], a = UINT32_MAX, b = UINT32_MAX, k;

		v->split_l[id] = v->split_r[id] = id;
		if (n <= 1)
			continue;
		if (splits) {
			/* id's splits into two tokens, longest prefix last */
			for (k = first[id + 1]; k-- > first[id];) {
				a = (uint32_t)(splits[k] >> 32);
				b = (uint32_t)splits[k];
				if (a < id && b < id && pair_ok(v, a, b, id))
					break;
				a = UINT32_MAX;
			}
		} else {
			for (a = v->prefix[id]; a != UINT32_MAX; a = v->prefix[a]) {
				b = vocab_lookup(v, s + v->len[a], n - v->len[a]);
				if (b != UINT32_MAX && a < id && b < id && pair_ok(v, a, b, id))
					break;
			}
		}
		if (a == UINT32_MAX) {
			backtrack_free(v);
			return;
		}
		v->split_l[id] = a;
		v->split_r[id] = b;
	}
	v->root2 = xmalloc(65536 * sizeof *v->root2);
	for (id = 0; id < 65536; id++)
		v->root2[id] = trie_child(v, v->root[id >> 8], id & 255);
	for (id = max_id; id < v->n_ids; id++) {
		v->prefix[id] = UINT32_MAX;
		v->split_l[id] = v->split_r[id] = id;
	}
	v->backtrack = 1;
}

/* Loads in this process: each vocabulary's serial. */
static uint64_t vocab_loads;

/* Builds the lookup tables once every mergeable token is known. */
static void vocab_finish(struct vocab *v, struct builder *b)
{
	uint32_t id, i, k, cap;
	int c;

	v->serial = __atomic_add_fetch(&vocab_loads, 1, __ATOMIC_RELAXED);

	/* Specials get ids too, so they decode; they are not mergeable. */
	for (c = 0; c < v->n_special; c++) {
		struct vocab_special *sp = &v->special[c];

		if (sp->id < b->cap && b->len[sp->id])
			die("special token %s reuses id %u: '%s'", sp->text,
			    sp->id, b->src);
	}
	v->n_ids = b->max_id;
	for (c = 0; c < v->n_special; c++)
		if (v->special[c].id + 1 > v->n_ids)
			v->n_ids = v->special[c].id + 1;
	if (v->n_ids > b->cap) {
		b->off = xrealloc(b->off, xmul(v->n_ids, sizeof *b->off));
		b->len = xrealloc(b->len, xmul(v->n_ids, sizeof *b->len));
		memset(b->len + b->cap, 0, (v->n_ids - b->cap) * sizeof *b->len);
		memset(b->off + b->cap, 0, (v->n_ids - b->cap) * sizeof *b->off);
		b->cap = v->n_ids;
	}
	v->blob = b->blob;
	v->off = b->off;
	v->len = b->len;

	for (cap = 1024; cap < b->count * 2u; cap *= 2)
		;
	v->tab_mask = cap - 1;
	v->tab = xmalloc(xmul(cap, sizeof *v->tab));
	memset(v->tab, 0xff, cap * sizeof *v->tab);
	v->tab_bits = xcalloc(TAB_FILTER_BITS, sizeof *v->tab_bits);
	for (id = 0; id < b->max_id; id++) {
		uint64_t h;

		if (!v->len[id])
			continue;
		h = hash_bytes(v->blob + v->off[id], v->len[id]);
		i = (uint32_t)h & v->tab_mask;
		while (v->tab[i] != UINT64_MAX)
			i = (i + 1) & v->tab_mask;
		v->tab[i] = (h >> 32) << 32 | id;
		v->tab_bits[h >> 17 & (TAB_FILTER_BITS - 1)] |= 1ull << (h >> 11 & 63);
	}
	for (c = 0; c < 256; c++) {
		unsigned char ch = (unsigned char)c;

		v->byte_id[c] = vocab_lookup(v, &ch, 1);
		if (v->byte_id[c] == UINT32_MAX)
			die("vocabulary has no token for byte 0x%02x: '%s'", c, b->src);
	}
	/* Every way of splitting a token into two tokens is a merge: found
	 * once, kept in a list, then hashed into a table sized to the count,
	 * small enough to stay in cache. */
	{
		uint64_t *keys = NULL;
		uint32_t *vals = NULL, used = 0, lcap = 0;

		/* A token's prefixes that are tokens lie on its trie path,
		 * as the nodes below n_ids (vocab_lookup's answers). */
		int dup = trie_build(v, b->max_id, b->blen);
		uint32_t *first = xmalloc(xmul((size_t)b->max_id + 1, sizeof *first));

		/* Each token's longest proper prefix token, for the
		 * backtracking encoder, on the way: the last one on the path.
		 * All are found after the whole trie is built: a prefix token
		 * may have a higher id than the token. */
		v->prefix = xmalloc(xmul(v->n_ids, sizeof *v->prefix));
		for (id = 0; id < b->max_id; id++) {
			const unsigned char *s = v->blob + v->off[id];
			uint32_t n = v->len[id], node = n ? v->root[s[0]] : 0;

			first[id] = used;
			v->prefix[id] = UINT32_MAX;
			for (k = 1; k < n; node = trie_child(v, node, s[k]), k++) {
				uint32_t l = node, r;

				if (l >= v->n_ids)
					continue;
				v->prefix[id] = l;
				r = vocab_lookup(v, s + k, n - k);
				if (r == UINT32_MAX)
					continue;
				if (used == lcap) {
					lcap = lcap ? 2 * lcap : 65536;
					keys = xrealloc(keys, xmul(lcap, sizeof *keys));
					vals = xrealloc(vals, xmul(lcap, sizeof *vals));
				}
				keys[used] = (uint64_t)l << 32 | r;
				vals[used++] = id;
			}
		}
		first[b->max_id] = used;
		for (cap = 1024; cap < (uint64_t)used * 2; cap *= 2)
			;
		v->pair_mask = cap - 1;
		for (v->pair_bits = 1; b->max_id > 1u << v->pair_bits; v->pair_bits++)
			;
		if (3 * v->pair_bits <= 63) {
			unsigned pb = v->pair_bits;

			v->pair = xmalloc(xmul(cap, sizeof *v->pair));
			memset(v->pair, 0xff, cap * sizeof *v->pair);
			for (k = 0; k < used; k++) {
				uint64_t pk = (keys[k] >> 32) << pb | (uint32_t)keys[k];

				i = (uint32_t)hash_pair(pk) & v->pair_mask;
				while (v->pair[i] != UINT64_MAX)
					i = (i + 1) & v->pair_mask;
				v->pair[i] = pk << pb | vals[k];
			}
		} else {
			v->pair_key = xmalloc(xmul(cap, sizeof *v->pair_key));
			v->pair_val = xmalloc(xmul(cap, sizeof *v->pair_val));
			memset(v->pair_key, 0xff, cap * sizeof *v->pair_key);
			for (k = 0; k < used; k++) {
				i = (uint32_t)hash_pair(keys[k]) & v->pair_mask;
				while (v->pair_key[i] != UINT64_MAX)
					i = (i + 1) & v->pair_mask;
				v->pair_key[i] = keys[k];
				v->pair_val[i] = vals[k];
			}
		}
		free(vals);
		v->n_merges = used;
		/* Every piece's first merges join two bytes: one load each,
		 * from a 256 KB table that stays in cache, instead of a hashed
		 * probe. */
		v->byte_pair = xmalloc(65536 * sizeof *v->byte_pair);
		for (i = 0; i < 65536; i++)
			v->byte_pair[i] = pair_rank(v, v->byte_id[i >> 8], v->byte_id[i & 255]);
		backtrack_build(v, b->max_id, dup ? NULL : keys, first);
		free(keys);
		free(first);
	}
	/* Specials' bytes, stored after the table so lookups never find them. */
	for (c = 0; c < v->n_special; c++) {
		struct vocab_special *sp = &v->special[c];
		size_t n = sp->len;

		if (b->blen + n > b->bcap) {
			b->bcap = (b->blen + n) * 2;
			v->blob = b->blob = xrealloc(b->blob, b->bcap);
		}
		memcpy(b->blob + b->blen, sp->text, n);
		v->off[sp->id] = b->blen;
		v->len[sp->id] = (uint32_t)n;
		b->blen += n;
	}
}

/* ---- encoder.json + vocab.bpe ------------------------------------------ */

/* GPT-2 stores token bytes as printable characters: bytes that are not
 * printable Latin-1 are shifted to U+0100 and up, in byte order. */
static void gpt2_unicode_to_byte(int map[512])
{
	int b, n = 0;

	for (b = 0; b < 512; b++)
		map[b] = -1;
	for (b = 0; b < 256; b++) {
		int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
				(b >= 0xAE && b <= 0xFF);

		if (printable)
			map[b] = b;
		else
			map[256 + n++] = b;
	}
}

struct gpt2_load {
	struct vocab *v;
	struct builder *b;
	const int *map;
	const char *path;
};

/* One member of encoder.json: a token's printable form and its id. */
static int gpt2_token(void *ctx, const char *key, size_t klen, const struct json *val)
{
	struct gpt2_load *g = ctx;
	const unsigned char *k = (const unsigned char *)key;
	unsigned char tok[MAX_TOKEN_BYTES];
	double idv = val->num;
	size_t i, n = 0;
	uint32_t id;

	if (val->type != JSON_NUM || idv < 0 || idv >= VOCAB_MAX_TOKENS ||
	    idv != (double)(uint32_t)idv)
		die("token id of '%.*s' is not a whole number below %u: '%s'",
		    klen > 64 ? 64 : (int)klen, key, VOCAB_MAX_TOKENS, g->path);
	id = (uint32_t)idv;
	if (klen == 13 && memcmp(key, "<|endoftext|>", 13) == 0) {
		add_special(g->v, key, klen, id);
		return 0;
	}
	for (i = 0; i < klen; n++) {
		uint32_t cp;

		i += utf8_next(k + i, klen - i, &cp);
		if (cp >= 512 || g->map[cp] < 0)
			die("character U+%04X is not a GPT-2 byte: '%s'", cp, g->path);
		if (n >= MAX_TOKEN_BYTES)
			die("token too long: '%s'", g->path);
		tok[n] = (unsigned char)g->map[cp];
	}
	builder_add(g->b, id, tok, n);
	return 0;
}

static void load_gpt2_dir(struct vocab *v, const char *dir)
{
	char path[4096], err[128];
	unsigned char *buf;
	size_t len, lines = 0, i;
	int map[512];
	struct builder b = { 0 };
	struct gpt2_load g = { v, &b, map, path };

	gpt2_unicode_to_byte(map);
	snprintf(path, sizeof path, "%s/encoder.json", dir);
	buf = io_read_file(path, MAX_VOCAB_FILE, &len);
	b.src = path;
	if (json_each_member((const char *)buf, len, gpt2_token, &g, err, sizeof err) != 0)
		die("malformed JSON (%s): '%s'", err, path);
	free(buf);
	if (b.count == 0)
		die("expected an object of tokens: '%s'", path);

	/* vocab.bpe must agree: one merge per token beyond the 256 bytes. */
	snprintf(path, sizeof path, "%s/vocab.bpe", dir);
	buf = io_read_file(path, MAX_VOCAB_FILE, &len);
	for (i = 0; i < len; i++) {
		size_t e = i;

		while (e < len && buf[e] != '\n')
			e++;
		if (e > i && memcmp(buf + i, "#version", e - i < 8 ? e - i : 8) != 0)
			lines++;
		i = e;
	}
	free(buf);
	if (lines + 256 != b.count)
		die("vocab.bpe has %zu merges but encoder.json %u tokens: '%s'",
		    lines, b.count, dir);
	snprintf(v->name, sizeof v->name, "gpt2");
	v->pattern = PRETOK_GPT2;
	vocab_finish(v, &b);
}

/* ---- tiktoken rank files ----------------------------------------------- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Decodes standard base64 with padding; returns -1 on bad input. */
static long b64decode(const unsigned char *s, size_t n, unsigned char *out,
		      size_t cap)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0;

	if (n % 4)
		return -1;
	for (i = 0; i < n; i++) {
		int c = s[i], d;

		if (c == '=') {
			if (i + 2 < n)
				return -1;
			pad++;
			continue;
		}
		if (pad || (d = b64val(c)) < 0)
			return -1;
		acc = acc << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)o;
}

static void load_meta(struct vocab *v, const char *path)
{
	char mpath[4096], line[1024];
	FILE *f;
	int lineno = 0;

	snprintf(mpath, sizeof mpath, "%s.meta", path);
	f = fopen(mpath, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *key = line, *val, *nl = strchr(line, '\n');

		lineno++;
		if (nl)
			*nl = '\0';
		if (!*line || *line == '#')
			continue;
		val = strchr(line, ' ');
		if (!val)
			die("%s:%d: expected 'key value'", mpath, lineno);
		*val++ = '\0';
		if (strcmp(key, "name") == 0) {
			snprintf(v->name, sizeof v->name, "%s", val);
		} else if (strcmp(key, "pattern") == 0) {
			int p = pretok_parse(val);

			if (p < 0)
				die("%s:%d: unknown pattern '%s'", mpath, lineno, val);
			v->pattern = (enum pretok_pattern)p;
		} else if (strcmp(key, "special") == 0) {
			char *sp = strrchr(val, ' ');
			char *end;
			unsigned long id;

			if (!sp)
				die("%s:%d: expected 'special TEXT ID'", mpath, lineno);
			*sp++ = '\0';
			id = strtoul(sp, &end, 10);
			if (*end || id >= VOCAB_MAX_TOKENS || !*val)
				die("%s:%d: bad special token", mpath, lineno);
			add_special(v, val, strlen(val), (uint32_t)id);
		} else {
			die("%s:%d: unknown key '%s'", mpath, lineno, key);
		}
	}
	fclose(f);
}

static void load_tiktoken(struct vocab *v, const char *path)
{
	unsigned char *buf, tok[MAX_TOKEN_BYTES];
	size_t len, i, lineno = 0;
	struct builder b = { 0 };
	const char *base = strrchr(path, '/');
	char *dot;

	b.src = path;
	base = base ? base + 1 : path;
	snprintf(v->name, sizeof v->name, "%s", base);
	dot = strrchr(v->name, '.');
	if (dot && dot != v->name)
		*dot = '\0';
	v->pattern = PRETOK_GPT2;
	buf = io_read_file(path, MAX_VOCAB_FILE, &len);
	for (i = 0; i < len;) {
		size_t e = i, sp;
		long n;
		uint64_t rank = 0;

		while (e < len && buf[e] != '\n')
			e++;
		lineno++;
		if (e == i) {
			i = e + 1;
			continue;
		}
		for (sp = i; sp < e && buf[sp] != ' '; sp++)
			;
		if (sp == e || sp + 1 == e)
			die("%s:%zu: expected 'base64 rank'", path, lineno);
		n = b64decode(buf + i, sp - i, tok, sizeof tok);
		if (n <= 0)
			die("%s:%zu: bad base64 token", path, lineno);
		for (sp++; sp < e; sp++) {
			if (buf[sp] < '0' || buf[sp] > '9' || rank >= VOCAB_MAX_TOKENS)
				die("%s:%zu: bad rank", path, lineno);
			rank = rank * 10 + (uint64_t)(buf[sp] - '0');
		}
		builder_add(&b, (uint32_t)rank, tok, (size_t)n);
		i = e + 1;
	}
	free(buf);
	if (b.count == 0)
		die("empty vocabulary: '%s'", path);
	load_meta(v, path);
	if (v->eot == UINT32_MAX && v->n_special == 0)
		add_special(v, "<|endoftext|>", 13, b.max_id);
	vocab_finish(v, &b);
}

/* ---- built-in vocabularies --------------------------------------------- */

/* "bytes": a byte-level model's vocabulary (the char-level LSTM's), where
 * the id of a byte is the byte and <|endoftext|> comes after them. */
static void load_bytes(struct vocab *v)
{
	struct builder b = { 0 };
	int c;

	b.src = "bytes";
	for (c = 0; c < 256; c++) {
		unsigned char ch = (unsigned char)c;

		builder_add(&b, (uint32_t)c, &ch, 1);
	}
	snprintf(v->name, sizeof v->name, "bytes");
	v->pattern = PRETOK_GPT2;       /* unused: no merges */
	add_special(v, "<|endoftext|>", 13, 256);
	vocab_finish(v, &b);
}

static const struct {
	const char *name;
	void (*load)(struct vocab *v);
} builtins[] = {
	{ "bytes", load_bytes },
};

int vocab_builtin(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof builtins / sizeof builtins[0]; i++)
		if (strcmp(name, builtins[i].name) == 0)
			return 1;
	return 0;
}

/* ---- the compiled vocabulary cache --------------------------------------- */

/* Building a large vocabulary's tables (the JSON, the merges, the trie,
 * the splits) costs tens of milliseconds, scattered over megabytes: more
 * than a short input's encoding, and at -j N the part that does not run
 * in parallel.  So a vocabulary of VC_MIN_MERGES or more merges, once built,
 * is kept as one file, ROOT/vocab/HASH.bin (ROOT: cache_root), and later
 * loads of the same sources map it.  HASH is of the source files' bytes
 * and this format's version, so a changed file makes another name.  A
 * file is taken only when it is the caller's, not writable by others, of
 * the size its header says, every section inside it and of the length
 * the header's counts give, its XXH3 sum matching, and every id and node
 * it holds in range (vc_check), so that a damaged file costs a rebuild,
 * never a stray read.  $GPT_VOCAB_CACHE=0 turns the cache off. */
#define VC_MAGIC "GPTVOC\0\2"
#define VC_MIN_MERGES 16384

enum { VC_BLOB, VC_OFF, VC_LEN, VC_TAB, VC_TABBITS, VC_PAIR, VC_PAIRKEY, VC_PAIRVAL,
       VC_BYTEPAIR, VC_SPLITL, VC_SPLITR, VC_PREFIX, VC_TRIE, VC_ROOT2,
       VC_SPECIAL, VC_NSEC };

struct vc_head {
	char magic[8];
	uint64_t key, sum, size;
	char name[64];
	uint32_t pattern, n_ids, eot, n_merges, tab_mask, pair_mask, pair_bits,
		 trie_mask, n_nodes, backtrack, n_special, pad;
	uint32_t byte_id[256], root[256];
	uint64_t off[VC_NSEC], len[VC_NSEC];
};

static int vc_enabled(void)
{
	const char *e = getenv("GPT_VOCAB_CACHE");

	return !e || strcmp(e, "0") != 0;
}

/* The key of a vocabulary's sources: each file's length and bytes. */
static int vc_key(const char *path, uint64_t *key)
{
	char p[4096];
	const char *files[2];
	struct stat st;
	XXH3_state_t *x;
	int nf = 0, i;

	if (stat(path, &st) != 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		snprintf(p, sizeof p, "%s/encoder.json", path);
		files[nf++] = xstrdup(p);
		snprintf(p, sizeof p, "%s/vocab.bpe", path);
		files[nf++] = xstrdup(p);
	} else {
		files[nf++] = xstrdup(path);
		snprintf(p, sizeof p, "%s.meta", path);
		files[nf++] = xstrdup(p);
	}
	x = XXH3_createState();
	if (!x)
		die("out of memory");
	XXH3_64bits_reset(x);
	XXH3_64bits_update(x, VC_MAGIC, 8);
	XXH3_64bits_update(x, S_ISDIR(st.st_mode) ? "dir" : "file", 4);
	for (i = 0; i < nf; i++) {
		FILE *f = fopen(files[i], "rb");
		unsigned char buf[65536];
		uint64_t total = 0;
		size_t got;

		if (f) {
			while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
				XXH3_64bits_update(x, buf, got);
				total += got;
			}
			fclose(f);
		}
		XXH3_64bits_update(x, &total, sizeof total);
		free((void *)files[i]);
	}
	*key = XXH3_64bits_digest(x);
	XXH3_freeState(x);
	return 0;
}

static char *vc_path(uint64_t key, int make)
{
	char *root = cache_root_try(NULL), *dir, *path;

	if (!root)
		return NULL;
	dir = xasprintf("%s/vocab", root);
	free(root);
	if (make && io_try_mkdirs(dir) != 0) {
		free(dir);
		return NULL;
	}
	path = xasprintf("%s/%016llx.bin", dir, (unsigned long long)key);
	free(dir);
	return path;
}

/* The sections of v: where each array is and its length in bytes. */
static void vc_sections(const struct vocab *v, const struct vc_head *h, void ***ptr,
			uint64_t *len)
{
	uint64_t n = h->n_ids;
	int bt = h->backtrack != 0, packed = h->pair_bits <= 21;

	memset(len, 0, VC_NSEC * sizeof *len);
	ptr[VC_BLOB] = (void **)&v->blob;
	ptr[VC_OFF] = (void **)&v->off, len[VC_OFF] = n * 8;
	ptr[VC_LEN] = (void **)&v->len, len[VC_LEN] = n * 4;
	ptr[VC_TAB] = (void **)&v->tab, len[VC_TAB] = ((uint64_t)h->tab_mask + 1) * 8;
	ptr[VC_TABBITS] = (void **)&v->tab_bits, len[VC_TABBITS] = TAB_FILTER_BITS * 8;
	ptr[VC_PAIR] = (void **)&v->pair;
	ptr[VC_PAIRKEY] = (void **)&v->pair_key;
	ptr[VC_PAIRVAL] = (void **)&v->pair_val;
	len[packed ? VC_PAIR : VC_PAIRKEY] = ((uint64_t)h->pair_mask + 1) * 8;
	if (!packed)
		len[VC_PAIRVAL] = ((uint64_t)h->pair_mask + 1) * 4;
	ptr[VC_BYTEPAIR] = (void **)&v->byte_pair, len[VC_BYTEPAIR] = 65536 * 4;
	ptr[VC_SPLITL] = (void **)&v->split_l, len[VC_SPLITL] = bt ? n * 4 : 0;
	ptr[VC_SPLITR] = (void **)&v->split_r, len[VC_SPLITR] = bt ? n * 4 : 0;
	ptr[VC_PREFIX] = (void **)&v->prefix, len[VC_PREFIX] = bt ? n * 4 : 0;
	ptr[VC_TRIE] = (void **)&v->trie, len[VC_TRIE] = bt ? ((uint64_t)h->trie_mask + 1) * 8 : 0;
	ptr[VC_ROOT2] = (void **)&v->root2, len[VC_ROOT2] = bt ? 65536 * 4 : 0;
	ptr[VC_SPECIAL] = NULL;
}

static int vc_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Keeps v in the cache, quietly not when it cannot: the file appears
 * whole (renamed into place) or not at all. */
static void vc_save(const struct vocab *v, uint64_t key)
{
	static const unsigned char zeros[64];
	struct vc_head h;
	void **ptr[VC_NSEC];
	unsigned char *special = NULL;
	uint64_t pos = sizeof h, blob_len = 0, sp_len = 0, id;
	XXH3_state_t *x;
	char *path, *tmp;
	int fd, s, ok = 0;

	if (v->n_merges < VC_MIN_MERGES || !vc_enabled() ||
	    !(path = vc_path(key, 1)))
		return;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, VC_MAGIC, 8);
	h.key = key;
	memcpy(h.name, v->name, sizeof h.name);
	h.pattern = (uint32_t)v->pattern;
	h.n_ids = v->n_ids, h.eot = v->eot, h.n_merges = v->n_merges;
	h.tab_mask = v->tab_mask, h.pair_mask = v->pair_mask;
	h.pair_bits = v->pair ? v->pair_bits : 32;
	h.trie_mask = v->trie_mask, h.n_nodes = v->n_nodes;
	h.backtrack = (uint32_t)v->backtrack, h.n_special = (uint32_t)v->n_special;
	memcpy(h.byte_id, v->byte_id, sizeof h.byte_id);
	memcpy(h.root, v->root, sizeof h.root);
	for (id = 0; id < v->n_ids; id++)
		if (v->len[id] && v->off[id] + v->len[id] > blob_len)
			blob_len = v->off[id] + v->len[id];
	for (s = 0; s < v->n_special; s++)
		sp_len += 8 + v->special[s].len;
	special = xmalloc(sp_len + 1);
	for (sp_len = 0, s = 0; s < v->n_special; s++) {
		memcpy(special + sp_len, &v->special[s].id, 4);
		memcpy(special + sp_len + 4, &v->special[s].len, 4);
		memcpy(special + sp_len + 8, v->special[s].text, v->special[s].len);
		sp_len += 8 + v->special[s].len;
	}
	vc_sections(v, &h, ptr, h.len);
	h.len[VC_BLOB] = blob_len;
	h.len[VC_SPECIAL] = sp_len;
	for (s = 0; s < VC_NSEC; s++) {
		pos = (pos + 63) & ~(uint64_t)63;
		h.off[s] = pos;
		pos += h.len[s];
	}
	h.size = pos;
	x = XXH3_createState();
	if (!x)
		die("out of memory");
	XXH3_64bits_reset(x);
	for (s = 0; s < VC_NSEC; s++)
		XXH3_64bits_update(x, s == VC_SPECIAL ? special : *ptr[s], h.len[s]);
	h.sum = XXH3_64bits_digest(x);
	XXH3_freeState(x);
	tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ok = vc_write_all(fd, &h, sizeof h) == 0;
		for (pos = sizeof h, s = 0; ok && s < VC_NSEC; s++) {
			ok = vc_write_all(fd, zeros, h.off[s] - pos) == 0 &&
			     vc_write_all(fd, s == VC_SPECIAL ? special : *ptr[s], h.len[s]) == 0;
			pos = h.off[s] + h.len[s];
		}
		ok = close(fd) == 0 && ok && rename(tmp, path) == 0;
		if (!ok)
			unlink(tmp);
	}
	free(tmp);
	free(path);
	free(special);
}

/* Whether the mapped arrays of v keep every walk in bounds: ids below
 * n_ids, token bytes inside the blob, nodes below n_nodes, a free slot in
 * each open-addressed table, splits and prefixes shorter than their
 * token. */
static int vc_check(const struct vocab *v, uint64_t blob_len)
{
	uint32_t n = v->n_ids, i;
	uint64_t id, free_slots;
	int bad = 0;

	for (i = 0; i < 256; i++)
		if (v->byte_id[i] >= n || (v->backtrack && v->root[i] != v->byte_id[i]))
			return 0;
	for (id = 0; id < n; id++)
		if (v->len[id] > MAX_TOKEN_BYTES || (v->len[id] &&
		    (v->off[id] > blob_len || v->len[id] > blob_len - v->off[id])))
			return 0;
	/* The tables' scans count and flag without a branch on each entry:
	 * they read every byte of the file, and are half of the startup. */
	for (free_slots = 0, bad = 0, id = 0; id <= v->tab_mask; id++) {
		uint64_t e = v->tab[id];

		free_slots += e == UINT64_MAX;
		bad |= (e != UINT64_MAX) & ((uint32_t)e >= n);
	}
	if (!free_slots || bad)
		return 0;
	if (v->pair) {
		uint64_t vmask = (1ull << v->pair_bits) - 1;

		for (free_slots = 0, id = 0; id <= v->pair_mask; id++) {
			uint64_t e = v->pair[id];

			free_slots += e == UINT64_MAX;
			bad |= (e != UINT64_MAX) & ((e & vmask) >= n);
		}
	} else {
		for (free_slots = 0, id = 0; id <= v->pair_mask; id++) {
			uint64_t e = v->pair_key[id];

			free_slots += e == UINT64_MAX;
			bad |= (e != UINT64_MAX) & (v->pair_val[id] >= n);
		}
	}
	if (!free_slots || bad)
		return 0;
	for (i = 0; i < 65536; i++)
		bad |= (v->byte_pair[i] != UINT32_MAX) & (v->byte_pair[i] >= n);
	if (bad)
		return 0;
	if (!v->backtrack)
		return 1;
	for (id = 0; id < n; id++) {
		uint32_t l = v->split_l[id], r = v->split_r[id], p = v->prefix[id];

		if (l > id || r > id || (l == id) != (r == id) ||
		    (l < id && v->len[l] + v->len[r] != v->len[id]) ||
		    (l < id && (!v->len[l] || !v->len[r])) ||
		    (p != UINT32_MAX && (p >= n || !v->len[p] || v->len[p] >= v->len[id])))
			return 0;
	}
	/* Any node below n_nodes is safe to walk to: the encoder takes a
	 * token's length from the walk's depth and checks the others' */
	if (v->n_nodes < n)
		return 0;
	for (free_slots = 0, id = 0; id <= v->trie_mask; id++) {
		uint64_t e = v->trie[id];

		free_slots += e == UINT64_MAX;
		bad |= (e != UINT64_MAX) & (((e & TRIE_CHILD_MASK) >= v->n_nodes) |
					   (e >> TRIE_CHILD_BITS >> 8 >= v->n_nodes));
	}
	for (i = 0; i < 65536; i++)
		bad |= (v->root2[i] != UINT32_MAX) & (v->root2[i] >= v->n_nodes);
	return free_slots > 0 && !bad;
}

/* Maps the cached build of v's sources, if there is a sound one. */
static int vc_load(struct vocab *v, uint64_t key)
{
	struct vc_head h;
	struct stat st;
	void **ptr[VC_NSEC];
	uint64_t want[VC_NSEC], sum;
	unsigned char *map;
	char *path;
	int fd, s;
	size_t p;

	if (!vc_enabled() || !(path = vc_path(key, 0)))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || (uint64_t)st.st_size < sizeof h ||
	    (uint64_t)st.st_size > (1ull << 36)) {
		close(fd);
		return 0;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return 0;
	memcpy(&h, map, sizeof h);
	if (memcmp(h.magic, VC_MAGIC, 8) != 0 || h.key != key ||
	    h.size != (uint64_t)st.st_size || h.n_ids < 257 || h.n_ids > VOCAB_MAX_TOKENS ||
	    !h.n_merges || h.pattern > PRETOK_GPT4 ||
	    h.n_special > VOCAB_MAX_SPECIALS || (h.tab_mask & (h.tab_mask + 1)) ||
	    (h.pair_mask & (h.pair_mask + 1)) || (h.trie_mask & (h.trie_mask + 1)) ||
	    h.tab_mask >= 1u << 30 || h.pair_mask >= 1u << 30 || h.trie_mask >= 1u << 30 ||
	    (h.pair_bits > 21 && h.pair_bits != 32) || h.pair_bits == 0 ||
	    h.n_nodes > TRIE_CHILD_MASK || h.backtrack > 1 || h.name[sizeof h.name - 1])
		goto bad;
	vc_sections(v, &h, ptr, want);
	for (s = 0; s < VC_NSEC; s++) {
		if (s != VC_BLOB && s != VC_SPECIAL && h.len[s] != want[s])
			goto bad;
		if (h.off[s] % 8 || h.off[s] < sizeof h || h.off[s] > h.size ||
		    h.len[s] > h.size - h.off[s])
			goto bad;
	}
	if (!h.len[VC_BLOB])
		goto bad;
	{
		XXH3_state_t *x = XXH3_createState();

		if (!x)
			die("out of memory");
		XXH3_64bits_reset(x);
		for (s = 0; s < VC_NSEC; s++)
			XXH3_64bits_update(x, map + h.off[s], h.len[s]);
		sum = XXH3_64bits_digest(x);
		XXH3_freeState(x);
	}
	if (sum != h.sum)
		goto bad;
	memset(v, 0, sizeof *v);
	for (s = 0; s < VC_NSEC; s++)
		if (ptr[s])
			*ptr[s] = h.len[s] ? (void *)(map + h.off[s]) : NULL;
	memcpy(v->name, h.name, sizeof v->name);
	v->pattern = (enum pretok_pattern)h.pattern;
	v->n_ids = h.n_ids, v->eot = h.eot, v->n_merges = h.n_merges;
	v->tab_mask = h.tab_mask, v->pair_mask = h.pair_mask, v->pair_bits = h.pair_bits;
	v->trie_mask = h.trie_mask, v->n_nodes = h.n_nodes, v->backtrack = (int)h.backtrack;
	memcpy(v->byte_id, h.byte_id, sizeof v->byte_id);
	memcpy(v->root, h.root, sizeof v->root);
	if (!vc_check(v, h.len[VC_BLOB]))
		goto bad;
	for (p = 0, s = 0; s < (int)h.n_special; s++) {
		const unsigned char *r = map + h.off[VC_SPECIAL] + p;
		uint32_t id, len;

		if (h.len[VC_SPECIAL] - p < 8)
			goto bad_sp;
		memcpy(&id, r, 4);
		memcpy(&len, r + 4, 4);
		if (len == 0 || len > MAX_TOKEN_BYTES || len > h.len[VC_SPECIAL] - p - 8 ||
		    id >= v->n_ids)
			goto bad_sp;
		v->special[s].text = xmalloc(len + 1);
		memcpy(v->special[s].text, r + 8, len);
		v->special[s].text[len] = '\0';
		v->special[s].len = len;
		v->special[s].id = id;
		v->n_special = s + 1;
		p += 8 + len;
	}
	if (p != h.len[VC_SPECIAL] || (v->eot != UINT32_MAX && v->eot >= v->n_ids))
		goto bad_sp;
	v->map = map;
	v->map_len = h.size;
	v->serial = __atomic_add_fetch(&vocab_loads, 1, __ATOMIC_RELAXED);
	return 1;
bad_sp:
	for (s = 0; s < v->n_special; s++)
		free(v->special[s].text);
bad:
	munmap(map, (size_t)st.st_size);
	memset(v, 0, sizeof *v);
	v->eot = UINT32_MAX;
	return 0;
}

void vocab_load(struct vocab *v, const char *path)
{
	struct stat st;
	uint64_t key;
	size_t i;
	int keyed;

	memset(v, 0, sizeof *v);
	v->eot = UINT32_MAX;
	for (i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
		if (strcmp(path, builtins[i].name) == 0) {
			builtins[i].load(v);
			return;
		}
	keyed = vc_key(path, &key) == 0;
	if (keyed && vc_load(v, key))
		return;
	if (stat(path, &st) != 0)
		die_errno("cannot open vocabulary '%s'", path);
	if (S_ISDIR(st.st_mode))
		load_gpt2_dir(v, path);
	else
		load_tiktoken(v, path);
	if (keyed)
		vc_save(v, key);
}

void vocab_free(struct vocab *v)
{
	int i;

	if (v->map) {
		for (i = 0; i < v->n_special; i++)
			free(v->special[i].text);
		munmap(v->map, v->map_len);
		memset(v, 0, sizeof *v);
		return;
	}
	free(v->blob);
	free(v->off);
	free(v->len);
	free(v->tab);
	free(v->tab_bits);
	free(v->pair);
	free(v->pair_key);
	free(v->pair_val);
	free(v->byte_pair);
	backtrack_free(v);
	for (i = 0; i < v->n_special; i++)
		free(v->special[i].text);
	memset(v, 0, sizeof *v);
}

static int is_gpt2_dir(const char *dir)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof p, "%s/encoder.json", dir);
	if (stat(p, &st) != 0)
		return 0;
	snprintf(p, sizeof p, "%s/vocab.bpe", dir);
	return stat(p, &st) == 0;
}

/* ROOT/gpt2 in the download cache.  When there is no cache folder: NULL,
 * or with must set, die saying so. */
static char *vocab_cache_dir(int must)
{
	char *root = must ? cache_root(NULL) : cache_root_try(NULL), *dir;

	if (!root)
		return NULL;
	dir = xasprintf("%s/gpt2", root);
	free(root);
	return dir;
}

/* OpenAI's published GPT-2 files and their SHA-256 sums. */
static const struct {
	const char *name, *sha256;
} gpt2_files[] = {
	{ "vocab.bpe", "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5" },
	{ "encoder.json", "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783" },
};

/* Downloads the two files (checked) and installs them in dir atomically. */
static void download_gpt2(char *dir)
{
	const char *base = getenv("GPT_VOCAB_URL");
	size_t i;

	if (!base || !*base)
		base = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main";
	io_mkdirs(dir);
	for (i = 0; i < sizeof gpt2_files / sizeof gpt2_files[0]; i++) {
		char url[4096], dst[4096];
		struct http_opts ho = { 0 };
		struct afile a;
		unsigned char *data;
		size_t len;
		char *got;

		snprintf(url, sizeof url, "%s/%s", base, gpt2_files[i].name);
		ho.sha256 = gpt2_files[i].sha256;
		ho.label = gpt2_files[i].name;
		got = http_fetch(url, &ho);
		data = io_read_file(got, MAX_VOCAB_FILE, &len);
		snprintf(dst, sizeof dst, "%s/%s", dir, gpt2_files[i].name);
		afile_open(&a, dst);
		out_write(&a.out, data, len);
		afile_commit(&a);
		free(data);
		free(got);
	}
}

char *vocab_locate(const char *explicit_path, int offline)
{
	const char *env = getenv("GPT_VOCAB");
	char *cache;

	if (explicit_path)
		return xstrdup(explicit_path);
	if (env && *env)
		return xstrdup(env);
	cache = vocab_cache_dir(0);
	if (cache && is_gpt2_dir(cache))
		return cache;
#ifdef GPT_SHARE_DIR
	if (is_gpt2_dir(GPT_SHARE_DIR "/gpt2")) {
		free(cache);
		return xstrdup(GPT_SHARE_DIR "/gpt2");
	}
#endif
	if (cache_offline(offline)) {
		if (!cache)
			die("GPT-2 vocabulary not found and downloads are off; set GPT_VOCAB");
		die("GPT-2 vocabulary not found and downloads are off; put encoder.json and vocab.bpe in '%s' or set GPT_VOCAB",
		    cache);
	}
	if (!cache)
		cache = vocab_cache_dir(1);
	download_gpt2(cache);
	return cache;
}

void vocab_load_for(struct vocab *v, const char *explicit_path, const char *tokenizer,
		    int offline)
{
	char *path;

	if (!explicit_path && vocab_builtin(tokenizer)) {
		vocab_load(v, tokenizer);
		return;
	}
	path = vocab_locate(explicit_path, offline);
	vocab_load(v, path);
	free(path);
}

/* ---- the merge ---------------------------------------------------------- */

#define SMALL_PIECE 16

static inline uint32_t pair_rank_memo(const struct vocab *v, uint32_t a, uint32_t b);

/* Short pieces: a scan for the lowest rank is cheapest. */
static size_t merge_small(const struct vocab *v, const unsigned char *s,
			  size_t n, uint32_t *ids)
{
	uint32_t rank[SMALL_PIECE];
	size_t m = n, i, best;

	for (i = 0; i < n; i++)
		ids[i] = v->byte_id[s[i]];
	for (i = 0; i + 1 < m; i++)
		rank[i] = v->byte_pair[s[i] << 8 | s[i + 1]];
	while (m > 1) {
		uint32_t r = UINT32_MAX;

		best = 0;
		for (i = 0; i + 1 < m; i++)
			if (rank[i] < r) {
				r = rank[i];
				best = i;
			}
		if (r == UINT32_MAX)
			break;
		ids[best] = r;
		/* a few elements: a loop beats two calls to memmove */
		for (i = best + 1; i + 1 < m; i++) {
			ids[i] = ids[i + 1];
			rank[i] = rank[i + 1];
		}
		m--;
		if (best + 1 < m)
			rank[best] = pair_rank_memo(v, ids[best], ids[best + 1]);
		if (best > 0)
			rank[best - 1] = pair_rank_memo(v, ids[best - 1], ids[best]);
	}
	return m;
}

/* Min-heap of (rank << 32 | position), stale entries skipped on pop. */
static inline void heap_push(uint64_t *h, size_t *n, uint64_t x)
{
	size_t i = (*n)++;

	while (i) {
		size_t p = (i - 1) / 2;

		if (h[p] <= x)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static inline uint64_t heap_pop(uint64_t *h, size_t *n)
{
	uint64_t top = h[0], x = h[--*n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= x)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = x;
	return top;
}

/* Per-thread scratch for long pieces and the piece caches; grown on
 * demand and kept, so the hot path does not allocate.  The caches are
 * direct-mapped and sit in front of the vocabulary's own table: a word
 * costs one cache line there against four (the table, len, off, the
 * bytes) in the vocabulary, and text repeats its words.  Pieces of up to
 * 16 bytes are keyed by their two key words: those of up to 8 bytes and
 * 3 ids (nearly all) in 16-byte entries (pcache_sent), four to a line, so
 * that 32768 of them fit in 512 KB, those of 9 to 16 bytes and up to
 * PCACHE_SIDS ids in 32-byte ones of a smaller table, and those of more
 * ids, up to PCACHE_IDS, in 64-byte ones of another.  Longer pieces (up to PCACHE_LKEY bytes) are
 * keyed by hash and bytes, and so are those of up to PCACHE_XKEY bytes in
 * a table of their own: rules of '=' and runs of indentation in code, 1.5%
 * of the bench corpus's pieces but 7% of its bytes, over half of them
 * seen before, each a backtracking walk to encode. */
#ifndef PCACHE_BITS
#define PCACHE_BITS 13
#endif
#ifndef PCACHE_SBITS
#define PCACHE_SBITS 15
#endif
#define SCACHE_ID_BITS 19
#define PCACHE_SIDS 3
#define PCACHE_WBITS 12
#define PCACHE_IDS 11
#define PCACHE_LBITS 12
#define PCACHE_LKEY 30
#define PCACHE_LIDS 6
#define PCACHE_XBITS 10
#define PCACHE_XKEY 128
#define PCACHE_XIDS 28
#define PAIR_MEMO_BITS 14
#ifndef RANK_MEMO_BITS
#define RANK_MEMO_BITS 14
#endif

struct pcache_ent {
	uint64_t a, b;
	uint8_t len, nids;
	uint32_t ids[PCACHE_SIDS];
};

/* A piece of 2 to 8 bytes (86% of those that are looked up) and up to 3
 * ids in 16 bytes: its bytes, then the ids in 19 bits each, the count
 * (bits 57-58) and the length (59-62). */
struct pcache_sent {
	uint64_t key, val;
};

struct pcache_went {
	uint64_t a, b;
	uint8_t len, nids;
	uint32_t ids[PCACHE_IDS];
};

struct pcache_lent {
	uint64_t h;
	uint8_t len, nids;
	unsigned char key[PCACHE_LKEY];
	uint32_t ids[PCACHE_LIDS];
};

struct pcache_xent {
	uint64_t h;
	uint8_t len, nids;
	unsigned char key[PCACHE_XKEY];
	uint32_t ids[PCACHE_XIDS];
};

struct scratch {
	uint32_t *tok, *next, *prev;
	uint64_t *heap;
	size_t cap;
	uint64_t *bits;                 /* the backtracking encoder's ends */
	size_t bits_cap;
	uint64_t *pair_memo;            /* pair_ok's answers (see pair_ok_memo) */
	uint64_t *rank_memo;            /* pair_rank's (see pair_rank_memo) */
	uint64_t owner;                 /* the caches belong to one vocab's load
	                                   (its serial: an address may be reused) */
	int registered;                 /* freed at thread exit (scratch_key) */
	struct pcache_ent *cache;
	struct pcache_sent *scache;
	struct pcache_went *wcache;
	struct pcache_lent *lcache;
	struct pcache_xent *xcache;
};

static __thread struct scratch tls;

/* pair_rank through a direct-mapped memo of the latest lookups, found or
 * not.  merge_small probes the pair table once or twice a merge, 2.7
 * million times on the bench corpus, and the table's 1 MB does not stay in
 * a core's cache beside the piece cache's: a memo of 4096 entries (32 KB)
 * answers 62% of the probes.  An entry is (1 << 42 | a << pb | b) << 21 |
 * rank, RANK_NONE for no merge; vocabularies with ids over 20 bits go to
 * the table. */
#define RANK_NONE 0x1FFFFFu
static inline uint32_t pair_rank_memo(const struct vocab *v, uint32_t a, uint32_t b)
{
	unsigned pb = v->pair_bits;
	uint64_t k, e, *slot;
	uint32_t r;

	if (!v->pair || pb > 20)
		return pair_rank(v, a, b);
	k = (uint64_t)a << pb | b | 1ull << 42;
	slot = &tls.rank_memo[(k * 0x9E3779B97F4A7C15ull) >> (64 - RANK_MEMO_BITS)];
	e = *slot;
	if (e >> 21 == k)
		return (r = (uint32_t)e & RANK_NONE) == RANK_NONE ? UINT32_MAX : r;
	r = pair_rank(v, a, b);
	*slot = k << 21 | (r == UINT32_MAX ? RANK_NONE : r);
	return r;
}

/* A thread's scratch and caches (over 1 MB) go when it exits: a server
 * (gpt-serve) that runs each connection on a thread of its own would
 * otherwise keep every one's. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	struct scratch *t = p;

	free(t->tok);
	free(t->next);
	free(t->prev);
	free(t->heap);
	free(t->bits);
	if (t->pair_memo)
		munmap(t->pair_memo, sizeof *t->pair_memo << PAIR_MEMO_BITS);
	if (t->rank_memo)
		munmap(t->rank_memo, sizeof *t->rank_memo << RANK_MEMO_BITS);
	if (t->cache)
		munmap(t->cache, sizeof *t->cache << PCACHE_BITS);
	if (t->scache)
		munmap(t->scache, sizeof *t->scache << PCACHE_SBITS);
	if (t->wcache)
		munmap(t->wcache, sizeof *t->wcache << PCACHE_WBITS);
	if (t->lcache)
		munmap(t->lcache, sizeof *t->lcache << PCACHE_LBITS);
	if (t->xcache)
		munmap(t->xcache, sizeof *t->xcache << PCACHE_XBITS);
	memset(t, 0, sizeof *t);
}

static void scratch_key_make(void)
{
	if (pthread_key_create(&scratch_key, scratch_free) != 0)
		die("cannot make a thread key for the tokenizer's scratch");
}

/* Before this thread's scratch first holds memory. */
static void scratch_register(void)
{
	if (tls.registered)
		return;
	pthread_once(&scratch_once, scratch_key_make);
	if (pthread_setspecific(scratch_key, &tls) != 0)
		die("cannot register the tokenizer's scratch");
	tls.registered = 1;
}

static void scratch_reserve(size_t n)
{
	if (n <= tls.cap)
		return;
	scratch_register();
	tls.cap = n * 2;
	tls.tok = xrealloc(tls.tok, xmul(tls.cap, sizeof *tls.tok));
	tls.next = xrealloc(tls.next, xmul(tls.cap, sizeof *tls.next));
	tls.prev = xrealloc(tls.prev, xmul(tls.cap, sizeof *tls.prev));
	tls.heap = xrealloc(tls.heap, xmul(3 * tls.cap, sizeof *tls.heap));
}

static size_t merge_large(const struct vocab *v, const unsigned char *s,
			  size_t n, uint32_t *ids)
{
	uint32_t *tok, *next, *prev;
	uint64_t *heap;
	size_t hn = 0, i, m = 0;

	if (n >= UINT32_MAX)
		die("piece too long to merge (%zu bytes)", n);
	scratch_reserve(n);
	tok = tls.tok;
	next = tls.next;
	prev = tls.prev;
	heap = tls.heap;
	for (i = 0; i < n; i++) {
		tok[i] = v->byte_id[s[i]];
		next[i] = (uint32_t)(i + 1);
		prev[i] = i ? (uint32_t)(i - 1) : UINT32_MAX;
	}
	for (i = 0; i + 1 < n; i++) {
		uint32_t r = v->byte_pair[s[i] << 8 | s[i + 1]];

		if (r != UINT32_MAX)
			heap_push(heap, &hn, (uint64_t)r << 32 | i);
	}
	while (hn) {
		uint64_t top = heap_pop(heap, &hn);
		uint32_t r = (uint32_t)(top >> 32), p = (uint32_t)top, q;

		/* Stale when p was swallowed or its pair changed. */
		if (tok[p] == UINT32_MAX || next[p] >= n)
			continue;
		q = next[p];
		if (pair_rank(v, tok[p], tok[q]) != r)
			continue;
		tok[p] = r;
		tok[q] = UINT32_MAX;
		next[p] = next[q];
		if (next[p] < n) {
			prev[next[p]] = p;
			r = pair_rank(v, tok[p], tok[next[p]]);
			if (r != UINT32_MAX)
				heap_push(heap, &hn, (uint64_t)r << 32 | p);
		}
		if (prev[p] != UINT32_MAX) {
			r = pair_rank(v, tok[prev[p]], tok[p]);
			if (r != UINT32_MAX)
				heap_push(heap, &hn, (uint64_t)r << 32 | prev[p]);
		}
	}
	for (i = 0; i < n; i = next[i])
		ids[m++] = tok[i];
	return m;
}

/* pair_ok costs a hashed probe per merge undone, five or so for two
 * tokens of a word, and text meets the same pairs again and again: a
 * per-thread direct-mapped memo of (a << 32 | b), ids being under 2^24,
 * with bit 62 set (an empty slot is 0) and the answer in bit 63. */
#define PAIR_MEMO_FULL (1ull << 62)
#define PAIR_MEMO_OK (1ull << 63)

static inline int pair_ok_memo(const struct vocab *v, uint32_t a, uint32_t b)
{
	uint64_t key = (uint64_t)a << 32 | b | PAIR_MEMO_FULL, e;
	uint64_t *slot = &tls.pair_memo[(uint32_t)((a * 0x9E3779B1u) ^ (b * 0x85EBCA77u)) >>
					(32 - PAIR_MEMO_BITS)];
	int ok;

	e = *slot;
	if ((e & ~PAIR_MEMO_OK) == key)
		return e >> 63;
	ok = pair_ok(v, a, b, UINT32_MAX);
	*slot = key | (ok ? PAIR_MEMO_OK : 0);
	return ok;
}

/* The longest token that s[0..n) starts with (n >= 1), and its length
 * (the depth it was found at). */
static inline uint32_t longest_token(const struct vocab *v, const unsigned char *s,
				     size_t n, size_t *len)
{
	uint32_t node, best = v->byte_id[s[0]];
	size_t i, bl = 1;

	if (n > 1 && (node = v->root2[s[0] << 8 | s[1]]) != UINT32_MAX) {
		if (node < v->n_ids)
			best = node, bl = 2;
		for (i = 2; i < n; i++) {
			node = trie_child(v, node, s[i]);
			if (node == UINT32_MAX)
				break;
			if (node < v->n_ids)
				best = node, bl = i + 1;
		}
	}
	*len = bl;
	return best;
}

/* GitHub's bpe crate's backtracking encoder: take the longest token at
 * the cursor if BPE would keep it next to the token before (pair_ok) and
 * the cursor after it is not known to be a dead end; else its longest
 * prefix token, and so on; when even the first byte fails, the cursor is
 * a dead end: drop the token before and try its shorter prefixes.  The
 * BPE of a piece is the one tokenization whose neighbours all pass
 * pair_ok, so this finds tiktoken's tokens, in about one trie walk and a
 * few pair probes per token.  v->backtrack must be set.  The lengths of
 * prefixes and dropped tokens come from len[], checked to stay inside the
 * piece: a cached build that is consistent but wrong (vc_check) cannot
 * make it read astray. */
static size_t encode_backtrack(const struct vocab *v, const unsigned char *s,
			       size_t n, uint32_t *ids)
{
	size_t words = n / 64 + 1, pos = 0, m = 0, i, tl;
	uint32_t tok;
	uint64_t *bits;

	if (words > tls.bits_cap) {
		scratch_register();
		tls.bits_cap = words * 2;
		tls.bits = xrealloc(tls.bits, xmul(tls.bits_cap, sizeof *tls.bits));
	}
	bits = tls.bits;
	for (i = 0; i < words; i++)
		bits[i] = UINT64_MAX;
	tok = longest_token(v, s, n, &tl);
	while (pos < n) {
		size_t end = pos + tl;

		if (bits[end / 64] >> (end % 64) & 1 &&
		    (m == 0 || pair_ok_memo(v, ids[m - 1], tok))) {
			ids[m++] = tok;
			pos = end;
			if (pos < n)
				tok = longest_token(v, s + pos, n - pos, &tl);
		} else if (v->prefix[tok] != UINT32_MAX) {
			tok = v->prefix[tok];
			tl = v->len[tok];
			if (tl > n - pos)
				die("the vocabulary's tables disagree about token %u", tok);
		} else {
			bits[pos / 64] &= ~(1ull << (pos % 64));
			if (m == 0)
				die("backtracking BPE found no tokens for a piece of %zu bytes", n);
			tok = ids[--m];
			tl = v->len[tok];
			if (tl > pos)
				die("the vocabulary's tables disagree about token %u", tok);
			pos -= tl;
		}
	}
	return m;
}

/* The caches are mapped, not malloc'd: a thread's arena would keep them
 * after it exits, and a server's threads would pile them up. */
static void *cache_alloc(void *p, size_t bytes)
{
	if (!p) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("out of memory (%zu bytes)", bytes);
		return p; /* zeros */
	}
	memset(p, 0, bytes);
	return p;
}

/* The calling thread's caches, emptied when they last served another
 * vocabulary. */
static void pcache_for(const struct vocab *v)
{
	if (v->serial && tls.owner == v->serial)
		return;
	scratch_register();
	tls.cache = cache_alloc(tls.cache, sizeof *tls.cache << PCACHE_BITS);
	tls.scache = cache_alloc(tls.scache, sizeof *tls.scache << PCACHE_SBITS);
	tls.wcache = cache_alloc(tls.wcache, sizeof *tls.wcache << PCACHE_WBITS);
	tls.lcache = cache_alloc(tls.lcache, sizeof *tls.lcache << PCACHE_LBITS);
	tls.xcache = cache_alloc(tls.xcache, sizeof *tls.xcache << PCACHE_XBITS);
	tls.pair_memo = cache_alloc(tls.pair_memo, sizeof *tls.pair_memo << PAIR_MEMO_BITS);
	tls.rank_memo = cache_alloc(tls.rank_memo, sizeof *tls.rank_memo << RANK_MEMO_BITS);
	tls.owner = v->serial;
}

static size_t merge(const struct vocab *v, const unsigned char *s, size_t n,
		    uint64_t h, uint32_t *ids)
{
	uint32_t id;

	if (n <= MAX_TOKEN_BYTES && maybe_token(v, h) &&
	    (id = lookup_hashed(v, h, s, n)) != UINT32_MAX) {
		ids[0] = id;
		return 1;
	}
	if (n <= SMALL_PIECE)
		return merge_small(v, s, n, ids);
	return v->backtrack ? encode_backtrack(v, s, n, ids) : merge_large(v, s, n, ids);
}

/* A piece of 1 to 16 bytes that missed its cache entry e: found in the
 * cache of pieces with more ids, or merged and kept in whichever cache
 * its ids fit. */
static __attribute__((noinline)) size_t encode_short_miss(const struct vocab *v,
		const unsigned char *s, size_t n, uint64_t a, uint64_t b, uint64_t h,
		struct pcache_ent *e, uint32_t *ids)
{
	struct pcache_went *w = &tls.wcache[(h >> 32) & ((1u << PCACHE_WBITS) - 1)];
	size_t m;

	if (w->a == a && w->b == b && w->len == n) {
		memcpy(ids, w->ids, sizeof w->ids);
		return w->nids;
	}
	m = merge(v, s, n, h, ids);
	if (m <= PCACHE_SIDS) {
		e->a = a;
		e->b = b;
		e->len = (uint8_t)n;
		e->nids = (uint8_t)m;
		memcpy(e->ids, ids, m * sizeof *ids);
	} else if (m <= PCACHE_IDS) {
		w->a = a;
		w->b = b;
		w->len = (uint8_t)n;
		w->nids = (uint8_t)m;
		memcpy(w->ids, ids, m * sizeof *ids);
	}
	return m;
}

/* A piece of 2 to 8 bytes that missed its entry t of the 16-byte cache. */
static __attribute__((noinline)) size_t encode_tiny_miss(const struct vocab *v,
		const unsigned char *s, size_t n, uint64_t a, uint64_t h,
		struct pcache_sent *t, uint32_t *ids)
{
	struct pcache_went *w = &tls.wcache[(h >> 32) & ((1u << PCACHE_WBITS) - 1)];
	size_t m;

	if (w->a == a && w->b == 0 && w->len == n) {
		memcpy(ids, w->ids, sizeof w->ids);
		return w->nids;
	}
	m = merge(v, s, n, h, ids);
	if (m <= 3) {
		uint64_t x = (uint64_t)n << 59 | (uint64_t)m << 57;
		size_t k;

		for (k = 0; k < m; k++)
			x |= (uint64_t)ids[k] << (SCACHE_ID_BITS * k);
		t->key = a;
		t->val = x;
	} else if (m <= PCACHE_IDS) {
		w->a = a;
		w->b = 0;
		w->len = (uint8_t)n;
		w->nids = (uint8_t)m;
		memcpy(w->ids, ids, m * sizeof *ids);
	}
	return m;
}

/* A keyed piece of 2 to 16 bytes through the caches. */
static inline size_t encode_keyed(const struct vocab *v, const unsigned char *s,
				  size_t n, uint64_t a, uint64_t b, uint64_t h,
				  uint32_t *ids)
{
	struct pcache_ent *e;

	if (n <= 8 && v->n_ids <= 1u << SCACHE_ID_BITS) {
		struct pcache_sent *t = &tls.scache[h & ((1u << PCACHE_SBITS) - 1)];
		uint64_t x = t->val, mask = (1u << SCACHE_ID_BITS) - 1;

		if (t->key == a && x >> 59 == n) {
			ids[0] = (uint32_t)(x & mask);
			ids[1] = (uint32_t)(x >> SCACHE_ID_BITS & mask);
			ids[2] = (uint32_t)(x >> (2 * SCACHE_ID_BITS) & mask);
			return x >> 57 & 3;
		}
		return encode_tiny_miss(v, s, n, a, h, t, ids);
	}
	e = &tls.cache[h & ((1u << PCACHE_BITS) - 1)];
	if (e->a == a && e->b == b && e->len == n) {
		memcpy(ids, e->ids, sizeof e->ids);
		return e->nids;
	}
	return encode_short_miss(v, s, n, a, b, h, e, ids);
}

/* A piece over 16 bytes. */
static __attribute__((noinline)) size_t encode_long(const struct vocab *v,
		const unsigned char *s, size_t n, uint32_t *ids)
{
	uint64_t h = XXH3_64bits(s, n);
	size_t m, k;

	if (n <= PCACHE_LKEY) {
		struct pcache_lent *e = &tls.lcache[h & ((1u << PCACHE_LBITS) - 1)];

		if (e->h == h && e->len == n && bytes_eq(e->key, s, n)) {
			for (k = 0; k < e->nids; k++)
				ids[k] = e->ids[k];
			return k;
		}
		m = merge(v, s, n, h, ids);
		if (m <= PCACHE_LIDS) {
			e->h = h;
			e->len = (uint8_t)n;
			e->nids = (uint8_t)m;
			memcpy(e->key, s, n);
			memcpy(e->ids, ids, m * sizeof *ids);
		}
		return m;
	}
	if (n <= PCACHE_XKEY) {
		struct pcache_xent *e = &tls.xcache[h & ((1u << PCACHE_XBITS) - 1)];

		if (e->h == h && e->len == n && memcmp(e->key, s, n) == 0) {
			memcpy(ids, e->ids, e->nids * sizeof *ids);
			return e->nids;
		}
		m = merge(v, s, n, h, ids);
		if (m <= PCACHE_XIDS) {
			e->h = h;
			e->len = (uint8_t)n;
			e->nids = (uint8_t)m;
			memcpy(e->key, s, n);
			memcpy(e->ids, ids, m * sizeof *ids);
		}
		return m;
	}
	return merge(v, s, n, h, ids);
}

/* One piece of a vocabulary with merges, through the caches (pcache_for
 * called).  ids has room for max(n, PCACHE_IDS): a cached piece's ids are
 * copied whole, all the entry's slots (up to PCACHE_IDS), without a loop.  Inline: a hit, the
 * common case, costs no call. */
static inline size_t encode_piece(const struct vocab *v, const unsigned char *s,
				  size_t n, uint32_t *ids)
{
	uint64_t a, b, h;

	if (n == 1) {
		ids[0] = v->byte_id[s[0]];
		return 1;
	}
	if (n > 16)
		return encode_long(v, s, n, ids);
	key_words(s, n, &a, &b);
	h = hash_words(a, b, n);
	return encode_keyed(v, s, n, a, b, h, ids);
}

/* encode_piece for a piece of 1 to 64 bytes with 16 readable from s:
 * the key without branches on the length. */
static inline size_t encode_piece_wide(const struct vocab *v, const unsigned char *s,
				       size_t n, uint32_t *ids)
{
	uint64_t a, b, h;

	if (n == 1) {
		ids[0] = v->byte_id[s[0]];
		return 1;
	}
	if (__builtin_expect(n > 16, 0))
		return encode_long(v, s, n, ids);
	key_words_wide(s, n, &a, &b);
	h = hash_words(a, b, n);
	return encode_keyed(v, s, n, a, b, h, ids);
}

size_t vocab_encode(const struct vocab *v, const unsigned char *s, size_t n,
		    uint32_t *ids)
{
	size_t m;

	if (v->n_merges == 0) {
		for (m = 0; m < n; m++)
			ids[m] = v->byte_id[s[m]];
		return n;
	}
	pcache_for(v);
	if (n < PCACHE_IDS) {
		uint32_t tmp[PCACHE_IDS];

		m = encode_piece(v, s, n, tmp);
		memcpy(ids, tmp, m * sizeof *ids);
		return m;
	}
	return encode_piece(v, s, n, ids);
}

size_t vocab_encode_algo(const struct vocab *v, const unsigned char *s, size_t n,
			 uint32_t *ids, enum vocab_algo algo)
{
	uint32_t id;

	if (v->n_merges == 0 || n == 0)
		return vocab_encode(v, s, n, ids);
	if (algo == VOCAB_BACKTRACK && v->backtrack) {
		pcache_for(v);
		return encode_backtrack(v, s, n, ids);
	}
	if (n <= MAX_TOKEN_BYTES && (id = vocab_lookup(v, s, n)) != UINT32_MAX) {
		ids[0] = id;
		return 1;
	}
	return n <= SMALL_PIECE ? merge_small(v, s, n, ids) : merge_large(v, s, n, ids);
}

/* vocab_encode_text, and with fixed set vocab_encode_text_to: *ids is then
 * never grown, and a piece that does not fit ends the batch as it is. */
static inline size_t encode_text(const struct vocab *v, const unsigned char *s, size_t n,
				 size_t *pos, uint32_t **ids, size_t *cap, int fixed)
{
	size_t p = *pos, m = 0, end, block_at = p;

	if (!fixed && *cap < 4096) {
		*cap = 4096;
		*ids = xrealloc(*ids, xmul(*cap, sizeof **ids));
	}
	/* Without merges the pieces cannot matter: no pretokenizer pass. */
	if (v->n_merges == 0) {
		m = n - p < *cap ? n - p : *cap;
		for (end = 0; end < m; end++)
			(*ids)[end] = v->byte_id[s[p + end]];
		*pos = p + m;
		return m;
	}
	pcache_for(v);
	while (p < n) {
		/* 64 bytes' pieces at once (pretok_starts_gpt2), with
		 * 16 more bytes to read past them for encode_piece_wide */
		if (v->pattern == PRETOK_GPT2 && n - p >= 80 && p >= block_at) {
			size_t skip;
			uint64_t st = pretok_starts_gpt2(s + p, &skip);

			if (st) {
				size_t x = 0, y;

				if (64 + PCACHE_IDS > *cap - m) {
					if (m || fixed)
						break;
					*cap = 64 + PCACHE_IDS;
					*ids = xrealloc(*ids, xmul(*cap, sizeof **ids));
				}
				do {
					y = (size_t)__builtin_ctzll(st);
					st &= st - 1;
					m += encode_piece_wide(v, s + p + x, y - x, *ids + m);
					x = y;
				} while (st);
				p += x;
				continue;
			}
			block_at = p + skip;
		}
		end = v->pattern == PRETOK_GPT2 ? pretok_next_gpt2(s, n, p) :
						  pretok_next(v->pattern, s, n, p);
		if (end - p + PCACHE_IDS > *cap - m) {
			if (m || fixed)
				break;
			*cap = end - p + PCACHE_IDS;
			*ids = xrealloc(*ids, xmul(*cap, sizeof **ids));
		}
		m += encode_piece(v, s + p, end - p, *ids + m);
		p = end;
	}
	*pos = p;
	return m;
}

size_t vocab_encode_text(const struct vocab *v, const unsigned char *s, size_t n,
			 size_t *pos, uint32_t **ids, size_t *cap)
{
	return encode_text(v, s, n, pos, ids, cap, 0);
}

size_t vocab_encode_text_to(const struct vocab *v, const unsigned char *s, size_t n,
			    size_t *pos, uint32_t *ids, size_t cap)
{
	return encode_text(v, s, n, pos, &ids, &cap, 1);
}
