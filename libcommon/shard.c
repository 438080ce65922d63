/* shard: writing and reading token shards, the files a training run reads
 * for days.  Every byte of a shard is covered by a checksum that the reader
 * checks before it uses the byte, so a bit flip or a truncation is an error
 * naming the file and frame, never a silently different batch. */
#include "shard.h"
#include "err.h"
#include "le.h"
#include "tokstream.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY        /* ZSTD_d_forceIgnoreChecksum */
#include <zstd.h>

#define SKIP_HEADER_MAGIC 0x184D2A50u
#define SKIP_INDEX_MAGIC  0x184D2A51u
#define HEADER_PAYLOAD    (SHARD_HEADER_BYTES - 8)
#define INDEX_ENTRY       32
#define INDEX_FIXED       (8 + 8 + 8 + 8)   /* frame head, magic, count, hash */
/* Shuffling: a block (consecutive windows) spans about four default
 * frames, so the one frame a block's last window spills into is decoded
 * again for only a quarter of the frames; a group of blocks, mixed
 * together, spans 2Mi tokens and fits the cache with its spills. */
#define BLOCK_TOKENS      262144
#define GROUP_BLOCKS      8
#define CACHE_BYTES       (64u << 20)
#define CACHE_MAX_SLOTS   48
#define CACHE_MIN_SLOTS   4

static uint32_t width_for(uint32_t vocab)
{
	return vocab <= 65536 ? 2 : 4;
}

static void header_encode(const struct shard_header *h, unsigned char *b)
{
	unsigned char *p = b + 8;

	memset(b, 0, SHARD_HEADER_BYTES);
	le_put_u32(b, SKIP_HEADER_MAGIC);
	le_put_u32(b + 4, HEADER_PAYLOAD);
	memcpy(p, "GPTSHARD", 8);
	le_put_u32(p + 8, h->version);
	le_put_u32(p + 12, h->width);
	le_put_u32(p + 16, h->vocab);
	le_put_u32(p + 20, h->eot);
	le_put_u32(p + 24, h->frame_tokens);
	le_put_u32(p + 28, h->nframes);
	le_put_u64(p + 32, h->tokens);
	le_put_u64(p + 40, h->docs);
	le_put_u64(p + 48, h->index_offset);
	le_put_u64(p + 56, h->hash);
	le_put_u32(p + 64, (uint32_t)h->level);
	le_put_u32(p + 68, 0);
	memcpy(p + 72, h->tokenizer, SHARD_NAME_MAX);
	le_put_u64(p + 112, XXH64(p, 112, 0));
}

static uint64_t index_bytes(uint32_t nframes)
{
	return INDEX_FIXED + (uint64_t)nframes * INDEX_ENTRY;
}

/* Decodes and checks a header; dies naming path. */
static void header_decode(const char *path, const unsigned char *b,
			  struct shard_header *h)
{
	const unsigned char *p = b + 8;
	uint64_t frames;
	size_t i;

	if (le_get_u32(b) != SKIP_HEADER_MAGIC || memcmp(p, "GPTSHARD", 8) != 0)
		die("not a gpt-shard file (bad magic): '%s'", path);
	if (le_get_u32(b + 4) != HEADER_PAYLOAD)
		die("corrupt shard header (size field %u, want %u): '%s'",
		    le_get_u32(b + 4), HEADER_PAYLOAD, path);
	if (XXH64(p, 112, 0) != le_get_u64(p + 112))
		die("corrupt shard header (checksum mismatch): '%s'", path);
	h->version = le_get_u32(p + 8);
	if (h->version != SHARD_VERSION)
		die("unsupported shard version %u (this reader knows %u): '%s'",
		    h->version, SHARD_VERSION, path);
	h->width = le_get_u32(p + 12);
	h->vocab = le_get_u32(p + 16);
	h->eot = le_get_u32(p + 20);
	h->frame_tokens = le_get_u32(p + 24);
	h->nframes = le_get_u32(p + 28);
	h->tokens = le_get_u64(p + 32);
	h->docs = le_get_u64(p + 40);
	h->index_offset = le_get_u64(p + 48);
	h->hash = le_get_u64(p + 56);
	h->level = (int32_t)le_get_u32(p + 64);
	memcpy(h->tokenizer, p + 72, SHARD_NAME_MAX);
	if (h->vocab == 0 || h->width != width_for(h->vocab))
		die("bad shard header (vocabulary %u with %u-byte tokens): '%s'",
		    h->vocab, h->width, path);
	if (h->eot != UINT32_MAX && h->eot >= h->vocab)
		die("bad shard header (end-of-text id %u outside vocabulary %u): '%s'",
		    h->eot, h->vocab, path);
	if (h->frame_tokens == 0 || h->frame_tokens > SHARD_MAX_FRAME_TOKENS)
		die("bad shard header (frame of %u tokens): '%s'",
		    h->frame_tokens, path);
	frames = (h->tokens + h->frame_tokens - 1) / h->frame_tokens;
	if (frames != h->nframes || h->docs > h->tokens)
		die("bad shard header (%llu tokens, %u frames, %llu documents): '%s'",
		    (unsigned long long)h->tokens, h->nframes,
		    (unsigned long long)h->docs, path);
	if (le_get_u32(p + 68) != 0)
		die("bad shard header (unknown flags 0x%x): '%s'", le_get_u32(p + 68), path);
	if (h->tokenizer[SHARD_NAME_MAX - 1] != '\0')
		die("bad shard header (tokenizer name not terminated): '%s'", path);
	for (i = 0; h->tokenizer[i]; i++)
		if (h->tokenizer[i] < 0x21 || h->tokenizer[i] > 0x7e)
			die("bad shard header (tokenizer name): '%s'", path);
}

