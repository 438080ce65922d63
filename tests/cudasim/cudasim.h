/* cudasim: runs the CUDA engine's kernels on the CPU so that cuda/ can be
 * tested on a machine without a GPU.  Force-included (g++ -include) before
 * each file of cuda/ compiled as host C++; tests/cudasim/prep.pl first turns
 * kernel<<<grid, block, smem, stream>>>(args) into gsim::launch calls and
 * extern __shared__ arrays into gsim::dyn_smem().
 *
 * Each block runs as one fiber per CUDA thread (cudasim.cpp): a thread
 * runs until it reaches __syncthreads, __syncwarp or a shuffle, and the
 * scheduler resumes the waiters when every live thread of the block (or
 * warp) has arrived.  Threads that wait at different barriers are a
 * deadlock and are reported.  WMMA fragments hold the whole tile in every
 * lane, which gives the same products as the tensor cores up to float32
 * rounding order.  What is not modelled: timing, memory-ordering races
 * between threads that never synchronise (the scheduler's order is
 * chosen by GSIM_ORDER=fwd|rev|shuffle to shake them out), atomics. */
#ifndef GPT_CUDASIM_H
#define GPT_CUDASIM_H

#define __host__
#define __device__
#define __global__
#define __shared__ static thread_local
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <utility>

/* cuda_runtime.h offers this overload to nvcc only. */
template <typename T> static inline cudaError_t cudaFuncSetAttribute(T *f, cudaFuncAttribute a, int v)
{
	return cudaFuncSetAttribute((const void *)f, a, v);
}

namespace gsim {

struct lane_state {
	uint3 tid, bid;
	dim3 bdim, gdim;
};
extern thread_local lane_state cur; /* the running CUDA thread's indices */

struct cfg {
	dim3 grid, block;
	size_t smem;
	cudaStream_t stream;
	cfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0) : grid(g), block(b), smem(s), stream(st) {}
};

/* Run body once per CUDA thread of the grid; launch errors are kept for
 * cudaGetLastError as a real launch would. */
void run_grid(const cfg &c, const char *name, const void *fn, const std::function<void()> &body);

template <typename... P, typename... A>
void launch(const cfg &c, const char *name, void (*k)(P...), A &&...a)
{
	std::tuple<P...> args(static_cast<P>(std::forward<A>(a))...);
	run_grid(c, name, (const void *)k, [&]() { std::apply(k, args); });
}

/* Counting (tests/cudasim/count.h): tensor-core FLOPs of the running
 * kernel, added by one lane a warp. */
extern int counting;
void count_flops(double f);

void *dyn_smem(void);
void sync_block(void);
void sync_warp(void);
/* Lane's value in, the value of lane src_lane out, for the whole warp. */
uint64_t exchange(uint64_t v, int src_lane);

static inline int lane(void)
{
	return (int)(cur.tid.x + cur.tid.y * cur.bdim.x + cur.tid.z * cur.bdim.x * cur.bdim.y) % 32;
}

template <typename T> T shfl_xor(T v, int mask)
{
	static_assert(sizeof(T) <= 8, "shuffle of a value over 8 bytes");
	uint64_t u = 0;
	memcpy(&u, &v, sizeof v);
	u = exchange(u, lane() ^ mask);
	T r;
	memcpy(&r, &u, sizeof r);
	return r;
}

} // namespace gsim

#define threadIdx (gsim::cur.tid)
#define blockIdx (gsim::cur.bid)
#define blockDim (gsim::cur.bdim)
#define gridDim (gsim::cur.gdim)
static const int warpSize = 32;

static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

static inline void __syncthreads(void) { gsim::sync_block(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu)
{
	(void)mask;
	gsim::sync_warp();
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
	(void)mask;
	(void)width;
	return gsim::shfl_xor(v, lane_mask);
}

/* ---- WMMA, whole tiles per lane ---- */
namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K> struct dims;
template <int M, int N, int K> struct dims<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct dims<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct dims<accumulator, M, N, K> { enum { R = M, C = N }; };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
	enum { R = dims<Use, M, N, K>::R, C = dims<Use, M, N, K>::C, num_elements = R * C };
	T x[R * C]; /* row-major, the whole tile */
};

template <typename Use, int M, int N, int K, typename T, typename L>
static inline void fill_fragment(fragment<Use, M, N, K, T, L> &f, T v)
{
	for (int i = 0; i < f.num_elements; i++)
		f.x[i] = v;
}

template <typename Use, int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major> &f, const T *p, unsigned ld)
{
	for (int r = 0; r < f.R; r++)
		for (int c = 0; c < f.C; c++)
			f.x[r * f.C + c] = p[(size_t)r * ld + c];
}

template <typename Use, int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, col_major> &f, const T *p, unsigned ld)
{
	for (int r = 0; r < f.R; r++)
		for (int c = 0; c < f.C; c++)
			f.x[r * f.C + c] = p[(size_t)c * ld + r];
}

template <int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void> &f, const T *p,
                                    unsigned ld, layout_t l)
{
	for (int r = 0; r < f.R; r++)
		for (int c = 0; c < f.C; c++)
			f.x[r * f.C + c] = l == mem_row_major ? p[(size_t)r * ld + c] : p[(size_t)c * ld + r];
}

/* Each lane writes only its share of the tile, as on the GPU, so that a
 * read of the tile by other lanes without __syncwarp sees stale data. */
template <int M, int N, int K, typename T>
static inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T, void> &f,
                                     unsigned ld, layout_t l)
{
	for (int i = gsim::lane(); i < f.num_elements; i += 32) {
		int r = i / f.C, c = i % f.C;
		(l == mem_row_major ? p[(size_t)r * ld + c] : p[(size_t)c * ld + r]) = f.x[i];
	}
}

template <int M, int N, int K, typename TA, typename LA, typename LB>
static inline void mma_sync(fragment<accumulator, M, N, K, float, void> &d,
                            const fragment<matrix_a, M, N, K, TA, LA> &a,
                            const fragment<matrix_b, M, N, K, TA, LB> &b,
                            const fragment<accumulator, M, N, K, float, void> &c)
{
	float out[M * N];
	if (gsim::counting && gsim::lane() == 0)
		gsim::count_flops(2.0 * M * N * K);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			float s = c.x[i * N + j];
			for (int k = 0; k < K; k++)
				s += (float)a.x[i * K + k] * (float)b.x[k * N + j];
			out[i * N + j] = s;
		}
	memcpy(d.x, out, sizeof out);
}

} // namespace wmma
} // namespace nvcuda

#endif
