/* fuzz_parquet: libFuzzer target for the parquet reader and, through its
 * footer and page headers, the thrift decoder.  Reads every column of the
 * input, a bounded number of values each, and never expects success:
 * only a crash, a sanitizer report, a leak or a hang is a finding. */
#include "parquet.h"
#include "thrift.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_thrift(const uint8_t *data, size_t size)
{
	struct thrift t;

	thrift_init(&t, data, size);
	thrift_skip(&t, THRIFT_STRUCT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pq_file f;
	int c;

	fuzz_thrift(data, size);
	if (pq_open_mem(&f, data, size) == 0) {
		f.max_alloc = (size_t)16 << 20;
		for (c = 0; c < f.ncols && c < 64; c++) {
			struct pq_reader *r = pq_reader_new(&f, c);
			struct pq_value v;
			long n = 0;

			if (!r)
				continue;
			if (c == 1)
				pq_skip(r, 5);
			while (n++ < 200000 && pq_next(r, &v) > 0)
				if (v.s && v.len)
					(void)((volatile const uint8_t *)v.s)[v.len - 1];
			pq_reader_free(r);
		}
	}
	pq_close(&f);
	return 0;
}
