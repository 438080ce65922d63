/* bpetrain: learning a byte-level BPE vocabulary from text, the work
 * behind gpt-bpe(1).
 *
 *   bpetrain_init(t, opts)        an empty trainer (opts copied)
 *   bpetrain_feed(t, p, n)        input bytes, in any pieces; documents end
 *                                 at NUL with opts.zero; returns 0 once
 *                                 opts.max_chars characters were taken
 *   bpetrain_end(t)               end of input (ends the last document)
 *   bpetrain_learn(t, n, prog)    merges until n tokens (bytes included)
 *   bpetrain_write_ranks/merges   the result as a tiktoken rank file, or as
 *                                 "LEFT RIGHT NEW" id lines, one per merge
 *   bpetrain_free(t)
 *
 * Text is cut into pieces with the pretok.h pattern, each document on its
 * own; pieces are counted in a hash map and only the unique pieces are
 * kept, so memory grows with the number of distinct pieces, not with the
 * input.  Learning merges the most frequent adjacent pair of tokens, counted
 * over all pieces with their frequency (overlapping pairs count, as in
 * "aaa" holding "aa" twice), and replaces it left to right in every piece
 * that holds it.  Ties: among pairs of equal count the one with the
 * smallest left id wins, then the smallest right id.  A merge whose bytes
 * already form a token (reached before by another split, e.g. "ab"+"c"
 * then "a"+"bc") reuses that token: it is listed in the merges but takes
 * no new id, so every token's bytes are distinct, as a rank file needs.
 * Token ids: bytes are 0..255 by value, then one id per new token in the
 * order learned.  Memory belongs to the trainer. */
#ifndef GPT_BPETRAIN_H
#define GPT_BPETRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "pretok.h"
#include "progress.h"

#define BPE_NO_LIMIT UINT64_MAX
/* Longest token learned (vocab.h's loader takes tokens up to this size); a
 * pair whose bytes would be longer is never merged. */
#define BPE_MAX_TOKEN_BYTES 4096

struct bpe_opts {
	enum pretok_pattern pattern;
	int zero;               /* NUL ends a document and joins no piece */
	uint64_t max_chars;     /* characters used in all, BPE_NO_LIMIT */
	uint64_t doc_cap;       /* characters used per document, BPE_NO_LIMIT */
};

struct bpe_merge {
	uint32_t left, right, id;   /* id < the id count when it reused a token */
};

struct bpe_piece;
struct bpe_pair;

struct bpetrain {
	struct bpe_opts opt;
	/* input side */
	unsigned char *doc;         /* unsplit text of the current document */
	size_t doc_len, doc_cap_bytes, doc_flush;
	uint64_t doc_chars;         /* characters taken from this document */
	int skipping;               /* past the cap: drop the rest of the doc */
	int full;                   /* max_chars reached: drop everything */
	uint64_t chars, bytes_in, bytes_used, docs, pieces_total;
	/* unique pieces: open addressing over piece records, bytes in arena */
	struct bpe_piece *piece;
	uint32_t *piece_tab;
	size_t n_piece, piece_mask;
	unsigned char *arena;
	size_t arena_len, arena_cap;
	/* tokens learned: bytes of id i are tok_blob[tok_off[i]..+tok_len[i]] */
	unsigned char *tok_blob;
	uint64_t *tok_off;
	uint32_t *tok_len;
	uint32_t n_tok;
	size_t tok_blob_len, tok_blob_cap, tok_cap;
	struct bpe_merge *merges;
	size_t n_merges, merges_cap;
};

void bpetrain_init(struct bpetrain *t, const struct bpe_opts *opt);
/* Returns 1 while more input is wanted, 0 once max_chars is reached. */
int bpetrain_feed(struct bpetrain *t, const void *p, size_t n);
void bpetrain_end(struct bpetrain *t);
/* Number of distinct pieces of two or more bytes counted so far (single
 * bytes hold no pair and are not kept). */
size_t bpetrain_unique(const struct bpetrain *t);
/* Learns merges until there are n_tokens tokens (256 bytes included) or no
 * pair is left; returns the number of tokens.  prog may be NULL.  Call once,
 * after bpetrain_end; the piece table is consumed. */
uint32_t bpetrain_learn(struct bpetrain *t, uint32_t n_tokens,
			struct progress *prog);
/* "base64 id" for every token, in id order (tiktoken's rank file). */
void bpetrain_write_ranks(const struct bpetrain *t, struct out *o);
/* "LEFT RIGHT ID" per merge, in the order learned. */
void bpetrain_write_merges(const struct bpetrain *t, struct out *o);
void bpetrain_free(struct bpetrain *t);

#endif