/* ---- writer ---- */

void shardw_open(struct shard_writer *w, const char *path,
		 const struct shard_params *p)
{
	unsigned char zero[SHARD_HEADER_BYTES];
	size_t frame_bytes;
	const char *name = p->tokenizer ? p->tokenizer : "";
	int t;

	memset(w, 0, sizeof *w);
	if (p->vocab == 0)
		die("vocabulary size must be at least 1");
	if (shard_name_check(name))
		die("bad tokenizer name (%s): '%s'", shard_name_check(name), name);
	w->h.version = SHARD_VERSION;
	w->h.vocab = p->vocab;
	w->h.width = width_for(p->vocab);
	w->h.eot = p->eot;
	w->h.frame_tokens = p->frame_tokens ? p->frame_tokens : SHARD_DEFAULT_FRAME_TOKENS;
	if (w->h.frame_tokens > SHARD_MAX_FRAME_TOKENS)
		die("frame of %u tokens is over the limit of %u", w->h.frame_tokens,
		    SHARD_MAX_FRAME_TOKENS);
	w->h.level = p->level;
	memcpy(w->h.tokenizer, name, strlen(name) + 1);
	w->threads = p->threads < 1 ? 1 : p->threads > SHARD_MAX_THREADS ?
		     SHARD_MAX_THREADS : p->threads;
	frame_bytes = (size_t)w->h.frame_tokens * w->h.width;
	w->batch = (size_t)w->h.frame_tokens * (size_t)w->threads;
	w->raw = xmalloc(xmul(frame_bytes, (size_t)w->threads));
	w->comp_cap = ZSTD_compressBound(frame_bytes);
	w->all = XXH64_createState();
	if (!w->all)
		die("out of memory");
	XXH64_reset(w->all, 0);
	for (t = 0; t < w->threads; t++) {
		w->comp[t] = xmalloc(w->comp_cap);
		w->cctx[t] = ZSTD_createCCtx();
		if (!w->cctx[t])
			die("out of memory");
		ZSTD_CCtx_setParameter(w->cctx[t], ZSTD_c_compressionLevel, p->level);
		ZSTD_CCtx_setParameter(w->cctx[t], ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(w->cctx[t], ZSTD_c_contentSizeFlag, 1);
	}
	afile_open(&w->a, path);
	memset(zero, 0, sizeof zero);   /* the header is written at commit */
	out_write(&w->a.out, zero, sizeof zero);
	w->offset = SHARD_HEADER_BYTES;
}

/* Compresses the buffered tokens (up to one frame per thread) in
 * parallel, then writes the frames and their index entries in order. */
static void shardw_flush(struct shard_writer *w)
{
	const size_t ft = w->h.frame_tokens, width = w->h.width;
	size_t nf = (w->fill + ft - 1) / ft, csize[SHARD_MAX_THREADS];
	uint64_t thash[SHARD_MAX_THREADS];
	int i;

	if (w->fill == 0)
		return;
	XXH64_update(w->all, w->raw, w->fill * width);
#pragma omp parallel for num_threads(w->threads) schedule(static, 1) if (nf > 1)
	for (i = 0; i < (int)nf; i++) {
		size_t tokens = (size_t)i + 1 < nf ? ft : w->fill - (size_t)i * ft;
		const unsigned char *src = w->raw + (size_t)i * ft * width;

		csize[i] = ZSTD_compress2(w->cctx[i], w->comp[i], w->comp_cap, src,
					  tokens * width);
		thash[i] = XXH64(src, tokens * width, 0);
	}
	for (i = 0; i < (int)nf; i++) {
		size_t tokens = (size_t)i + 1 < nf ? ft : w->fill - (size_t)i * ft;
		unsigned char *e;

		if (ZSTD_isError(csize[i]))
			die("zstd compression failed (%s): '%s'",
			    ZSTD_getErrorName(csize[i]), w->a.path);
		out_write(&w->a.out, w->comp[i], csize[i]);
		if (w->index_len + INDEX_ENTRY > w->index_cap) {
			w->index_cap = w->index_cap ? w->index_cap * 2 : 64 * INDEX_ENTRY;
			w->index = xrealloc(w->index, w->index_cap);
		}
		e = w->index + w->index_len;
		le_put_u64(e, w->offset);
		le_put_u32(e + 8, (uint32_t)csize[i]);
		le_put_u32(e + 12, (uint32_t)tokens);
		le_put_u64(e + 16, thash[i]);
		le_put_u64(e + 24, XXH64(w->comp[i], csize[i], 0));
		w->index_len += INDEX_ENTRY;
		w->offset += csize[i];
		w->h.tokens += tokens;
		w->h.nframes++;
	}
	w->fill = 0;
}

void shardw_write(struct shard_writer *w, const uint32_t *ids, size_t n)
{
	const uint32_t vocab = w->h.vocab, eot = w->h.eot;
	size_t i;

	while (n > 0) {
		size_t k = w->batch - w->fill < n ? w->batch - w->fill : n;
		uint64_t docs = 0;

		uint32_t top = 0;

		/* Separate simple loops: each one vectorizes. */
		for (i = 0; i < k; i++)
			top = ids[i] > top ? ids[i] : top;
		if (top >= vocab)
			for (i = 0; i < k; i++)
				if (ids[i] >= vocab)
					die("token id %u at position %llu of the input is outside the vocabulary (%u ids); see --vocab-size",
					    ids[i], (unsigned long long)(w->first + w->h.tokens + w->fill + i),
					    vocab);
		for (i = 0; i < k; i++)
			docs += ids[i] == eot;
		tokstream_pack(w->raw + w->h.width * w->fill, ids, k, (int)w->h.width);
		w->h.docs += docs;
		w->fill += k;
		ids += k;
		n -= k;
		if (w->fill == w->batch)
			shardw_flush(w);
	}
}

static void shardw_free(struct shard_writer *w)
{
	int t;

	for (t = 0; t < SHARD_MAX_THREADS; t++) {
		ZSTD_freeCCtx(w->cctx[t]);
		free(w->comp[t]);
		w->cctx[t] = NULL;
		w->comp[t] = NULL;
	}
	XXH64_freeState(w->all);
	free(w->raw);
	free(w->index);
	w->all = NULL;
	w->raw = w->index = NULL;
}

void shardw_commit(struct shard_writer *w, struct shard_header *h)
{
	unsigned char head[16], hdr[SHARD_HEADER_BYTES], sum[8];
	uint64_t payload;

	shardw_flush(w);
	w->h.index_offset = w->offset;
	w->h.hash = XXH64_digest(w->all);
	payload = index_bytes(w->h.nframes) - 8;
	if (payload > UINT32_MAX)
		die("too many frames for one shard: '%s'", w->a.path);
	le_put_u32(head, SKIP_INDEX_MAGIC);
	le_put_u32(head + 4, (uint32_t)payload);
	memcpy(head + 8, "GPTINDEX", 8);
	out_write(&w->a.out, head, 16);
	{
		unsigned char cnt[8];
		XXH64_state_t *st = XXH64_createState();

		if (!st)
			die("out of memory");
		le_put_u32(cnt, w->h.nframes);
		le_put_u32(cnt + 4, 0);
		out_write(&w->a.out, cnt, 8);
		out_write(&w->a.out, w->index, w->index_len);
		XXH64_reset(st, 0);
		XXH64_update(st, "GPTINDEX", 8);
		XXH64_update(st, cnt, 8);
		XXH64_update(st, w->index, w->index_len);
		le_put_u64(sum, XXH64_digest(st));
		XXH64_freeState(st);
	}
	out_write(&w->a.out, sum, 8);
	header_encode(&w->h, hdr);
	out_flush(&w->a.out);
	if (pwrite(w->a.fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
		die_errno("write error: '%s'", w->a.tmp);
	if (h)
		*h = w->h;
	afile_commit(&w->a);
	shardw_free(w);
}

void shardw_abort(struct shard_writer *w)
{
	afile_abort(&w->a);
	shardw_free(w);
}

const char *shard_name_check(const char *name)
{
	size_t i;

	if (!*name)
		return "empty";
	if (strlen(name) >= SHARD_NAME_MAX)
		return "too long";
	for (i = 0; name[i]; i++)
		if (name[i] < 0x21 || name[i] > 0x7e)
			return "only printable ASCII without spaces";
	return NULL;
}

/* ---- the output prefix's lock ---- */

static char *lock_path;

/* The pid a lock file holds; -1 when it cannot be read. */
static long lock_file_pid(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

void shard_unlock_prefix(void)
{
	if (lock_path)
		unlink(lock_path);
}

int shard_lock_prefix(const char *prefix, long *holder)
{
	char *path = xasprintf("%s.lock", prefix);

	/* The holder removes the file at exit, still holding the lock, so
	 * a run may lock a file that is no longer there (it opened the file
	 * just before the removal).  Such a lock keeps no one out: take it
	 * again until the file under the name holds our own pid. */
	for (;;) {
		*holder = 0;
		if (io_lock(path, holder) != 0) {
			free(path);
			return -1;
		}
		if (lock_file_pid(path) == (long)getpid())
			break;
	}
	lock_path = path;
	atexit(shard_unlock_prefix);
	return 0;
}

/* ---- reader: one file ---- */

struct sfile {
	struct shard_info info;
	int fd;
	unsigned char *index;           /* nframes entries of INDEX_ENTRY bytes */
};

struct slot {
	int file;                       /* -1 when empty */
	uint32_t frame;
	uint64_t used;                  /* for LRU */
	unsigned char *buf;
};

struct shards {
	struct sfile *f;
	int n;
	uint64_t tokens, docs;
	size_t frame_bytes;             /* largest frame, decoded */
	struct slot *slots;
	int nslots;
	uint64_t clock;
	unsigned char *comp;
	size_t comp_cap;
	ZSTD_DCtx *dctx;
	/* iteration */
	uint32_t T, rank, world;
	int shuffle;
	uint64_t seed, W, G, nblocks, consumed;
	uint64_t *bperm;                /* block order of epoch bepoch */
	uint64_t bepoch, short_at;      /* short_at: place of the short block */
	uint64_t *glist;                /* windows of group gq of epoch bepoch */
	uint64_t gq, glen, gcap;
	int have_epoch, have_group;
};

static void pread_full(int fd, void *p, size_t n, uint64_t off, const char *path)
{
	size_t done = 0;

	while (done < n) {
		ssize_t got = pread(fd, (unsigned char *)p + done, n - done,
				    (off_t)(off + done));

		if (got < 0) {
			if (errno == EINTR)
				continue;
			die_errno("read error: '%s'", path);
		}
		if (got == 0)
			die("truncated shard (ends at byte %llu): '%s'",
			    (unsigned long long)(off + done), path);
		done += (size_t)got;
	}
}

/* Opens one shard and checks its header and index against each other and
 * against the file size, so every later offset is known to be in bounds. */
static void sfile_open(struct sfile *f, const char *path)
{
	unsigned char hdr[SHARD_HEADER_BYTES], *ix;
	struct shard_header *h = &f->info.h;
	struct stat st;
	uint64_t ilen, off = SHARD_HEADER_BYTES, tokens = 0, maxc;
	uint32_t i;

	memset(f, 0, sizeof *f);
	f->info.path = xstrdup(path);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		die_errno("cannot open '%s'", path);
	if (fstat(f->fd, &st) != 0)
		die_errno("cannot stat '%s'", path);
	f->info.file_bytes = (uint64_t)st.st_size;
	if (f->info.file_bytes < SHARD_HEADER_BYTES)
		die("not a gpt-shard file (only %llu bytes): '%s'",
		    (unsigned long long)f->info.file_bytes, path);
	pread_full(f->fd, hdr, sizeof hdr, 0, path);
	header_decode(path, hdr, h);
	ilen = index_bytes(h->nframes);
	if (h->index_offset < SHARD_HEADER_BYTES ||
	    h->index_offset > f->info.file_bytes ||
	    f->info.file_bytes - h->index_offset != ilen)
		die("truncated or damaged shard (%llu bytes, index at %llu of %llu bytes): '%s'",
		    (unsigned long long)f->info.file_bytes,
		    (unsigned long long)h->index_offset,
		    (unsigned long long)ilen, path);
	ix = xmalloc((size_t)ilen);
	pread_full(f->fd, ix, (size_t)ilen, h->index_offset, path);
	if (le_get_u32(ix) != SKIP_INDEX_MAGIC || le_get_u32(ix + 4) != ilen - 8 ||
	    memcmp(ix + 8, "GPTINDEX", 8) != 0)
		die("corrupt shard index (bad frame head): '%s'", path);
	if (XXH64(ix + 8, (size_t)ilen - 16, 0) != le_get_u64(ix + ilen - 8))
		die("corrupt shard index (checksum mismatch): '%s'", path);
	if (le_get_u32(ix + 16) != h->nframes || le_get_u32(ix + 20) != 0)
		die("corrupt shard index (frame count): '%s'", path);
	maxc = ZSTD_compressBound((size_t)h->frame_tokens * h->width);
	for (i = 0; i < h->nframes; i++) {
		const unsigned char *e = ix + 24 + (size_t)i * INDEX_ENTRY;
		uint32_t c = le_get_u32(e + 8), t = le_get_u32(e + 12);

		if (le_get_u64(e) != off || c == 0 || c > maxc || t == 0 ||
		    t > h->frame_tokens ||
		    (i + 1 < h->nframes && t != h->frame_tokens))
			die("corrupt shard index (entry of frame %u): '%s'", i, path);
		off += c;
		tokens += t;
	}
	if (off != h->index_offset || tokens != h->tokens)
		die("corrupt shard index (frames do not add up): '%s'", path);
	f->index = ix;
}

static void sfile_close(struct sfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->index);
	free(f->info.path);
}

static const unsigned char *sfile_entry(const struct sfile *f, uint32_t frame)
{
	return f->index + 24 + (size_t)frame * INDEX_ENTRY;
}

/* Reads, checks and decompresses one frame into out (room for
 * frame_tokens tokens); returns its token count. */
static uint32_t frame_load(const struct sfile *f, uint32_t frame,
			   unsigned char **comp, size_t *comp_cap,
			   ZSTD_DCtx *dctx, unsigned char *out)
{
	const unsigned char *e = sfile_entry(f, frame);
	const char *path = f->info.path;
	uint32_t c = le_get_u32(e + 8), t = le_get_u32(e + 12);
	size_t bytes = (size_t)t * f->info.h.width, got;

	if (c > *comp_cap) {
		*comp_cap = c;
		*comp = xrealloc(*comp, c);
	}
	pread_full(f->fd, *comp, c, le_get_u64(e), path);
	if (XXH64(*comp, c, 0) != le_get_u64(e + 24))
		die("corrupt shard, frame %u: compressed bytes fail their checksum: '%s'",
		    frame, path);
	if (ZSTD_getFrameContentSize(*comp, c) != bytes)
		die("corrupt shard, frame %u: wrong content size: '%s'", frame, path);
	got = ZSTD_decompressDCtx(dctx, out, bytes, *comp, c);
	if (ZSTD_isError(got) || got != bytes)
		die("corrupt shard, frame %u: %s: '%s'", frame,
		    ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame", path);
	if (XXH64(out, bytes, 0) != le_get_u64(e + 16))
		die("corrupt shard, frame %u: token checksum mismatch: '%s'", frame, path);
	return t;
}

void shard_read_header(const char *path, struct shard_header *h)
{
	struct sfile f;

	sfile_open(&f, path);
	*h = f.info.h;
	sfile_close(&f);
}

void shard_verify(const char *path)
{
	struct sfile f;
	struct shard_header *h;
	unsigned char *buf, *comp = NULL;
	size_t comp_cap = 0;
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	XXH64_state_t *all = XXH64_createState();
	uint64_t docs = 0;
	uint32_t i;

	if (!dctx || !all)
		die("out of memory");
	sfile_open(&f, path);
	h = &f.info.h;
	buf = xmalloc((size_t)h->frame_tokens * h->width);
	XXH64_reset(all, 0);
	for (i = 0; i < h->nframes; i++) {
		uint32_t t = frame_load(&f, i, &comp, &comp_cap, dctx, buf), k;

		XXH64_update(all, buf, (size_t)t * h->width);
		for (k = 0; k < t; k++) {
			uint32_t id = h->width == 2 ?
				(uint32_t)buf[2 * k] | (uint32_t)buf[2 * k + 1] << 8 :
				le_get_u32(buf + 4 * k);

			if (id >= h->vocab)
				die("corrupt shard, frame %u: token id %u outside the vocabulary (%u ids): '%s'",
				    i, id, h->vocab, path);
			docs += id == h->eot;
		}
	}
	if (XXH64_digest(all) != h->hash)
		die("corrupt shard: the tokens fail the header's checksum: '%s'", path);
	if (docs != h->docs)
		die("corrupt shard: %llu documents, the header says %llu: '%s'",
		    (unsigned long long)docs, (unsigned long long)h->docs, path);
	free(buf);
	free(comp);
	ZSTD_freeDCtx(dctx);
	XXH64_freeState(all);
	sfile_close(&f);
}

/* ---- reader: a set ---- */

struct shards *shards_open_paths(char *const *paths, int n)
{
	struct shards *s = xcalloc(1, sizeof *s);
	int i;

	if (n <= 0)
		die("no shards given");
	s->f = xcalloc((size_t)n, sizeof *s->f);
	s->n = n;
	for (i = 0; i < n; i++) {
		struct sfile *f = &s->f[i];
		size_t fb;

		sfile_open(f, paths[i]);
		if (i > 0 && (f->info.h.vocab != s->f[0].info.h.vocab ||
			      strcmp(f->info.h.tokenizer, s->f[0].info.h.tokenizer) != 0))
			die("shards disagree: '%s' is %s with %u ids, '%s' is %s with %u ids",
			    s->f[0].info.path, s->f[0].info.h.tokenizer, s->f[0].info.h.vocab,
			    f->info.path, f->info.h.tokenizer, f->info.h.vocab);
		f->info.start = s->tokens;
		s->tokens += f->info.h.tokens;
		s->docs += f->info.h.docs;
		fb = (size_t)f->info.h.frame_tokens * f->info.h.width;
		if (fb > s->frame_bytes)
			s->frame_bytes = fb;
	}
	s->nslots = (int)(CACHE_BYTES / s->frame_bytes);
	if (s->nslots > CACHE_MAX_SLOTS)
		s->nslots = CACHE_MAX_SLOTS;
	if (s->nslots < CACHE_MIN_SLOTS)
		s->nslots = CACHE_MIN_SLOTS;
	s->slots = xcalloc((size_t)s->nslots, sizeof *s->slots);
	for (i = 0; i < s->nslots; i++)
		s->slots[i].file = -1;
	s->dctx = ZSTD_createDCtx();
	if (!s->dctx)
		die("out of memory");
	/* The index's xxh64 of the tokens is checked after every decode;
	 * zstd's own 32-bit check would hash the same bytes again. */
	ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
	s->world = 1;
	return s;
}

static int glob_error(const char *epath, int eerrno)
{
	errno = eerrno;
	die_errno("cannot read '%s'", epath);
}

struct shards *shards_open(const char *pattern)
{
	glob_t g;
	struct shards *s;
	int rc = glob(pattern, GLOB_ERR, glob_error, &g);

	if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0))
		die("no shards match: '%s'", pattern);
	if (rc != 0)
		die("cannot expand: '%s'", pattern);
	if (g.gl_pathc > 1000000)
		die("too many shards match: '%s'", pattern);
	s = shards_open_paths(g.gl_pathv, (int)g.gl_pathc);
	globfree(&g);
	return s;
}

void shards_close(struct shards *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++)
		sfile_close(&s->f[i]);
	for (i = 0; i < s->nslots; i++)
		free(s->slots[i].buf);
	free(s->f);
	free(s->slots);
	free(s->comp);
	free(s->bperm);
	free(s->glist);
	ZSTD_freeDCtx(s->dctx);
	free(s);
}

uint64_t shards_tokens(const struct shards *s) { return s->tokens; }
uint64_t shards_docs(const struct shards *s) { return s->docs; }
int shards_count(const struct shards *s) { return s->n; }
uint32_t shards_vocab(const struct shards *s) { return s->f[0].info.h.vocab; }
uint32_t shards_eot(const struct shards *s) { return s->f[0].info.h.eot; }
const char *shards_tokenizer(const struct shards *s) { return s->f[0].info.h.tokenizer; }

const struct shard_info *shards_info(const struct shards *s, int i)
{
	return i >= 0 && i < s->n ? &s->f[i].info : NULL;
}

/* The decoded frame, from the cache or loaded into the least recently
 * used slot. */
static const unsigned char *shards_frame(struct shards *s, int file, uint32_t frame)
{
	struct slot *best = &s->slots[0];
	int i;

	for (i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		if (sl->file == file && sl->frame == frame) {
			sl->used = ++s->clock;
			return sl->buf;
		}
		if (sl->used < best->used)
			best = sl;
	}
	if (!best->buf)
		best->buf = xmalloc(s->frame_bytes);
	best->file = -1;        /* invalid until the load succeeds */
	frame_load(&s->f[file], frame, &s->comp, &s->comp_cap, s->dctx, best->buf);
	best->file = file;
	best->frame = frame;
	best->used = ++s->clock;
	return best->buf;
}

void shards_read(struct shards *s, uint64_t pos, uint32_t *ids, size_t n)
{
	int lo = 0, hi = s->n;

	if (pos > s->tokens || n > s->tokens - pos)
		die("read past the end of the shards (tokens %llu..%llu of %llu)",
		    (unsigned long long)pos, (unsigned long long)(pos + n),
		    (unsigned long long)s->tokens);
	/* Last file starting at or before pos: skips empty files. */
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;

		if (s->f[mid].info.start <= pos)
			lo = mid;
		else
			hi = mid;
	}
	while (n > 0) {
		const struct sfile *f;
		uint64_t rel;
		uint32_t frame, off, avail;
		const unsigned char *b;

		while (pos >= s->f[lo].info.start + s->f[lo].info.h.tokens)
			lo++;
		f = &s->f[lo];
		rel = pos - f->info.start;
		frame = (uint32_t)(rel / f->info.h.frame_tokens);
		off = (uint32_t)(rel % f->info.h.frame_tokens);
		avail = le_get_u32(sfile_entry(f, frame) + 12) - off;
		if (avail > n)
			avail = (uint32_t)n;
		b = shards_frame(s, lo, frame);
		tokstream_unpack(ids, b + (size_t)off * f->info.h.width, avail,
				 (int)f->info.h.width);
		ids += avail;
		n -= avail;
		pos += avail;
	}
}

