/* selftest: checks that cudasim itself does what cuda-test relies on:
 * shuffles exchange the right lanes, barriers order a block, dynamic
 * shared memory and launch limits behave as on a GPU, and that the faults
 * it exists to find are found: a missing __syncthreads reads stale data,
 * threads at different barriers are reported as a deadlock.  Built only
 * for the emulator (make cuda-sim-test).  Modes: no argument runs the
 * checks and prints "selftest: N failed"; "deadlock" must die with
 * cudasim's deadlock message (exit 3); "oob" writes one int past a
 * 2048-byte allocation, which an AddressSanitizer build must report. */
#include <stdio.h>
#include <string.h>

static int failed;

#define EXPECT(cond, ...) do { \
	if (!(cond)) { \
		printf("fail: "); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		failed++; \
	} \
} while (0)

/* out[t] = the sum over the warp of lane ids, by butterfly shuffles, and
 * xor1[t] = the lane id of lane t ^ 1. */
static __global__ void shuffle_kernel(int *out, int *xor1)
{
	int lane = threadIdx.x % 32, v = lane;
	xor1[threadIdx.x] = __shfl_xor_sync(0xffffffffu, lane, 1);
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	out[threadIdx.x] = v;
}

/* A block-wide reversal through shared memory, with the barrier. */
static __global__ void reverse_kernel(int *out, const int *in)
{
	__shared__ int buf[256];
	int t = threadIdx.x;
	buf[t] = in[blockIdx.x * 256 + t];
	__syncthreads();
	out[blockIdx.x * 256 + t] = buf[255 - t];
}

/* The same without the barrier: a race that must show. */
static __global__ void racy_kernel(int *out, const int *in)
{
	extern __shared__ int dyn[];
	int t = threadIdx.x;
	dyn[t] = in[t];
	out[t] = dyn[(t + 1) % 64];
}

/* Half the block at __syncthreads, half returned early (allowed: exited
 * threads do not count); and a deadlock: half of warp 0 at a full-mask
 * __syncwarp that the other half never reaches. */
static __global__ void early_exit_kernel(int *out)
{
	if (threadIdx.x >= 32)
		return;
	__syncthreads();
	out[threadIdx.x] = 1;
}

static __global__ void deadlock_kernel(int *out)
{
	if (threadIdx.x < 16)
		__syncwarp();
	else
		__syncthreads();
	out[threadIdx.x] = 1;
}

/* One element past the end: AddressSanitizer (make asan's emulator)
 * reports it as compute-sanitizer would on a GPU. */
static __global__ void oob_kernel(int *out, int n)
{
	out[threadIdx.x + n - 31] = 1;
}

static __global__ void big_smem_kernel(int *out)
{
	extern __shared__ int dyn[];
	dyn[threadIdx.x] = (int)threadIdx.x;
	out[threadIdx.x] = dyn[threadIdx.x];
}

int main(int argc, char **argv)
{
	int *d_out, *d_in, *d_x, h[512], in[512];
	cudaMalloc((void **)&d_out, sizeof h);
	cudaMalloc((void **)&d_in, sizeof h);
	cudaMalloc((void **)&d_x, sizeof h);

	if (argc > 1 && strcmp(argv[1], "oob") == 0) {
		oob_kernel<<<1, 32>>>(d_out, 512); /* d_out holds 512 ints */
		printf("no out-of-bounds write reported\n");
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "deadlock") == 0) {
		deadlock_kernel<<<1, 64>>>(d_out);
		printf("no deadlock reported\n");
		return 0;
	}

	shuffle_kernel<<<1, 64>>>(d_out, d_x);
	cudaMemcpy(h, d_out, 64 * sizeof(int), cudaMemcpyDeviceToHost);
	cudaMemcpy(in, d_x, 64 * sizeof(int), cudaMemcpyDeviceToHost);
	for (int t = 0; t < 64; t++) {
		EXPECT(h[t] == 496, "warp sum at thread %d is %d, not 496", t, h[t]);
		EXPECT(in[t] == ((t % 32) ^ 1), "lane %d got %d from the xor-1 shuffle", t, in[t]);
	}

	for (int i = 0; i < 512; i++)
		in[i] = i * 7;
	cudaMemcpy(d_in, in, sizeof in, cudaMemcpyHostToDevice);
	reverse_kernel<<<2, 256>>>(d_out, d_in);
	cudaMemcpy(h, d_out, sizeof h, cudaMemcpyDeviceToHost);
	for (int b = 0; b < 2; b++)
		for (int t = 0; t < 256; t++)
			EXPECT(h[b * 256 + t] == in[b * 256 + 255 - t], "reversal wrong at %d", b * 256 + t);

	/* in forward order thread t runs before t + 1 has written its slot;
	 * in reverse order only thread 63 reads a slot (0) not yet written */
	racy_kernel<<<1, 64, 64 * sizeof(int)>>>(d_out, d_in);
	cudaMemcpy(h, d_out, 64 * sizeof(int), cudaMemcpyDeviceToHost);
	{
		int stale = 0;
		for (int t = 0; t < 64; t++)
			stale += h[t] != in[(t + 1) % 64];
		EXPECT(stale > 0, "a read without __syncthreads saw no stale data");
	}

	early_exit_kernel<<<1, 64>>>(d_out);
	EXPECT(cudaGetLastError() == cudaSuccess, "early exit before __syncthreads refused");

	/* over 48 KiB of dynamic shared memory needs the attribute */
	big_smem_kernel<<<1, 32, 64 << 10>>>(d_out);
	EXPECT(cudaGetLastError() != cudaSuccess, "64 KiB of shared memory without the attribute ran");
	cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10);
	big_smem_kernel<<<1, 32, 64 << 10>>>(d_out);
	EXPECT(cudaGetLastError() == cudaSuccess, "64 KiB of shared memory with the attribute refused");
	big_smem_kernel<<<1, 2048>>>(d_out);
	EXPECT(cudaGetLastError() != cudaSuccess, "a block of 2048 threads ran");

	cudaFree(d_out);
	cudaFree(d_in);
	cudaFree(d_x);
	printf("selftest: %d failed\n", failed);
	return failed != 0;
}
