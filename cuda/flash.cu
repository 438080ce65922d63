/* flash: causal attention without the T x T matrices in memory, as in
 * FlashAttention-2: per tile of 64 queries, keys and values stream through
 * shared memory in tiles of 64 with an online softmax; the backward pass
 * recomputes the weights from the saved log-sum-exp, one kernel per key
 * tile for dK and dV and one per query tile for dQ (no atomics, so the
 * results repeat bit for bit).  Products on the tensor cores through WMMA
 * (bf16 in, float32 accumulation); head size 64 only (every GPT-2 size);
 * others use the batched-product path in layers.cu. */
#include <math.h>
#include <mma.h>
#include <stdint.h>

#include "kernels.h"

using namespace nvcuda;

#define HS 64          /* head size */
#define BR 64          /* queries per tile */
#define BC 64          /* keys per tile */
#define NW 4           /* warps per block, 16 rows each */
#define LDH (HS + 8)   /* bf16 row stride of Q, K, V, dO tiles */
#define LDS (BC + 4)   /* float row stride of score tiles (>= HS + 4) */
#define LDP (BC + 8)   /* bf16 row stride of weight tiles */

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b_row;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_b_col;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

#define TILE_BYTES (BR * LDH * 2)       /* 9216 */
#define SROW_BYTES (16 * LDS * 4)       /* 4352: one warp's float tile */
#define PROW_BYTES (16 * LDP * 2)       /* 2304: one warp's bf16 tile */
#define FWD_SMEM (3 * TILE_BYTES + NW * (2 * SROW_BYTES + PROW_BYTES))
#define BWD_KV_SMEM (4 * TILE_BYTES + 2 * BR * 4 + NW * (SROW_BYTES + 2 * PROW_BYTES))
#define BWD_Q_SMEM (4 * TILE_BYTES + NW * (SROW_BYTES + PROW_BYTES))

/* rows [r0, r0+64) of one head of a [B,T,stride] bf16 tensor (element
 * offset col of the head) into a tile; rows past T are zero */
static __device__ void load_tile(bf16 *dst, const bf16 *src, int b, int T, int r0,
                                 size_t stride, size_t col)
{
	for (int v = threadIdx.x; v < BR * HS / 8; v += NW * 32) {
		int r = v / (HS / 8), c8 = v % (HS / 8) * 8, i = r0 + r;
		uint4 val = make_uint4(0, 0, 0, 0);
		if (i < T)
			val = *(const uint4 *)(src + ((size_t)b * T + i) * stride + col + c8);
		*(uint4 *)(dst + r * LDH + c8) = val;
	}
}

/* out[16 x 64] (float, stride LDS) = A[16 x HS] . B^T where B is a
 * [64 x HS] tile: rows of A against rows of B */
static __device__ void mm_abt(float *out, const bf16 *A, const bf16 *Bt)
{
	frag_a a[HS / 16];
	for (int k = 0; k < HS / 16; k++)
		wmma::load_matrix_sync(a[k], A + k * 16, LDH);
	for (int n = 0; n < BC / 16; n++) {
		frag_c c;
		wmma::fill_fragment(c, 0.0f);
		for (int k = 0; k < HS / 16; k++) {
			frag_b_col b;
			wmma::load_matrix_sync(b, Bt + n * 16 * LDH + k * 16, LDH);
			wmma::mma_sync(c, a[k], b, c);
		}
		wmma::store_matrix_sync(out + n * 16, c, LDS, wmma::mem_row_major);
	}
}

/* acc[HS/16] += P[16 x 64] (bf16, stride LDP) . V where V is a [64 x HS]
 * tile */
static __device__ void mm_pv(frag_c *acc, const bf16 *P, const bf16 *V)
{
	for (int k = 0; k < BC / 16; k++) {
		frag_a a;
		wmma::load_matrix_sync(a, P + k * 16, LDP);
		for (int n = 0; n < HS / 16; n++) {
			frag_b_row b;
			wmma::load_matrix_sync(b, V + k * 16 * LDH + n * 16, LDH);
			wmma::mma_sync(acc[n], a, b, acc[n]);
		}
	}
}

/* Write a warp's 16 x HS float accumulators as bf16 rows of a [B,T,stride]
 * tensor, through the warp's float tile. */
static __device__ void store_rows(bf16 *dst, frag_c *acc, float *tile, int b, int T, int r0,
                                  size_t stride, size_t col, int lane)
{
	for (int n = 0; n < HS / 16; n++)
		wmma::store_matrix_sync(tile + n * 16, acc[n], LDS, wmma::mem_row_major);
	__syncwarp();
	int r = lane / 2, half = lane % 2, i = r0 + r;
	if (i < T)
		for (int d = half * (HS / 2); d < (half + 1) * (HS / 2); d++)
			dst[((size_t)b * T + i) * stride + col + d] = __float2bfloat16(tile[r * LDS + d]);
}

