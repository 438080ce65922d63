/* test.h: the unit-test harness.  Each CHECK prints nothing on success;
 * each test function ends with one "pass NAME" or "fail NAME: why" line,
 * which tests/run.sh counts.  main ends with "return TEST_END();": 1
 * after any failure (or when test_tmpdir() could not be removed), else 0.
 *
 * RUN(fn) runs one test function.  TEST_ONLY="name ..." in the
 * environment (test function names separated by spaces) runs only those
 * named; unset or empty, every RUN runs.
 *
 * Helpers every test can use instead of writing its own:
 *   paths    test_shared(), test_data(REL), test_root(REL),
 *            test_fixture(REL), test_tmpdir(), test_path(NAME),
 *            test_rm_rf(PATH) (TEST_END removes test_tmpdir())
 *   children test_child(FN, ARG, ERR, CAP): a function in a child
 *            process, its exit status and standard error;
 *            test_cmd(OUT, CAP, FMT, ...): a shell command, its exit
 *            status and standard output */
#ifndef GPT_TEST_H
#define GPT_TEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Whether TEST_ONLY (names separated by spaces; unset or empty: all)
 * selects the test called name. */
static inline int test_selected(const char *name)
{
	const char *only = getenv("TEST_ONLY"), *p;
	size_t n = strlen(name);

	if (!only || !*only)
		return 1;
	for (p = only; (p = strstr(p, name)) != NULL; p += n)
		if ((p == only || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

#define RUN(fn) do { \
	if (!test_selected(#fn)) \
		break; \
	test_name_now = #fn; \
	test_failed_now = 0; \
	fn(); \
	if (!test_failed_now) \
		printf("pass %s\n", #fn); \
	else \
		test_failed_total++; \
	fflush(stdout); \
} while (0)

/* A harness failure (no folder, no pipe): a fail line for the test
 * running, then exit status 1. */
static inline void test_abort_(const char *what, const char *arg)
{
	printf("fail %s: %s '%s': %s\n", test_name_now ? test_name_now : "setup", what, arg,
	       strerror(errno));
	fflush(stdout);
	exit(1);
}

/* ---- paths ----
 * test_data, test_root, test_fixture and test_path return one of eight
 * static buffers in turn: a path stays valid for the next seven such
 * calls (strdup it to keep it longer). */

/* Path of the shared test data: $SHARED/data/... */
static inline const char *test_shared(void)
{
	const char *s = getenv("SHARED");
	return s ? s : "../shared";
}

static inline __attribute__((format(printf, 1, 2))) char *test_pathf_(const char *fmt, ...)
{
	static char buf[8][1024];
	static unsigned k;
	char *b = buf[k++ % 8];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof buf[0], fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf[0]) {
		errno = ENAMETOOLONG;
		test_abort_("path too long", fmt);
	}
	return b;
}

/* $SHARED/data/REL: a file of the shared test data (../shared/data). */
static inline char *test_data(const char *rel)
{
	return test_pathf_("%s/data/%s", test_shared(), rel);
}

/* $ROOT/REL: a file of the repository ($ROOT, which tests/run.sh sets,
 * unset: "."). */
static inline char *test_root(const char *rel)
{
	const char *root = getenv("ROOT");
	return test_pathf_("%s/%s", root ? root : ".", rel);
}

/* $ROOT/tests/fixtures/REL: a committed fixture. */
static inline char *test_fixture(const char *rel)
{
	const char *root = getenv("ROOT");
	return test_pathf_("%s/tests/fixtures/%s", root ? root : ".", rel);
}

static inline char *test_dir_(void)
{
	static char dir[512];
	return dir;
}

/* The program's temporary folder, $TMPDIR/gpt-unit.XXXXXX (/tmp where
 * TMPDIR is unset), made on the first call; TEST_END() (or
 * test_tmpdir_remove()) removes it with all it holds. */
static inline const char *test_tmpdir(void)
{
	char *dir = test_dir_();

	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, 512, "%s/gpt-unit.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dir))
			test_abort_("cannot make a temporary folder", dir);
	}
	return dir;
}

/* test_tmpdir()/NAME (the folder made if need be). */
static inline char *test_path(const char *name)
{
	return test_pathf_("%s/%s", test_tmpdir(), name);
}

/* rm -rf PATH; 0 when it worked. */
static inline int test_rm_rf(const char *path)
{
	char cmd[1100];

	if (strchr(path, '\'') || (size_t)snprintf(cmd, sizeof cmd, "rm -rf '%s'", path) >= sizeof cmd)
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

/* Removes test_tmpdir() and all it holds (nothing to do when it was
 * never made); 0 when it worked. */
static inline int test_tmpdir_remove(void)
{
	char *dir = test_dir_();
	int r = dir[0] ? test_rm_rf(dir) : 0;

	dir[0] = '\0';
	return r;
}

/* main's exit status: 1 after a failed test, or when the temporary
 * folder (made or not) could not be removed; else 0. */
static inline int test_end_(void)
{
	int r = test_tmpdir_remove();
	return test_failed_total || r != 0 ? 1 : 0;
}

#define TEST_END() test_end_()

/* ---- child processes ---- */

/* Reads fd to its end: the first cap - 1 bytes into buf as a string (buf
 * NULL: all discarded), the rest read and dropped so the writer never
 * blocks. */
static inline void test_drain_(int fd, char *buf, size_t cap)
{
	char sink[4096];
	size_t len = 0;
	ssize_t n;

	for (;;) {
		int keep = buf && len + 1 < cap;
		n = read(fd, keep ? buf + len : sink, keep ? cap - 1 - len : sizeof sink);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (keep)
			len += (size_t)n;
	}
	if (buf && cap)
		buf[len] = '\0';
}

/* An exit status from wait's: the code, or 128 + the signal. */
static inline int test_status_(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* fn(arg) run in a child process, which exits 0 when fn returns (a die()
 * in it exits as die does).  Its standard error, at most cap - 1 bytes,
 * into err as a string (err NULL: discarded).  Returns the child's exit
 * status, or 128 + the signal that killed it.  (Make paths with
 * test_path before, as arg: a folder the child made would be left.) */
static inline int test_child(void (*fn)(const char *), const char *arg, char *err, size_t cap)
{
	int p[2], st;
	pid_t pid;

	if (pipe(p) != 0)
		test_abort_("cannot make a pipe", "test_child");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		test_abort_("cannot fork", "test_child");
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	test_drain_(p[0], err, cap);
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return test_status_(st);
}

/* The shell command fmt (printf-style) run; its standard output, at most
 * cap - 1 bytes, into out as a string (out NULL: discarded; standard
 * error is the test's own).  Returns its exit status, 128 + the signal
 * that killed it, or -1 when it could not be run. */
static inline __attribute__((format(printf, 3, 4)))
int test_cmd(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *p;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd)
		return -1;
	fflush(stdout);
	fflush(stderr);
	if (!(p = popen(cmd, "r")))
		return -1;
	test_drain_(fileno(p), out, cap);
	st = pclose(p);
	return st == -1 ? -1 : test_status_(st);
}

#endif
