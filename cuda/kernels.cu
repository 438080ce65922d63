/* kernels: the CUDA engine's kernels other than matrix products: one warp
 * per row for normalisations and softmax, one block per row for the
 * vocabulary-wide loss, float32 arithmetic on bf16 data, 16-byte loads
 * and stores where widths and alignment allow (struct vec), and every
 * reduction in a fixed order so that results repeat bit for bit.
 * Launchers and contracts are in kernels.h. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dropout.h"
#include "kernels.h"

#define IGNORE_ID 0xFFFFFFFFu /* GPT_IGNORE of model.h */
#define GELU_K 0.7978845608028654f
#define GELU_A 0.044715f
#define LN_EPS 1e-5f

static __device__ __forceinline__ float bf(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 tobf(float x) { return __float2bfloat16(x); }

static __device__ __forceinline__ float warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

/* Merge two partial (max, sum of exp(x - max)) pairs. */
static __device__ __forceinline__ void lse_merge(float &m, float &s, float m2, float s2)
{
	float mm = fmaxf(m, m2);
	float a = m == -INFINITY ? 0.0f : s * expf(m - mm);
	float b = m2 == -INFINITY ? 0.0f : s2 * expf(m2 - mm);
	m = mm;
	s = a + b;
}

static __device__ __forceinline__ void lse_add(float &m, float &s, float x)
{
	if (x > m) {
		s = (m == -INFINITY ? 0.0f : s * expf(m - x)) + 1.0f;
		m = x;
	} else {
		s += expf(x - m);
	}
}

static __device__ __forceinline__ void warp_lse(float &m, float &s)
{
	for (int o = 16; o > 0; o >>= 1) {
		float m2 = __shfl_xor_sync(0xffffffffu, m, o);
		float s2 = __shfl_xor_sync(0xffffffffu, s, o);
		lse_merge(m, s, m2, s2);
	}
}

/* ---- 16-byte vectors ----
 * W consecutive elements moved by one access: 8 bf16 or 4 floats are one
 * 16-byte load or store (8 floats two).  W = 1 is the scalar path, kept
 * for widths that are not a multiple of W and for pointers that are not
 * 16-byte aligned (the launchers choose; device memory from dalloc is
 * 256-byte aligned, bf16 tensor copies too, BF16_ALIGN in internal.h).
 * The struct is an aggregate of T, so the casts below do not break the
 * aliasing rules of the host compiler that the emulator uses. */
template <typename T, int W>
struct alignas(sizeof(T) * W < 16 ? sizeof(T) * W : 16) vec {
	T v[W];
};

template <typename T, int W> static __device__ __forceinline__ vec<T, W> vload(const T *p)
{
	return *reinterpret_cast<const vec<T, W> *>(p);
}

template <typename T, int W> static __device__ __forceinline__ void vstore(T *p, const vec<T, W> &x)
{
	*reinterpret_cast<vec<T, W> *>(p) = x;
}

static int aligned16(const void *p)
{
	return ((uintptr_t)p & 15u) == 0;
}

/* 8 where rows of width C in these four bf16 tensors can be read 8 at a
 * time (C a multiple of 8, 16-byte aligned bases), else 1. */
static int width8(int C, const void *a, const void *b, const void *c, const void *d)
{
	return C % 8 == 0 && aligned16(a) && aligned16(b) && aligned16(c) && aligned16(d) ? 8
	                                                                                 : 1;
}

/* A launch precondition that does not hold: one line, exit 1. */
#define NEED(cond, what) do { \
	if (!(cond)) gcuda_fail("kernel precondition: " what, __FILE__, __LINE__); \
} while (0)

static unsigned blocks_for(size_t n, unsigned threads)
{
	size_t b = (n + threads - 1) / threads;
	return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1));
}

/* ---- conversions ---- */

static __global__ void f32_to_bf16_kernel(bf16 *dst, const float *src, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		dst[i] = tobf(src[i]);
}

void k_f32_to_bf16(bf16 *dst, const float *src, size_t n, cudaStream_t s)
{
	f32_to_bf16_kernel<<<blocks_for(n, 256), 256, 0, s>>>(dst, src, n);
	LAUNCH_CHECK();
}

static __global__ void bf16_to_f32_kernel(float *dst, const bf16 *src, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		dst[i] = bf(src[i]);
}

void k_bf16_to_f32(float *dst, const bf16 *src, size_t n, cudaStream_t s)
{
	bf16_to_f32_kernel<<<blocks_for(n, 256), 256, 0, s>>>(dst, src, n);
	LAUNCH_CHECK();
}

static __global__ void logits_to_f32_kernel(float *dst, const bf16 *src, size_t n, int V,
                                            int Vp)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		dst[i] = (int)(i % (size_t)Vp) < V ? bf(src[i]) : -INFINITY;
}

void k_logits_to_f32(float *dst, const bf16 *src, int rows, int V, int Vp, cudaStream_t s)
{
	size_t n = (size_t)rows * (size_t)Vp;
	logits_to_f32_kernel<<<blocks_for(n, 256), 256, 0, s>>>(dst, src, n, V, Vp);
	LAUNCH_CHECK();
}

/* ---- embeddings ---- */

/* W columns at a time: W = 8 (bf16) or 4 (float32) where C is a multiple
 * of it and the tensors 16-byte aligned, else 1. */
template <int W>
static __global__ void embed_fwd_kernel(bf16 *out, const uint32_t *inputs, const bf16 *wte,
                                        const bf16 *wpe, size_t n, int T, int C)
{
	size_t nv = n / W, cw = (size_t)(C / W);
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nv;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t r = i / cw;
		int c = (int)(i % cw) * W, t = (int)(r % (size_t)T);
		vec<bf16, W> a = vload<bf16, W>(wte + (size_t)inputs[r] * C + c),
		             b = vload<bf16, W>(wpe + (size_t)t * C + c);
		for (int e = 0; e < W; e++)
			a.v[e] = tobf(bf(a.v[e]) + bf(b.v[e]));
		vstore(out + i * W, a);
	}
}

void k_embed_fwd(bf16 *out, const uint32_t *inputs, const bf16 *wte, const bf16 *wpe,
                 int BT, int T, int C, cudaStream_t s)
{
	size_t n = (size_t)BT * (size_t)C;
	int W = width8(C, out, wte, wpe, out);
	void (*embed_fwd)(bf16 *, const uint32_t *, const bf16 *, const bf16 *, size_t, int, int) =
		W == 8 ? embed_fwd_kernel<8> : embed_fwd_kernel<1>;
	embed_fwd<<<blocks_for(n / W, 256), 256, 0, s>>>(out, inputs, wte, wpe, n, T, C);
	LAUNCH_CHECK();
}

