/* Unit tests for vocab: the built-in byte vocabulary (ids are the bytes,
 * <|endoftext|> is 256), how a tokenizer name picks it, that a file
 * called "bytes" is still reached by a path, and that the fast paths
 * (the inline pretokenizer, the 64-byte block one, the piece caches,
 * vocab_encode_text's batches) agree with the plain ones on GPT-2, and
 * that the backtracking encoder gives the merge's tokens for every piece
 * (random, adversarial, up to several KB) on GPT-2 and on a vocabulary
 * gpt-bpe's trainer learns here. */
#include "test.h"
#include "bpetrain.h"
#include "err.h"
#include "io.h"
#include "pretok.h"
#include "tokenize.h"
#include "vocab.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_bytes_table(void)
{
	struct vocab v;
	size_t len;
	const unsigned char *p;
	int c, bad = -1;

	vocab_load(&v, "bytes");
	CHECK(strcmp(v.name, "bytes") == 0, "name '%s'", v.name);
	CHECK(v.n_ids == 257, "n_ids %u", v.n_ids);
	CHECK(v.eot == 256, "eot %u", v.eot);
	CHECK(v.n_merges == 0, "merges %u", v.n_merges);
	for (c = 0; c < 256 && bad < 0; c++) {
		p = vocab_token(&v, (uint32_t)c, &len);
		if (!p || len != 1 || p[0] != c || v.byte_id[c] != (uint32_t)c)
			bad = c;
	}
	CHECK(bad < 0, "byte %d is not its own id", bad);
	p = vocab_token(&v, 256, &len);
	CHECK(p && len == 13 && memcmp(p, "<|endoftext|>", 13) == 0, "256 is not <|endoftext|>");
	CHECK(vocab_token(&v, 257, &len) == NULL, "257 is a token");
	vocab_free(&v);
}

static void test_bytes_encode(void)
{
	struct vocab v;
	unsigned char text[256 + 13 + 3];
	uint32_t *ids, big[300];
	size_t n, i, bad = SIZE_MAX;

	vocab_load(&v, "bytes");
	for (i = 0; i < 256; i++)
		text[i] = (unsigned char)(255 - i);
	memcpy(text + 256, "<|endoftext|>abc", 16);
	n = tokenize_text(&v, text, sizeof text, 1, &ids);
	CHECK(n == 256 + 1 + 3, "%zu ids with the special", n);
	for (i = 0; i < 256 && bad == SIZE_MAX; i++)
		if (ids[i] != 255 - i)
			bad = i;
	CHECK(bad == SIZE_MAX, "id %zu is %u", bad, bad == SIZE_MAX ? 0 : ids[bad]);
	CHECK(n == 260 && ids[256] == 256 && ids[257] == 'a' && ids[259] == 'c',
	      "the special and after");
	free(ids);
	n = tokenize_text(&v, text, sizeof text, 0, &ids);
	CHECK(n == sizeof text && ids[256] == '<' && ids[268] == '>',
	      "%zu ids: the special's text is its bytes without allow_special", n);
	free(ids);
	/* a long piece goes byte by byte too, not through the merge */
	n = vocab_encode(&v, text, sizeof text, big);
	CHECK(n == sizeof text && big[0] == 255 && big[sizeof text - 1] == 'c', "%zu ids", n);
	vocab_free(&v);
}

