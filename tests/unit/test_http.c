/* Unit tests for sha256 and the network-free parts of fetching (hub URL
 * resolution, the cache root, offline switch and paths).  With arguments it is instead a small driver
 * that tests/cli/http.sh runs against tests/httpd.py:
 *   test_http fetch [-O] [-q] [-c DIR] [-s SHA256] [-r RETRIES] URL
 *   test_http fetchall [options] URL...   (one thread per URL)
 *   test_http resolve URL     test_http path [-c DIR] URL
 *   test_http sha256 FILE */
#include "test.h"
#include "cli.h"
#include "err.h"
#include "cache.h"
#include "http.h"
#include "hub.h"
#include "sha256.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void hex_of(const void *p, size_t n, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char d[SHA256_LEN];

	sha256(p, n, d);
	sha256_hex(d, hex);
}

/* FIPS 180-2 appendix B and NIST's published examples. */
static void test_sha256_vectors(void)
{
	static const struct { const char *in, *want; } v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	};
	char hex[SHA256_HEX_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		hex_of(v[i].in, strlen(v[i].in), hex);
		CHECK(strcmp(hex, v[i].want) == 0, "vector %zu: got %s", i, hex);
	}
}

static void test_sha256_million_a(void)
{
	char *a = xmalloc(1000000), hex[SHA256_HEX_LEN + 1];

	memset(a, 'a', 1000000);
	hex_of(a, 1000000, hex);
	CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
	      "got %s", hex);
	free(a);
}

/* Any split of the input into updates gives the one-shot digest,
 * including lengths around the 55/56/64-byte padding edges. */
static void test_sha256_streaming(void)
{
	unsigned char buf[300];
	size_t n, cut, i;
	uint32_t s = 12345;

	for (i = 0; i < sizeof buf; i++) {
		s = s * 1103515245u + 12345u;
		buf[i] = (unsigned char)(s >> 16);
	}
	for (n = 0; n <= 200; n += (n < 130 ? 1 : 7)) {
		unsigned char one[SHA256_LEN], two[SHA256_LEN];

		sha256(buf, n, one);
		for (cut = 0; cut <= n; cut += 1 + n / 5) {
			struct sha256 c;

			sha256_init(&c);
			sha256_update(&c, buf, cut);
			sha256_update(&c, buf + cut, 0);
			sha256_update(&c, buf + cut, n - cut);
			sha256_final(&c, two);
			CHECK(memcmp(one, two, SHA256_LEN) == 0, "n %zu cut %zu", n, cut);
		}
	}
}

static void test_sha256_file(void)
{
	const char *path = test_path("sha");
	char hex[SHA256_HEX_LEN + 1];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "create %s", path);
	CHECK(write(fd, "abc", 3) == 3, "write");
	close(fd);
	CHECK(sha256_file_hex(path, hex) == 0, "hash file");
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	      "got %s", hex);
	unlink(path);
	CHECK(sha256_file_hex(path, hex) == -1, "missing file is an error");
}

static void check_resolve(const char *in, const char *want)
{
	char *got = hub_resolve(in);

	CHECK(strcmp(got, want) == 0, "%s -> %s, wanted %s", in, got, want);
	free(got);
}

static void test_resolve(void)
{
	unsetenv("HF_ENDPOINT");
	check_resolve("hf://datasets/HuggingFaceFW/fineweb/sample/10BT/000_00000.parquet",
		      "https://huggingface.co/datasets/HuggingFaceFW/fineweb/resolve/main/sample/10BT/000_00000.parquet");
	check_resolve("hf://datasets/o/n@refs%2Fconvert%2Fparquet/default/train/0000.parquet",
		      "https://huggingface.co/datasets/o/n/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet");
	check_resolve("hf://datasets/o/n@refs/convert/parquet/x.parquet",
		      "https://huggingface.co/datasets/o/n/resolve/refs/convert/parquet/x.parquet");
	check_resolve("hf://datasets/o/n/dir/x.parquet@v1.0",
		      "https://huggingface.co/datasets/o/n/resolve/v1.0/dir/x.parquet");
	check_resolve("hf://openai-community/gpt2/vocab.json",
		      "https://huggingface.co/openai-community/gpt2/resolve/main/vocab.json");
	check_resolve("hf://models/openai-community/gpt2/vocab.json",
		      "https://huggingface.co/openai-community/gpt2/resolve/main/vocab.json");
	check_resolve("hf://spaces/a/b/app.py",
		      "https://huggingface.co/spaces/a/b/resolve/main/app.py");
	check_resolve("hf://datasets/o/n/with space/é.txt",
		      "https://huggingface.co/datasets/o/n/resolve/main/with%20space/%C3%A9.txt");
	check_resolve("https://example.com/a?b=c", "https://example.com/a?b=c");
	setenv("HF_ENDPOINT", "http://127.0.0.1:9/hub/", 1);
	check_resolve("hf://datasets/o/n/x.txt",
		      "http://127.0.0.1:9/hub/datasets/o/n/resolve/main/x.txt");
	unsetenv("HF_ENDPOINT");
}