/* One block per distinct token: the rows holding it are summed in
 * position order, then added once, so no two blocks touch one row of
 * dwte and no atomics are needed.  The sum is a double: one token may
 * hold most of a 65536-row batch (padding, a repeated character). */
template <int W>
static __global__ void embed_bwd_wte_kernel(float *dwte, const float *dres,
                                            const uint32_t *inputs, const uint32_t *order,
                                            const uint32_t *seg, int C)
{
	uint32_t lo = seg[blockIdx.x], hi = seg[blockIdx.x + 1];
	size_t tok = inputs[order[lo]];
	for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
		double sum[W];
		for (int e = 0; e < W; e++)
			sum[e] = 0;
		for (uint32_t j = lo; j < hi; j++) {
			vec<float, W> d = vload<float, W>(dres + (size_t)order[j] * C + c);
			for (int e = 0; e < W; e++)
				sum[e] += d.v[e];
		}
		vec<float, W> g = vload<float, W>(dwte + tok * C + c);
		for (int e = 0; e < W; e++)
			g.v[e] += (float)sum[e];
		vstore(dwte + tok * C + c, g);
	}
}

template <int W>
static __global__ void embed_bwd_wpe_kernel(float *dwpe, const float *dres, int B, int T,
                                            int C)
{
	size_t n = (size_t)T * C;
	for (size_t i = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * W; i < n;
	     i += (size_t)gridDim.x * blockDim.x * W) {
		vec<float, W> sum = vload<float, W>(dres + i);
		for (int b = 1; b < B; b++) {
			vec<float, W> d = vload<float, W>(dres + (size_t)b * n + i);
			for (int e = 0; e < W; e++)
				sum.v[e] += d.v[e];
		}
		vec<float, W> g = vload<float, W>(dwpe + i);
		for (int e = 0; e < W; e++)
			g.v[e] += sum.v[e];
		vstore(dwpe + i, g);
	}
}

void k_embed_bwd(float *dwte, float *dwpe, const float *dres, const uint32_t *inputs,
                 const uint32_t *order, const uint32_t *seg, int nseg, int B, int T, int C,
                 cudaStream_t s)
{
	int W = C % 4 == 0 && aligned16(dwte) && aligned16(dwpe) && aligned16(dres) ? 4 : 1;
	if (nseg > 0) {
		void (*embed_bwd_wte)(float *, const float *, const uint32_t *, const uint32_t *,
		                      const uint32_t *, int) =
			W == 4 ? embed_bwd_wte_kernel<4> : embed_bwd_wte_kernel<1>;
		embed_bwd_wte<<<nseg, 256, 0, s>>>(dwte, dres, inputs, order, seg, C);
		LAUNCH_CHECK();
	}
	void (*embed_bwd_wpe)(float *, const float *, int, int, int) =
		W == 4 ? embed_bwd_wpe_kernel<4> : embed_bwd_wpe_kernel<1>;
	embed_bwd_wpe<<<blocks_for((size_t)T * C / W, 256), 256, 0, s>>>(dwpe, dres, B, T, C);
	LAUNCH_CHECK();
}

/* ---- LayerNorm ---- */

#define ROWS_PER_BLOCK 8 /* one warp per row, 256 threads */

/* Blocks for n rows, and the row index in unsigned: n may be up to
 * INT_MAX (B*H*T softmax rows), where n + 7 and the last block's row
 * would wrap an int. */