static void test_load_for(void)
{
	struct vocab v;
	const char *gpt2 = test_data("gpt2");

	/* the tokenizer's name picks the built-in one, whatever GPT_VOCAB says */
	setenv("GPT_VOCAB", "/nonexistent/vocab", 1);
	vocab_load_for(&v, NULL, "bytes", 1);
	CHECK(strcmp(v.name, "bytes") == 0 && v.n_ids == 257, "'%s' %u ids", v.name, v.n_ids);
	vocab_free(&v);
	/* an explicit vocabulary wins over the name */
	vocab_load_for(&v, gpt2, "bytes", 1);
	CHECK(strcmp(v.name, "gpt2") == 0 && v.n_ids == 50257 && v.n_merges > 0,
	      "'%s' %u ids %u merges", v.name, v.n_ids, v.n_merges);
	vocab_free(&v);
	/* another name finds the GPT-2 vocabulary as before */
	setenv("GPT_VOCAB", gpt2, 1);
	vocab_load_for(&v, NULL, "shake", 1);
	CHECK(strcmp(v.name, "gpt2") == 0, "'%s'", v.name);
	vocab_free(&v);
	CHECK(vocab_builtin("bytes") && !vocab_builtin("./bytes") && !vocab_builtin("gpt2") &&
	      !vocab_builtin(NULL), "vocab_builtin");
}

/* A rank file called bytes: the 256 bytes and one merge, "ab". */
static void test_file_called_bytes(void)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *path = test_path("bytes");
	FILE *f = fopen(path, "w");
	struct vocab v;
	uint32_t ids[4];
	size_t n;
	int c;

	if (!f)
		test_abort_("cannot write", path);
	for (c = 0; c < 256; c++)
		fprintf(f, "%c%c== %d\n", b64[c >> 2], b64[(c & 3) << 4], c);
	fprintf(f, "YWI= 256\n");
	fclose(f);
	vocab_load(&v, path);
	CHECK(strcmp(v.name, "bytes") == 0 && v.n_ids == 258 && v.eot == 257 && v.n_merges == 1,
	      "'%s' %u ids eot %u merges %u", v.name, v.n_ids, v.eot, v.n_merges);
	n = vocab_encode(&v, (const unsigned char *)"abc", 3, ids);
	CHECK(n == 2 && ids[0] == 256 && ids[1] == 'c', "the file's merge is used: %zu ids", n);
	vocab_free(&v);
}

/* Random text from an alphabet that meets every branch of the GPT-2
 * pattern: ASCII runs, apostrophes, spaces and newlines, and letters,
 * digits and marks outside ASCII right after ASCII runs. */
static size_t random_text(unsigned char *t, size_t cap, uint64_t *seed)
{
	static const char *alpha[] = { "a", "b", "Z", "q", "1", "7", " ", " ", "\n",
				       "'", "s", "t", ",", "-", "\xc3\xa9", "\xe4\xb8\xad",
				       "\xd9\xa3", "\xcc\x81", "\xe2\x80\x94", "\xff",
				       "ll", "re" };
	size_t n = 0;

	while (n + 4 < cap) {
		const char *a;

		*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
		a = alpha[(*seed >> 33) % (sizeof alpha / sizeof alpha[0])];
		memcpy(t + n, a, strlen(a));
		n += strlen(a);
	}
	return n;
}

static void test_fast_paths(void)
{
	const char *dir = getenv("GPT_VOCAB");
	static unsigned char t[200000];
	uint32_t *ids = NULL, *ref = NULL, piece[64];
	size_t n, pos, end, m = 0, k, cap = 0, got = 0, bad = SIZE_MAX;
	uint64_t seed = 1;
	struct vocab v;
	int pass;

	if (!dir || !*dir) {
		printf("skip test_fast_paths: GPT_VOCAB is not set\n");
		return;
	}
	vocab_load(&v, dir);
	n = random_text(t, sizeof t, &seed);
	ref = xmalloc(n * sizeof *ref);
	/* Twice: the second pass meets every short piece in the caches. */
	for (pass = 0; pass < 2; pass++) {
		m = 0;
		for (pos = 0; pos < n; pos = end) {
			end = pretok_next(PRETOK_GPT2, t, n, pos);
			if (pretok_next_gpt2(t, n, pos) != end && bad == SIZE_MAX)
				bad = pos;
			if (end - pos <= 64) {
				k = vocab_encode(&v, t + pos, end - pos, piece);
				if (pass && memcmp(piece, ref + m, k * sizeof *piece) != 0 &&
				    bad == SIZE_MAX)
					bad = pos;
				memcpy(ref + m, piece, k * sizeof *piece);
			} else {
				k = vocab_encode(&v, t + pos, end - pos, ref + m);
			}
			m += k;
		}
	}
	CHECK(bad == SIZE_MAX, "a fast path differs at byte %zu", bad);
	/* In batches: more ids than one call returns. */
	for (pos = 0; pos < n && got <= m;) {
		k = vocab_encode_text(&v, t, n, &pos, &ids, &cap);
		if (got + k > m || memcmp(ids, ref + got, k * sizeof *ids) != 0) {
			got = m + 1;
			break;
		}
		got += k;
	}
	CHECK(got == m && m > 4096, "vocab_encode_text gives %zu ids, pieces %zu", got, m);
	free(ids);
	free(ref);
	vocab_free(&v);
}


