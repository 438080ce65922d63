/* test_parquet: the thrift decoder on hand-made bytes, and the parquet
 * reader on hostile input: every file of ../shared/data/parquet/bad_data
 * and tests/fuzz/regress read column by column, and thousands of
 * truncated and byte-flipped copies of a FineWeb-shaped file.  Each must
 * end in a value stream or one clear error, never a crash (make asan). */
#include "test.h"
#include "err.h"
#include "io.h"
#include "parquet.h"
#include "thrift.h"

#include <dirent.h>
#include <stdint.h>

static void test_thrift_fields(void)
{
	/* struct { 1: i32 -3, 2: true, 17 (long form): binary "ab",
	 *          18: list<bool> [true, false], 19: struct { 1: i64 300 } } */
	static const uint8_t b[] = {
		0x15, 0x05, 0x11, 0x08, 0x22, 0x02, 'a', 'b',
		0x09, 0x24, 0x21, 0x01, 0x02,
		0x1c, 0x16, 0xd8, 0x04, 0x00, 0x00
	};
	struct thrift t;
	int16_t id = 0, id2;
	int type, elem, seen = 0;
	size_t len;
	const uint8_t *s;

	thrift_init(&t, b, sizeof b);
	while (thrift_field(&t, &id, &type)) {
		switch (id) {
		case 1: CHECK(thrift_i32(&t, type) == -3, "i32"); seen |= 1; break;
		case 2: CHECK(thrift_bool(&t, type) == 1, "bool"); seen |= 2; break;
		case 17:
			s = thrift_binary(&t, type, &len);
			CHECK(len == 2 && s && memcmp(s, "ab", 2) == 0, "binary");
			seen |= 4;
			break;
		case 18:
			CHECK(thrift_list(&t, type, &elem) == 2, "list count");
			CHECK(thrift_list_bool(&t) == 1 && thrift_list_bool(&t) == 0, "list bools");
			seen |= 8;
			break;
		case 19:
			id2 = 0;
			thrift_struct_begin(&t);
			CHECK(thrift_field(&t, &id2, &type) && id2 == 1, "inner field");
			CHECK(thrift_i64(&t, type) == 300, "i64");
			CHECK(!thrift_field(&t, &id2, &type), "inner stop");
			thrift_struct_end(&t);
			seen |= 16;
			break;
		default: thrift_skip(&t, type);
		}
	}
	CHECK(!t.err, "no error: %s", t.msg);
	CHECK(seen == 31, "all fields seen: %d", seen);
	CHECK(thrift_used(&t, b) == sizeof b, "all bytes used");
	/* the same bytes skipped as a whole */
	thrift_init(&t, b, sizeof b);
	thrift_skip(&t, THRIFT_STRUCT);
	CHECK(!t.err && thrift_used(&t, b) == sizeof b, "skip: %s", t.msg);
}

static void test_thrift_hostile(void)
{
	static const uint8_t longlist[] = { 0x19, 0xf5, 0xff, 0xff, 0xff, 0x0f, 0x01 };
	static const uint8_t longstr[] = { 0x18, 0xff, 0xff, 0x03, 'x' };
	static const uint8_t badvarint[] = { 0x16, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	static const uint8_t badtype[] = { 0x1d, 0x00 };
	static const uint8_t badmap[] = { 0x1b, 0x05, 0x00 };
	static const struct { const uint8_t *b; size_t n; const char *what; } bad[] = {
		{ longlist, sizeof longlist, "list longer than the bytes" },
		{ longstr, sizeof longstr, "string longer than the bytes" },
		{ badvarint, sizeof badvarint, "an 11-byte varint" },
		{ badtype, sizeof badtype, "type 13" },
		{ badmap, sizeof badmap, "map with bad types" },
	};
	uint8_t deep[200];
	struct thrift t;
	size_t k;

	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		thrift_init(&t, bad[k].b, bad[k].n);
		thrift_skip(&t, THRIFT_STRUCT);
		CHECK(t.err, "%s refused", bad[k].what);
	}
	/* struct in struct in struct ... past the depth limit */
	for (k = 0; k < sizeof deep; k++)
		deep[k] = 0x1c;
	thrift_init(&t, deep, sizeof deep);
	thrift_skip(&t, THRIFT_STRUCT);
	CHECK(t.err && strstr(t.msg, "deep"), "nesting refused: %s", t.msg);
	/* empty input: a clean error, no read past it */
	thrift_init(&t, deep, 0);
	thrift_skip(&t, THRIFT_I32);
	CHECK(t.err, "empty input");
}

