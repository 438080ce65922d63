/* tokenize: the streaming encoder behind gpt-tokenize.
 *
 * tokenize_stream reads the inputs in order as one byte stream (like cat),
 * cuts it into chunks at points where cutting cannot change the tokens
 * (NUL documents with -z, special tokens, pretok_safe_split; anywhere
 * for a vocabulary without merges, which skips the pretokenizer), encodes
 * chunks and writes them in input order, so the output is the same for any
 * thread count and any read sizes.  With opt->threads > 1 the calling
 * thread reads and cuts, that many workers encode and format ids, and a
 * writer thread writes, all at once, through a ring of 2 x threads + 2
 * slots.  Memory is bounded by the slots (a chunk and its ids each) plus
 * the longest stretch without a safe cut (capped at TOKENIZE_MAX_RUN;
 * longer stretches are cut at a character boundary with a warning). */
#ifndef GPT_TOKENIZE_H
#define GPT_TOKENIZE_H

#include <stdint.h>

#include "cli.h"
#include "io.h"
#include "progress.h"
#include "vocab.h"

#define TOKENIZE_MAX_RUN (64u << 20)

struct tokenize_opts {
	int zero;               /* -z: NUL ends a document, becomes <|endoftext|> */
	int allow_special;      /* special tokens' text becomes their ids */
	int count;              /* -c: print counts instead of ids */
	enum tok_format fmt;
	int threads;
	size_t chunk;           /* bytes per job; 0 picks a default */
	enum progress_mode progress;
};

/* Returns the number of tokens written (or counted). */
uint64_t tokenize_stream(const struct vocab *v, char *const *paths, int npaths,
			 struct out *o, const struct tokenize_opts *opt);

/* Encodes s[0..n) as one text into ids (caller frees *ids). */
size_t tokenize_text(const struct vocab *v, const unsigned char *s, size_t n,
		     int allow_special, uint32_t **ids);



/* Decodes ids (in form fmt) from the inputs to bytes; with zero, the
 * <|endoftext|> id becomes a NUL byte.  An id outside the vocabulary is an
 * error naming it and its position. */
void detokenize_stream(const struct vocab *v, char *const *paths, int npaths,
		       struct out *o, enum tok_format fmt, int zero);
#endif
