/* test_bpetrain: the BPE trainer's rules on hand-made inputs (tie order,
 * overlapping pairs, character caps, NUL-ended documents), and that how
 * the input is cut into feeds never changes the merges. */
#include "bpetrain.h"
#include "err.h"
#include "test.h"

#include <stdint.h>

static void train(struct bpetrain *t, const struct bpe_opts *o,
		  const char *s, size_t n, uint32_t size)
{
	bpetrain_init(t, o);
	bpetrain_feed(t, s, n);
	bpetrain_end(t);
	bpetrain_learn(t, size, NULL);
}

static int merge_is(const struct bpetrain *t, size_t i, uint32_t l,
		    uint32_t r, uint32_t id)
{
	return i < t->n_merges && t->merges[i].left == l &&
	       t->merges[i].right == r && t->merges[i].id == id;
}

static void test_ties_smallest_pair_first(void)
{
	struct bpe_opts o = { PRETOK_GPT2, 0, BPE_NO_LIMIT, BPE_NO_LIMIT };
	struct bpetrain t;

	/* pieces "ab" and " cd": three pairs of count 1 */
	train(&t, &o, "ab cd", 5, 1000);
	CHECK(t.n_merges == 3, "%zu merges", t.n_merges);
	CHECK(merge_is(&t, 0, ' ', 'c', 256), "first: ' ' + c");
	CHECK(merge_is(&t, 1, 'a', 'b', 257), "second: a + b");
	CHECK(merge_is(&t, 2, 256, 'd', 258), "third: ' c' + d");
	CHECK(t.n_tok == 259, "%u tokens", t.n_tok);
	bpetrain_free(&t);
}

static void test_overlapping_pairs(void)
{
	struct bpe_opts o = { PRETOK_GPT2, 0, BPE_NO_LIMIT, BPE_NO_LIMIT };
	struct bpetrain t;

	/* "aaaa" holds (a, a) three times, beating (b, c) twice */
	train(&t, &o, "aaaa bc bc", 10, 1000);
	CHECK(merge_is(&t, 0, 'a', 'a', 256), "a + a first");
	CHECK(merge_is(&t, 1, ' ', 'b', 257), "then ' ' + b (count 2)");
	CHECK(merge_is(&t, 2, 257, 'c', 258), "' b' + c (count 2)");
	CHECK(merge_is(&t, 3, 256, 256, 259), "aa + aa (count 1) last");
	bpetrain_free(&t);
}

static void test_caps_count_characters(void)
{
	struct bpe_opts o = { PRETOK_GPT2, 1, BPE_NO_LIMIT, 2 };
	struct bpetrain t;

	/* -z, 2 characters per document: "h\xc3\xa9" and "xy" */
	train(&t, &o, "h\xc3\xa9llo\0xyz", 10, 1000);
	CHECK(t.n_merges == 3, "%zu merges", t.n_merges);
	CHECK(merge_is(&t, 0, 'h', 0xc3, 256), "h + first byte of e-acute");
	CHECK(merge_is(&t, 1, 'x', 'y', 257), "x + y");
	CHECK(merge_is(&t, 2, 256, 0xa9, 258), "then the last byte");
	CHECK(t.docs == 2, "%llu documents", (unsigned long long)t.docs);
	bpetrain_free(&t);

	o.doc_cap = BPE_NO_LIMIT;
	o.max_chars = 3;
	train(&t, &o, "ab\0cd\0ef\0", 9, 1000);
	CHECK(t.n_merges == 1 && merge_is(&t, 0, 'a', 'b', 256),
	      "--max-chars 3 leaves ab and c: %zu merges", t.n_merges);
	bpetrain_free(&t);
}

static void test_nul_ends_documents(void)
{
	struct bpe_opts o = { PRETOK_GPT2, 1, BPE_NO_LIMIT, BPE_NO_LIMIT };
	struct bpetrain t;
	size_t i;
	int nul = 0;

	train(&t, &o, "a\0\0b\0a\0\0b", 9, 1000);
	CHECK(t.n_merges == 0, "-z: %zu merges over single letters", t.n_merges);
	bpetrain_free(&t);
	o.zero = 0;
	train(&t, &o, "a\0\0b\0a\0\0b", 9, 1000);
	for (i = 0; i < t.n_merges; i++)
		nul |= t.merges[i].left == 0 || t.merges[i].right == 0;
	CHECK(nul, "without -z NUL is a byte like any other");
	bpetrain_free(&t);
}

/* A text of a few MB with long lines, many scripts and no NUL. */
static char *make_text(size_t n, uint32_t seed)
{
	static const char *words[] = {
		"the", " cat", " sat", "\n", "  ", "123456", " naïve", " Москва",
		" 日本語", "'s", " don't", "!!", "\t", " 😀", " \n\n", "aaaa", "x",
	};
	char *s = xmalloc(n + 1);
	size_t i = 0;

	while (i < n) {
		const char *w;
		size_t k;

		seed = seed * 1103515245u + 12345u;
		w = words[(seed >> 16) % (sizeof words / sizeof *words)];
		for (k = 0; w[k] && i < n; k++)
			s[i++] = w[k];
		if (i < n && (seed & 0x100000) && (seed >> 24) % 97 == 0)
			s[i++] = '\0';
	}
	s[n] = '\0';
	return s;
}

static void test_feeds_do_not_matter(void)
{
	size_t n = 3u << 20, i, pos;
	char *s = make_text(n, 7);
	struct bpetrain a, b;
	int z, same = 1;

	for (z = 0; z < 2; z++) {
		struct bpe_opts o = { PRETOK_GPT4, z, BPE_NO_LIMIT, 1u << 21 };
		uint32_t seed = 3;

		train(&a, &o, s, n, 600);
		bpetrain_init(&b, &o);
		for (pos = 0; pos < n;) {
			size_t k;

			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % 70000;
			if (k > n - pos)
				k = n - pos;
			bpetrain_feed(&b, s + pos, k);
			pos += k;
		}
		bpetrain_end(&b);
		bpetrain_learn(&b, 600, NULL);
		CHECK(a.n_merges == b.n_merges && a.n_merges > 300,
		      "-z %d: %zu and %zu merges", z, a.n_merges, b.n_merges);
		CHECK(bpetrain_unique(&a) == bpetrain_unique(&b), "-z %d: pieces %zu vs %zu",
		      z, bpetrain_unique(&a), bpetrain_unique(&b));
		for (i = 0; i < a.n_merges && i < b.n_merges; i++)
			same &= merge_is(&b, i, a.merges[i].left, a.merges[i].right,
					 a.merges[i].id);
		CHECK(same, "-z %d: merges differ with other feed sizes", z);
		bpetrain_free(&a);
		bpetrain_free(&b);
	}
	free(s);
}

int main(void)
{
	RUN(test_ties_smallest_pair_first);
	RUN(test_overlapping_pairs);
	RUN(test_caps_count_characters);
	RUN(test_nul_ends_documents);
	RUN(test_feeds_do_not_matter);
	return TEST_END();
}