static unsigned row_blocks(int n)
{
	return (unsigned)(((size_t)n + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
}

template <int W>
static __global__ void layernorm_fwd_kernel(bf16 *out, float *mean, float *rstd,
                                            const bf16 *inp, const bf16 *w, const bf16 *b,
                                            int N, int C)
{
	unsigned row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (row >= (unsigned)N)
		return;
	const bf16 *x = inp + (size_t)row * C;
	bf16 *y = out + (size_t)row * C;
	float s = 0;
	for (int i = lane * W; i < C; i += 32 * W) {
		vec<bf16, W> xv = vload<bf16, W>(x + i);
		for (int e = 0; e < W; e++)
			s += bf(xv.v[e]);
	}
	float mu = warp_sum(s) / C;
	float v = 0;
	for (int i = lane * W; i < C; i += 32 * W) {
		vec<bf16, W> xv = vload<bf16, W>(x + i);
		for (int e = 0; e < W; e++) {
			float d = bf(xv.v[e]) - mu;
			v += d * d;
		}
	}
	float rs = rsqrtf(warp_sum(v) / C + LN_EPS);
	for (int i = lane * W; i < C; i += 32 * W) {
		vec<bf16, W> xv = vload<bf16, W>(x + i), wv = vload<bf16, W>(w + i),
		             bv = vload<bf16, W>(b + i), yv;
		for (int e = 0; e < W; e++)
			yv.v[e] = tobf((bf(xv.v[e]) - mu) * rs * bf(wv.v[e]) + bf(bv.v[e]));
		vstore(y + i, yv);
	}
	if (lane == 0) {
		mean[row] = mu;
		rstd[row] = rs;
	}
}

void k_layernorm_fwd(bf16 *out, float *mean, float *rstd, const bf16 *inp, const bf16 *w,
                     const bf16 *b, int N, int C, cudaStream_t s)
{
	void (*layernorm_fwd)(bf16 *, float *, float *, const bf16 *, const bf16 *, const bf16 *,
	                      int, int) = width8(C, out, inp, w, b) == 8
	                                          ? layernorm_fwd_kernel<8>
	                                          : layernorm_fwd_kernel<1>;
	layernorm_fwd<<<row_blocks(N), 32 * ROWS_PER_BLOCK, 0, s>>>(out, mean, rstd, inp, w, b, N,
	                                                            C);
	LAUNCH_CHECK();
}

template <int W>
static __global__ void layernorm_bwd_dx_kernel(float *dres, bf16 *dres_bf, const bf16 *dout,
                                               const bf16 *inp, const bf16 *w,
                                               const float *mean, const float *rstd, int N,
                                               int C)
{
	unsigned row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (row >= (unsigned)N)
		return;
	const bf16 *x = inp + (size_t)row * C, *dy = dout + (size_t)row * C;
	float *dx = dres + (size_t)row * C;
	bf16 *dxb = dres_bf + (size_t)row * C;
	float mu = mean[row], rs = rstd[row], s1 = 0, s2 = 0;
	for (int i = lane * W; i < C; i += 32 * W) {
		vec<bf16, W> xv = vload<bf16, W>(x + i), dv = vload<bf16, W>(dy + i),
		             wv = vload<bf16, W>(w + i);
		for (int e = 0; e < W; e++) {
			float dn = bf(dv.v[e]) * bf(wv.v[e]);
			s1 += dn;
			s2 += dn * ((bf(xv.v[e]) - mu) * rs);
		}
	}
	float m1 = warp_sum(s1) / C, m2 = warp_sum(s2) / C;
	for (int i = lane * W; i < C; i += 32 * W) {
		vec<bf16, W> xv = vload<bf16, W>(x + i), dv = vload<bf16, W>(dy + i),
		             wv = vload<bf16, W>(w + i), ob;
		vec<float, W> acc = vload<float, W>(dx + i);
		for (int e = 0; e < W; e++) {
			float xh = (bf(xv.v[e]) - mu) * rs;
			float d = acc.v[e] + (bf(dv.v[e]) * bf(wv.v[e]) - m1 - xh * m2) * rs;
			acc.v[e] = d;
			ob.v[e] = tobf(d);
		}
		vstore(dx + i, acc);
		vstore(dxb + i, ob);
	}
}

/* Partial column sums over one chunk of rows: part[p][c] = sum dy * xhat,
 * part[p][C + c] = sum dy; each thread W columns. */
template <int W>
static __global__ void layernorm_bwd_dwdb_kernel(float *part, const bf16 *dout,
                                                 const bf16 *inp, const float *mean,
                                                 const float *rstd, int N, int C, int chunk)
{
	int c = (blockIdx.x * blockDim.x + threadIdx.x) * W, p = blockIdx.y;
	if (c >= C)
		return;
	int r0 = p * chunk, r1 = r0 + chunk < N ? r0 + chunk : N;
	vec<float, W> dw, db;
	for (int e = 0; e < W; e++)
		dw.v[e] = db.v[e] = 0;
	for (int r = r0; r < r1; r++) {
		vec<bf16, W> dv = vload<bf16, W>(dout + (size_t)r * C + c),
		             xv = vload<bf16, W>(inp + (size_t)r * C + c);
		float mu = mean[r], rs = rstd[r];
		for (int e = 0; e < W; e++) {
			float dy = bf(dv.v[e]);
			dw.v[e] += dy * ((bf(xv.v[e]) - mu) * rs);
			db.v[e] += dy;
		}
	}
	vstore(part + (size_t)p * 2 * C + c, dw);
	vstore(part + (size_t)p * 2 * C + C + c, db);
}

/* dst_a[j] += sum over p of part[p][j] for j < na, dst_b[j - na] for the
 * rest, parts in order. */
static __global__ void parts_add_kernel(float *dst_a, float *dst_b, int na, const float *part,
                                        int width, int nparts)
{
	int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= width)
		return;
	float sum = 0;
	for (int p = 0; p < nparts; p++)
		sum += part[(size_t)p * width + j];
	if (j < na)
		dst_a[j] += sum;
	else
		dst_b[j - na] += sum;
}

static int parts_for(int N, int *chunk)
{
	int P = N < GK_PARTS ? N : GK_PARTS;
	*chunk = (N + P - 1) / P;
	return (N + *chunk - 1) / *chunk;
}

void k_layernorm_bwd(float *dres, bf16 *dres_bf, float *dw, float *db, float *part,
                     const bf16 *dout, const bf16 *inp, const bf16 *w, const float *mean,
                     const float *rstd, int N, int C, cudaStream_t s)
{
	int chunk, P = parts_for(N, &chunk);
	/* the float rows (dres, part) are aligned where the bf16 ones are */
	int W = width8(C, dres_bf, dout, inp, w) == 8 && aligned16(dres) && aligned16(part) ? 8
	                                                                                    : 1;
	void (*layernorm_bwd_dx)(float *, bf16 *, const bf16 *, const bf16 *, const bf16 *,
	                         const float *, const float *, int, int) =
		W == 8 ? layernorm_bwd_dx_kernel<8> : layernorm_bwd_dx_kernel<1>;
	void (*layernorm_bwd_dwdb)(float *, const bf16 *, const bf16 *, const float *,
	                           const float *, int, int, int) =
		W == 8 ? layernorm_bwd_dwdb_kernel<8> : layernorm_bwd_dwdb_kernel<1>;
	layernorm_bwd_dx<<<row_blocks(N), 32 * ROWS_PER_BLOCK, 0, s>>>(dres, dres_bf, dout, inp, w,
	                                                               mean, rstd, N, C);
	LAUNCH_CHECK();
	layernorm_bwd_dwdb<<<dim3((C / W + 255) / 256, P), 256, 0, s>>>(part, dout, inp, mean, rstd,
	                                                                N, C, chunk);
	LAUNCH_CHECK();
	parts_add_kernel<<<(2 * C + 255) / 256, 256, 0, s>>>(dw, db, C, part, 2 * C, P);
	LAUNCH_CHECK();
}

/* Each thread W columns of one chunk of rows. */
template <int W>
static __global__ void bias_bwd_kernel(float *part, const bf16 *dout, int N, int OC, int chunk)
{
	int c = (blockIdx.x * blockDim.x + threadIdx.x) * W, p = blockIdx.y;
	if (c >= OC)
		return;
	int r0 = p * chunk, r1 = r0 + chunk < N ? r0 + chunk : N;
	vec<float, W> sum;
	for (int e = 0; e < W; e++)
		sum.v[e] = 0;
	for (int r = r0; r < r1; r++) {
		vec<bf16, W> d = vload<bf16, W>(dout + (size_t)r * OC + c);
		for (int e = 0; e < W; e++)
			sum.v[e] += bf(d.v[e]);
	}
	vstore(part + (size_t)p * OC + c, sum);
}

void k_bias_bwd(float *dbias, float *part, const bf16 *dout, int N, int OC, cudaStream_t s)
{
	int chunk, P = parts_for(N, &chunk);
	int W = width8(OC, dout, part, dout, dout);
	void (*bias_bwd)(float *, const bf16 *, int, int, int) =
		W == 8 ? bias_bwd_kernel<8> : bias_bwd_kernel<1>;
	bias_bwd<<<dim3((OC / W + 255) / 256, P), 256, 0, s>>>(part, dout, N, OC, chunk);
	LAUNCH_CHECK();
	parts_add_kernel<<<(OC + 255) / 256, 256, 0, s>>>(dbias, dbias, OC, part, OC, P);
	LAUNCH_CHECK();
}

/* ---- GELU (tanh form, as x * sigmoid(2u) like the CPU engine) ---- */

/* Element-wise over n: W at a time (pointers 16-byte aligned), the last
 * n % W one by one. */
static __device__ __forceinline__ float gelu(float x)
{
	float e = expf(-2.0f * GELU_K * (x + GELU_A * x * x * x));
	return x / (1.0f + e);
}

template <int W> static __global__ void gelu_fwd_kernel(bf16 *out, const bf16 *inp, size_t n)
{
	size_t nv = n / W, stride = (size_t)gridDim.x * blockDim.x;
	size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	for (size_t i = tid; i < nv; i += stride) {
		vec<bf16, W> x = vload<bf16, W>(inp + i * W);
		for (int e = 0; e < W; e++)
			x.v[e] = tobf(gelu(bf(x.v[e])));
		vstore(out + i * W, x);
	}
	for (size_t i = nv * W + tid; i < n; i += stride)
		out[i] = tobf(gelu(bf(inp[i])));
}

void k_gelu_fwd(bf16 *out, const bf16 *inp, size_t n, cudaStream_t s)
{
	int W = aligned16(out) && aligned16(inp) ? 8 : 1;
	void (*gelu_fwd)(bf16 *, const bf16 *, size_t) =
		W == 8 ? gelu_fwd_kernel<8> : gelu_fwd_kernel<1>;
	gelu_fwd<<<blocks_for(n / W, 256), 256, 0, s>>>(out, inp, n);
	LAUNCH_CHECK();
}

/* d * gelu'(x), clamped as the CPU engine's exp: below x ~ -10 expf would
 * give inf, and inf * 0 a NaN gradient */
static __device__ __forceinline__ float gelu_grad(float d, float x)
{
	float e = expf(fminf(-2.0f * GELU_K * (x + GELU_A * x * x * x), 88.0f));
	float sg = 1.0f / (1.0f + e);
	return d * (sg + x * sg * (e * sg) * 2.0f * GELU_K * (1.0f + 3.0f * GELU_A * x * x));
}

template <int W> static __global__ void gelu_bwd_kernel(bf16 *d, const bf16 *inp, size_t n)
{
	size_t nv = n / W, stride = (size_t)gridDim.x * blockDim.x;
	size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	for (size_t i = tid; i < nv; i += stride) {
		vec<bf16, W> x = vload<bf16, W>(inp + i * W), g = vload<bf16, W>(d + i * W);
		for (int e = 0; e < W; e++)
			g.v[e] = tobf(gelu_grad(bf(g.v[e]), bf(x.v[e])));
		vstore(d + i * W, g);
	}
	for (size_t i = nv * W + tid; i < n; i += stride)
		d[i] = tobf(gelu_grad(bf(d[i]), bf(inp[i])));
}

void k_gelu_bwd(bf16 *d, const bf16 *inp, size_t n, cudaStream_t s)
{
	int W = aligned16(d) && aligned16(inp) ? 8 : 1;
	void (*gelu_bwd)(bf16 *, const bf16 *, size_t) =
		W == 8 ? gelu_bwd_kernel<8> : gelu_bwd_kernel<1>;
	gelu_bwd<<<blocks_for(n / W, 256), 256, 0, s>>>(d, inp, n);
	LAUNCH_CHECK();
}

/* ---- attention: head layouts ---- */

/* Element i of [B,T,3C] <-> its place in q, k or v [B*H,T,hs]. */
static __global__ void qkv_kernel(bf16 *q, bf16 *k, bf16 *v, bf16 *qkv, int B, int T, int C,
                                  int H, int merge)
{
	size_t n = (size_t)B * T * 3 * C;
	int hs = C / H;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t bt = i / (size_t)(3 * C);
		int j = (int)(i % (size_t)(3 * C)), which = j / C, h = (j % C) / hs, d = j % hs;
		int b = (int)(bt / (size_t)T), t = (int)(bt % (size_t)T);
		bf16 *dst = which == 0 ? q : which == 1 ? k : v;
		size_t o = (((size_t)b * H + h) * T + t) * hs + d;
		if (merge)
			qkv[i] = dst[o];
		else
			dst[o] = qkv[i];
	}
}

