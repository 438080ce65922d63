/* Unit tests for the shard writer and reader: windows by position equal
 * the uncompressed stream, the shuffled order is a seeded permutation,
 * save/restore resumes exactly, and every flipped or cut byte is caught. */
#include "test.h"
#include "shard.h"
#include "err.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t *data;          /* the stream all shards of a set hold */
static size_t ndata;

static uint64_t rng_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((rng_state >> 33) % n);
}

/* Stream of n ids below vocab: runs of repeated ids (compressible) mixed
 * with random ones, an eot every so often, and both edges of the range. */
static void make_data(size_t n, uint32_t vocab)
{
	size_t i;

	free(data);
	data = xmalloc(n * sizeof *data);
	ndata = n;
	for (i = 0; i < n; i++)
		data[i] = (i / 64) % 2 ? (uint32_t)(i / 64 % 97) : rnd(vocab);
	for (i = 0; i < n; i += 501)
		data[i] = vocab - 1;
	if (n > 2) {
		data[1] = 0;
		data[2] = vocab - 1;
	}
}

static void write_shard(const char *path, const uint32_t *ids, size_t n,
			uint32_t vocab, uint32_t frame_tokens)
{
	struct shard_writer w;
	struct shard_params p = { vocab, vocab - 1, frame_tokens, 3, "test", 2 };
	size_t i;

	shardw_open(&w, path, &p);
	for (i = 0; i < n; i += 333)    /* odd pieces: frames cut mid-write */
		shardw_write(&w, ids + i, n - i < 333 ? n - i : 333);
	shardw_commit(&w, NULL);
}

/* A set of 4 shards (one empty) holding data[0..n). */
static struct shards *make_set(size_t n, uint32_t vocab, uint32_t frame)
{
	size_t a = n / 3, b = a + n / 4;

	make_data(n, vocab);
	write_shard(test_path("s-0.tok.zst"), data, a, vocab, frame);
	write_shard(test_path("s-1.tok.zst"), data + a, 0, vocab, frame);
	write_shard(test_path("s-2.tok.zst"), data + a, b - a, vocab, frame);
	write_shard(test_path("s-3.tok.zst"), data + b, n - b, vocab, frame);
	return shards_open(test_path("s-*.tok.zst"));
}

