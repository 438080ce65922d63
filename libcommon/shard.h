/* shard: compressed, checksummed token shards (format in gpt-shard(5)),
 * the writer behind gpt-shard and the reader gpt-train and gpt-eval use.
 *
 * A shard is a valid zstd stream: a 128-byte header in a skippable frame,
 * the tokens (little-endian u16 or u32) in independent zstd frames of a
 * fixed token count, and a checksummed frame index in a trailing skippable
 * frame whose place the header records, so a reader seeks to any frame
 * without scanning.  Every frame's compressed bytes and tokens carry an
 * xxHash64 in the index; the header carries one over itself and one over
 * all the tokens.
 *
 * THE READER (struct shards) -- what a training or evaluation loop uses:
 *
 *   struct shards *s = shards_open("data/fw-train-*");  // glob, sorted
 *   uint64_t n = shards_tokens(s);        // all shards, concatenated
 *   shards_read(s, pos, ids, T + 1);      // any tokens by global position
 *
 *   shards_iter_init(s, T, seed, 1, rank, world);   // shuffled windows
 *   for (;;) {
 *       uint64_t at = shards_next(s, ids);  // fills T + 1 ids
 *       ...
 *   }
 *   unsigned char blob[SHARD_POS_BYTES];
 *   shards_pos_save(s, blob);             // into a checkpoint
 *   shards_pos_restore(s, blob);          // resumes exactly there
 *   shards_close(s);
 *
 * - The shards of a set are one stream: global position p is token p of
 *   their concatenation in sorted path order.  They must agree on the
 *   tokenizer name and the vocabulary size (checked at open).
 * - Windows: W = (N - 1) / T windows of T + 1 tokens, window k starting at
 *   token k * T (inputs ids[0..T), targets ids[1..T+1)); windows may span
 *   two shards.  Tokens after the last whole window are not visited.
 * - Order: with shuffle 0, windows in order, repeating.  With shuffle 1,
 *   epoch e visits every window exactly once in an order that depends only
 *   on (seed, e, N, T): windows are cut into blocks of about 256Ki tokens,
 *   the blocks are permuted, and the windows of each run of 8 blocks
 *   (about 2Mi tokens) are permuted among themselves.  This keeps the
 *   frame cache hot (each frame is decompressed about 1.25 times per
 *   epoch) while mixing across the whole data set.  Epoch e + 1 follows epoch e
 *   with a different order.
 * - Ranks: with world > 1, rank r reads the r-th window of every group of
 *   world consecutive windows of the sequence, so ranks see disjoint
 *   windows; the saved position is the same for every rank.
 * - The position is one counter of windows consumed (by all ranks), saved
 *   as SHARD_POS_BYTES little-endian bytes with T, W, seed and shuffle;
 *   restore dies when these do not match the reader (other data, other T).
 * - Reads go through a cache of decompressed frames (at most about 64 MiB,
 *   6 MiB with the default frames).  A struct shards is not thread-safe: use one per
 *   thread.
 * - Errors: every function dies (err.h) with one line naming the file
 *   and, for data, the frame: a bad magic, version or checksum, a
 *   truncated file, a position beyond the end.  Corrupt data is never
 *   returned.
 *
 * THE WRITER (struct shard_writer): shardw_open creates the file under a
 * temporary name (io.h afile), shardw_write compresses frame by frame,
 * params.threads frames at a time in parallel (memory is a few frames per
 * thread, whatever the shard size; the file does not depend on the
 * thread count), shardw_commit writes
 * the index and header, fsyncs and renames; shardw_abort removes it.
 * shard_lock_prefix keeps two writers off one output prefix, and
 * shard_name_check is the rule for tokenizer names (shards and checkpoints
 * must agree on it, so gpt-convert uses it too).
 *
 * Memory: shards_open returns a struct the caller frees with shards_close;
 * info pointers stay valid until then.  The writer owns its buffers until
 * commit or abort. */
#ifndef GPT_SHARD_H
#define GPT_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

#define SHARD_VERSION 1
#define SHARD_HEADER_BYTES 128
#define SHARD_NAME_MAX 40               /* tokenizer name field, NUL included */
#define SHARD_MAX_FRAME_TOKENS (1u << 24)
#define SHARD_DEFAULT_FRAME_TOKENS 65536
#define SHARD_POS_BYTES 64

/* The header of one shard, as gpt-shard(5) lays it out. */
struct shard_header {
	uint32_t version;
	uint32_t width;                 /* bytes per token: 2 or 4 */
	uint32_t vocab;                 /* vocabulary size; ids are < vocab */
	uint32_t eot;                   /* end-of-text id, UINT32_MAX if none */
	uint32_t frame_tokens;          /* tokens per frame (the last may be short) */
	uint32_t nframes;
	uint64_t tokens;
	uint64_t docs;                  /* count of eot ids */
	uint64_t index_offset;          /* file offset of the index frame */
	uint64_t hash;                  /* XXH64 of all token bytes */
	int32_t level;                  /* zstd level used (informational) */
	char tokenizer[SHARD_NAME_MAX]; /* NUL-terminated */
};

/* One shard of an open set. */
struct shard_info {
	char *path;                     /* owned by the set */
	struct shard_header h;
	uint64_t start;                 /* global position of its first token */
	uint64_t file_bytes;
};

