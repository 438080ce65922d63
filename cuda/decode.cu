/* decode: the GPU decoder of gpt_cuda_infer.h, which feeds tokens through
 * a key/value cache in device memory over a gcuda_model's weights, and
 * its kernels (decode.h): position-offset embeddings, the cache append,
 * and attention of a few queries over the cache.  Float32 arithmetic on
 * bf16 data, every reduction in a fixed order, so a step repeats bit for
 * bit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "decode.h"
#include "gpt_cuda_infer.h"
#include "internal.h"

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

/* ---- the decoder (gpt_cuda_infer.h) ----
 * Apart from the training engine: it only reads the engine's bf16
 * weights, stream and matrix-product helper, and allocates through its
 * counted allocator. */

#define DEC_LOGIT_ROWS 64 /* logits rows made and copied out at once */

struct gcuda_decoder {
	struct gcuda_model *g;
	int max_T, pos, n_last;
	bf16 *kc, *vc;            /* [n_layer][H][max_T][hs] */
	bf16 *x, *ln, *qkv, *atty, *res2, *fch, *fch_gelu, *res3; /* max_T rows */
	const bf16 *out;          /* the last step's final residual rows */
	bf16 *logits;             /* DEC_LOGIT_ROWS x padded_vocab */
	float *mean, *rstd, *f32; /* max_T; DEC_LOGIT_ROWS x padded_vocab */
	uint32_t *tok;            /* max_T token ids */
	void *mem;
	size_t bytes;
};

/* Two passes over one carving: sizes (base NULL), then pointers. */
static size_t dec_carve(struct gcuda_decoder *d, char *base)
{
	const struct gpt_config *c = &d->g->cfg;
	size_t C = (size_t)c->n_embd, R = (size_t)d->max_T, Vp = (size_t)c->padded_vocab;
	size_t kv = (size_t)c->n_layer * R * C, at = 0;
#define DTAKE(type, n) ((type *)(at += ((n) * sizeof(type) + 255) / 256 * 256, \
                        base ? base + at - ((n) * sizeof(type) + 255) / 256 * 256 : NULL))
	d->kc = DTAKE(bf16, kv);
	d->vc = DTAKE(bf16, kv);
	d->x = DTAKE(bf16, R * C);
	d->ln = DTAKE(bf16, R * C);
	d->qkv = DTAKE(bf16, R * 3 * C);
	d->atty = DTAKE(bf16, R * C);
	d->res2 = DTAKE(bf16, R * C);
	d->fch = DTAKE(bf16, R * 4 * C);
	d->fch_gelu = DTAKE(bf16, R * 4 * C);
	d->res3 = DTAKE(bf16, R * C);
	d->logits = DTAKE(bf16, (size_t)DEC_LOGIT_ROWS * Vp);
	d->mean = DTAKE(float, R);
	d->rstd = DTAKE(float, R);
	d->f32 = DTAKE(float, (size_t)DEC_LOGIT_ROWS * Vp);
	d->tok = DTAKE(uint32_t, R);
#undef DTAKE
	return at;
}

extern "C" struct gcuda_decoder *gcuda_decoder_init(struct gcuda_model *g, int max_T)
{
	const struct gpt_config *c = &g->cfg;
	struct gcuda_decoder *d;

	if (max_T < 1 || max_T > c->n_ctx)
		die("gpu decoder: context of %d positions, the model has %d", max_T, c->n_ctx);
	if (c->n_embd / c->n_head > DEC_MAX_HS)
		die("gpu decoder: head size %d beyond %d", c->n_embd / c->n_head, DEC_MAX_HS);
	d = (struct gcuda_decoder *)xcalloc(1, sizeof *d);
	d->g = g;
	d->max_T = max_T;
	d->bytes = dec_carve(d, NULL);
	d->mem = dalloc(&g->x, d->bytes, "decoder cache");
	dec_carve(d, (char *)d->mem);
	return d;
}

