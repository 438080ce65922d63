/* Unit tests for vocab: the built-in byte vocabulary (ids are the bytes,
 * <|endoftext|> is 256), how a tokenizer name picks it, that a file
 * called "bytes" is still reached by a path, and that the fast paths
 * (the inline pretokenizer, the piece caches, vocab_encode_text's
 * batches) agree with the plain ones on GPT-2. */
#include "test.h"
#include "err.h"
#include "io.h"
#include "tokenize.h"
#include "vocab.h"

#include <stdint.h>

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

int main(void)
{
	err_init("test_vocab");
	io_init();
	RUN(test_bytes_table);
	RUN(test_bytes_encode);
	RUN(test_load_for);
	RUN(test_file_called_bytes);
	RUN(test_fast_paths);
	test_tmpdir_remove();
	return TEST_END();
}