void k_qkv_split(bf16 *q, bf16 *k, bf16 *v, const bf16 *qkv, int B, int T, int C, int H,
                 cudaStream_t s)
{
	size_t n = (size_t)B * T * 3 * C;
	qkv_kernel<<<blocks_for(n, 256), 256, 0, s>>>(q, k, v, (bf16 *)qkv, B, T, C, H, 0);
	LAUNCH_CHECK();
}

void k_qkv_merge(bf16 *dqkv, const bf16 *dq, const bf16 *dk, const bf16 *dv, int B, int T,
                 int C, int H, cudaStream_t s)
{
	size_t n = (size_t)B * T * 3 * C;
	qkv_kernel<<<blocks_for(n, 256), 256, 0, s>>>((bf16 *)dq, (bf16 *)dk, (bf16 *)dv, dqkv, B,
	                                              T, C, H, 1);
	LAUNCH_CHECK();
}

static __global__ void heads_kernel(bf16 *y, bf16 *yh, int B, int T, int C, int H, int merge)
{
	size_t n = (size_t)B * T * C;
	int hs = C / H;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t bt = i / (size_t)C;
		int j = (int)(i % (size_t)C), h = j / hs, d = j % hs;
		int b = (int)(bt / (size_t)T), t = (int)(bt % (size_t)T);
		size_t o = (((size_t)b * H + h) * T + t) * hs + d;
		if (merge)
			y[i] = yh[o];
		else
			yh[o] = y[i];
	}
}

void k_heads_merge(bf16 *y, const bf16 *yh, int B, int T, int C, int H, cudaStream_t s)
{
	size_t n = (size_t)B * T * C;
	heads_kernel<<<blocks_for(n, 256), 256, 0, s>>>(y, (bf16 *)yh, B, T, C, H, 1);
	LAUNCH_CHECK();
}

void k_heads_split(bf16 *yh, const bf16 *y, int B, int T, int C, int H, cudaStream_t s)
{
	size_t n = (size_t)B * T * C;
	heads_kernel<<<blocks_for(n, 256), 256, 0, s>>>((bf16 *)y, yh, B, T, C, H, 0);
	LAUNCH_CHECK();
}

/* ---- attention: causal softmax and its gradient ---- */

/* The dropout index of attention weight (row, 0) of [B*H, T, T], row =
 * bh T + i: dropout.h's (((row0 + b) H + h) n_ctx + i) n_ctx. */
static __device__ __forceinline__ uint64_t att_base(const struct att_drop &a, unsigned row,
                                                    int T)
{
	return ((a.rowH0 + row / (unsigned)T) * (uint64_t)a.n_ctx + row % (unsigned)T) *
	       (uint64_t)a.n_ctx;
}

struct att_drop make_att_drop(const struct gpt_dropout *d, int site, int H, int n_ctx)
{
	struct att_drop a;
	memset(&a, 0, sizeof a);
	if (!d || !(d->p > 0.0f))
		return a;
	a.on = 1;
	a.d = *d;
	a.s = drop_site(d->key, site);
	a.rowH0 = d->row0 * (uint64_t)H;
	a.n_ctx = n_ctx;
	return a;
}

