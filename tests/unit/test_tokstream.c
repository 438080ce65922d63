/* Unit tests for tokstream: round trips of the three forms, ids at the edges,
 * and the one-line errors for malformed input (run in a child process,
 * since they die). */
#include "test.h"
#include "tokstream.h"
#include "err.h"

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

static char path[1024];

static void put_file(const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

/* Writes ids in form f to path through a tokstream_out; returns bytes written. */
static size_t write_ids(const uint32_t *ids, size_t n, enum tok_format f,
			uint32_t eot, size_t step)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct out o;
	struct tokstream_out t;
	size_t i, total;

	out_init(&o, fd, path);
	tokstream_out_init(&t, &o, f, eot);
	for (i = 0; i < n; i += step)
		tokstream_out_write(&t, ids + i, n - i < step ? n - i : step);
	tokstream_out_finish(&t);
	out_flush(&o);
	total = (size_t)o.total;
	out_free(&o);
	close(fd);
	return total;
}

/* Reads path back in form f, max ids per call. */
static size_t read_ids(uint32_t *ids, size_t cap, enum tok_format f, size_t max)
{
	struct tokstream_in t;
	size_t n = 0, got;

	tokstream_in_open(&t, path, f);
	while (n < cap && (got = tokstream_in_read(&t, ids + n, cap - n < max ? cap - n : max)) > 0)
		n += got;
	CHECK(tokstream_in_count(&t) == n, "count %llu vs %zu",
	      (unsigned long long)tokstream_in_count(&t), n);
	tokstream_in_close(&t);
	return n;
}

static void test_round_trips(void)
{
	static uint32_t ids[300000], back[300001];
	enum tok_format f;
	size_t i, n = 300000;

	for (i = 0; i < n; i++)
		ids[i] = (uint32_t)((i * 2654435761u) % 65536);
	ids[0] = 0;
	ids[1] = 65535;
	ids[2] = 50256;
	for (f = FMT_TEXT; f <= FMT_U32; f++) {
		size_t got;

		write_ids(ids, n, f, 50256, 7777);
		got = read_ids(back, n + 1, f, 1000);
		CHECK(got == n, "%s: %zu ids back of %zu", cli_format_name(f), got, n);
		CHECK(memcmp(ids, back, n * 4) == 0, "%s: ids differ", cli_format_name(f));
		got = read_ids(back, n + 1, f, 1);
		CHECK(got == n && memcmp(ids, back, n * 4) == 0,
		      "%s: one id at a time", cli_format_name(f));
	}
	ids[3] = UINT32_MAX;
	ids[4] = 65536;
	for (f = FMT_TEXT; f <= FMT_U32; f += 2) {
		write_ids(ids, 10, f, UINT32_MAX, 10);
		CHECK(read_ids(back, 11, f, 100) == 10 && memcmp(ids, back, 40) == 0,
		      "%s: ids over u16", cli_format_name(f));
	}
}

/* path's content (at most cap - 1 bytes) as a string in buf. */
static void get_file(char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, cap - 1);

	if (fd >= 0)
		close(fd);
	buf[n < 0 ? 0 : n] = '\0';
}

static void test_text_layout(void)
{
	uint32_t ids[] = { 1, 2, 50256, 3, 50256, 50256, 40 };
	char buf[128];

	write_ids(ids, 7, FMT_TEXT, 50256, 2);
	get_file(buf, sizeof buf);
	CHECK(strcmp(buf, "1 2 50256\n3 50256\n50256\n40\n") == 0, "got '%s'", buf);
	write_ids(ids, 3, FMT_TEXT, 50256, 3);
	get_file(buf, sizeof buf);
	CHECK(strcmp(buf, "1 2 50256\n") == 0, "no extra newline: '%s'", buf);
	CHECK(write_ids(ids, 0, FMT_TEXT, 50256, 1) == 0, "empty text is empty");
}

static void test_text_whitespace(void)
{
	const char *s = "  12\t\t7\r\n\v\f4294967295\n0";
	uint32_t back[8];

	put_file(s, strlen(s));
	CHECK(read_ids(back, 8, FMT_TEXT, 8) == 4, "four ids");
	CHECK(back[0] == 12 && back[1] == 7 && back[2] == 4294967295u && back[3] == 0,
	      "values %u %u %u %u", back[0], back[1], back[2], back[3]);
	put_file("", 0);
	CHECK(read_ids(back, 8, FMT_TEXT, 8) == 0, "empty text");
	CHECK(read_ids(back, 8, FMT_U16, 8) == 0, "empty u16");
}

static enum tok_format child_fmt;

static void read_all(const char *file)
{
	struct tokstream_in t;
	uint32_t ids[64];

	tokstream_in_open(&t, file, child_fmt);
	while (tokstream_in_read(&t, ids, 64) > 0)
		;
	tokstream_in_close(&t);
}

/* Reads path's content in form f in a child; returns its exit status and
 * its stderr in err. */
static int child_read(enum tok_format f, char *err, size_t errcap)
{
	child_fmt = f;
	return test_child(read_all, path, err, errcap);
}

static void test_errors(void)
{
	char err[512];
	unsigned char odd[5] = { 1, 0, 2, 0, 3 };

	put_file("12 34 5x6", 9);
	CHECK(child_read(FMT_TEXT, err, sizeof err) == 1, "non-digit fails");
	CHECK(strstr(err, "byte 7") && strstr(err, "'x'") && !strchr(strchr(err, '\n') + 1, '\n'),
	      "names offset and character in one line: %s", err);
	put_file("1 4294967296", 12);
	CHECK(child_read(FMT_TEXT, err, sizeof err) == 1, "2^32 fails");
	CHECK(strstr(err, "over 4294967295"), "says too large: %s", err);
	put_file("1 99999999999999999999999", 25);
	CHECK(child_read(FMT_TEXT, err, sizeof err) == 1, "huge number fails");
	put_file(odd, 5);
	CHECK(child_read(FMT_U16, err, sizeof err) == 1, "odd u16 fails");
	CHECK(strstr(err, "input ends mid-token"), "mid-token: %s", err);
	put_file(odd, 5);
	CHECK(child_read(FMT_U32, err, sizeof err) == 1, "u32 of 5 bytes fails");
	CHECK(strstr(err, "input ends mid-token (1 of 4 bytes)"), "mid-token: %s", err);
	put_file("464 3290 318 257 1332 13 198 50256 464 3290\n", 44);
	CHECK(child_read(FMT_U16, err, sizeof err) == 1, "text read as u16 fails");
	CHECK(strstr(err, "-f text"), "suggests -f text: %s", err);
	put_file("\x01\x02\x03", 3);
	CHECK(child_read(FMT_TEXT, err, sizeof err) == 1, "binary read as text fails");
	CHECK(strstr(err, "0x01") && strstr(err, "byte 0"), "names the byte: %s", err);
}

static void write_big(const char *unused)
{
	uint32_t ids[] = { 5, 70000 };

	(void)unused;
	write_ids(ids, 2, FMT_U16, UINT32_MAX, 2);
}

static void test_u16_refuses_big(void)
{
	CHECK(test_child(write_big, NULL, NULL, 0) == 1, "u16 output of 70000 dies");
}

int main(void)
{
	err_init("test_tokstream");
	io_init();
	snprintf(path, sizeof path, "%s", test_path("ids"));
	RUN(test_round_trips);
	RUN(test_text_layout);
	RUN(test_text_whitespace);
	RUN(test_errors);
	RUN(test_u16_refuses_big);
	test_tmpdir_remove();
	return TEST_END();
}