static void test_read_windows(void)
{
	uint32_t vocab[2] = { 50257, 100000 };
	int v;

	for (v = 0; v < 2; v++) {
		struct shards *s = make_set(50000, vocab[v], 1000);
		uint32_t buf[3000];
		uint64_t docs = 0;
		size_t i;
		int k, bad = 0;

		CHECK(shards_count(s) == 4, "4 shards");
		CHECK(shards_tokens(s) == ndata, "tokens %llu", (unsigned long long)shards_tokens(s));
		CHECK(shards_vocab(s) == vocab[v] && strcmp(shards_tokenizer(s), "test") == 0,
		      "vocab and name");
		CHECK(shards_info(s, 0)->h.width == (vocab[v] > 65536 ? 4u : 2u), "width");
		for (i = 0; i < ndata; i++)
			docs += data[i] == vocab[v] - 1;
		CHECK(shards_docs(s) == docs, "docs %llu vs %llu",
		      (unsigned long long)shards_docs(s), (unsigned long long)docs);
		for (k = 0; k < 400; k++) {
			size_t len = 1 + rnd(3000);
			uint64_t pos = rnd((uint32_t)(ndata - len + 1));

			shards_read(s, pos, buf, len);
			bad += memcmp(buf, data + pos, len * 4) != 0;
		}
		shards_read(s, 0, buf, 3000);
		bad += memcmp(buf, data, 3000 * 4) != 0;
		shards_read(s, ndata - 3000, buf, 3000);
		bad += memcmp(buf, data + ndata - 3000, 3000 * 4) != 0;
		CHECK(bad == 0, "%d windows differ from the stream", bad);
		shards_close(s);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* T = 32768: 8 windows a block, 64 a group, so 2.5M tokens make 76
 * windows in 10 blocks (one short) over 2 groups. */
static void test_shuffle(void)
{
	const uint32_t T = 32768;
	struct shards *s = make_set(2500000, 50257, 65536), *s2;
	uint64_t W, k, *e0, *e1, *again, *other;
	uint32_t *ids = xmalloc((T + 1) * sizeof *ids);
	int bad = 0;

	shards_iter_init(s, T, 7, 1, 0, 1);
	W = shards_windows(s);
	CHECK(W == (2500000 - 1) / T, "W %llu", (unsigned long long)W);
	e0 = xmalloc(W * 8);
	e1 = xmalloc(W * 8);
	again = xmalloc(W * 8);
	other = xmalloc(W * 8);
	for (k = 0; k < W; k++) {
		e0[k] = shards_next(s, ids);
		bad += memcmp(ids, data + e0[k], (T + 1) * 4) != 0;
	}
	CHECK(bad == 0, "%d windows differ from the stream", bad);
	CHECK(shards_epoch(s) == 1, "one epoch done");
	for (k = 0; k < W; k++)
		e1[k] = shards_next(s, ids);
	s2 = shards_open(test_path("s-*.tok.zst"));
	shards_iter_init(s2, T, 7, 1, 0, 1);
	for (k = 0; k < W; k++)
		again[k] = shards_window_at(s2, k);
	CHECK(memcmp(e0, again, W * 8) == 0, "same seed, same order");
	shards_iter_init(s2, T, 8, 1, 0, 1);
	for (k = 0; k < W; k++)
		other[k] = shards_window_at(s2, k);
	CHECK(memcmp(e0, other, W * 8) != 0, "another seed, another order");
	CHECK(memcmp(e0, e1, W * 8) != 0, "epoch 1 differs from epoch 0");
	qsort(e0, W, 8, cmp_u64);
	qsort(e1, W, 8, cmp_u64);
	qsort(other, W, 8, cmp_u64);
	for (k = 0; k < W; k++)
		bad += e0[k] != k * T || e1[k] != k * T || other[k] != k * T;
	CHECK(bad == 0, "each epoch is a permutation of the windows");
	shards_iter_init(s2, T, 7, 0, 0, 1);
	for (k = 0; k < W + 3; k++)
		bad += shards_window_at(s2, k) != (k % W) * T;
	CHECK(bad == 0, "unshuffled: in order, repeating");
	shards_close(s2);
	shards_close(s);
	free(e0);
	free(e1);
	free(again);
	free(other);
	free(ids);
}

static void test_ranks(void)
{
	const uint32_t T = 512;
	struct shards *s = make_set(400000, 50257, 4096), *r[3];
	uint32_t *ids = xmalloc((T + 1) * sizeof *ids);
	uint64_t k, W;
	int i, bad = 0;

	shards_iter_init(s, T, 3, 1, 0, 1);
	W = shards_windows(s);
	for (i = 0; i < 3; i++) {
		r[i] = shards_open(test_path("s-*.tok.zst"));
		shards_iter_init(r[i], T, 3, 1, (uint32_t)i, 3);
	}
	for (k = 0; k < W + 20; k += 3)
		for (i = 0; i < 3; i++)
			bad += shards_next(r[i], ids) != shards_window_at(s, k + (uint64_t)i);
	CHECK(bad == 0, "rank i reads window i of every 3");
	CHECK(shards_consumed(r[1]) == shards_consumed(r[2]), "ranks agree on the position");
	for (i = 0; i < 3; i++)
		shards_close(r[i]);
	shards_close(s);
	free(ids);
}

static void test_save_restore(void)
{
	const uint32_t T = 1024;
	struct shards *s = make_set(300000, 50257, 4096), *t;
	uint32_t *a = xmalloc((T + 1) * 4), *b = xmalloc((T + 1) * 4);
	unsigned char blob[SHARD_POS_BYTES];
	uint64_t k, want[400];
	int bad = 0;

	shards_iter_init(s, T, 99, 1, 0, 1);
	for (k = 0; k < 250; k++)       /* into the second epoch */
		shards_next(s, a);
	shards_pos_save(s, blob);
	for (k = 0; k < 400; k++)
		want[k] = shards_next(s, a);
	t = shards_open(test_path("s-*.tok.zst"));
	shards_iter_init(t, T, 99, 1, 0, 1);
	shards_pos_restore(t, blob);
	CHECK(shards_consumed(t) == 250, "consumed restored");
	for (k = 0; k < 400; k++) {
		uint64_t p = shards_next(t, b);

		shards_read(s, p, a, T + 1);
		bad += p != want[k] || memcmp(a, b, (T + 1) * 4) != 0;
	}
	CHECK(bad == 0, "%d windows differ after restore", bad);
	shards_close(t);
	shards_close(s);
	free(a);
	free(b);
}

static void read_all(const char *path)
{
	struct shards *s = shards_open_paths((char *const *)&path, 1);
	uint32_t buf[4096];
	uint64_t pos, n = shards_tokens(s);

	for (pos = 0; pos < n; pos += 4096)
		shards_read(s, pos, buf, n - pos < 4096 ? (size_t)(n - pos) : 4096);
	shards_close(s);
}

static void restore_other_seed(const char *path)
{
	struct shards *s = shards_open(path);
	unsigned char blob[SHARD_POS_BYTES];

	shards_iter_init(s, 16, 1, 1, 0, 1);
	shards_pos_save(s, blob);
	shards_iter_init(s, 16, 2, 1, 0, 1);
	shards_pos_restore(s, blob);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	struct stat st;
	unsigned char *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0)
		abort();
	b = xmalloc((size_t)st.st_size);
	if (read(fd, b, (size_t)st.st_size) != st.st_size)
		abort();
	close(fd);
	*n = (size_t)st.st_size;
	return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, b, n) != (ssize_t)n)
		abort();
	close(fd);
}