static __global__ void attn_softmax_kernel(bf16 *P, float *lse, const float *S, float scale,
                                           int nrows, int T, int have_lse, struct att_drop ad)
{
	unsigned row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (row >= (unsigned)nrows)
		return;
	int len = (int)(row % (unsigned)T) + 1;
	const float *s = S + (size_t)row * T;
	bf16 *p = P + (size_t)row * T;
	float l;
	if (have_lse) {
		l = lse[row];
	} else {
		float m = -INFINITY, sum = 0;
		for (int j = lane; j < len; j += 32)
			lse_add(m, sum, s[j] * scale);
		warp_lse(m, sum);
		l = m + logf(sum);
		if (lane == 0)
			lse[row] = l;
	}
	if (ad.on) { /* the forward's dropped weights P Z */
		uint64_t base = att_base(ad, row, T);
		for (int j = lane; j < T; j += 32)
			p[j] = tobf(j < len ? expf(s[j] * scale - l) *
			                              drop_mul(ad.s, base + (uint64_t)j, &ad.d)
			                    : 0.0f);
		return;
	}
	for (int j = lane; j < T; j += 32)
		p[j] = tobf(j < len ? expf(s[j] * scale - l) : 0.0f);
}

void k_attn_softmax(bf16 *P, float *lse, const float *S, float scale, int nrows, int T,
                    int have_lse, cudaStream_t s, const struct att_drop *ad)
{
	struct att_drop none;
	memset(&none, 0, sizeof none);
	attn_softmax_kernel<<<row_blocks(nrows), 32 * ROWS_PER_BLOCK, 0, s>>>(
		P, lse, S, scale, nrows, T, have_lse, ad ? *ad : none);
	LAUNCH_CHECK();
}

static __global__ void attn_dropout_kernel(bf16 *Pd, const bf16 *P, int nrows, int T,
                                           struct att_drop ad)
{
	unsigned row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (row >= (unsigned)nrows)
		return;
	int len = (int)(row % (unsigned)T) + 1;
	uint64_t base = att_base(ad, row, T);
	const bf16 *p = P + (size_t)row * T;
	bf16 *o = Pd + (size_t)row * T;
	for (int j = lane; j < T; j += 32)
		o[j] = tobf(j < len ? bf(p[j]) * drop_mul(ad.s, base + (uint64_t)j, &ad.d) : 0.0f);
}

void k_attn_dropout(bf16 *Pd, const bf16 *P, int nrows, int T, const struct att_drop *ad,
                    cudaStream_t s)
{
	attn_dropout_kernel<<<row_blocks(nrows), 32 * ROWS_PER_BLOCK, 0, s>>>(Pd, P, nrows, T,
	                                                                     *ad);
	LAUNCH_CHECK();
}

static __global__ void attn_softmax_bwd_kernel(bf16 *P, const float *dP, float scale,
                                               int nrows, int T, struct att_drop ad)
{
	unsigned row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (row >= (unsigned)nrows)
		return;
	int len = (int)(row % (unsigned)T) + 1;
	bf16 *p = P + (size_t)row * T;
	const float *dp = dP + (size_t)row * T;
	float D = 0;
	if (ad.on) {
		/* dP holds dP' (of the dropped weights P' = P Z): the gradient
		 * of P is Z dP', and rowsum(P Z dP') = rowsum(P' dP') */
		uint64_t base = att_base(ad, row, T);
		for (int j = lane; j < len; j += 32)
			D += bf(p[j]) * drop_mul(ad.s, base + (uint64_t)j, &ad.d) * dp[j];
		D = warp_sum(D);
		for (int j = lane; j < T; j += 32)
			p[j] = tobf(j < len ? bf(p[j]) *
			                              (drop_mul(ad.s, base + (uint64_t)j, &ad.d) * dp[j] -
			                               D) * scale
			                    : 0.0f);
		return;
	}
	for (int j = lane; j < len; j += 32)
		D += bf(p[j]) * dp[j];
	D = warp_sum(D);
	/* each lane rewrites only the entries it read */
	for (int j = lane; j < T; j += 32)
		p[j] = tobf(j < len ? bf(p[j]) * (dp[j] - D) * scale : 0.0f);
}

void k_attn_softmax_bwd(bf16 *P, const float *dP, float scale, int nrows, int T,
                        cudaStream_t s, const struct att_drop *ad)
{
	struct att_drop none;
	memset(&none, 0, sizeof none);
	attn_softmax_bwd_kernel<<<row_blocks(nrows), 32 * ROWS_PER_BLOCK, 0, s>>>(
		P, dP, scale, nrows, T, ad ? *ad : none);
	LAUNCH_CHECK();
}

/* ---- a classifier's head (model.h's gpt_model_classify) ----
 * h_b = lnf[b, last[b]] (bf16); logits[b, k] = W_k . h_b + bias_k with W
 * and bias the float32 master weights; one block per row. */
static __global__ void cls_fwd_kernel(float *logits, float *loss, const bf16 *lnf, const int *last,
                                      const uint32_t *labels, const float *W, const float *bias,
                                      int T, int C, int K)
{
	int b = blockIdx.x;
	const bf16 *h = lnf + ((size_t)b * T + (size_t)last[b]) * C;
	float *lg = logits + (size_t)b * K;
	for (int k = threadIdx.x; k < K; k += blockDim.x) {
		const float *w = W + (size_t)k * C;
		float acc = 0;
		for (int i = 0; i < C; i++)
			acc += w[i] * bf(h[i]);
		lg[k] = acc + bias[k];
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		float mx = -INFINITY;
		double s = 0;
		for (int k = 0; k < K; k++)
			mx = lg[k] > mx ? lg[k] : mx;
		for (int k = 0; k < K; k++)
			s += exp((double)lg[k] - mx);
		loss[b] = labels[b] == IGNORE_ID ? 0.0f
		                                 : (float)((double)mx + log(s) - lg[labels[b]]);
	}
}

void k_cls_fwd(float *logits, float *loss, const bf16 *lnf, const int *last,
               const uint32_t *labels, const float *W, const float *bias, int B, int T, int C,
               int K, cudaStream_t s)
{
	cls_fwd_kernel<<<B, 128, 0, s>>>(logits, loss, lnf, last, labels, W, bias, T, C, K);
	LAUNCH_CHECK();
}