struct shards;

/* Opens every file matching the glob (sorted), reading each header and
 * index.  Dies when nothing matches or a shard is bad. */
struct shards *shards_open(const char *pattern);
/* Same over an explicit list of paths, in the given order. */
struct shards *shards_open_paths(char *const *paths, int n);
void shards_close(struct shards *s);

uint64_t shards_tokens(const struct shards *s);     /* all tokens */
uint64_t shards_docs(const struct shards *s);       /* all eot ids */
int shards_count(const struct shards *s);
const struct shard_info *shards_info(const struct shards *s, int i);
uint32_t shards_vocab(const struct shards *s);
uint32_t shards_eot(const struct shards *s);
const char *shards_tokenizer(const struct shards *s);

/* ids[0..n) = tokens [pos, pos + n) of the set; dies past the end. */
void shards_read(struct shards *s, uint64_t pos, uint32_t *ids, size_t n);

/* Starts the window sequence at its beginning (see above). */
void shards_iter_init(struct shards *s, uint32_t T, uint64_t seed, int shuffle,
		      uint32_t rank, uint32_t world);
/* Windows per epoch, W; 0 when the set holds fewer than T + 1 tokens
 * (shards_next then dies). */
uint64_t shards_windows(const struct shards *s);
/* Fills ids[0..T] with the next window of this rank; returns its global
 * start position. */
uint64_t shards_next(struct shards *s, uint32_t *ids);
/* Current epoch (0-based) and windows consumed by all ranks in total. */
uint64_t shards_epoch(const struct shards *s);
uint64_t shards_consumed(const struct shards *s);
/* Moves the position on by n windows without reading them: a reader
 * that took its part of the next n windows through shards_window_at
 * (a data-parallel rank's share of a step) ends where all ranks end. */
void shards_skip(struct shards *s, uint64_t n);
/* The k-th window (0-based, over all ranks) of the sequence: the start
 * position it reads.  Pure: does not move the iteration. */
uint64_t shards_window_at(struct shards *s, uint64_t k);

/* The iteration position as SHARD_POS_BYTES bytes (little-endian
 * fields; layout in gpt-shard(5)). */
void shards_pos_save(const struct shards *s, unsigned char *blob);
/* Dies naming the mismatch when blob was saved with another T, seed,
 * shuffle or number of windows. */
void shards_pos_restore(struct shards *s, const unsigned char *blob);

/* Reads and checks one shard's header and index size without the
 * frames (for `gpt-shard info`).  Dies on a bad header. */
void shard_read_header(const char *path, struct shard_header *h);

/* Checks every checksum of one shard (header, index, each frame's
 * compressed bytes and tokens, the token hash and the document count);
 * dies at the first problem, naming the file and frame. */
void shard_verify(const char *path);

/* Writer settings. */
struct shard_params {
	uint32_t vocab;                 /* 1 .. 2^32-1; width 2 when <= 65536 */
	uint32_t eot;                   /* counted as documents; UINT32_MAX none */
	uint32_t frame_tokens;          /* 0: SHARD_DEFAULT_FRAME_TOKENS */
	int level;                      /* zstd level */
	const char *tokenizer;          /* at most SHARD_NAME_MAX - 1 bytes */
	int threads;                    /* frames compressed at once; 0 is 1 */
};

#define SHARD_MAX_THREADS 64

struct shard_writer {
	struct afile a;
	struct shard_header h;
	int threads;
	void *cctx[SHARD_MAX_THREADS];  /* ZSTD_CCtx, one per thread */
	unsigned char *comp[SHARD_MAX_THREADS];
	size_t comp_cap;
	void *all;                      /* XXH64_state_t over all tokens */
	unsigned char *raw;             /* one frame per thread, encoded */
	size_t fill, batch;             /* tokens in raw, and its capacity */
	unsigned char *index;           /* index entries so far */
	size_t index_len, index_cap;
	uint64_t offset;                /* file offset of the next frame */
	/* Position of this shard's first token in the caller's input, for
	 * messages; 0 unless the caller sets it after shardw_open. */
	uint64_t first;
};

void shardw_open(struct shard_writer *w, const char *path,
		 const struct shard_params *p);
/* Dies on an id >= vocab, naming it and its position in the input
 * (w->first plus its place in the shard). */
void shardw_write(struct shard_writer *w, const uint32_t *ids, size_t n);
/* Writes the last frame, index and header; fsync; rename.  The header
 * written is copied to h when h is not NULL. */
void shardw_commit(struct shard_writer *w, struct shard_header *h);
void shardw_abort(struct shard_writer *w);

/* NULL when name can be a tokenizer name (1 to SHARD_NAME_MAX - 1
 * printable ASCII characters, no spaces), else why not. */
const char *shard_name_check(const char *name);

/* Takes PREFIX.lock (io.h io_lock) for the life of the process, so two
 * runs writing one prefix cannot mix their shards.  0 when taken (the
 * file is removed again at exit); -1 when another process holds it, with
 * *holder its pid (0 when unknown).  Dies on I/O errors. */
int shard_lock_prefix(const char *prefix, long *holder);
/* Removes the lock file now; for a signal handler (async-signal-safe). */
void shard_unlock_prefix(void);

#endif