static __global__ void __launch_bounds__(NW * 32)
flash_fwd_kernel(bf16 *y, float *lse, const bf16 *qkv, int T, int C, int H, float scale)
{
	extern __shared__ __align__(128) unsigned char smem[];
	int nq = gridDim.y, qt = nq - 1 - blockIdx.y; /* longest rows first */
	int bh = blockIdx.x, b = bh / H, h = bh % H, w = threadIdx.x / 32, lane = threadIdx.x % 32;
	int q0 = qt * BR, r = lane / 2, half = lane % 2, i = q0 + w * 16 + r;
	size_t C3 = 3 * (size_t)C;
	bf16 *sQ = (bf16 *)smem, *sK = sQ + BR * LDH, *sV = sK + BC * LDH;
	float *sS = (float *)(smem + 3 * TILE_BYTES) + w * 16 * LDS;
	float *sO = (float *)(smem + 3 * TILE_BYTES + NW * SROW_BYTES) + w * 16 * LDS;
	bf16 *sP = (bf16 *)(smem + 3 * TILE_BYTES + 2 * NW * SROW_BYTES) + w * 16 * LDP;
	float m_i = -INFINITY, l_i = 0;

	load_tile(sQ, qkv, b, T, q0, C3, (size_t)h * HS);
	for (int d = lane; d < 16 * LDS; d += 32)
		sO[d] = 0;
	for (int kt = 0; kt <= qt; kt++) {
		int k0 = kt * BC;
		__syncthreads(); /* everyone is done with the previous K, V */
		load_tile(sK, qkv, b, T, k0, C3, (size_t)C + h * HS);
		load_tile(sV, qkv, b, T, k0, C3, 2 * (size_t)C + h * HS);
		__syncthreads();
		mm_abt(sS, sQ + w * 16 * LDH, sK);
		__syncwarp();
		/* online softmax: lanes 2r and 2r+1 share row r, 32 columns each */
		float *srow = sS + r * LDS, mx = -INFINITY, sum = 0;
		for (int c = half * 32; c < half * 32 + 32; c++) {
			int j = k0 + c;
			float s = j <= i && j < T ? srow[c] * scale : -INFINITY;
			srow[c] = s;
			mx = fmaxf(mx, s);
		}
		mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
		float m_new = fmaxf(m_i, mx); /* finite: every row sees key k0 */
		float alpha = expf(m_i - m_new);
		/* the row sum in float32, as the log-sum-exp the backward reuses
		 * is defined; only the weights for the product are rounded */
		for (int c = half * 32; c < half * 32 + 32; c++) {
			float p = expf(srow[c] - m_new);
			sP[r * LDP + c] = __float2bfloat16(p);
			sum += p;
		}
		sum += __shfl_xor_sync(0xffffffffu, sum, 1);
		l_i = l_i * alpha + sum;
		m_i = m_new;
		for (int d = half * (HS / 2); d < (half + 1) * (HS / 2); d++)
			sO[r * LDS + d] *= alpha;
		__syncwarp();
		frag_c acc[HS / 16];
		for (int n = 0; n < HS / 16; n++)
			wmma::load_matrix_sync(acc[n], sO + n * 16, LDS, wmma::mem_row_major);
		mm_pv(acc, sP, sV);
		for (int n = 0; n < HS / 16; n++)
			wmma::store_matrix_sync(sO + n * 16, acc[n], LDS, wmma::mem_row_major);
		__syncwarp();
	}
	if (i < T) {
		float inv = 1.0f / l_i;
		for (int d = half * (HS / 2); d < (half + 1) * (HS / 2); d++)
			y[((size_t)b * T + i) * C + h * HS + d] = __float2bfloat16(sO[r * LDS + d] * inv);
		if (half == 0)
			lse[(size_t)bh * T + i] = m_i + logf(l_i);
	}
}

/* D = rowsum(dy * y) per (head, row): the backward's softmax term. */
static __global__ void flash_delta_kernel(float *D, const bf16 *dy, const bf16 *y, int B,
                                          int T, int C, int H)
{
	size_t n = (size_t)B * H * T;
	for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n;
	     k += (size_t)gridDim.x * blockDim.x) {
		int i = (int)(k % (size_t)T), bh = (int)(k / (size_t)T), b = bh / H, h = bh % H;
		const bf16 *a = dy + ((size_t)b * T + i) * C + h * HS;
		const bf16 *o = y + ((size_t)b * T + i) * C + h * HS;
		float s = 0;
		for (int d = 0; d < HS; d++)
			s += __bfloat162float(a[d]) * __bfloat162float(o[d]);
		D[k] = s;
	}
}