/* logits become dscale (softmax - onehot), rows that do not count 0 */
static __global__ void cls_dlogits_kernel(float *logits, const uint32_t *labels, float dscale,
                                          int B, int K)
{
	int b = blockIdx.x * blockDim.x + threadIdx.x;
	if (b >= B)
		return;
	float *lg = logits + (size_t)b * K, mx = -INFINITY;
	double s = 0;
	if (labels[b] == IGNORE_ID) {
		for (int k = 0; k < K; k++)
			lg[k] = 0;
		return;
	}
	for (int k = 0; k < K; k++)
		mx = lg[k] > mx ? lg[k] : mx;
	for (int k = 0; k < K; k++)
		s += exp((double)lg[k] - mx);
	for (int k = 0; k < K; k++)
		lg[k] = ((float)(exp((double)lg[k] - mx) / s) - (k == (int)labels[b] ? 1.0f : 0.0f)) *
		        dscale;
}

/* dW[k] += sum_b d[b, k] h_b, db[k] += sum_b d[b, k]: a block per class,
 * the rows in order (no atomics) */
static __global__ void cls_dweight_kernel(float *dW, float *db, const float *d, const bf16 *lnf,
                                          const int *last, int B, int T, int C, int K)
{
	int k = blockIdx.x;
	for (int i = threadIdx.x; i < C; i += blockDim.x) {
		float acc = 0;
		for (int b = 0; b < B; b++)
			acc += d[(size_t)b * K + k] * bf(lnf[((size_t)b * T + (size_t)last[b]) * C + i]);
		dW[(size_t)k * C + i] += acc;
	}
	if (threadIdx.x == 0) {
		float acc = 0;
		for (int b = 0; b < B; b++)
			acc += d[(size_t)b * K + k];
		db[k] += acc;
	}
}

/* dlnf[b, last[b]] = sum_k d[b, k] W_k (dlnf zeroed before) */
static __global__ void cls_dhidden_kernel(bf16 *dlnf, const float *d, const float *W,
                                          const int *last, int T, int C, int K)
{
	int b = blockIdx.x;
	for (int i = threadIdx.x; i < C; i += blockDim.x) {
		float acc = 0;
		for (int k = 0; k < K; k++)
			acc += d[(size_t)b * K + k] * W[(size_t)k * C + i];
		dlnf[((size_t)b * T + (size_t)last[b]) * C + i] = tobf(acc);
	}
}

void k_cls_bwd(bf16 *dlnf, float *dW, float *db, float *logits, const uint32_t *labels,
               const bf16 *lnf, const int *last, const float *W, float dscale, int B, int T,
               int C, int K, cudaStream_t s)
{
	cls_dlogits_kernel<<<(B + 127) / 128, 128, 0, s>>>(logits, labels, dscale, B, K);
	LAUNCH_CHECK();
	cls_dweight_kernel<<<K, 256, 0, s>>>(dW, db, logits, lnf, last, B, T, C, K);
	LAUNCH_CHECK();
	cls_dhidden_kernel<<<B, 256, 0, s>>>(dlnf, logits, W, last, T, C, K);
	LAUNCH_CHECK();
}

/* ---- dropout on activations [B, T, C] (libcommon/dropout.h) ---- */

static __device__ __forceinline__ float ldf(const bf16 *p) { return bf(*p); }
static __device__ __forceinline__ float ldf(const float *p) { return *p; }
static __device__ __forceinline__ void stf(bf16 *p, float v) { *p = tobf(v); }
static __device__ __forceinline__ void stf(float *p, float v) { *p = v; }

template <typename E>
static __global__ void drop_rows_kernel(E *out, const E *in, const bf16 *add, size_t n, int T,
                                        int C, int n_ctx, uint64_t site_seed,
                                        struct gpt_dropout d)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t r = i / (size_t)C;
		uint64_t idx = ((d.row0 + r / (size_t)T) * (uint64_t)n_ctx + r % (size_t)T) *
		               (uint64_t)C + i % (size_t)C;
		float v = drop_mul(site_seed, idx, &d) * ldf(in + i);
		stf(out + i, add ? bf(add[i]) + v : v);
	}
}

void k_drop_rows(bf16 *out, const bf16 *in, const bf16 *add, const struct gpt_dropout *d,
                 int site, int BT, int T, int C, int n_ctx, cudaStream_t s)
{
	size_t n = (size_t)BT * (size_t)C;
	void (*kern)(bf16 *, const bf16 *, const bf16 *, size_t, int, int, int, uint64_t,
	             struct gpt_dropout) = drop_rows_kernel<bf16>;
	kern<<<blocks_for(n, 256), 256, 0, s>>>(out, in, add, n, T, C, n_ctx,
	                                        drop_site(d->key, site), *d);
	LAUNCH_CHECK();
}

void k_drop_rows_f32(float *x, const struct gpt_dropout *d, int site, int BT, int T, int C,
                     int n_ctx, cudaStream_t s)
{
	size_t n = (size_t)BT * (size_t)C;
	void (*kern)(float *, const float *, const bf16 *, size_t, int, int, int, uint64_t,
	             struct gpt_dropout) = drop_rows_kernel<float>;
	kern<<<blocks_for(n, 256), 256, 0, s>>>(x, x, (const bf16 *)NULL, n, T, C, n_ctx,
	                                        drop_site(d->key, site), *d);
	LAUNCH_CHECK();
}

/* ---- softmax cross-entropy over the real vocabulary ----
 * Rows of the padded vocabulary Vp, a multiple of 8 (gpt_config_finish
 * pads to 128) starting 16-byte aligned: 8 logits a load. */

#define XENT_THREADS 512

static void xent_need(const bf16 *logits, int Vp)
{
	NEED(Vp % 8 == 0 && aligned16(logits),
	     "logits rows of a multiple of 8 entries, 16-byte aligned");
}

static __global__ void xent_fwd_kernel(float *row_loss, float *row_lse, const bf16 *logits,
                                       const uint32_t *targets, int V, int Vp)
{
	__shared__ float sm[XENT_THREADS / 32], ss[XENT_THREADS / 32];
	int r = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	uint32_t t = targets[r];
	const bf16 *lg = logits + (size_t)r * Vp;
	if (t == IGNORE_ID) {
		if (threadIdx.x == 0)
			row_loss[r] = row_lse[r] = 0;
		return;
	}
	float m = -INFINITY, s = 0;
	for (int i = threadIdx.x; 8 * i < V; i += XENT_THREADS) {
		vec<bf16, 8> x = vload<bf16, 8>(lg + 8 * i);
		for (int e = 0; e < 8 && 8 * i + e < V; e++)
			lse_add(m, s, bf(x.v[e]));
	}
	warp_lse(m, s);
	if (lane == 0) {
		sm[warp] = m;
		ss[warp] = s;
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		m = sm[0];
		s = ss[0];
		for (int w = 1; w < XENT_THREADS / 32; w++)
			lse_merge(m, s, sm[w], ss[w]);
		float l = m + logf(s);
		row_lse[r] = l;
		row_loss[r] = l - bf(lg[t]);
	}
}