/* ---- shuffled iteration ---- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rng_next(uint64_t *st)
{
	*st += 0x9e3779b97f4a7c15ULL;
	return mix64(*st);
}

/* Uniform in [0, n), n > 0, without modulo bias (Lemire). */
static uint64_t rng_below(uint64_t *st, uint64_t n)
{
	unsigned __int128 m = (unsigned __int128)rng_next(st) * n;
	uint64_t l = (uint64_t)m;

	if (l < n) {
		uint64_t t = (0 - n) % n;

		while (l < t) {
			m = (unsigned __int128)rng_next(st) * n;
			l = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

static void shuffle64(uint64_t *a, uint64_t n, uint64_t st)
{
	uint64_t i;

	for (i = n; i > 1; i--) {
		uint64_t j = rng_below(&st, i), t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}

void shards_iter_init(struct shards *s, uint32_t T, uint64_t seed, int shuffle,
		      uint32_t rank, uint32_t world)
{
	if (T == 0)
		die("window length must be at least 1");
	if (world == 0 || rank >= world)
		die("rank %u out of %u", rank, world);
	s->T = T;
	s->seed = seed;
	s->shuffle = shuffle != 0;
	s->rank = rank;
	s->world = world;
	s->W = s->tokens > T ? (s->tokens - 1) / T : 0;
	s->G = BLOCK_TOKENS / T ? BLOCK_TOKENS / T : 1;
	s->nblocks = (s->W + s->G - 1) / s->G;
	s->consumed = 0;
	s->have_epoch = s->have_group = 0;
	free(s->bperm);
	s->bperm = NULL;
}

uint64_t shards_windows(const struct shards *s) { return s->W; }
uint64_t shards_consumed(const struct shards *s) { return s->consumed; }
void shards_skip(struct shards *s, uint64_t n) { s->consumed += n; }

uint64_t shards_epoch(const struct shards *s)
{
	return s->W ? s->consumed / s->W : 0;
}

static uint64_t seed_for(uint64_t seed, uint64_t epoch, uint64_t group)
{
	return mix64(mix64(mix64(seed) ^ epoch) ^ group);
}

/* Block order of epoch e, and where its one short block (the last,
 * when W is not a multiple of G) landed. */
static void iter_epoch(struct shards *s, uint64_t e)
{
	uint64_t i;

	if (s->have_epoch && s->bepoch == e)
		return;
	if (!s->bperm)
		s->bperm = xmalloc(xmul((size_t)s->nblocks, sizeof *s->bperm));
	for (i = 0; i < s->nblocks; i++)
		s->bperm[i] = i;
	shuffle64(s->bperm, s->nblocks, seed_for(s->seed, e, 0));
	s->short_at = s->nblocks;
	for (i = 0; i < s->nblocks; i++)
		if (s->bperm[i] == s->nblocks - 1)
			s->short_at = i;
	s->bepoch = e;
	s->have_epoch = 1;
	s->have_group = 0;
}

static void iter_group(struct shards *s, uint64_t q)
{
	uint64_t i, b, end;

	if (s->have_group && s->gq == q)
		return;
	s->glen = 0;
	end = (q + 1) * GROUP_BLOCKS < s->nblocks ? (q + 1) * GROUP_BLOCKS : s->nblocks;
	for (i = q * GROUP_BLOCKS; i < end; i++) {
		uint64_t first = s->bperm[i] * s->G;
		uint64_t last = first + s->G < s->W ? first + s->G : s->W;

		if (s->glen + (last - first) > s->gcap) {
			s->gcap = GROUP_BLOCKS * s->G;
			s->glist = xrealloc(s->glist, xmul((size_t)s->gcap, sizeof *s->glist));
		}
		for (b = first; b < last; b++)
			s->glist[s->glen++] = b;
	}
	shuffle64(s->glist, s->glen, seed_for(s->seed, s->bepoch, q + 1));
	s->gq = q;
	s->have_group = 1;
}

uint64_t shards_window_at(struct shards *s, uint64_t k)
{
	uint64_t e, j, span, deficit, qs, q, start;

	if (s->W == 0)
		die("too few tokens for one window of %u + 1 (have %llu)",
		    s->T, (unsigned long long)s->tokens);
	e = k / s->W;
	j = k % s->W;
	if (!s->shuffle)
		return j * s->T;
	iter_epoch(s, e);
	/* Every group holds GROUP_BLOCKS * G windows except that the one
	 * holding the short block has deficit fewer (and the last group may
	 * have fewer blocks, which does not move any start). */
	span = GROUP_BLOCKS * s->G;
	deficit = s->nblocks * s->G - s->W;
	qs = s->short_at / GROUP_BLOCKS;
	if (j < (qs + 1) * span - deficit)
		q = j / span;
	else
		q = (j + deficit) / span;
	start = q * span - (q > qs ? deficit : 0);
	iter_group(s, q);
	if (j - start >= s->glen)
		die("internal error: window %llu outside its group",
		    (unsigned long long)j);
	return s->glist[j - start] * s->T;
}

uint64_t shards_next(struct shards *s, uint32_t *ids)
{
	uint64_t pos;

	if (s->T == 0)
		die("shards_next before shards_iter_init");
	pos = shards_window_at(s, s->consumed + s->rank);
	s->consumed += s->world;
	shards_read(s, pos, ids, (size_t)s->T + 1);
	return pos;
}

void shards_pos_save(const struct shards *s, unsigned char *b)
{
	memset(b, 0, SHARD_POS_BYTES);
	memcpy(b, "GPTSPOS1", 8);
	le_put_u32(b + 8, s->T);
	le_put_u32(b + 12, (uint32_t)s->shuffle);
	le_put_u64(b + 16, s->seed);
	le_put_u64(b + 24, s->W);
	le_put_u64(b + 32, s->consumed);
	le_put_u64(b + 40, s->tokens);
	le_put_u32(b + 48, s->world);
	le_put_u64(b + 56, XXH64(b, 56, 0));
}

void shards_pos_restore(struct shards *s, const unsigned char *b)
{
	if (memcmp(b, "GPTSPOS1", 8) != 0 || XXH64(b, 56, 0) != le_get_u64(b + 56))
		die("not a saved shard reader position (bad magic or checksum)");
	if (le_get_u32(b + 8) != s->T || le_get_u32(b + 12) != (uint32_t)s->shuffle ||
	    le_get_u64(b + 16) != s->seed)
		die("saved reader position is for windows of %u, shuffle %u, seed %llu; this reader has %u, %u, %llu",
		    le_get_u32(b + 8), le_get_u32(b + 12), (unsigned long long)le_get_u64(b + 16),
		    s->T, (unsigned)s->shuffle, (unsigned long long)s->seed);
	if (le_get_u64(b + 40) != s->tokens || le_get_u64(b + 24) != s->W)
		die("saved reader position is for other data (%llu tokens, now %llu)",
		    (unsigned long long)le_get_u64(b + 40), (unsigned long long)s->tokens);
	s->consumed = le_get_u64(b + 32);
}