static void test_is_url(void)
{
	CHECK(http_is_url("https://x/y"), "https");
	CHECK(http_is_url("HTTP://x/y"), "scheme case");
	CHECK(http_is_url("hf://datasets/a/b/c"), "hf");
	CHECK(!http_is_url("/tmp/https://x"), "path");
	CHECK(!http_is_url("ftp://x/y"), "ftp");
	CHECK(!http_is_url("data.parquet"), "file");
}

/* Sets or (v NULL) unsets an environment variable. */
static void set_env(const char *name, const char *v)
{
	if (v)
		setenv(name, v, 1);
	else
		unsetenv(name);
}

static void check_root(const char *dir, const char *xdg, const char *home,
		       const char *want)
{
	char *got;

	set_env("XDG_CACHE_HOME", xdg);
	set_env("HOME", home);
	got = cache_root_try(dir);
	CHECK(want ? got && strcmp(got, want) == 0 : !got,
	      "dir %s XDG %s HOME %s: got %s, wanted %s", dir ? dir : "-",
	      xdg ? xdg : "-", home ? home : "-", got ? got : "none",
	      want ? want : "none");
	free(got);
}

/* Every program finds the cache, and knows it is offline, the same way. */
static void test_cache_root_offline(void)
{
	char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *off = getenv("GPT_OFFLINE"), *hoff = getenv("HF_HUB_OFFLINE");

	xdg = xdg ? xstrdup(xdg) : NULL;
	home = home ? xstrdup(home) : NULL;
	off = off ? xstrdup(off) : NULL;
	hoff = hoff ? xstrdup(hoff) : NULL;
	check_root("/c", "/x", "/h", "/c");
	check_root(NULL, "/x", "/h", "/x/gpt");
	check_root("", "/x", "/h", "/x/gpt");
	check_root(NULL, "rel", "/h", "/h/.cache/gpt");
	check_root(NULL, "", "/h", "/h/.cache/gpt");
	check_root(NULL, NULL, "/h", "/h/.cache/gpt");
	check_root(NULL, NULL, "", NULL);
	check_root(NULL, NULL, NULL, NULL);
	set_env("GPT_OFFLINE", NULL);
	set_env("HF_HUB_OFFLINE", NULL);
	CHECK(!cache_offline(0), "online by default");
	CHECK(cache_offline(1), "--offline");
	set_env("GPT_OFFLINE", "0");
	set_env("HF_HUB_OFFLINE", "");
	CHECK(!cache_offline(0), "\"0\" and \"\" are online");
	set_env("GPT_OFFLINE", "1");
	CHECK(cache_offline(0), "GPT_OFFLINE=1");
	set_env("GPT_OFFLINE", NULL);
	set_env("HF_HUB_OFFLINE", "yes");
	CHECK(cache_offline(0), "HF_HUB_OFFLINE=yes");
	set_env("XDG_CACHE_HOME", xdg);
	set_env("HOME", home);
	set_env("GPT_OFFLINE", off);
	set_env("HF_HUB_OFFLINE", hoff);
	free(xdg);
	free(home);
	free(off);
	free(hoff);
}

static void check_path(const char *root, const char *url, const char *want)
{
	char *got = cache_path(url, root);
	size_t n = strlen(root) + strlen(want) + 1;
	char *w = xmalloc(n);

	snprintf(w, n, "%s%s", root, want);
	CHECK(strcmp(got, w) == 0, "%s -> %s, wanted %s", url, got, w);
	free(got);
	free(w);
}

/* The path of a URL with a query, or with characters changed, carries a
 * hash; returns whether got matches root+prefix...suffix with one. */
static int hashed_like(const char *got, const char *root, const char *prefix,
		       const char *suffix)
{
	size_t r = strlen(root), p = strlen(prefix), s = strlen(suffix), i;

	if (strlen(got) != r + p + 17 + s || strncmp(got, root, r) != 0 ||
	    strncmp(got + r, prefix, p) != 0 || got[r + p] != '-' ||
	    strcmp(got + r + p + 17, suffix) != 0)
		return 0;
	for (i = 0; i < 16; i++)
		if (!strchr("0123456789abcdef", got[r + p + 1 + i]))
			return 0;
	return 1;
}

