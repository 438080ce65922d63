/* test.h: the unit-test harness.  Each CHECK prints nothing on success;
 * each test function ends with one "pass NAME" or "fail NAME: why" line,
 * which tests/run.sh counts.  test_main returns non-zero on any failure. */
#ifndef GPT_TEST_H
#define GPT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_total;
static int test_failed_now;
static const char *test_name_now;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		if (!test_failed_now) { \
			printf("fail %s: %s:%d: ", test_name_now, __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf(" (%s)\n", #cond); \
		} \
		test_failed_now = 1; \
	} \
} while (0)

#define RUN(fn) do { \
	test_name_now = #fn; \
	test_failed_now = 0; \
	fn(); \
	if (!test_failed_now) \
		printf("pass %s\n", #fn); \
	else \
		test_failed_total++; \
	fflush(stdout); \
} while (0)

#define TEST_END() (test_failed_total ? 1 : 0)

/* Path of the shared test data: $SHARED/data/... */
static inline const char *test_shared(void)
{
	const char *s = getenv("SHARED");
	return s ? s : "../shared";
}

#endif