static void test_corruption(void)
{
	const char *good = test_path("c.tok.zst"), *bad = test_path("bad.tok.zst");
	unsigned char *orig, *copy;
	size_t n, i, frames_end;
	char err[512];
	int k, missed = 0, unnamed = 0, noframe = 0;
	struct shard_header h;

	make_data(6000, 50257);
	write_shard(good, data, 6000, 50257, 1000);
	shard_verify(good);
	shard_read_header(good, &h);
	frames_end = h.index_offset;
	orig = slurp(good, &n);
	copy = xmalloc(n);
	for (k = 0; k < 300; k++) {
		/* every header and trailer byte once, the rest at random */
		i = k < 128 ? (size_t)k : k < 200 ? n - 1 - (size_t)(k - 128) : rnd((uint32_t)n);
		memcpy(copy, orig, n);
		copy[i] ^= (unsigned char)(1u << rnd(8));
		spit(bad, copy, n);
		if (test_child(shard_verify, bad, err, sizeof err) != 1)
			missed++;
		else if (!strstr(err, "bad.tok.zst"))
			unnamed++;
		if (test_child(read_all, bad, err, sizeof err) != 1)
			missed++;
		else if (!strstr(err, "bad.tok.zst"))
			unnamed++;
		else if (i >= 128 && i < frames_end && !strstr(err, "frame "))
			noframe++;
	}
	CHECK(missed == 0, "%d flips not caught", missed);
	CHECK(unnamed == 0, "%d errors without the file name", unnamed);
	CHECK(noframe == 0, "%d frame errors without the frame", noframe);
	for (k = 0; k < 40; k++) {
		size_t len = k < 20 ? (size_t)k * 7 : rnd((uint32_t)n);

		spit(bad, orig, len);
		missed += test_child(shard_verify, bad, err, sizeof err) != 1;
		missed += test_child(read_all, bad, err, sizeof err) != 1;
	}
	memcpy(copy, orig, n);
	spit(bad, copy, n);
	{
		int fd = open(bad, O_WRONLY | O_APPEND);

		if (fd < 0 || write(fd, "x", 1) != 1)
			abort();
		close(fd);
	}
	missed += test_child(shard_verify, bad, err, sizeof err) != 1;
	CHECK(missed == 0, "%d truncations or extensions not caught", missed);
	CHECK(test_child(restore_other_seed, good, err, sizeof err) == 1 && strstr(err, "seed"),
	      "restore with another seed refused: %s", err);
	unlink(bad);
	free(orig);
	free(copy);
}

