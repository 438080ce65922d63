/* bench_gpu: the C side of bench-gpu.sh (being written). */
#include <stdio.h>

#include "gpt_cuda.h"

int main(void)
{
	if (!gcuda_available()) {
		fprintf(stderr, "bench-gpu: no usable gpu: %s\n", gcuda_why_not());
		return 1;
	}
	return 0;
}