/* dK and dV of one key tile: warp w owns keys k0 + 16w .. +16 and works
 * on transposed tiles (keys as rows) so its sums stay in fragments. */
static __global__ void __launch_bounds__(NW * 32)
flash_bwd_kv_kernel(bf16 *dqkv, const bf16 *dy, const bf16 *qkv, const float *lse,
                    const float *D, int T, int C, int H, float scale)
{
	extern __shared__ __align__(128) unsigned char smem[];
	int kt = blockIdx.y, bh = blockIdx.x, b = bh / H, h = bh % H;
	int w = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
	int k0 = kt * BC, j = k0 + w * 16 + r;
	size_t C3 = 3 * (size_t)C;
	bf16 *sK = (bf16 *)smem, *sV = sK + BC * LDH, *sQ = sV + BC * LDH, *sO = sQ + BR * LDH;
	float *sL = (float *)(smem + 4 * TILE_BYTES), *sD = sL + BR;
	unsigned char *wbase = smem + 4 * TILE_BYTES + 2 * BR * 4 +
	                       w * (SROW_BYTES + 2 * PROW_BYTES);
	float *sS = (float *)wbase;
	bf16 *sP = (bf16 *)(wbase + SROW_BYTES), *sdS = (bf16 *)(wbase + SROW_BYTES + PROW_BYTES);
	frag_c dk[HS / 16], dv[HS / 16];

	for (int n = 0; n < HS / 16; n++) {
		wmma::fill_fragment(dk[n], 0.0f);
		wmma::fill_fragment(dv[n], 0.0f);
	}
	load_tile(sK, qkv, b, T, k0, C3, (size_t)C + h * HS);
	load_tile(sV, qkv, b, T, k0, C3, 2 * (size_t)C + h * HS);
	for (int qt = kt; qt * BR < T; qt++) {
		int q0 = qt * BR;
		__syncthreads();
		load_tile(sQ, qkv, b, T, q0, C3, (size_t)h * HS);
		load_tile(sO, dy, b, T, q0, (size_t)C, (size_t)h * HS); /* dO */
		for (int c = threadIdx.x; c < BR; c += NW * 32) {
			int i = q0 + c;
			sL[c] = i < T ? lse[(size_t)bh * T + i] : 0.0f;
			sD[c] = i < T ? D[(size_t)bh * T + i] : 0.0f;
		}
		__syncthreads();
		/* S^T = K_w Q^T, then P^T */
		mm_abt(sS, sK + w * 16 * LDH, sQ);
		__syncwarp();
		for (int c = half * 32; c < half * 32 + 32; c++) {
			int i = q0 + c;
			float p = i < T && j <= i && j < T ? expf(sS[r * LDS + c] * scale - sL[c]) : 0.0f;
			sP[r * LDP + c] = __float2bfloat16(p);
		}
		__syncwarp();
		mm_pv(dv, sP, sO); /* dV += P^T dO */
		/* dP^T = V_w dO^T, then dS^T = P^T (dP^T - D) scale */
		mm_abt(sS, sV + w * 16 * LDH, sO);
		__syncwarp();
		for (int c = half * 32; c < half * 32 + 32; c++) {
			float p = __bfloat162float(sP[r * LDP + c]);
			sdS[r * LDP + c] = __float2bfloat16(p * (sS[r * LDS + c] - sD[c]) * scale);
		}
		__syncwarp();
		mm_pv(dk, sdS, sQ); /* dK += dS^T Q */
		__syncwarp();
	}
	store_rows(dqkv, dk, sS, b, T, k0 + w * 16, C3, (size_t)C + h * HS, lane);
	__syncwarp();
	store_rows(dqkv, dv, sS, b, T, k0 + w * 16, C3, 2 * (size_t)C + h * HS, lane);
}