void k_xent_fwd(float *row_loss, float *row_lse, const bf16 *logits, const uint32_t *targets,
                int BT, int V, int Vp, cudaStream_t s)
{
	xent_need(logits, Vp);
	xent_fwd_kernel<<<BT, XENT_THREADS, 0, s>>>(row_loss, row_lse, logits, targets, V, Vp);
	LAUNCH_CHECK();
}

/* Entry j of a row's gradient from its logit x: (softmax - onehot)
 * dscale, zero on the padding. */
static __device__ __forceinline__ float xent_grad(float x, float l, int j, uint32_t t, int V,
                                                  float dscale)
{
	if (j >= V)
		return 0.0f;
	return expf(x - l) * dscale - ((uint32_t)j == t ? dscale : 0.0f);
}

static __global__ void xent_bwd_kernel(bf16 *logits, const float *row_lse,
                                       const uint32_t *targets, float dscale, int V, int Vp)
{
	int r = blockIdx.x;
	uint32_t t = targets[r];
	bf16 *lg = logits + (size_t)r * Vp;
	float l = row_lse[r];
	for (int i = threadIdx.x; i < Vp / 8; i += blockDim.x) {
		vec<bf16, 8> x = vload<bf16, 8>(lg + 8 * i);
		for (int e = 0; e < 8; e++)
			x.v[e] = tobf(t == IGNORE_ID ? 0.0f
			                             : xent_grad(bf(x.v[e]), l, 8 * i + e, t, V, dscale));
		vstore(lg + 8 * i, x);
	}
}

void k_xent_bwd(bf16 *logits, const float *row_lse, const uint32_t *targets, float dscale,
                int BT, int V, int Vp, cudaStream_t s)
{
	xent_need(logits, Vp);
	xent_bwd_kernel<<<BT, XENT_THREADS, 0, s>>>(logits, row_lse, targets, dscale, V, Vp);
	LAUNCH_CHECK();
}

/* The fused classifier: one block a row copies the row into shared
 * memory as it reads it (8 logits a load), so the logits are read from
 * global memory once and the gradient written over them.  Shared memory,
 * not registers: a 50304-entry row in 1024 threads' registers spills
 * (ptxas), while 100 KB of shared memory leaves room for two blocks an
 * SM on sm_90 (227 KB) and one on sm_86 (99 KB).  The block's log-sum-exp
 * is merged by every warp alike: the xor butterfly gives each lane the
 * same bits. */
#define XENT_FUSED_THREADS 1024

static __global__ void __launch_bounds__(XENT_FUSED_THREADS)
xent_fused_kernel(bf16 *logits, float *row_loss, float *row_lse, const uint32_t *targets,
                  float dscale, int V, int Vp)
{
	extern __shared__ __align__(16) unsigned char xent_row[];
	__shared__ float sm[XENT_FUSED_THREADS / 32], ss[XENT_FUSED_THREADS / 32];
	bf16 *row = (bf16 *)xent_row;
	int r = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
	int nwarps = blockDim.x / 32, step = 8 * blockDim.x;
	uint32_t t = targets[r];
	bf16 *lg = logits + (size_t)r * Vp;
	vec<bf16, 8> x;
	if (t == IGNORE_ID) { /* no loss, no gradient: the row is not read */
		for (int e = 0; e < 8; e++)
			x.v[e] = tobf(0.0f);
		for (int o = 8 * threadIdx.x; o < Vp; o += step)
			vstore(lg + o, x);
		if (threadIdx.x == 0)
			row_loss[r] = row_lse[r] = 0;
		return;
	}
	float m = -INFINITY, s = 0;
	for (int o = 8 * threadIdx.x; o < Vp; o += step) {
		x = vload<bf16, 8>(lg + o);
		vstore(row + o, x);
		for (int e = 0; e < 8; e++)
			m = fmaxf(m, o + e < V ? bf(x.v[e]) : -INFINITY);
	}
	/* each thread reads back only what it wrote: no barrier yet */
	if (m > -INFINITY)
		for (int o = 8 * threadIdx.x; o < V; o += step) {
			x = vload<bf16, 8>(row + o);
			for (int e = 0; e < 8; e++)
				s += o + e < V ? expf(bf(x.v[e]) - m) : 0.0f;
		}
	warp_lse(m, s);
	if (lane == 0) {
		sm[warp] = m;
		ss[warp] = s;
	}
	__syncthreads();
	m = lane < nwarps ? sm[lane] : -INFINITY;
	s = lane < nwarps ? ss[lane] : 0.0f;
	warp_lse(m, s);
	float l = m + logf(s);
	for (int o = 8 * threadIdx.x; o < Vp; o += step) {
		x = vload<bf16, 8>(row + o);
		for (int e = 0; e < 8; e++)
			x.v[e] = tobf(xent_grad(bf(x.v[e]), l, o + e, t, V, dscale));
		vstore(lg + o, x);
	}
	if (threadIdx.x == 0) {
		row_loss[r] = l - bf(row[t]);
		row_lse[r] = l;
	}
}

void k_xent_fused(bf16 *logits, float *row_loss, float *row_lse, const uint32_t *targets,
                  float dscale, int BT, int V, int Vp, cudaStream_t s)
{
	size_t bytes = (size_t)Vp * sizeof(bf16);
	int nvec = Vp / 8, threads, dev, optin;
	xent_need(logits, Vp);
	CUDA_CHECK(cudaGetDevice(&dev));
	CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
	/* the static arrays take 256 bytes of it */
	if (bytes + 1024 > (size_t)optin) { /* a row beyond shared memory: two passes */
		k_xent_fwd(row_loss, row_lse, logits, targets, BT, V, Vp, s);
		k_xent_bwd(logits, row_lse, targets, dscale, BT, V, Vp, s);
		return;
	}
	if (bytes > 48 * 1024)
		CUDA_CHECK(cudaFuncSetAttribute(xent_fused_kernel,
		                                cudaFuncAttributeMaxDynamicSharedMemorySize,
		                                (int)bytes));
	threads = nvec < XENT_FUSED_THREADS ? (nvec + 31) / 32 * 32 : XENT_FUSED_THREADS;
	xent_fused_kernel<<<BT, threads, bytes, s>>>(logits, row_loss, row_lse, targets, dscale,
	                                             V, Vp);
	LAUNCH_CHECK();
}

/* ---- fixed-order reductions ---- */

/* Sum a block's per-thread doubles in a fixed tree order; result in
 * thread 0.  blockDim.x must be a power of two <= 1024. */
