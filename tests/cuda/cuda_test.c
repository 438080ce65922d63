/* cuda_test: the CUDA engine against the CPU engine (being written). */
#include <stdio.h>

#include "gpt_cuda.h"

int main(void)
{
	if (!gcuda_available()) {
		fprintf(stderr, "cuda-test: no usable gpu: %s\n", gcuda_why_not());
		return 1;
	}
	return 0;
}
