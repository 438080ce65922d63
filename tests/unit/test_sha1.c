/* Unit tests for sha1: FIPS 180-4's example vectors, the streaming form
 * against the one-shot one at every cut, and git blob ids against
 * `git hash-object` (the reference: it is what names files in a
 * repository) at sizes around the block and padding boundaries. */
#include "test.h"
#include "err.h"
#include "sha1.h"

#include <stdint.h>

static void hex_of(const void *p, size_t n, char hex[SHA1_HEX_LEN + 1])
{
	unsigned char d[SHA1_LEN];

	sha1(p, n, d);
	sha1_hex(d, hex);
}

/* FIPS 180-2 appendix A and NIST's published examples. */
static void test_sha1_vectors(void)
{
	static const struct { const char *in, *want; } v[] = {
		{ "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
		{ "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "a49b2446a02c645bf419f995b67091253a04a259" },
	};
	char hex[SHA1_HEX_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		hex_of(v[i].in, strlen(v[i].in), hex);
		CHECK(strcmp(hex, v[i].want) == 0, "vector %zu: got %s", i, hex);
	}
}

/* FIPS 180-2 A.3; the same as hashlib and sha1sum give. */
static void test_sha1_million_a(void)
{
	char *a = xmalloc(1000000), hex[SHA1_HEX_LEN + 1];

	memset(a, 'a', 1000000);
	hex_of(a, 1000000, hex);
	CHECK(strcmp(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0, "got %s", hex);
	free(a);
}

static void fill(unsigned char *buf, size_t n)
{
	uint32_t s = 12345;
	size_t i;

	for (i = 0; i < n; i++) {
		s = s * 1103515245u + 12345u;
		buf[i] = (unsigned char)(s >> 16);
	}
}

static void test_sha1_streaming(void)
{
	unsigned char buf[300];
	size_t n, cut;

	fill(buf, sizeof buf);
	for (n = 0; n <= 200; n += (n < 130 ? 1 : 7)) {
		unsigned char one[SHA1_LEN], two[SHA1_LEN];

		sha1(buf, n, one);
		for (cut = 0; cut <= n; cut += 1 + n / 5) {
			struct sha1 c;

			sha1_init(&c);
			sha1_update(&c, buf, cut);
			sha1_update(&c, buf + cut, 0);
			sha1_update(&c, buf + cut, n - cut);
			sha1_final(&c, two);
			CHECK(memcmp(one, two, SHA1_LEN) == 0, "n %zu cut %zu", n, cut);
		}
	}
}

/* Well-known ids first (the empty blob, "hello world\n"), then git
 * itself on files whose header and content end either side of the
 * 56-byte padding limit and of whole blocks, and one of 200,000 bytes. */
static void test_sha1_git_blob(void)
{
	static const size_t sizes[] = { 46, 47, 48, 55, 56, 57, 119, 120, 121, 200000 };
	const char *path = test_path("blob");
	char hex[SHA1_HEX_LEN + 1], out[128];
	unsigned char *buf = xmalloc(200000);
	FILE *f;
	size_t i;

	CHECK(sha1_git_blob_file_hex(path, hex) == -1 && errno == ENOENT, "a missing file");
	f = fopen(path, "wb");
	CHECK(f && fclose(f) == 0, "cannot write '%s'", path);
	CHECK(sha1_git_blob_file_hex(path, hex) == 0 &&
	      strcmp(hex, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391") == 0, "empty: got %s", hex);
	f = fopen(path, "wb");
	CHECK(f && fputs("hello world\n", f) >= 0 && fclose(f) == 0, "cannot write '%s'", path);
	CHECK(sha1_git_blob_file_hex(path, hex) == 0 &&
	      strcmp(hex, "3b18e512dba79e4c8300dd08aeb37f8e728b8dad") == 0, "hello: got %s", hex);
	if (test_cmd(out, sizeof out, "git --version >/dev/null 2>&1") != 0) {
		printf("skip test_sha1_git_blob's comparison with git: no git\n");
		free(buf);
		return;
	}
	fill(buf, 200000);
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		f = fopen(path, "wb");
		CHECK(f && fwrite(buf, 1, sizes[i], f) == sizes[i] && fclose(f) == 0,
		      "cannot write '%s'", path);
		CHECK(test_cmd(out, sizeof out, "git hash-object '%s'", path) == 0,
		      "git hash-object failed");
		out[strcspn(out, "\n")] = '\0';
		CHECK(sha1_git_blob_file_hex(path, hex) == 0 && strcmp(hex, out) == 0,
		      "%zu bytes: got %s, git says %s", sizes[i], hex, out);
	}
	free(buf);
}

int main(void)
{
	RUN(test_sha1_vectors);
	RUN(test_sha1_million_a);
	RUN(test_sha1_streaming);
	RUN(test_sha1_git_blob);
	test_tmpdir_remove();
	return TEST_END();
}