/* Reads every column of an in-memory file; returns errors seen (0 when
 * it all read), -1 when the footer was refused.  Checks each message. */
static int read_all(const uint8_t *buf, size_t n, const char *what, uint64_t *values)
{
	struct pq_file f;
	int c, errors = 0;

	if (pq_open_mem(&f, buf, n) < 0) {
		CHECK(f.err[0] && !strchr(f.err, '\n'), "%s: footer error message", what);
		pq_close(&f);
		return -1;
	}
	f.max_alloc = (size_t)64 << 20;
	for (c = 0; c < f.ncols; c++) {
		struct pq_reader *r = pq_reader_new(&f, c);
		struct pq_value v;
		int got;
		long k = 0;

		if (!r) {
			CHECK(f.err[0], "%s: reader error message", what);
			errors++;
			continue;
		}
		while (k++ < 2000000 && (got = pq_next(r, &v)) > 0) {
			if (values)
				(*values)++;
			if (v.s && v.len)
				CHECK(v.s[0] == v.s[0] && v.s[v.len - 1] == v.s[v.len - 1], "readable");
		}
		if (got < 0) {
			CHECK(pq_error(r)[0] && !strchr(pq_error(r), '\n'),
			      "%s: value error message", what);
			CHECK(pq_next(r, &v) == -1, "%s: errors are sticky", what);
			errors++;
		}
		pq_reader_free(r);
	}
	pq_close(&f);
	return errors;
}

static void test_bad_files(void)
{
	char path[1024];
	const char *dirs[2];
	int d, files = 0;

	dirs[0] = xstrdup(test_data("parquet/bad_data"));
	dirs[1] = xstrdup(test_root("tests/fuzz/regress"));
	for (d = 0; d < 2; d++) {
		DIR *dh = opendir(dirs[d]);
		struct dirent *e;

		if (!dh) {
			CHECK(d == 1, "cannot open %s", dirs[d]);
			continue;
		}
		while ((e = readdir(dh))) {
			unsigned char *buf;
			size_t n;
			int errs;

			if (e->d_name[0] == '.' || strstr(e->d_name, ".md"))
				continue;
			snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
			buf = io_read_file(path, (size_t)1 << 28, &n);
			errs = read_all(buf, n, e->d_name, NULL);
			CHECK(errs != 0, "%s: read without complaint", e->d_name);
			free(buf);
			files++;
		}
		closedir(dh);
	}
	free((char *)dirs[0]);
	free((char *)dirs[1]);
	CHECK(files >= 8, "bad files found: %d", files);
}

static void test_good_file(void)
{
	unsigned char *buf;
	size_t n;
	uint64_t values = 0;

	buf = io_read_file(test_fixture("fetch/fineweb-small.parquet"), 1 << 24, &n);
	CHECK(read_all(buf, n, "fineweb-small", &values) == 0, "reads cleanly");
	CHECK(values == 9 * 300, "9 columns of 300 rows: %llu", (unsigned long long)values);
	free(buf);
}

static void test_mutations(void)
{
	unsigned char *buf, *m;
	size_t n, k, cut;
	uint64_t seed = 88172645463325252ull;
	int i, footer_errors = 0, page_errors = 0;

	buf = io_read_file(test_fixture("fetch/fineweb-small.parquet"), 1 << 24, &n);
	m = xmalloc(n);
	for (cut = 0; cut < n; cut += 211)
		CHECK(read_all(buf, cut, "truncated", NULL) == -1, "truncated at %zu", cut);
	for (i = 0; i < 1500; i++) {
		int flips = 1 + i % 5, e;

		memcpy(m, buf, n);
		for (k = 0; k < (size_t)flips; k++) {
			size_t pos;

			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			/* half of them in the footer, where every byte matters */
			pos = i % 2 ? (size_t)(seed % n) : n - 9 - (size_t)(seed % 3000);
			m[pos] = (unsigned char)(seed >> 32);
		}
		e = read_all(m, n, "mutated", NULL);
		footer_errors += e < 0;
		page_errors += e > 0;
	}
	CHECK(footer_errors > 50 && page_errors > 20, "mutations caught: %d footer, %d page",
	      footer_errors, page_errors);
	free(m);
	free(buf);
}

int main(int argc, char **argv)
{
	(void)argc;
	err_init(argv[0]);
	RUN(test_thrift_fields);
	RUN(test_thrift_hostile);
	RUN(test_good_file);
	RUN(test_bad_files);
	RUN(test_mutations);
	return TEST_END();
}