/* dQ of one query tile: warp w owns queries q0 + 16w .. +16. */
static __global__ void __launch_bounds__(NW * 32)
flash_bwd_q_kernel(bf16 *dqkv, const bf16 *dy, const bf16 *qkv, const float *lse,
                   const float *D, int T, int C, int H, float scale)
{
	extern __shared__ __align__(128) unsigned char smem[];
	int nq = gridDim.y, qt = nq - 1 - blockIdx.y, bh = blockIdx.x, b = bh / H, h = bh % H;
	int w = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
	int q0 = qt * BR, i = q0 + w * 16 + r;
	size_t C3 = 3 * (size_t)C;
	bf16 *sQ = (bf16 *)smem, *sO = sQ + BR * LDH, *sK = sO + BR * LDH, *sV = sK + BC * LDH;
	unsigned char *wbase = smem + 4 * TILE_BYTES + w * (SROW_BYTES + PROW_BYTES);
	float *sS = (float *)wbase;
	bf16 *sP = (bf16 *)(wbase + SROW_BYTES);
	float l = i < T ? lse[(size_t)bh * T + i] : 0.0f, Dl = i < T ? D[(size_t)bh * T + i] : 0.0f;
	frag_c dq[HS / 16];

	for (int n = 0; n < HS / 16; n++)
		wmma::fill_fragment(dq[n], 0.0f);
	load_tile(sQ, qkv, b, T, q0, C3, (size_t)h * HS);
	load_tile(sO, dy, b, T, q0, (size_t)C, (size_t)h * HS); /* dO */
	for (int kt = 0; kt <= qt; kt++) {
		int k0 = kt * BC;
		__syncthreads();
		load_tile(sK, qkv, b, T, k0, C3, (size_t)C + h * HS);
		load_tile(sV, qkv, b, T, k0, C3, 2 * (size_t)C + h * HS);
		__syncthreads();
		mm_abt(sS, sQ + w * 16 * LDH, sK); /* S = Q_w K^T */
		__syncwarp();
		for (int c = half * 32; c < half * 32 + 32; c++) {
			int jj = k0 + c;
			float p = i < T && jj <= i && jj < T ? expf(sS[r * LDS + c] * scale - l) : 0.0f;
			sP[r * LDP + c] = __float2bfloat16(p);
		}
		__syncwarp();
		mm_abt(sS, sO + w * 16 * LDH, sV); /* dP = dO_w V^T */
		__syncwarp();
		for (int c = half * 32; c < half * 32 + 32; c++) {
			float p = __bfloat162float(sP[r * LDP + c]);
			sP[r * LDP + c] = __float2bfloat16(p * (sS[r * LDS + c] - Dl) * scale);
		}
		__syncwarp();
		mm_pv(dq, sP, sK); /* dQ += dS K */
		__syncwarp();
	}
	store_rows(dqkv, dq, sS, b, T, q0 + w * 16, C3, (size_t)h * HS, lane);
}

int k_flash_supported(int C, int H)
{
	return C % H == 0 && C / H == HS && C % 8 == 0;
}

/* Raise the dynamic shared-memory limits once per process. */
static void flash_setup(void)
{
	static int done;
	if (done)
		return;
	CUDA_CHECK(cudaFuncSetAttribute(flash_fwd_kernel,
	                                cudaFuncAttributeMaxDynamicSharedMemorySize, FWD_SMEM));
	CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_kv_kernel,
	                                cudaFuncAttributeMaxDynamicSharedMemorySize, BWD_KV_SMEM));
	CUDA_CHECK(cudaFuncSetAttribute(flash_bwd_q_kernel,
	                                cudaFuncAttributeMaxDynamicSharedMemorySize, BWD_Q_SMEM));
	done = 1;
}

/* Heads on grid.x (up to 2^31 - 1), tiles on grid.y: B * H passes
 * grid.y's 65535 already at B = 4096 with 16 heads. */
static dim3 flash_grid(int B, int T, int H)
{
	return dim3((unsigned)B * (unsigned)H, (unsigned)(T + BR - 1) / BR);
}

void k_flash_fwd(bf16 *y, float *lse, const bf16 *qkv, int B, int T, int C, int H,
                 cudaStream_t s)
{
	dim3 grid = flash_grid(B, T, H);
	flash_setup();
	flash_fwd_kernel<<<grid, NW * 32, FWD_SMEM, s>>>(y, lse, qkv, T, C, H,
	                                                 1.0f / sqrtf((float)HS));
	LAUNCH_CHECK();
}

void k_flash_bwd(bf16 *dqkv, float *D, const bf16 *dy, const bf16 *y, const bf16 *qkv,
                 const float *lse, int B, int T, int C, int H, cudaStream_t s)
{
	dim3 grid = flash_grid(B, T, H);
	size_t n = (size_t)B * H * T;
	float scale = 1.0f / sqrtf((float)HS);
	flash_setup();
	flash_delta_kernel<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(D, dy, y, B, T, C, H);
	LAUNCH_CHECK();
	flash_bwd_kv_kernel<<<grid, NW * 32, BWD_KV_SMEM, s>>>(dqkv, dy, qkv, lse, D, T, C, H,
	                                                       scale);
	LAUNCH_CHECK();
	flash_bwd_q_kernel<<<grid, NW * 32, BWD_Q_SMEM, s>>>(dqkv, dy, qkv, lse, D, T, C, H,
	                                                     scale);
	LAUNCH_CHECK();
}