static void write_over_vocab(const char *path)
{
	uint32_t ids[2] = { 5, 50257 };
	struct shard_writer w;
	struct shard_params p = { 50257, 50256, 0, 3, "gpt2", 1 };

	shardw_open(&w, path, &p);
	shardw_write(&w, ids, 2);
	shardw_commit(&w, NULL);
}

static void test_writer_refuses(void)
{
	char err[512];
	struct stat st;

	CHECK(test_child(write_over_vocab, test_path("v.tok.zst"), err, sizeof err) == 1 &&
	      strstr(err, "50257") && strstr(err, "position 1"),
	      "id over the vocabulary refused: %s", err);
	CHECK(stat(test_path("v.tok.zst"), &st) != 0, "no shard left behind");
}

static void write_second_shard(const char *path)
{
	uint32_t ids[3] = { 5, 6, 50300 };
	struct shard_writer w;
	struct shard_params p = { 50257, 50256, 0, 3, "gpt2", 1 };

	shardw_open(&w, path, &p);
	w.first = 1000;         /* the shard starts at input position 1000 */
	shardw_write(&w, ids, 3);
	shardw_commit(&w, NULL);
}

static void test_writer_positions(void)
{
	char err[512];

	CHECK(test_child(write_second_shard, test_path("w.tok.zst"), err, sizeof err) == 1 &&
	      strstr(err, "50300") && strstr(err, "position 1002 of the input"),
	      "an id over the vocabulary is named at its input position: %s", err);
}

static void lock_twice(const char *prefix)
{
	long holder = -1;

	if (shard_lock_prefix(prefix, &holder) != 0)
		exit(3);
	/* the same process again, through another open file: refused */
	if (shard_lock_prefix(prefix, &holder) != -1 || holder != (long)getpid())
		exit(4);
	exit(0);
}

static void test_names_and_lock(void)
{
	char err[512], *lock = test_path("pfx.lock");
	struct stat st;
	int rc;

	CHECK(shard_name_check("gpt2") == NULL, "gpt2 is a name");
	CHECK(shard_name_check("my-bpe_v2.1") == NULL, "punctuation is fine");
	CHECK(shard_name_check("") != NULL, "empty refused");
	CHECK(shard_name_check("a b") != NULL, "space refused");
	CHECK(shard_name_check("caf\xc3\xa9") != NULL, "non-ASCII refused");
	CHECK(shard_name_check("0123456789012345678901234567890123456789") != NULL,
	      "40 characters refused");
	CHECK(shard_name_check("012345678901234567890123456789012345678") == NULL,
	      "39 characters taken");
	rc = test_child(lock_twice, test_path("pfx"), err, sizeof err);
	CHECK(rc == 0, "a held lock refuses another taker, naming the holder (status %d: %s)", rc, err);
	CHECK(stat(lock, &st) != 0, "the lock file is gone after the holder's exit");
}

int main(void)
{
	err_init("test_shard");
	io_init();
	RUN(test_read_windows);
	RUN(test_shuffle);
	RUN(test_ranks);
	RUN(test_save_restore);
	RUN(test_corruption);
	RUN(test_writer_refuses);
	RUN(test_writer_positions);
	RUN(test_names_and_lock);
	free(data);
	return TEST_END();
}
