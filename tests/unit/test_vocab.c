/* Unit tests for vocab: the built-in byte vocabulary (ids are the bytes,
 * <|endoftext|> is 256), how a tokenizer name picks it, and that a file
 * called "bytes" is still reached by a path. */
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

int main(void)
{
	err_init("test_vocab");
	io_init();
	RUN(test_bytes_table);
	RUN(test_bytes_encode);
	RUN(test_load_for);
	RUN(test_file_called_bytes);
	test_tmpdir_remove();
	return TEST_END();
}