static void test_cache_paths(void)
{
	char *root = xstrdup(test_path("cache")), *a, *b, *c;
	FILE *f;

	check_path(root, "https://Example.COM:8080/a/b/file.parquet",
		   "/http/example.com_8080/a/b/file.parquet");
	check_path(root, "https://user:pw@h.org//a/./b/", "/http/h.org/a/b");
	a = cache_path("https://h.org/d/file.parquet?x=1", root);
	b = cache_path("https://h.org/d/file.parquet?x=2", root);
	CHECK(hashed_like(a, root, "/http/h.org/d/file", ".parquet"), "query: %s", a);
	CHECK(strcmp(a, b) != 0, "queries differ: %s", a);
	free(a);
	free(b);
	/* ".." never climbs out of the cache, and names never start with a
	 * dot (those are the cache's own files). */
	a = cache_path("https://h.org/../../etc/.passwd", root);
	CHECK(strncmp(a, root, strlen(root)) == 0 && !strstr(a, "/..") &&
	      !strstr(a, "/.p"), "dots: %s", a);
	free(a);
	a = cache_path("https://h.org/a b/x", root);
	b = cache_path("https://h.org/a_b/x", root);
	CHECK(strcmp(a, b) != 0, "changed names get a hash: %s %s", a, b);
	free(a);
	free(b);
	a = cache_path("https://h.org/", root);
	CHECK(hashed_like(a, root, "/http/h.org/index", ""), "root: %s", a);
	free(a);
	/* A URL whose path is a folder of another cached URL falls back to
	 * a flat name. */
	a = cache_path("https://h.org/p/q", root);
	f = fopen(a, "w");
	CHECK(f != NULL, "create %s", a);
	if (f)
		fclose(f);
	c = cache_path("https://h.org/p/q/r", root);
	CHECK(strstr(c, "/http/.by-hash/") && strstr(c, "-r") , "flat: %s", c);
	free(a);
	free(c);
	CHECK(test_rm_rf(root) == 0, "cleanup");
	free(root);
}

struct job {
	const char *url;
	const struct http_opts *o;
	char *path;
};

static void *fetch_thread(void *arg)
{
	struct job *j = arg;

	j->path = http_fetch(j->url, j->o);
	return NULL;
}

/* Fetches every URL at once, one thread each, as gpt-fetch -j does. */
static void fetch_all(char **urls, int n, const struct http_opts *o)
{
	struct job *jobs = xcalloc((size_t)n, sizeof *jobs);
	pthread_t *tids = xcalloc((size_t)n, sizeof *tids);
	int i;

	for (i = 0; i < n; i++) {
		jobs[i].url = urls[i];
		jobs[i].o = o;
		if (pthread_create(&tids[i], NULL, fetch_thread, &jobs[i]) != 0)
			die("cannot start a thread");
	}
	for (i = 0; i < n; i++) {
		pthread_join(tids[i], NULL);
		printf("%s\n", jobs[i].path);
		free(jobs[i].path);
	}
	free(jobs);
	free(tids);
}

static int driver(int argc, char **argv)
{
	struct http_opts o = { 0 };
	const char *cmd = argv[1], *arg;
	int i;

	err_init("test_http");
	for (i = 2; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-O") == 0)
			o.offline = 1;
		else if (strcmp(argv[i], "-q") == 0)
			o.quiet_progress = 1;
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			o.cache_dir = argv[++i];
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			o.sha256 = argv[++i];
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
			o.max_retries = (int)cli_i64("-r", argv[++i], -1, 100);
		else
			die_usage("unknown driver option: '%s'", argv[i]);
	}
	if (i >= argc)
		die_usage("missing URL");
	arg = argv[i];
	if (strcmp(cmd, "fetch") == 0) {
		char *p = http_fetch(arg, &o);

		printf("%s\n", p);
		free(p);
	} else if (strcmp(cmd, "fetchall") == 0) {
		fetch_all(argv + i, argc - i, &o);
	} else if (strcmp(cmd, "resolve") == 0) {
		char *p = hub_resolve(arg);

		printf("%s\n", p);
		free(p);
	} else if (strcmp(cmd, "path") == 0) {
		char *u = hub_resolve(arg), *p = cache_path(u, o.cache_dir);

		free(u);

		printf("%s\n", p);
		free(p);
	} else if (strcmp(cmd, "sha256") == 0) {
		char hex[SHA256_HEX_LEN + 1];

		if (sha256_file_hex(arg, hex) != 0)
			die_errno("cannot read '%s'", arg);
		printf("%s\n", hex);
	} else {
		die_usage("unknown driver command: '%s'", cmd);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return driver(argc, argv);
	RUN(test_sha256_vectors);
	RUN(test_sha256_million_a);
	RUN(test_sha256_streaming);
	RUN(test_sha256_file);
	RUN(test_resolve);
	RUN(test_is_url);
	RUN(test_cache_paths);
	RUN(test_cache_root_offline);
	test_tmpdir_remove();
	return TEST_END();
}