/* Queue n tokens through every layer at positions pos..pos+n-1. */
static void dec_forward(struct gcuda_decoder *d, const uint32_t *tokens, int n)
{
	struct gcuda_model *g = d->g;
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int C = c->n_embd, H = c->n_head, pos = d->pos;
	size_t kv = (size_t)d->max_T * C;
	const bf16 *xin;

	if (n < 1 || n > d->max_T - pos)
		die("gpu decoder: %d more tokens after %d overflow its context of %d", n, pos,
		    d->max_T);
	for (int i = 0; i < n; i++)
		if (tokens[i] >= (uint32_t)c->vocab_size)
			die("gpu decoder: token id out of range: '%u'", tokens[i]);
	/* from pageable memory: the caller's array is free once this returns */
	CUDA_CHECK(cudaMemcpyAsync(d->tok, tokens, (size_t)n * sizeof(uint32_t),
	                           cudaMemcpyHostToDevice, x->s));
	k_dec_embed(d->x, d->tok, W16(g, g->L.wte), W16(g, g->L.wpe), n, pos, C, x->s);
	xin = d->x;
	for (int l = 0; l < c->n_layer; l++) {
		const struct gpt_layer_ix *o = &g->L.layer[l];
		bf16 *kc = d->kc + (size_t)l * kv, *vc = d->vc + (size_t)l * kv;
		k_layernorm_fwd(d->ln, d->mean, d->rstd, xin, W16(g, o->ln1w), W16(g, o->ln1b), n, C,
		                x->s);
		linear_fwd(x, d->qkv, d->ln, W16(g, o->qkvw), W16(g, o->qkvb), NULL, n, C, 3 * C);
		k_dec_kv_append(kc, vc, d->qkv, n, pos, C, H, d->max_T, x->s);
		k_dec_attention(d->atty, d->qkv, kc, vc, n, pos, C, H, d->max_T, x->s);
		linear_fwd(x, d->res2, d->atty, W16(g, o->projw), W16(g, o->projb), xin, n, C, C);
		k_layernorm_fwd(d->ln, d->mean, d->rstd, d->res2, W16(g, o->ln2w), W16(g, o->ln2b), n,
		                C, x->s);
		linear_fwd(x, d->fch, d->ln, W16(g, o->fcw), W16(g, o->fcb), NULL, n, C, 4 * C);
		k_gelu_fwd(d->fch_gelu, d->fch, (size_t)n * 4 * C, x->s);
		linear_fwd(x, d->res3, d->fch_gelu, W16(g, o->mprojw), W16(g, o->mprojb), d->res2, n,
		           4 * C, C);
		xin = d->res3;
	}
	d->out = xin;
	d->n_last = n;
	d->pos = pos + n;
}

/* Logits of rows r0..r0+n of the last step into dst, a chunk at a time:
 * ln_f, the head product, float with -inf padding, copied out. */
static void dec_logits(struct gcuda_decoder *d, int r0, int n, float *dst)
{
	struct gcuda_model *g = d->g;
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int C = c->n_embd, Vp = c->padded_vocab;

	for (int k = 0; k < n; k += DEC_LOGIT_ROWS) {
		int rows = n - k < DEC_LOGIT_ROWS ? n - k : DEC_LOGIT_ROWS;
		k_layernorm_fwd(d->ln, d->mean, d->rstd, d->out + (size_t)(r0 + k) * C,
		                W16(g, g->L.lnfw), W16(g, g->L.lnfb), rows, C, x->s);
		linear_fwd(x, d->logits, d->ln, W16(g, g->L.head), NULL, NULL, rows, C, Vp);
		k_logits_to_f32(d->f32, d->logits, rows, c->vocab_size, Vp, x->s);
		CUDA_CHECK(cudaMemcpyAsync(dst + (size_t)k * Vp, d->f32,
		                           (size_t)rows * Vp * sizeof(float), cudaMemcpyDeviceToHost,
		                           x->s));
		CUDA_CHECK(cudaStreamSynchronize(x->s)); /* d->f32 is reused */
	}
}

extern "C" void gcuda_decoder_step(struct gcuda_decoder *d, const uint32_t *tokens, int n,
                                   float *last)
{
	dec_forward(d, tokens, n);
	if (last)
		dec_logits(d, n - 1, 1, last);
	else
		CUDA_CHECK(cudaStreamSynchronize(d->g->x.s));
}

extern "C" void gcuda_decoder_step_all(struct gcuda_decoder *d, const uint32_t *tokens, int n,
                                       float *all)
{
	dec_forward(d, tokens, n);
	if (all)
		dec_logits(d, 0, n, all);
	else
		CUDA_CHECK(cudaStreamSynchronize(d->g->x.s));
}

extern "C" void gcuda_decoder_rewind(struct gcuda_decoder *d, int pos)
{
	if (pos < 0 || pos > d->pos)
		die("gpu decoder: cannot rewind to %d of %d tokens", pos, d->pos);
	/* positions beyond pos are simply overwritten by the next step */
	d->pos = pos;
	d->n_last = 0;
}

extern "C" void gcuda_decoder_reset(struct gcuda_decoder *d)
{
	gcuda_decoder_rewind(d, 0);
}

extern "C" int gcuda_decoder_pos(const struct gcuda_decoder *d)
{
	return d->pos;
}

extern "C" void gcuda_decoder_free(struct gcuda_decoder *d)
{
	if (!d)
		return;
	CUDA_CHECK(cudaStreamSynchronize(d->g->x.s));
	dfree(&d->g->x, d->mem, d->bytes);
	free(d);
}
