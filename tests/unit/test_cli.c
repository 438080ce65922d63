/* Unit tests for libcommon's cli and io modules. */
#include "test.h"
#include "cli.h"
#include "io.h"
#include "err.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_u64_suffixes(void)
{
	CHECK(cli_u64("-n", "100M", 0, UINT64_MAX) == 100000000ULL, "100M");
	CHECK(cli_u64("-n", "64Mi", 0, UINT64_MAX) == 64ULL << 20, "64Mi");
	CHECK(cli_u64("-n", "7", 0, 10) == 7, "plain");
	CHECK(cli_u64("-n", "2K", 0, UINT64_MAX) == 2000, "2K");
	CHECK(cli_u64("-n", "1Gi", 0, UINT64_MAX) == 1ULL << 30, "1Gi");
}

static void test_double(void)
{
	CHECK(cli_double("--lr", "6e-4", 0, 1) == 6e-4, "6e-4");
	CHECK(cli_format("-f", "u16") == FMT_U16, "u16");
}

static void test_atomic_file(void)
{
	const char *dir = test_path("atomic"), *path = test_path("atomic/out.bin");
	struct afile a;
	struct stat st;

	CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
	afile_open(&a, path);
	out_write(&a.out, "hello", 5);
	CHECK(stat(path, &st) != 0, "final name absent before commit");
	afile_commit(&a);
	CHECK(stat(path, &st) == 0 && st.st_size == 5, "committed");
	afile_open(&a, path);
	out_write(&a.out, "xx", 2);
	afile_abort(&a);
	CHECK(stat(path, &st) == 0 && st.st_size == 5, "abort keeps old file");
	unlink(path);
	CHECK(rmdir(dir) == 0, "no temporary left behind");
}

int main(void)
{
	io_init();
	RUN(test_u64_suffixes);
	RUN(test_double);
	RUN(test_atomic_file);
	return TEST_END();
}
