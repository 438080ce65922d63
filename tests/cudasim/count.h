/* count.h: what the emulator counts when GSIM_COUNT=1 (for make gpu-model).
 * Between gsim_count(1) and gsim_count_take, every kernel launch, cuBLASLt
 * product, memset, copy and event record is one record, in stream order:
 *   kernel  the bytes of device memory it read and wrote, counted in 4 KiB
 *           pages by protecting all device memory during the launch (a
 *           page is counted once per launch however often it is touched:
 *           the traffic of a kernel whose working set stays in cache),
 *           and its tensor-core FLOPs (WMMA mma_sync, 2 M N K a warp);
 *   gemm    2 m n k FLOPs a matrix and the bytes of A, B, C (when read),
 *           bias and D, from the shapes;
 *   memset  bytes written; copy  bytes each way; h2d, d2h  bytes moved;
 *   event   a cudaEventRecord: the engine's phase marks.
 * Device memory is page-aligned while counting, so pages are not shared
 * between allocations.  Scalar (non-tensor) arithmetic is not counted. */
#ifndef GPT_CUDASIM_COUNT_H
#define GPT_CUDASIM_COUNT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum gsim_kind { GSIM_KERNEL, GSIM_GEMM, GSIM_MEMSET, GSIM_COPY, GSIM_H2D, GSIM_D2H, GSIM_EVENT };

struct gsim_rec {
	char name[56];
	int kind;
	double rd, wr, flops; /* bytes read, bytes written, FLOPs */
};

/* 1: start counting (needs GSIM_COUNT=1 in the environment before the
 * first cudaMalloc; dies otherwise), forgetting earlier records; 0: stop. */
void gsim_count(int on);
/* The records since gsim_count(1), valid until the next gsim_count(1). */
size_t gsim_count_take(const struct gsim_rec **recs);
/* From the stand-in cuBLASLt: one product's work. */
void gsim_count_gemm(const char *name, double flops, double rd, double wr);

#ifdef __cplusplus
}
#endif

#endif