static size_t put_utf8(unsigned char *t, uint32_t cp)
{
	if (cp < 0x80) {
		t[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		t[0] = (unsigned char)(0xc0 | cp >> 6);
		t[1] = (unsigned char)(0x80 | (cp & 63));
		return 2;
	}
	if (cp < 0x10000) {
		t[0] = (unsigned char)(0xe0 | cp >> 12);
		t[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
		t[2] = (unsigned char)(0x80 | (cp & 63));
		return 3;
	}
	t[0] = (unsigned char)(0xf0 | cp >> 18);
	t[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
	t[2] = (unsigned char)(0x80 | (cp >> 6 & 63));
	t[3] = (unsigned char)(0x80 | (cp & 63));
	return 4;
}

static uint64_t rnd(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return *seed >> 33;
}

/* pretok_starts_gpt2 against pretok_next from every piece start of random
 * text, dense in what its bit rules must get right: contractions (and
 * their look-alikes in upper case or after a space), white space of every
 * ASCII kind in runs before letters, digits and punctuation, and
 * non-ASCII next to ASCII: letters of two, three and four bytes, marks,
 * numbers, punctuation, an emoji, spaces (NBSP, U+3000), a character cut
 * short and a byte that starts none.  The bits must be exactly the starts
 * from 1 up to the highest bit set, over all-ASCII windows up to byte 62,
 * and non-ASCII text must not stop the block at its first byte. */
static void test_block_starts(void)
{
	static const char *alpha[] = { "a", "Zq", "s", "t", "m", "d", "re", "ve", "ll", "S",
				       "'", "'", "''", "1", "42", " ", " ", "  ", "\n", "\t",
				       "\r\n", "\v", "\f", " \n ", ",", ".", "-", "\"",
				       "\xc3\xa9", "\xcc\x81", "\xc2\xa0", "\xe3\x80\x80",
				       "\xe2\x80\x94", "\xd9\xa3", "\xe4\xb8\xad",
				       "\xe6\x96\x87\xe5\xad\x97", "\xd0\x96\xd0\xb8",
				       "\xf0\x9f\x98\x80", "\xf0\x9d\x90\x80", "\xe4\xb8",
				       "\xff" };
	static unsigned char t[4096];
	static unsigned char truth[4096];
	uint64_t seed = 7, got, want;
	size_t n, pos, end, i, skip, windows = 0, full = 0, past = 0, bad = SIZE_MAX;
	int round;

	for (round = 0; round < 400 && bad == SIZE_MAX; round++) {
		int ascii_only = round % 2;

		for (n = 0; n + 8 < sizeof t;) {
			const char *a = alpha[rnd(&seed) % (sizeof alpha / sizeof alpha[0] -
							    (ascii_only ? 13 : 0))];

			memcpy(t + n, a, strlen(a));
			n += strlen(a);
		}
		memset(truth, 0, sizeof truth);
		for (pos = 0; pos < n; pos = end) {
			truth[pos] = 1;
			end = pretok_next(PRETOK_GPT2, t, n, pos);
		}
		for (pos = 0; pos + 64 <= n && bad == SIZE_MAX; pos++) {
			int top, ascii = 1;

			if (!truth[pos])
				continue;
			got = pretok_starts_gpt2(t + pos, &skip);
			windows++;
			for (i = 0; i < 64; i++)
				ascii &= t[pos + i] < 0x80;
			top = got ? 63 - __builtin_clzll(got) : 0;
			for (i = 0; i < 48 && t[pos + i] < 0x80; i++)
				;
			past += !ascii && top > (int)i + 4; /* starts found past non-ASCII */
			if (ascii) {
				top = 62;
				full++;
			}
			want = 0;
			for (i = 1; i <= (size_t)top; i++)
				want |= (uint64_t)truth[pos + i] << i;
			if (got != want || (got && skip) || (!got && ascii && skip))
				bad = pos;
		}
	}
	CHECK(bad == SIZE_MAX, "pretok_starts_gpt2 differs from pretok_next at byte %zu of round %d",
	      bad, round - 1);
	CHECK(windows > 100000 && full > 10000, "only %zu windows, %zu of them ASCII", windows, full);
	CHECK(past > 10000, "only %zu windows with starts found past their first non-ASCII byte",
	      past);
}

/* A code point of one kind: 0 ASCII letters and space, 1 Cyrillic, 2 CJK
 * (a few common ones, so that runs repeat, or any), 3 any. */
static uint32_t random_cp(int kind, uint64_t *seed)
{
	static const uint32_t cjk[] = { 0x7684, 0x4e00, 0x662f, 0x4e0d, 0x4e86, 0x4eba,
					0x6211, 0x5728, 0x6709, 0x4ed6, 0x3053, 0x306e,
					0x30fc, 0x3067, 0x3059, 0x5c0f, 0xac00, 0xb2e4 };
	uint64_t r = rnd(seed);

	switch (kind) {
	case 0:
		return r % 9 == 0 ? ' ' : 'a' + (uint32_t)(r % 26);
	case 1:
		return 0x430 + (uint32_t)(r % 32);
	case 2:
		return r % 4 ? cjk[r % (sizeof cjk / sizeof cjk[0])] :
			       0x4e00 + (uint32_t)((r >> 8) % 0x5000);
	default:
		r %= 0x10ffff;
		return r >= 0xd800 && r < 0xe000 ? (uint32_t)r - 0x800 : (uint32_t)r;
	}
}

/* Piece number i of the differential test, into t (cap bytes): runs of one
 * character, of one script, mixed scripts, the 256 bytes, random UTF-8,
 * random bytes, repeats of a short random string, and cuts of real text. */
static size_t random_piece(unsigned char *t, size_t cap, unsigned i, uint64_t *seed,
			   const unsigned char *text, size_t text_n)
{
	size_t n = 0, want = 1 + rnd(seed) % (i % 7 == 0 ? cap - 8 : 200);
	unsigned char unit[16];
	size_t ul, k;
	int kind = (int)(rnd(seed) % 4);

	switch (i % 8) {
	case 0:         /* one character again and again */
		ul = put_utf8(unit, random_cp(kind, seed));
		while (n + ul <= want) {
			memcpy(t + n, unit, ul);
			n += ul;
		}
		break;
	case 1:         /* one script */
		while (n + 4 <= want)
			n += put_utf8(t + n, random_cp(kind, seed));
		break;
	case 2:         /* scripts mixed */
		while (n + 4 <= want)
			n += put_utf8(t + n, random_cp((int)(rnd(seed) % 4), seed));
		break;
	case 3:         /* the 256 bytes, in order, backwards or shuffled */
		for (k = 0; k < 256; k++)
			t[k] = (unsigned char)(kind == 0 ? k : kind == 1 ? 255 - k : k);
		for (k = 255; kind >= 2 && k > 0; k--) {
			size_t j = rnd(seed) % (k + 1);
			unsigned char c = t[k];

			t[k] = t[j];
			t[j] = c;
		}
		n = 256;
		break;
	case 4:         /* any bytes */
		for (; n < want; n++)
			t[n] = (unsigned char)rnd(seed);
		break;
	case 5:         /* a short string repeated: "aab" runs and the like */
		ul = 1 + rnd(seed) % 6;
		for (k = 0; k < ul; k++)
			unit[k] = kind == 3 ? (unsigned char)rnd(seed) :
					      (unsigned char)("ab \n\xe4\xb8" [rnd(seed) % 6]);
		for (; n < want; n++)
			t[n] = unit[n % ul];
		break;
	default:        /* a cut of real text, pieces and all */
		k = rnd(seed) % (text_n - want);
		memcpy(t, text + k, want);
		n = want;
		break;
	}
	return n ? n : 1;
}

/* Every piece: the backtracking encoder, and vocab_encode (the caches and
 * whichever encoder it picks), against the merge. */
static void check_encoders(const struct vocab *v, const char *what, const unsigned char *text,
			   size_t text_n, unsigned count)
{
	static unsigned char t[6000];
	static uint32_t want[6000], got[6000];
	uint64_t seed = 42;
	unsigned i, bad = UINT_MAX, bad_api = UINT_MAX;
	size_t n, k, total = 0;

	for (i = 0; i < count; i++) {
		n = random_piece(t, sizeof t, i, &seed, text, text_n);
		total += n;
		k = vocab_encode_algo(v, t, n, want, VOCAB_MERGE);
		if (vocab_encode_algo(v, t, n, got, VOCAB_BACKTRACK) != k ||
		    memcmp(got, want, k * sizeof *got) != 0) {
			if (bad == UINT_MAX)
				bad = i;
		}
		if (vocab_encode(v, t, n, got) != k || memcmp(got, want, k * sizeof *got) != 0) {
			if (bad_api == UINT_MAX)
				bad_api = i;
		}
	}
	CHECK(bad == UINT_MAX, "%s: backtracking differs from the merge on piece %u (kind %u)",
	      what, bad, bad % 8);
	CHECK(bad_api == UINT_MAX, "%s: vocab_encode differs from the merge on piece %u (kind %u)",
	      what, bad_api, bad_api % 8);
	CHECK(total > 1000000, "%s: only %zu bytes", what, total);
}

static void test_backtrack_gpt2(void)
{
	const char *dir = getenv("GPT_VOCAB");
	size_t text_n;
	unsigned char *text = io_read_file(test_data("text/tinyshakespeare.txt"), 64 << 20,
					   &text_n);
	struct vocab v;

	if (!dir || !*dir) {
		printf("skip test_backtrack_gpt2: GPT_VOCAB is not set\n");
		free(text);
		return;
	}
	vocab_load(&v, dir);
	CHECK(v.backtrack, "GPT-2 does not take the backtracking encoder");
	check_encoders(&v, "gpt2", text, text_n, 30000);
	vocab_free(&v);
	free(text);
}

/* The one file in dir (a cache's vocab folder), or NULL. */
static char *only_file(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *got = NULL;
	int n = 0;

	if (!d)
		return NULL;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			n++;
			free(got);
			got = xasprintf("%s/%s", dir, e->d_name);
		}
	closedir(d);
	if (n != 1) {
		free(got);
		return NULL;
	}
	return got;
}

/* ids of text by v, a piece at a time as gpt-tokenize does */
static uint32_t *encode_all(const struct vocab *v, const unsigned char *text, size_t n,
			    size_t *count)
{
	size_t pos = 0, cap = 0, m, total = 0, room = 1 << 16;
	uint32_t *ids = NULL, *all = xmalloc(room * sizeof *all);

	while (pos < n) {
		m = vocab_encode_text(v, text, n, &pos, &ids, &cap);
		if (total + m > room) {
			room = 2 * (total + m);
			all = xrealloc(all, room * sizeof *all);
		}
		memcpy(all + total, ids, m * sizeof *ids);
		total += m;
	}
	free(ids);
	*count = total;
	return all;
}

/* A load that maps the compiled cache (vocab.c's vc_load) gives what a
 * build gives; a damaged, truncated or group-writable file is not taken
 * (the vocabulary is built again and the file replaced), and
 * GPT_VOCAB_CACHE=0 neither reads nor writes one. */
static void test_compiled_cache(void)
{
	const char *dir = getenv("GPT_VOCAB");
	const char *xc = test_path("xc"), *vdir = test_path("xc/gpt/vocab");
	size_t text_n, n0, n1, i;
	unsigned char *text;
	uint32_t *ids0, *ids1;
	struct vocab v0, v1;
	char *file;
	int round;

	if (!dir || !*dir) {
		printf("skip test_compiled_cache: GPT_VOCAB is not set\n");
		return;
	}
	text = io_read_file(test_data("text/tinyshakespeare.txt"), 64 << 20, &text_n);
	setenv("XDG_CACHE_HOME", xc, 1);
	setenv("GPT_VOCAB_CACHE", "0", 1);
	vocab_load(&v0, dir);
	CHECK(v0.map == NULL && only_file(vdir) == NULL, "GPT_VOCAB_CACHE=0 used a cache");
	unsetenv("GPT_VOCAB_CACHE");
	ids0 = encode_all(&v0, text, text_n, &n0);
	/* built and kept; mapped; damaged, truncated, writable by the group,
	 * each built and kept again; mapped */
	for (round = 0; round < 6; round++) {
		int fd;

		vocab_load(&v1, dir);
		file = only_file(vdir);
		CHECK(file != NULL, "round %d: no cache file", round);
		if (!file)
			break;
		CHECK((v1.map != NULL) == (round == 1 || round == 5),
		      "round %d: mapped %d", round, v1.map != NULL);
		CHECK(v1.n_ids == v0.n_ids && v1.eot == v0.eot && v1.n_special == v0.n_special &&
		      v1.backtrack == v0.backtrack && strcmp(v1.name, v0.name) == 0,
		      "round %d: the header differs", round);
		for (i = 0; i < (size_t)v0.n_special && i < (size_t)v1.n_special; i++)
			CHECK(v1.special[i].id == v0.special[i].id &&
			      strcmp(v1.special[i].text, v0.special[i].text) == 0,
			      "round %d: special %zu differs", round, i);
		ids1 = encode_all(&v1, text, text_n, &n1);
		CHECK(n1 == n0 && memcmp(ids0, ids1, n0 * sizeof *ids0) == 0,
		      "round %d: ids differ (%zu, %zu)", round, n0, n1);
		free(ids1);
		vocab_free(&v1);
		if (round == 1) {           /* one byte deep in the trie */
			struct stat st;
			unsigned char c;

			fd = open(file, O_RDWR);
			CHECK(fd >= 0 && fstat(fd, &st) == 0, "cannot open %s", file);
			CHECK(pread(fd, &c, 1, st.st_size - 300000) == 1, "read");
			c ^= 0x10;
			CHECK(pwrite(fd, &c, 1, st.st_size - 300000) == 1, "write");
			close(fd);
		} else if (round == 2) {
			CHECK(truncate(file, 5000) == 0, "truncate");
		} else if (round == 3) {
			CHECK(chmod(file, 0664) == 0, "chmod");
		}
		free(file);
	}
	vocab_free(&v0);
	free(ids0);
	free(text);
	unsetenv("XDG_CACHE_HOME");
}

/* The trained vocabulary again with its last token's id moved to 2^22:
 * ids then need more than the 21 bits of the one-word pair table, so the
 * merges go through the wide one, and must give the same tokens. */
static void check_wide_ids(const struct vocab *narrow, const char *path,
			   const unsigned char *text, size_t n)
{
	const char *wide_path = test_path("wide.tiktoken");
	const uint32_t far = 1u << 22;
	size_t len, cut, pa = 0, pb = 0, ca = 0, cb = 0, ma, mb, i, bad = SIZE_MAX, total = 0;
	unsigned char *ranks = io_read_file(path, 1 << 20, &len);
	uint32_t *ia = NULL, *ib = NULL, last;
	struct vocab v;
	FILE *f;

	while (len && ranks[len - 1] == '\n')
		len--;
	for (cut = len; cut && ranks[cut - 1] != ' '; cut--)
		;
	last = cut ? (uint32_t)atol((char *)ranks + cut) : 0;
	CHECK(last > 256 && last < narrow->n_ids, "the last rank is %u", last);
	f = fopen(wide_path, "w");
	if (!f)
		test_abort_("cannot write", wide_path);
	fprintf(f, "%.*s%u\n", (int)cut, (char *)ranks, far);
	fclose(f);
	free(ranks);
	vocab_load(&v, wide_path);
	CHECK(v.pair == NULL && v.pair_key && v.pair_bits > 21,
	      "ids to %u took the %u-bit table", far, v.pair_bits);
	while (pa < n && bad == SIZE_MAX) {
		ma = vocab_encode_text(narrow, text, n, &pa, &ia, &ca);
		mb = vocab_encode_text(&v, text, n, &pb, &ib, &cb);
		if (ma != mb || pa != pb) {
			bad = total;
			break;
		}
		for (i = 0; i < ma; i++)
			if (ib[i] != (ia[i] == last ? far : ia[i])) {
				bad = total + i;
				break;
			}
		total += ma;
	}
	CHECK(bad == SIZE_MAX, "wide ids: token %zu differs", bad);
	CHECK(total > 100000, "wide ids: only %zu tokens", total);
	free(ia);
	free(ib);
	vocab_free(&v);
}

/* A vocabulary learned here from Shakespeare and from words of Cyrillic
 * and CJK characters, so that it holds long tokens of each; the trainer
 * reuses a token that a second split reaches, which the merge's table
 * must and the backtracking encoder's splits must get right. */
static void test_backtrack_trained(void)
{
	struct bpe_opts o = { PRETOK_GPT2, 0, BPE_NO_LIMIT, BPE_NO_LIMIT };
	size_t text_n, n = 0, w;
	unsigned char *text = io_read_file(test_data("text/tinyshakespeare.txt"), 64 << 20,
					   &text_n);
	unsigned char *mix = xmalloc(text_n / 2 + 400000);
	const char *path = test_path("trained.tiktoken");
	uint64_t seed = 9;
	struct bpetrain t;
	struct vocab v;
	struct out out;
	int fd;

	memcpy(mix, text, text_n / 2);
	n = text_n / 2;
	while (n + 200 < text_n / 2 + 400000) {
		int kind = 1 + (int)(rnd(&seed) % 2);
		uint64_t word = rnd(&seed) % 40, ws = word + 1;

		mix[n++] = ' ';
		for (w = 0; w < 2 + word % 9; w++)
			n += put_utf8(mix + n, random_cp(kind == 1 ? 1 : 2, &ws));
	}
	bpetrain_init(&t, &o);
	bpetrain_feed(&t, mix, n);
	bpetrain_end(&t);
	bpetrain_learn(&t, 1500, NULL);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		test_abort_("cannot write", path);
	out_init(&out, fd, path);
	bpetrain_write_ranks(&t, &out);
	out_flush(&out);
	out_free(&out);
	close(fd);
	bpetrain_free(&t);
	vocab_load(&v, path);
	CHECK(v.n_merges > 1000, "%u merges", v.n_merges);
	printf("trained vocabulary: %u ids, backtracking %s\n", v.n_ids,
	       v.backtrack ? "on" : "off");
	check_encoders(&v, "trained", mix, n, 30000);
	check_wide_ids(&v, path, mix, n);
	vocab_free(&v);
	free(mix);
	free(text);
}

int main(void)
{
	err_init("test_vocab");
	io_init();
	RUN(test_bytes_table);
	RUN(test_bytes_encode);
	RUN(test_load_for);
	RUN(test_file_called_bytes);
	RUN(test_fast_paths);
	RUN(test_block_starts);
	RUN(test_backtrack_gpt2);
	RUN(test_compiled_cache);
	RUN(test_backtrack_trained);
	test_tmpdir_remove();
	return TEST_END();
}
