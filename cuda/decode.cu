/* decode: kernels of the GPU decoder (decode.h): position-offset
 * embeddings, the key/value cache append, and attention of a few queries
 * over the cache.  Float32 arithmetic on bf16 data, every reduction in a
 * fixed order, so a step repeats bit for bit. */
#include <math.h>
#include <stdint.h>

#include "decode.h"

#define DEC_THREADS 128
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_TILE 256 /* keys whose scores sit in shared memory at once */

static __device__ __forceinline__ float bf(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 tobf(float x) { return __float2bfloat16(x); }

static unsigned grid_for(size_t n, unsigned threads)
{
	size_t b = (n + threads - 1) / threads;
	return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1));
}

static __global__ void dec_embed_kernel(bf16 *out, const uint32_t *tokens, const bf16 *wte,
                                        const bf16 *wpe, size_t n, int pos0, int C)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t r = i / (size_t)C;
		int c = (int)(i % (size_t)C);
		out[i] = tobf(bf(wte[(size_t)tokens[r] * C + c]) + bf(wpe[(pos0 + r) * C + c]));
	}
}

void k_dec_embed(bf16 *out, const uint32_t *tokens, const bf16 *wte, const bf16 *wpe, int n,
                 int pos0, int C, cudaStream_t s)
{
	size_t total = (size_t)n * (size_t)C;
	dec_embed_kernel<<<grid_for(total, 256), 256, 0, s>>>(out, tokens, wte, wpe, total, pos0,
	                                                     C);
	LAUNCH_CHECK();
}

static __global__ void dec_kv_append_kernel(bf16 *kc, bf16 *vc, const bf16 *qkv, size_t n,
                                            int pos0, int C, int hs, int max_T)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t r = i / (size_t)C;
		int c = (int)(i % (size_t)C), h = c / hs, d = c % hs;
		size_t o = ((size_t)h * max_T + pos0 + r) * hs + d;
		const bf16 *row = qkv + r * 3 * (size_t)C;
		kc[o] = row[C + c];
		vc[o] = row[2 * C + c];
	}
}

void k_dec_kv_append(bf16 *kc, bf16 *vc, const bf16 *qkv, int n, int pos0, int C, int H,
                     int max_T, cudaStream_t s)
{
	size_t total = (size_t)n * (size_t)C;
	dec_kv_append_kernel<<<grid_for(total, 256), 256, 0, s>>>(kc, vc, qkv, total, pos0, C,
	                                                         C / H, max_T);
	LAUNCH_CHECK();
}

/* The block's max (is_max) or sum of v, the same in every thread; warps
 * in a fixed order.  red: DEC_WARPS floats of shared memory. */
static __device__ float block_reduce(float v, int is_max, float *red)
{
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	float r;
	for (int o = 16; o > 0; o >>= 1) {
		float u = __shfl_xor_sync(0xffffffffu, v, o);
		v = is_max ? fmaxf(v, u) : v + u;
	}
	if (lane == 0)
		red[warp] = v;
	__syncthreads();
	r = red[0];
	for (int w = 1; w < DEC_WARPS; w++)
		r = is_max ? fmaxf(r, red[w]) : r + red[w];
	__syncthreads(); /* red is free again */
	return r;
}

/* One block per (query, head).  Scores of a tile of keys go to shared
 * memory (one warp per key), then the tile's weights update a running
 * max, sum and weighted sum of values (the online softmax), each thread
 * owning the same output columns throughout. */
static __global__ void dec_attention_kernel(bf16 *y, const bf16 *qkv, const bf16 *kc,
                                            const bf16 *vc, int pos0, int C, int H, int max_T,
                                            float scale)
{
	extern __shared__ float sm[];
	__shared__ float red[DEC_WARPS];
	int i = blockIdx.x, h = blockIdx.y, hs = C / H;
	int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, len = pos0 + i + 1;
	float *q = sm, *acc = sm + hs, *sc = sm + 2 * hs;
	const bf16 *qr = qkv + (size_t)i * 3 * C + (size_t)h * hs;
	const bf16 *K = kc + (size_t)h * max_T * hs, *V = vc + (size_t)h * max_T * hs;
	float m = -INFINITY, l = 0;

	for (int d = tid; d < hs; d += DEC_THREADS) {
		q[d] = bf(qr[d]);
		acc[d] = 0;
	}
	__syncthreads();
	for (int j0 = 0; j0 < len; j0 += DEC_TILE) {
		int nt = len - j0 < DEC_TILE ? len - j0 : DEC_TILE;
		float mt = -INFINITY, st = 0, mn, f;
		for (int j = warp; j < nt; j += DEC_WARPS) {
			const bf16 *kr = K + (size_t)(j0 + j) * hs;
			float s = 0;
			for (int d = lane; d < hs; d += 32)
				s += q[d] * bf(kr[d]);
			for (int o = 16; o > 0; o >>= 1)
				s += __shfl_xor_sync(0xffffffffu, s, o);
			if (lane == 0)
				sc[j] = s * scale;
		}
		__syncthreads();
		for (int j = tid; j < nt; j += DEC_THREADS)
			mt = fmaxf(mt, sc[j]);
		mt = block_reduce(mt, 1, red);
		mn = fmaxf(m, mt);
		for (int j = tid; j < nt; j += DEC_THREADS) {
			float p = expf(sc[j] - mn);
			sc[j] = p;
			st += p;
		}
		st = block_reduce(st, 0, red); /* its barrier publishes sc */
		f = m == -INFINITY ? 0.0f : expf(m - mn);
		l = l * f + st;
		for (int d = tid; d < hs; d += DEC_THREADS) {
			float a = acc[d] * f;
			for (int j = 0; j < nt; j++)
				a += sc[j] * bf(V[(size_t)(j0 + j) * hs + d]);
			acc[d] = a;
		}
		m = mn;
		__syncthreads(); /* before the next tile's scores overwrite sc */
	}
	for (int d = tid; d < hs; d += DEC_THREADS)
		y[(size_t)i * C + (size_t)h * hs + d] = tobf(acc[d] / l);
}

void k_dec_attention(bf16 *y, const bf16 *qkv, const bf16 *kc, const bf16 *vc, int n, int pos0,
                     int C, int H, int max_T, cudaStream_t s)
{
	int hs = C / H;
	size_t smem = (2 * (size_t)hs + DEC_TILE) * sizeof(float);
	/* hs <= DEC_MAX_HS keeps smem within the 48 KiB every card allows */
	if (n < 1)
		return;
	dec_attention_kernel<<<dim3((unsigned)n, (unsigned)H), DEC_THREADS, smem, s>>>(
		y, qkv, kc, vc, pos0, C, H, max_T, 1.0f / sqrtf((float)hs));
	LAUNCH_CHECK();
}