static __device__ double block_sum(double v)
{
	__shared__ double sh[1024];
	sh[threadIdx.x] = v;
	__syncthreads();
	for (unsigned o = blockDim.x / 2; o > 0; o >>= 1) {
		if (threadIdx.x < o)
			sh[threadIdx.x] += sh[threadIdx.x + o];
		__syncthreads();
	}
	return sh[0];
}

static __global__ void sum_kernel(float *out, const float *x, int n)
{
	double s = 0;
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		s += x[i];
	s = block_sum(s);
	if (threadIdx.x == 0)
		*out = (float)s;
}

void k_sum(float *out, const float *x, int n, cudaStream_t s)
{
	sum_kernel<<<1, 1024, 0, s>>>(out, x, n);
	LAUNCH_CHECK();
}

/* Block b sums [b chunk, (b + 1) chunk): chunk is a multiple of 4 and g
 * 16-byte aligned, so 4 floats a load, the end of n one by one. */
static __global__ void sumsq_parts_kernel(double *part, const float *g, size_t n, size_t chunk)
{
	size_t lo = blockIdx.x * chunk, hi = lo + chunk < n ? lo + chunk : n;
	double s = 0;
	if (lo > hi)
		lo = hi;
	size_t nv = (hi - lo) / 4;
	for (size_t i = threadIdx.x; i < nv; i += blockDim.x) {
		vec<float, 4> x = vload<float, 4>(g + lo + 4 * i);
		for (int e = 0; e < 4; e++)
			s += (double)x.v[e] * x.v[e];
	}
	for (size_t i = lo + 4 * nv + threadIdx.x; i < hi; i += blockDim.x)
		s += (double)g[i] * g[i];
	s = block_sum(s);
	if (threadIdx.x == 0)
		part[blockIdx.x] = s;
}

static __global__ void norm_final_kernel(float *norm, const double *part, int nparts)
{
	double s = 0;
	for (int i = threadIdx.x; i < nparts; i += blockDim.x)
		s += part[i];
	s = block_sum(s);
	if (threadIdx.x == 0)
		*norm = (float)sqrt(s);
}

void k_grad_norm(float *norm, double *part, const float *g, size_t n, cudaStream_t s)
{
	size_t chunk = ((n + GK_NORM_PARTS - 1) / GK_NORM_PARTS + 3) / 4 * 4;
	NEED(aligned16(g), "gradients 16-byte aligned");
	if (chunk == 0)
		chunk = 4;
	sumsq_parts_kernel<<<GK_NORM_PARTS, 256, 0, s>>>(part, g, n, chunk);
	LAUNCH_CHECK();
	norm_final_kernel<<<1, 1024, 0, s>>>(norm, part, GK_NORM_PARTS);
	LAUNCH_CHECK();
}

/* ---- AdamW, as optim.c's adamw_update ---- */

/* Parameter i of tensor k: the update of optim.c, the float32 buffers
 * and the bf16 copy written. */
static __device__ __forceinline__ float adamw_one(float &m, float &v, float p, float g,
                                                  int decay, const struct adamw_args &a)
{
	if (decay < 0) /* a frozen tensor: no update, moments untouched */
		return p;
	float pi = p * (decay ? a.keep : 1.0f);
	float mi = m + a.one_b1 * (g - m);
	float vi = v * a.b2 + a.one_b2 * g * g;
	float denom = sqrtf(vi) / a.bc2_sqrt + a.eps;
	m = mi;
	v = vi;
	return pi - a.step_size * (mi / denom);
}

/* The tensor holding parameter i. */
static __device__ __forceinline__ int adamw_tensor(const size_t *t_off, int nt, size_t i)
{
	int lo = 0, hi = nt - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (t_off[mid] <= i)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Four parameters a thread: one search, 16-byte loads and stores of the
 * float32 buffers and one 8-byte store of the bf16 copy where the four
 * lie in one tensor (and their copy is 8-byte aligned); the four one by
 * one where a tensor ends among them, and at the end of n. */
static __global__ void adamw_kernel(float *p, bf16 *pb, const float *g, float *m, float *v,
                                    size_t n, const size_t *t_off, const size_t *t_boff,
                                    const int *t_decay, int nt, const float *norm,
                                    struct adamw_args a)
{
	float nrm = *norm;
	float clip = (a.max_norm <= 0 || !(nrm > a.max_norm)) ? 1.0f
	                                                      : a.max_norm / (nrm + 1e-6f);
	for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; 4 * q < n;
	     q += (size_t)gridDim.x * blockDim.x) {
		size_t i = 4 * q;
		int k = adamw_tensor(t_off, nt, i);
		size_t end = k + 1 < nt ? t_off[k + 1] : n;
		if (i + 4 <= end) {
			vec<float, 4> gv = vload<float, 4>(g + i), pv = vload<float, 4>(p + i),
			              mv = vload<float, 4>(m + i), vv = vload<float, 4>(v + i);
			vec<bf16, 4> bv;
			size_t bo = t_boff[k] + (i - t_off[k]);
			for (int e = 0; e < 4; e++) {
				pv.v[e] = adamw_one(mv.v[e], vv.v[e], pv.v[e], gv.v[e] * clip, t_decay[k], a);
				bv.v[e] = tobf(pv.v[e]);
			}
			vstore(p + i, pv);
			vstore(m + i, mv);
			vstore(v + i, vv);
			if (bo % 4 == 0)
				vstore(pb + bo, bv);
			else
				for (int e = 0; e < 4; e++)
					pb[bo + e] = bv.v[e];
		} else {
			for (size_t j = i; j < i + 4 && j < n; j++) {
				int kj = adamw_tensor(t_off, nt, j);
				float mj = m[j], vj = v[j];
				float pj = adamw_one(mj, vj, p[j], g[j] * clip, t_decay[kj], a);
				m[j] = mj;
				v[j] = vj;
				p[j] = pj;
				pb[t_boff[kj] + (j - t_off[kj])] = tobf(pj);
			}
		}
	}
}

void k_adamw(float *p, bf16 *pb, const float *g, float *m, float *v, size_t n,
             const size_t *t_off, const size_t *t_boff, const int *t_decay, int nt,
             const float *norm, struct adamw_args a, cudaStream_t s)
{
	NEED(aligned16(p) && aligned16(pb) && aligned16(g) && aligned16(m) && aligned16(v),
	     "optimizer buffers 16-byte aligned");
	adamw_kernel<<<blocks_for((n + 3) / 4, 256), 256, 0, s>>>(p, pb, g, m, v, n, t_off, t_boff,
	                                                          t_decay, nt, norm, a);
	LAUNCH_CHECK();
}
