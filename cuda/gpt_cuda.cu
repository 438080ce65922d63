/* gpt_cuda: the GPT-2 engine on the GPU: weights, activations and
 * optimizer state in device memory, the forward and backward passes as
 * kernels (kernels.cu) and cuBLASLt matrix products, and the C API of
 * gpt_cuda.h.  cuBLASLt is loaded with dlopen at first use, and cudart is
 * linked statically, so one binary starts (and runs on the CPU) on a
 * machine with no CUDA installed at all. */
#include <cublasLt.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "err.h"
#include "model.h"
#include "optim.h"
}
#include "gpt_cuda.h"
#include "gpt_cuda_test.h"
#include "kernels.h"

#ifndef GCUDA_LIBDIR
#define GCUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

#define WORKSPACE_BYTES ((size_t)32 << 20)
#define BF16_ALIGN 128 /* elements: each tensor's bf16 copy starts 256-byte aligned */

/* ---- errors ---- */

int gcuda_debug; /* GPT_CUDA_DEBUG=1: wait after every launch (kernels.h) */

void gcuda_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s: cuda error at %s:%d: %s\n", prog_name ? prog_name : "gpt", file,
	        line, what);
	exit(1);
}

/* ---- cuBLASLt, loaded at run time ---- */

#define LT_FUNCS(X) \
	X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtGetStatusString) \
	X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy) \
	X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate) \
	X(cublasLtMatrixLayoutDestroy) X(cublasLtMatrixLayoutSetAttribute) \
	X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy) \
	X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulAlgoGetHeuristic) \
	X(cublasLtMatmul)
#define LT_DECLARE(fn) static decltype(&fn) p_##fn;
LT_FUNCS(LT_DECLARE)

static const char *lt_status(cublasStatus_t st)
{
	return p_cublasLtGetStatusString ? p_cublasLtGetStatusString(st) : "cublas error";
}

#define LT_CHECK(call) do { \
	cublasStatus_t s_ = (call); \
	if (s_ != CUBLAS_STATUS_SUCCESS) gcuda_fail(lt_status(s_), __FILE__, __LINE__); \
} while (0)

/* 0 when loaded, else -1 with why set. */
static int lt_load(char *why, size_t whylen)
{
	static const char *names[] = {
		"libcublasLt.so.13", GCUDA_LIBDIR "/libcublasLt.so.13",
		"libcublasLt.so.12", GCUDA_LIBDIR "/libcublasLt.so.12",
		"libcublasLt.so", GCUDA_LIBDIR "/libcublasLt.so",
	};
	static void *lib;
	if (lib)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
		lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, whylen, "cannot load libcublasLt.so.13 (add %s to LD_LIBRARY_PATH)",
		         GCUDA_LIBDIR);
		return -1;
	}
#define LT_LOAD(fn) \
	p_##fn = (decltype(&fn))dlsym(lib, #fn); \
	if (!p_##fn) { snprintf(why, whylen, "libcublasLt lacks %s", #fn); \
		dlclose(lib); lib = NULL; return -1; }
	LT_FUNCS(LT_LOAD)
#undef LT_LOAD
	return 0;
}

/* ---- availability ---- */

static int avail_state = -1; /* -1 unknown, 0 no, 1 yes */
static char avail_why[512];

extern "C" int gcuda_available(void)
{
	int n = 0;
	cudaDeviceProp p;
	if (avail_state >= 0)
		return avail_state;
	avail_state = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n == 0) {
		snprintf(avail_why, sizeof avail_why, "no cuda device: %s",
		         e != cudaSuccess ? cudaGetErrorString(e) : "none found");
		cudaGetLastError(); /* clear the sticky-free error */
		return 0;
	}
	if (cudaGetDeviceProperties(&p, 0) != cudaSuccess || cudaSetDevice(0) != cudaSuccess) {
		snprintf(avail_why, sizeof avail_why, "cannot open cuda device 0");
		cudaGetLastError();
		return 0;
	}
	if (p.major < 8) {
		snprintf(avail_why, sizeof avail_why,
		         "cuda device '%s' is compute capability %d.%d, bf16 needs 8.0", p.name,
		         p.major, p.minor);
		return 0;
	}
	if (lt_load(avail_why, sizeof avail_why) != 0)
		return 0;
	avail_state = 1;
	avail_why[0] = 0;
	return 1;
}

extern "C" const char *gcuda_why_not(void)
{
	gcuda_available();
	return avail_why;
}

static void need_device(void)
{
	if (!gcuda_available()) {
		fprintf(stderr, "%s: no usable gpu: %s\n", prog_name ? prog_name : "gpt", avail_why);
		exit(1);
	}
}

/* Dense bf16 tensor-core peaks (float32 accumulation) of known cards, in
 * TFLOP/s, from the vendor's data sheets; the first match wins. */
static double peak_for(const char *name)
{
	static const struct { const char *key; double tflops; } tab[] = {
		{"H100 SXM", 989.4}, {"H100 80GB HBM3", 989.4}, {"H100 NVL", 835.0},
		{"H100 PCIe", 756.0}, {"H100", 756.0}, {"H200", 989.4}, {"GH200", 989.4},
		{"B200", 2250.0}, {"A100", 312.0}, {"A800", 312.0}, {"L40S", 362.0},
		{"L40", 181.0}, {"L4", 121.0}, {"A10G", 70.0}, {"A10", 125.0},
		{"RTX 4090", 165.2}, {"RTX 3090", 71.0}, {"A6000", 154.8},
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strstr(name, tab[i].key))
			return tab[i].tflops;
	return 0;
}

extern "C" void gcuda_device_info(struct gcuda_device *d)
{
	cudaDeviceProp p;
	int dev;
	need_device();
	CUDA_CHECK(cudaGetDevice(&dev));
	CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
	memset(d, 0, sizeof *d);
	snprintf(d->name, sizeof d->name, "%s", p.name);
	d->sm_major = p.major;
	d->sm_minor = p.minor;
	d->multiprocessors = p.multiProcessorCount;
	CUDA_CHECK(cudaMemGetInfo(&d->free_bytes, &d->total_bytes));
	d->peak_bf16_tflops = peak_for(p.name);
}

/* ---- device memory, counted ---- */

#define ALGO_CACHE 128

struct algo_entry {
	long long k[16];
	cublasLtMatmulAlgo_t algo;
};

struct gctx {
	cudaStream_t s;
	int flash; /* attention by flash.cu (GPT_CUDA_ATTENTION=flash) */
	cublasLtHandle_t lt;
	void *ws;
	size_t bytes, peak; /* held now, most held */
	struct algo_entry *algo;
	int n_algo;
};

static void *dalloc(struct gctx *x, size_t n, const char *what)
{
	void *p = NULL;
	if (n == 0)
		n = 1;
	cudaError_t e = cudaMalloc(&p, n);
	if (e == cudaErrorMemoryAllocation) {
		size_t fr = 0, tot = 0;
		cudaGetLastError();
		cudaMemGetInfo(&fr, &tot);
		fprintf(stderr,
		        "%s: out of gpu memory: asked for %.1f MiB (%s) with %.1f MiB held, "
		        "%.1f MiB free of %.1f MiB: try a smaller micro-batch (--batch) or "
		        "--recompute\n",
		        prog_name ? prog_name : "gpt", n / 1048576.0, what, x->bytes / 1048576.0,
		        fr / 1048576.0, tot / 1048576.0);
		exit(1);
	}
	CUDA_CHECK(e);
	x->bytes += n;
	if (x->bytes > x->peak)
		x->peak = x->bytes;
	return p;
}

static void dfree(struct gctx *x, void *p, size_t n)
{
	if (!p)
		return;
	CUDA_CHECK(cudaFree(p));
	x->bytes -= n ? n : 1;
}

static void ctx_init(struct gctx *x)
{
	need_device();
	memset(x, 0, sizeof *x);
	{
		const char *a = getenv("GPT_CUDA_ATTENTION");
		x->flash = a && strcmp(a, "flash") == 0;
		a = getenv("GPT_CUDA_DEBUG");
		gcuda_debug = a && strcmp(a, "0") != 0;
	}
	CUDA_CHECK(cudaStreamCreateWithFlags(&x->s, cudaStreamNonBlocking));
	LT_CHECK(p_cublasLtCreate(&x->lt));
	x->ws = dalloc(x, WORKSPACE_BYTES, "cublaslt workspace");
	x->algo = (struct algo_entry *)xcalloc(ALGO_CACHE, sizeof *x->algo);
}

static void ctx_free(struct gctx *x)
{
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, x->ws, WORKSPACE_BYTES);
	LT_CHECK(p_cublasLtDestroy(x->lt));
	CUDA_CHECK(cudaStreamDestroy(x->s));
	free(x->algo);
}

/* ---- matrix products through cuBLASLt ---- */

/* One column-major cuBLASLt call: D[m,n] = op(A) op(B) (+ bias over rows)
 * + beta Cm, over `batch` matrices at the given element strides.  A and B
 * are bf16; D and Cm bf16 or (d_f32) float32; accumulation in float32. */
struct lt_call {
	int m, n, k, ta, tb;
	const bf16 *A; int lda; long long sA;
	const bf16 *B; int ldb; long long sB;
	void *D; int ldd; long long sD; int d_f32;
	const void *Cm; float beta;
	const bf16 *bias;
	int batch;
};

static uint32_t align_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	uint32_t al = 256;
	while (al > 2 && a % al)
		al /= 2;
	return al;
}

/* The alignment every matrix of a strided batch keeps: the base's, and
 * the stride's in bytes. */
static uint32_t align_batch(const void *p, long long stride, size_t elem, int batch)
{
	uint32_t a = align_of(p), b;
	if (batch <= 1)
		return a;
	b = align_of((const void *)(uintptr_t)((unsigned long long)stride * elem));
	return a < b ? a : b;
}

/* The heuristic's choice for a call's shape, kept so that each shape is
 * asked about once: a step makes the same few hundred calls every time. */
static void algo_key(struct algo_entry *e, const struct lt_call *c, const void *Cm)
{
	memset(e, 0, sizeof *e);
	e->k[0] = c->m; e->k[1] = c->n; e->k[2] = c->k; e->k[3] = c->ta; e->k[4] = c->tb;
	e->k[5] = c->lda; e->k[6] = c->ldb; e->k[7] = c->ldd; e->k[8] = c->d_f32;
	e->k[9] = c->bias != NULL; e->k[10] = c->batch; e->k[11] = c->beta != 0;
	e->k[12] = c->sA; e->k[13] = c->sB; e->k[14] = c->sD;
	e->k[15] = (long long)align_of(c->A) << 24 | (long long)align_of(c->B) << 16 |
	           (long long)align_of(Cm) << 8 | (align_of(c->D) & 0xff) |
	           (long long)(align_of(c->bias) & 0xff) << 32;
}

static int algo_find(struct gctx *x, const struct lt_call *c, const void *Cm,
                     cublasLtMatmulAlgo_t *algo)
{
	struct algo_entry e;
	algo_key(&e, c, Cm);
	for (int i = 0; i < x->n_algo; i++)
		if (memcmp(x->algo[i].k, e.k, sizeof e.k) == 0) {
			*algo = x->algo[i].algo;
			return 1;
		}
	return 0;
}

static void algo_keep(struct gctx *x, const struct lt_call *c, const void *Cm,
                      const cublasLtMatmulAlgo_t *algo)
{
	struct algo_entry *e = &x->algo[x->n_algo < ALGO_CACHE ? x->n_algo++ : ALGO_CACHE - 1];
	algo_key(e, c, Cm);
	e->algo = *algo;
}

static cublasLtMatrixLayout_t lt_layout(cudaDataType t, int rows, int cols, int ld, int batch,
                                        long long stride)
{
	cublasLtMatrixLayout_t l;
	LT_CHECK(p_cublasLtMatrixLayoutCreate(&l, t, (uint64_t)rows, (uint64_t)cols, ld));
	if (batch > 1) {
		LT_CHECK(p_cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
		                                            &batch, sizeof batch));
		LT_CHECK(p_cublasLtMatrixLayoutSetAttribute(
			l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
	}
	return l;
}

static void lt_run(struct gctx *x, const struct lt_call *c)
{
	cublasLtMatmulDesc_t desc;
	cublasLtMatmulPreference_t pref;
	cublasLtMatmulHeuristicResult_t heur;
	cublasOperation_t opa = c->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
	cublasOperation_t opb = c->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	cudaDataType dt = c->d_f32 ? CUDA_R_32F : CUDA_R_16BF;
	const void *Cm = c->Cm ? c->Cm : c->D;
	float alpha = 1.0f, beta = c->beta;
	int batch = c->batch > 1 ? c->batch : 1, found = 0;
	size_t ws = WORKSPACE_BYTES;
	uint32_t al;

	LT_CHECK(p_cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
	LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa,
	                                          sizeof opa));
	LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb,
	                                          sizeof opb));
	if (c->bias) {
		cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
		cudaDataType bt = CUDA_R_16BF;
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep,
		                                          sizeof ep));
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
		                                          &c->bias, sizeof c->bias));
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
		                                          &bt, sizeof bt));
	}
	cublasLtMatrixLayout_t la = lt_layout(CUDA_R_16BF, c->ta ? c->k : c->m,
	                                      c->ta ? c->m : c->k, c->lda, batch, c->sA);
	cublasLtMatrixLayout_t lb = lt_layout(CUDA_R_16BF, c->tb ? c->n : c->k,
	                                      c->tb ? c->k : c->n, c->ldb, batch, c->sB);
	cublasLtMatrixLayout_t ld = lt_layout(dt, c->m, c->n, c->ldd, batch, c->sD);

	/* tell the heuristic the true alignments: the default assumes 256 */
	LT_CHECK(p_cublasLtMatmulPreferenceCreate(&pref));
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
	al = align_batch(c->A, c->sA, sizeof(bf16), batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
	al = align_batch(c->B, c->sB, sizeof(bf16), batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al));
	al = align_batch(Cm, c->sD, c->d_f32 ? 4 : 2, batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
	al = align_batch(c->D, c->sD, c->d_f32 ? 4 : 2, batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
	if (!algo_find(x, c, Cm, &heur.algo)) {
		LT_CHECK(p_cublasLtMatmulAlgoGetHeuristic(x->lt, desc, la, lb, ld, ld, pref, 1, &heur,
		                                          &found));
		if (found == 0) {
			char msg[256];
			snprintf(msg, sizeof msg,
			         "no cublaslt algorithm for m=%d n=%d k=%d ta=%d tb=%d batch=%d", c->m,
			         c->n, c->k, c->ta, c->tb, batch);
			gcuda_fail(msg, __FILE__, __LINE__);
		}
		algo_keep(x, c, Cm, &heur.algo);
	}
	LT_CHECK(p_cublasLtMatmul(x->lt, desc, &alpha, c->A, la, c->B, lb, &beta, Cm, ld, c->D,
	                          ld, &heur.algo, x->ws, WORKSPACE_BYTES, x->s));
	if (gcuda_debug)
		CUDA_CHECK(cudaDeviceSynchronize());
	LT_CHECK(p_cublasLtMatmulPreferenceDestroy(pref));
	LT_CHECK(p_cublasLtMatrixLayoutDestroy(la));
	LT_CHECK(p_cublasLtMatrixLayoutDestroy(lb));
	LT_CHECK(p_cublasLtMatrixLayoutDestroy(ld));
	LT_CHECK(p_cublasLtMatmulDescDestroy(desc));
}

/* Row-major products of contiguous matrices, batched with strides sa, sb,
 * sd (elements), expressed as the column-major call on the transposes:
 *   nt: D[M,N] = A[M,K] B[N,K]^T      nn: D[M,N] = A[M,K] B[K,N]
 *   tn: D[M,N] = A[K,M]^T B[K,N]
 * D = product (+ bias[N]) + beta Cm (Cm NULL: D itself). */
enum mm_kind { MM_NT, MM_NN, MM_TN };

struct mm_opt {
	int d_f32;
	const void *Cm;
	float beta;
	const bf16 *bias;
	int batch;
	long long sa, sb, sd;
};

static void mm(struct gctx *x, enum mm_kind kind, void *D, const bf16 *A, const bf16 *B,
               int M, int N, int K, const struct mm_opt *o)
{
	struct lt_call c;
	memset(&c, 0, sizeof c);
	c.m = N;
	c.n = M;
	c.k = K;
	c.A = B;
	c.sA = o->sb;
	c.B = A;
	c.sB = o->sa;
	c.D = D;
	c.ldd = N;
	c.sD = o->sd;
	c.d_f32 = o->d_f32;
	c.Cm = o->Cm;
	c.beta = o->beta;
	c.bias = o->bias;
	c.batch = o->batch;
	switch (kind) {
	case MM_NT: c.ta = 1; c.lda = K; c.tb = 0; c.ldb = K; break;
	case MM_NN: c.ta = 0; c.lda = N; c.tb = 0; c.ldb = K; break;
	case MM_TN: c.ta = 0; c.lda = N; c.tb = 1; c.ldb = M; break;
	}
	lt_run(x, &c);
}

/* ---- layers on device pointers ---- */

/* out[N,OC] = inp[N,C] W[OC,C]^T + bias (+ resid[N,OC] when given). */
static void linear_fwd(struct gctx *x, bf16 *out, const bf16 *inp, const bf16 *W,
                       const bf16 *bias, const bf16 *resid, int N, int C, int OC)
{
	struct mm_opt o;
	memset(&o, 0, sizeof o);
	o.bias = bias;
	o.Cm = resid;
	o.beta = resid ? 1.0f : 0.0f;
	mm(x, MM_NT, out, inp, W, N, OC, C, &o);
}

/* dinp = dout W (overwritten, when dinp); dW += dout^T inp; dbias +=
 * column sums of dout.  part: bias scratch (kernels.h). */
static void linear_bwd(struct gctx *x, bf16 *dinp, float *dW, float *dbias, float *part,
                       const bf16 *dout, const bf16 *inp, const bf16 *W, int N, int C, int OC)
{
	struct mm_opt o;
	memset(&o, 0, sizeof o);
	if (dinp)
		mm(x, MM_NN, dinp, dout, W, N, C, OC, &o);
	o.d_f32 = 1;
	o.beta = 1.0f;
	mm(x, MM_TN, dW, dout, inp, OC, C, N, &o);
	if (dbias)
		k_bias_bwd(dbias, part, dout, N, OC, x->s);
}

/* Scratch for attention: per-head copies and the T x T matrices. */
struct attn_buf {
	bf16 *q, *k, *v, *y, *dq, *dk, *dv; /* [B*H, T, hs] */
	float *S;                           /* [B*H, T, T] scores, then dP */
	bf16 *P;                            /* [B*H, T, T] weights, then dS */
	float *D;                           /* [B*H*T] flash backward scratch */
	int flash;                          /* flash.cu instead of the above */
};

static void attn_mm_opt(struct mm_opt *o, int BH, long long sa, long long sb, long long sd,
                        int d_f32)
{
	memset(o, 0, sizeof *o);
	o->batch = BH;
	o->sa = sa;
	o->sb = sb;
	o->sd = sd;
	o->d_f32 = d_f32;
}

/* y[B,T,C] and lse[B*H*T] from qkv[B,T,3C]. */
static void attention_fwd(struct gctx *x, const struct attn_buf *a, bf16 *y, float *lse,
                          const bf16 *qkv, int B, int T, int C, int H)
{
	int hs = C / H, BH = B * H;
	long long th = (long long)T * hs, tt = (long long)T * T;
	struct mm_opt o;
	if (a->flash) {
		k_flash_fwd(y, lse, qkv, B, T, C, H, x->s);
		return;
	}
	k_qkv_split(a->q, a->k, a->v, qkv, B, T, C, H, x->s);
	attn_mm_opt(&o, BH, th, th, tt, 1);
	mm(x, MM_NT, a->S, a->q, a->k, T, T, hs, &o);
	k_attn_softmax(a->P, lse, a->S, 1.0f / sqrtf((float)hs), BH * T, T, 0, x->s);
	attn_mm_opt(&o, BH, tt, th, th, 0);
	mm(x, MM_NN, a->y, a->P, a->v, T, hs, T, &o);
	k_heads_merge(y, a->y, B, T, C, H, x->s);
}

/* dqkv[B,T,3C] (overwritten) from dy[B,T,C], qkv, the forward's output y
 * and the saved lse. */
static void attention_bwd(struct gctx *x, const struct attn_buf *a, bf16 *dqkv,
                          const bf16 *dy, const bf16 *y, const bf16 *qkv, const float *lse,
                          int B, int T, int C, int H)
{
	int hs = C / H, BH = B * H;
	long long th = (long long)T * hs, tt = (long long)T * T;
	float scale = 1.0f / sqrtf((float)hs);
	struct mm_opt o;
	if (a->flash) {
		k_flash_bwd(dqkv, a->D, dy, y, qkv, lse, B, T, C, H, x->s);
		return;
	}
	k_qkv_split(a->q, a->k, a->v, qkv, B, T, C, H, x->s);
	k_heads_split(a->y, dy, B, T, C, H, x->s); /* a->y holds dY */
	attn_mm_opt(&o, BH, th, th, tt, 1);
	mm(x, MM_NT, a->S, a->q, a->k, T, T, hs, &o);
	k_attn_softmax(a->P, (float *)lse, a->S, scale, BH * T, T, 1, x->s);
	attn_mm_opt(&o, BH, tt, th, th, 0);
	mm(x, MM_TN, a->dv, a->P, a->y, T, hs, T, &o);        /* dV = P^T dY */
	attn_mm_opt(&o, BH, th, th, tt, 1);
	mm(x, MM_NT, a->S, a->y, a->v, T, T, hs, &o);         /* dP = dY V^T */
	k_attn_softmax_bwd(a->P, a->S, scale, BH * T, T, x->s); /* P -> dS */
	attn_mm_opt(&o, BH, tt, th, th, 0);
	mm(x, MM_NN, a->dq, a->P, a->k, T, hs, T, &o);        /* dQ = dS K */
	mm(x, MM_TN, a->dk, a->P, a->q, T, hs, T, &o);        /* dK = dS^T Q */
	k_qkv_merge(dqkv, a->dq, a->dk, a->dv, B, T, C, H, x->s);
}

/* Flash attention when asked for and the head size allows, else the
 * batched products with their T x T scratch. */
static void attn_alloc(struct gctx *x, struct attn_buf *a, int B, int T, int C, int H)
{
	size_t btc = (size_t)B * T * C, tt = (size_t)B * H * T * T;
	bf16 **v[] = {&a->q, &a->k, &a->v, &a->y, &a->dq, &a->dk, &a->dv};
	memset(a, 0, sizeof *a);
	a->D = (float *)dalloc(x, (size_t)B * H * T * sizeof(float), "attention rows");
	a->flash = x->flash && k_flash_supported(C, H);
	if (a->flash)
		return;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		*v[i] = (bf16 *)dalloc(x, btc * sizeof(bf16), "attention heads");
	a->S = (float *)dalloc(x, tt * sizeof(float), "attention scores");
	a->P = (bf16 *)dalloc(x, tt * sizeof(bf16), "attention weights");
}

static void attn_free(struct gctx *x, struct attn_buf *a, int B, int T, int C, int H)
{
	size_t btc = (size_t)B * T * C, tt = (size_t)B * H * T * T;
	bf16 *v[] = {a->q, a->k, a->v, a->y, a->dq, a->dk, a->dv};
	dfree(x, a->D, (size_t)B * H * T * sizeof(float));
	if (a->flash) {
		memset(a, 0, sizeof *a);
		return;
	}
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		dfree(x, v[i], btc * sizeof(bf16));
	dfree(x, a->S, tt * sizeof(float));
	dfree(x, a->P, tt * sizeof(bf16));
	memset(a, 0, sizeof *a);
}

/* ---- the model ---- */

#define NO_T (-1)

struct gtensor {
	char name[40];
	size_t off, boff, size; /* float32 offset, bf16 offset, elements */
	int decay;
};

/* Tensor indices of one block; NO_T when absent. */
struct glayer_t {
	int ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, mprojw, mprojb;
};

struct glayer_acts {
	bf16 *ln1, *qkv, *atty, *res2, *ln2, *fch, *fch_gelu, *res3;
	float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;
};

struct gcuda_model {
	struct gpt_config cfg;
	struct gctx x;
	int nt;
	struct gtensor *t;
	struct glayer_t *lt;
	int wte, wpe, lnfw, lnfb, head;
	size_t n_params, n_bf16;
	float *params, *grads;  /* float32 master weights and gradients */
	bf16 *wb;               /* bf16 copies, tensors BF16_ALIGN aligned */
	/* optimizer */
	float *m, *v, *norm;
	double *norm_part;
	size_t *t_off, *t_boff;
	int *t_decay;
	struct adamw_config acfg;
	long step;
	int have_opt;
	/* plan */
	int B, T, training, recompute;
	struct glayer_acts *layer;
	void *act_mem;
	size_t act_bytes;
	bf16 *encoded, *lnf, *logits, *dres_bf, *dC, *dC2, *d4C;
	float *lnf_mean, *lnf_rstd, *row_loss, *row_lse, *dres, *part, *loss;
	struct attn_buf att;
	uint32_t *d_stage, *h_stage; /* inputs, targets, order, seg */
	float *h_loss;
	int *counts;                 /* host, vocab_size: the counting sort */
	/* last forward */
	int fB, fT, has_targets, nseg;
	long counted;
};

static float *G32(struct gcuda_model *g, int t) { return t == NO_T ? NULL : g->grads + g->t[t].off; }
static bf16 *W16(struct gcuda_model *g, int t) { return t == NO_T ? NULL : g->wb + g->t[t].boff; }

static int table_add(struct gcuda_model *g, int cap, const char *name, size_t rows,
                     size_t cols, int ndim)
{
	struct gtensor *t;
	if (g->nt >= cap)
		die("gpu model: tensor table overflow");
	t = &g->t[g->nt];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->size = rows * cols;
	t->off = g->n_params;
	t->boff = g->n_bf16;
	t->decay = ndim == 2;
	g->n_params += t->size;
	g->n_bf16 += (t->size + BF16_ALIGN - 1) / BF16_ALIGN * BF16_ALIGN;
	return g->nt++;
}

extern "C" struct gcuda_model *gcuda_model_init(const struct gpt_config *c)
{
	const char *why = gpt_config_check(c);
	struct gcuda_model *g;
	int C, L, cap;
	char nm[40];

	if (why)
		die("gpu model: bad configuration: '%s'", why);
	g = (struct gcuda_model *)xcalloc(1, sizeof *g);
	g->cfg = *c;
	C = c->n_embd;
	L = c->n_layer;
	cap = 4 + 12 * L + 1;
	g->t = (struct gtensor *)xcalloc((size_t)cap, sizeof *g->t);
	g->lt = (struct glayer_t *)xcalloc((size_t)L, sizeof *g->lt);
	/* the order and shapes of model.h's tensor table */
	g->wte = table_add(g, cap, "wte.weight", (size_t)c->padded_vocab, (size_t)C, 2);
	g->wpe = table_add(g, cap, "wpe.weight", (size_t)c->n_ctx, (size_t)C, 2);
	for (int l = 0; l < L; l++) {
		struct glayer_t *o = &g->lt[l];
#define ADD(field, suffix, r, cc, nd) do { \
		snprintf(nm, sizeof nm, "h.%d.%s", l, suffix); \
		o->field = table_add(g, cap, nm, (size_t)(r), (size_t)(cc), nd); } while (0)
		ADD(ln1w, "ln_1.weight", C, 1, 1);
		ADD(ln1b, "ln_1.bias", C, 1, 1);
		ADD(qkvw, "attn.c_attn.weight", 3 * C, C, 2);
		o->qkvb = o->projb = o->fcb = o->mprojb = NO_T;
		if (c->qkv_bias)
			ADD(qkvb, "attn.c_attn.bias", 3 * C, 1, 1);
		ADD(projw, "attn.c_proj.weight", C, C, 2);
		if (c->bias)
			ADD(projb, "attn.c_proj.bias", C, 1, 1);
		ADD(ln2w, "ln_2.weight", C, 1, 1);
		ADD(ln2b, "ln_2.bias", C, 1, 1);
		ADD(fcw, "mlp.c_fc.weight", 4 * C, C, 2);
		if (c->bias)
			ADD(fcb, "mlp.c_fc.bias", 4 * C, 1, 1);
		ADD(mprojw, "mlp.c_proj.weight", C, 4 * C, 2);
		if (c->bias)
			ADD(mprojb, "mlp.c_proj.bias", C, 1, 1);
#undef ADD
	}
	g->lnfw = table_add(g, cap, "ln_f.weight", (size_t)C, 1, 1);
	g->lnfb = table_add(g, cap, "ln_f.bias", (size_t)C, 1, 1);
	g->head = c->tied ? g->wte
	                  : table_add(g, cap, "lm_head.weight", (size_t)c->padded_vocab, (size_t)C, 2);

	ctx_init(&g->x);
	g->params = (float *)dalloc(&g->x, g->n_params * sizeof(float), "weights");
	g->wb = (bf16 *)dalloc(&g->x, g->n_bf16 * sizeof(bf16), "bf16 weights");
	CUDA_CHECK(cudaMemsetAsync(g->params, 0, g->n_params * sizeof(float), g->x.s));
	CUDA_CHECK(cudaMemsetAsync(g->wb, 0, g->n_bf16 * sizeof(bf16), g->x.s));
	g->norm = (float *)dalloc(&g->x, sizeof(float), "gradient norm");
	g->norm_part = (double *)dalloc(&g->x, GK_NORM_PARTS * sizeof(double), "gradient norm");
	CUDA_CHECK(cudaMemsetAsync(g->norm, 0, sizeof(float), g->x.s));
	CUDA_CHECK(cudaMallocHost((void **)&g->h_loss, 2 * sizeof(float)));
	g->counts = (int *)xcalloc((size_t)c->vocab_size, sizeof(int));
	adamw_config_default(&g->acfg);
	return g;
}

static void plan_free(struct gcuda_model *g)
{
	if (g->act_mem)
		dfree(&g->x, g->act_mem, g->act_bytes);
	if (g->att.D)
		attn_free(&g->x, &g->att, g->B, g->T, g->cfg.n_embd, g->cfg.n_head);
	if (g->d_stage)
		dfree(&g->x, g->d_stage, (4 * (size_t)g->B * g->T + 1) * sizeof(uint32_t));
	if (g->h_stage)
		CUDA_CHECK(cudaFreeHost(g->h_stage));
	free(g->layer);
	g->act_mem = NULL;
	g->d_stage = g->h_stage = NULL;
	g->layer = NULL;
}

extern "C" void gcuda_model_plan(struct gcuda_model *g, int B, int T, int training,
                                 int recompute)
{
	const struct gpt_config *c = &g->cfg;
	size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, H = (size_t)c->n_head;
	size_t BT, nl, at = 0, total;
	char *base;

	if (B < 1 || T < 1 || T > c->n_ctx)
		die("gpu model: bad batch shape: '%dx%d'", B, T);
	/* rows are counted in int: B*T by every kernel and cuBLASLt, B*H*T by
	 * the attention softmax and the log-sum-exp; 2^30 leaves the kernels'
	 * rounding up (rows + chunk - 1) room in an int */
	if ((size_t)B * (size_t)T * H > (size_t)1 << 30)
		die("gpu model: batch shape beyond 2^30 rows of attention (batch x context x "
		    "heads): '%dx%d'", B, T);
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	plan_free(g);
	BT = (size_t)B * T;
	if (training && !g->grads) {
		g->grads = (float *)dalloc(&g->x, g->n_params * sizeof(float), "gradients");
		CUDA_CHECK(cudaMemsetAsync(g->grads, 0, g->n_params * sizeof(float), g->x.s));
	}
	g->B = B;
	g->T = T;
	g->training = training;
	g->recompute = training && recompute;
	nl = training ? L : 1;
	g->layer = (struct glayer_acts *)xcalloc(L, sizeof *g->layer);

	/* two passes over the same carving: the first counts, the second
	 * hands out pointers into one allocation (each piece 256-aligned) */
	for (int pass = 0; pass < 2; pass++) {
		base = pass ? (char *)g->act_mem : NULL;
		at = 0;
#define TAKE(type, n) ((type *)(at += ((n) * sizeof(type) + 255) / 256 * 256, \
                               base ? base + at - ((n) * sizeof(type) + 255) / 256 * 256 : NULL))
		for (size_t l = 0; l < L; l++) {
			struct glayer_acts *la = &g->layer[l];
			int own = l < nl, shared = g->recompute && l > 0;
			if (!own) {
				*la = g->layer[0];
				continue;
			}
			la->ln1 = shared ? g->layer[0].ln1 : TAKE(bf16, BT * C);
			la->ln1_mean = TAKE(float, BT);
			la->ln1_rstd = TAKE(float, BT);
			la->qkv = TAKE(bf16, BT * 3 * C);
			la->lse = TAKE(float, BT * H);
			la->atty = TAKE(bf16, BT * C);
			la->res2 = TAKE(bf16, BT * C);
			la->ln2 = shared ? g->layer[0].ln2 : TAKE(bf16, BT * C);
			la->ln2_mean = TAKE(float, BT);
			la->ln2_rstd = TAKE(float, BT);
			la->fch = TAKE(bf16, BT * 4 * C);
			la->fch_gelu = shared ? g->layer[0].fch_gelu : TAKE(bf16, BT * 4 * C);
			la->res3 = TAKE(bf16, BT * C);
		}
		g->encoded = TAKE(bf16, BT * C);
		g->lnf = TAKE(bf16, BT * C);
		g->lnf_mean = TAKE(float, BT);
		g->lnf_rstd = TAKE(float, BT);
		g->logits = TAKE(bf16, BT * (size_t)c->padded_vocab);
		g->row_loss = TAKE(float, BT);
		g->row_lse = TAKE(float, BT);
		g->loss = TAKE(float, 1);
		g->dres = NULL;
		g->dres_bf = g->dC = g->dC2 = g->d4C = NULL;
		g->part = NULL;
		if (training) {
			g->dres = TAKE(float, BT * C);
			g->dres_bf = TAKE(bf16, BT * C);
			g->dC = TAKE(bf16, BT * C);
			g->dC2 = TAKE(bf16, BT * C);
			g->d4C = TAKE(bf16, BT * 4 * C);
			g->part = TAKE(float, (size_t)GK_PARTS * 4 * C);
		}
#undef TAKE
		if (!pass) {
			total = at;
			g->act_bytes = total;
			g->act_mem = dalloc(&g->x, total, "activations");
		}
	}
	attn_alloc(&g->x, &g->att, B, T, c->n_embd, c->n_head);
	g->d_stage = (uint32_t *)dalloc(&g->x, (4 * BT + 1) * sizeof(uint32_t), "token ids");
	CUDA_CHECK(cudaMallocHost((void **)&g->h_stage, (4 * BT + 1) * sizeof(uint32_t)));
	g->has_targets = 0;
}

static int tensor_index(const struct gcuda_model *g, const struct gpt_model *m)
{
	if (memcmp(&g->cfg, &m->cfg, sizeof g->cfg) != 0 || m->n_tensors != g->nt ||
	    m->n_params != g->n_params)
		return -1;
	for (int i = 0; i < g->nt; i++)
		if (strcmp(m->tensors[i].name, g->t[i].name) != 0 ||
		    m->tensors[i].offset != g->t[i].off || m->tensors[i].size != g->t[i].size)
			return -1;
	return 0;
}

/* Refresh every bf16 copy from the float32 weights. */
static void refresh_bf16(struct gcuda_model *g)
{
	for (int i = 0; i < g->nt; i++)
		k_f32_to_bf16(g->wb + g->t[i].boff, g->params + g->t[i].off, g->t[i].size, g->x.s);
}

extern "C" void gcuda_model_upload(struct gcuda_model *g, const struct gpt_model *m)
{
	if (tensor_index(g, m) != 0)
		die("gpu model: the cpu model's tensor table differs from the gpu engine's");
	CUDA_CHECK(cudaMemcpyAsync(g->params, m->params, g->n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	refresh_bf16(g);
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_download(struct gcuda_model *g, struct gpt_model *m)
{
	if (tensor_index(g, m) != 0)
		die("gpu model: the cpu model's tensor table differs from the gpu engine's");
	CUDA_CHECK(cudaMemcpyAsync(m->params, g->params, g->n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_download_grads(struct gcuda_model *g, float *dst)
{
	if (!g->grads)
		die("gpu model: no gradients before a training plan");
	CUDA_CHECK(cudaMemcpyAsync(dst, g->grads, g->n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

/* Token ids to the device; with targets in training, also the positions
 * grouped by input token for the embedding backward (a stable counting
 * sort). */
static void stage_inputs(struct gcuda_model *g, const uint32_t *inputs,
                         const uint32_t *targets, int B, int T)
{
	const struct gpt_config *c = &g->cfg;
	size_t BT = (size_t)B * T, PBT = (size_t)g->B * g->T;
	uint32_t *in = g->h_stage, *tg = in + PBT, *order = tg + PBT, *seg = order + PBT;
	long counted = 0;
	int nseg = 0;

	if (!g->h_stage)
		die("gpu model: forward before gcuda_model_plan");
	if (B < 1 || T < 1 || B > g->B || T > g->T)
		die("gpu model: batch shape beyond the plan: '%dx%d'", B, T);
	/* the previous step's copy out of this buffer is complete: every
	 * forward ends in a wait for the loss, or the caller synced */
	for (size_t i = 0; i < BT; i++) {
		if (inputs[i] >= (uint32_t)c->vocab_size)
			die("gpu model: token id out of range: '%u'", inputs[i]);
		if (targets && targets[i] != GPT_IGNORE && targets[i] >= (uint32_t)c->vocab_size)
			die("gpu model: target id out of range: '%u'", targets[i]);
		if (targets && targets[i] != GPT_IGNORE)
			counted++;
	}
	memcpy(in, inputs, BT * sizeof *in);
	if (targets)
		memcpy(tg, targets, BT * sizeof *tg);
	if (targets && g->training) {
		int *cnt = g->counts, run = 0;
		memset(cnt, 0, (size_t)c->vocab_size * sizeof *cnt);
		for (size_t i = 0; i < BT; i++)
			cnt[in[i]]++;
		for (int v = 0; v < c->vocab_size; v++) {
			int k = cnt[v];
			cnt[v] = run;
			run += k;
		}
		for (size_t i = 0; i < BT; i++)
			order[cnt[in[i]]++] = (uint32_t)i;
		for (size_t j = 0; j < BT; j++)
			if (j == 0 || in[order[j]] != in[order[j - 1]])
				seg[nseg++] = (uint32_t)j;
		seg[nseg] = (uint32_t)BT;
	}
	CUDA_CHECK(cudaMemcpyAsync(g->d_stage, g->h_stage, (4 * PBT + 1) * sizeof(uint32_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	g->fB = B;
	g->fT = T;
	g->has_targets = targets != NULL;
	g->counted = counted;
	g->nseg = nseg;
}

/* Queue the forward pass (inputs already staged). */
static void forward_queue(struct gcuda_model *g)
{
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int B = g->fB, T = g->fT, BT = B * T, C = c->n_embd, H = c->n_head;
	size_t PBT = (size_t)g->B * g->T;
	const uint32_t *in = g->d_stage, *tg = g->d_stage + PBT;
	const bf16 *xin;

	k_embed_fwd(g->encoded, in, W16(g, g->wte), W16(g, g->wpe), BT, T, C, x->s);
	xin = g->encoded;
	for (int l = 0; l < c->n_layer; l++) {
		struct glayer_t *o = &g->lt[l];
		struct glayer_acts *la = &g->layer[l];
		k_layernorm_fwd(la->ln1, la->ln1_mean, la->ln1_rstd, xin, W16(g, o->ln1w),
		                W16(g, o->ln1b), BT, C, x->s);
		linear_fwd(x, la->qkv, la->ln1, W16(g, o->qkvw), W16(g, o->qkvb), NULL, BT, C, 3 * C);
		attention_fwd(x, &g->att, la->atty, la->lse, la->qkv, B, T, C, H);
		linear_fwd(x, la->res2, la->atty, W16(g, o->projw), W16(g, o->projb), xin, BT, C, C);
		k_layernorm_fwd(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, W16(g, o->ln2w),
		                W16(g, o->ln2b), BT, C, x->s);
		linear_fwd(x, la->fch, la->ln2, W16(g, o->fcw), W16(g, o->fcb), NULL, BT, C, 4 * C);
		k_gelu_fwd(la->fch_gelu, la->fch, (size_t)BT * 4 * C, x->s);
		linear_fwd(x, la->res3, la->fch_gelu, W16(g, o->mprojw), W16(g, o->mprojb), la->res2,
		           BT, 4 * C, C);
		xin = la->res3;
	}
	k_layernorm_fwd(g->lnf, g->lnf_mean, g->lnf_rstd, xin, W16(g, g->lnfw), W16(g, g->lnfb),
	                BT, C, x->s);
	linear_fwd(x, g->logits, g->lnf, W16(g, g->head), NULL, NULL, BT, C, c->padded_vocab);
	if (g->has_targets) {
		k_xent_fwd(g->row_loss, g->row_lse, g->logits, tg, BT, c->vocab_size,
		           c->padded_vocab, x->s);
		k_sum(g->loss, g->row_loss, BT, x->s);
	}
}

static float read_loss(struct gcuda_model *g)
{
	CUDA_CHECK(cudaMemcpyAsync(g->h_loss, g->loss, sizeof(float), cudaMemcpyDeviceToHost,
	                           g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	return g->counted ? (float)((double)g->h_loss[0] / (double)g->counted) : 0.0f;
}

extern "C" float gcuda_model_forward(struct gcuda_model *g, const uint32_t *inputs,
                                     const uint32_t *targets, int B, int T)
{
	stage_inputs(g, inputs, targets, B, T);
	forward_queue(g);
	if (!targets) {
		CUDA_CHECK(cudaStreamSynchronize(g->x.s));
		return 0.0f;
	}
	return read_loss(g);
}

extern "C" long gcuda_model_counted(const struct gcuda_model *g)
{
	return g->counted;
}

extern "C" void gcuda_model_logits(struct gcuda_model *g, int r0, int n, float *dst)
{
	const struct gpt_config *c = &g->cfg;
	size_t row = (size_t)c->padded_vocab;
	float *tmp;
	if (r0 < 0 || n < 0 || r0 + n > g->fB * g->fT)
		die("gpu model: logits rows out of range: '%d+%d'", r0, n);
	if (n == 0)
		return;
	tmp = (float *)dalloc(&g->x, (size_t)n * row * sizeof(float), "logits copy");
	k_logits_to_f32(tmp, g->logits + (size_t)r0 * row, n, c->vocab_size, c->padded_vocab,
	                g->x.s);
	CUDA_CHECK(cudaMemcpyAsync(dst, tmp, (size_t)n * row * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	dfree(&g->x, tmp, (size_t)n * row * sizeof(float));
}

extern "C" void gcuda_model_zero_grad(struct gcuda_model *g)
{
	if (g->grads)
		CUDA_CHECK(cudaMemsetAsync(g->grads, 0, g->n_params * sizeof(float), g->x.s));
}

extern "C" void gcuda_model_backward(struct gcuda_model *g, float scale)
{
	const struct gpt_config *c = &g->cfg;
	struct gctx *x = &g->x;
	int B = g->fB, T = g->fT, BT = B * T, C = c->n_embd, H = c->n_head;
	size_t PBT = (size_t)g->B * g->T;
	const uint32_t *in = g->d_stage, *tg = in + PBT, *order = tg + PBT, *seg = order + PBT;
	float dscale;

	if (!g->training || !g->has_targets)
		die("gpu model: backward needs a training plan and a forward with targets");
	dscale = g->counted ? scale / (float)g->counted : 0.0f;
	k_xent_bwd(g->logits, g->row_lse, tg, dscale, BT, c->vocab_size, c->padded_vocab, x->s);
	/* head; its weight gradient lands in wte's when tied */
	linear_bwd(x, g->dC, G32(g, g->head), NULL, NULL, g->logits, g->lnf, W16(g, g->head), BT,
	           C, c->padded_vocab);
	CUDA_CHECK(cudaMemsetAsync(g->dres, 0, (size_t)BT * C * sizeof(float), x->s));
	k_layernorm_bwd(g->dres, g->dres_bf, G32(g, g->lnfw), G32(g, g->lnfb), g->part, g->dC,
	                g->layer[c->n_layer - 1].res3, W16(g, g->lnfw), g->lnf_mean, g->lnf_rstd,
	                BT, C, x->s);
	for (int l = c->n_layer - 1; l >= 0; l--) {
		struct glayer_t *o = &g->lt[l];
		struct glayer_acts *la = &g->layer[l];
		const bf16 *xin = l ? g->layer[l - 1].res3 : g->encoded;
		if (g->recompute) {
			k_layernorm_fwd(la->ln1, la->ln1_mean, la->ln1_rstd, xin, W16(g, o->ln1w),
			                W16(g, o->ln1b), BT, C, x->s);
			k_layernorm_fwd(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, W16(g, o->ln2w),
			                W16(g, o->ln2b), BT, C, x->s);
			k_gelu_fwd(la->fch_gelu, la->fch, (size_t)BT * 4 * C, x->s);
		}
		linear_bwd(x, g->d4C, G32(g, o->mprojw), G32(g, o->mprojb), g->part, g->dres_bf,
		           la->fch_gelu, W16(g, o->mprojw), BT, 4 * C, C);
		k_gelu_bwd(g->d4C, la->fch, (size_t)BT * 4 * C, x->s);
		linear_bwd(x, g->dC, G32(g, o->fcw), G32(g, o->fcb), g->part, g->d4C, la->ln2,
		           W16(g, o->fcw), BT, C, 4 * C);
		k_layernorm_bwd(g->dres, g->dres_bf, G32(g, o->ln2w), G32(g, o->ln2b), g->part, g->dC,
		                la->res2, W16(g, o->ln2w), la->ln2_mean, la->ln2_rstd, BT, C, x->s);
		linear_bwd(x, g->dC2, G32(g, o->projw), G32(g, o->projb), g->part, g->dres_bf,
		           la->atty, W16(g, o->projw), BT, C, C);
		attention_bwd(x, &g->att, g->d4C, g->dC2, la->atty, la->qkv, la->lse, B, T, C, H);
		linear_bwd(x, g->dC, G32(g, o->qkvw), G32(g, o->qkvb), g->part, g->d4C, la->ln1,
		           W16(g, o->qkvw), BT, C, 3 * C);
		k_layernorm_bwd(g->dres, g->dres_bf, G32(g, o->ln1w), G32(g, o->ln1b), g->part, g->dC,
		                xin, W16(g, o->ln1w), la->ln1_mean, la->ln1_rstd, BT, C, x->s);
	}
	k_embed_bwd(G32(g, g->wte), G32(g, g->wpe), g->dres, in, order, seg, g->nseg, B, T, C,
	            x->s);
	g->has_targets = 0; /* the logits are gone */
}

extern "C" float gcuda_model_forward_backward(struct gcuda_model *g, const uint32_t *inputs,
                                              const uint32_t *targets, int B, int T,
                                              float scale)
{
	if (!targets)
		die("gpu model: forward_backward needs targets");
	stage_inputs(g, inputs, targets, B, T);
	forward_queue(g);
	gcuda_model_backward(g, scale);
	return read_loss(g);
}

extern "C" float gcuda_model_grad_norm(struct gcuda_model *g)
{
	float n;
	if (!g->grads)
		die("gpu model: no gradients before a training plan");
	k_grad_norm(g->norm, g->norm_part, g->grads, g->n_params, g->x.s);
	CUDA_CHECK(cudaMemcpyAsync(&g->h_loss[1], g->norm, sizeof(float), cudaMemcpyDeviceToHost,
	                           g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	n = g->h_loss[1];
	return n;
}

/* ---- AdamW ---- */

extern "C" void gcuda_adamw_init(struct gcuda_model *g, const struct adamw *opt)
{
	size_t *off = (size_t *)xcalloc((size_t)g->nt, sizeof *off);
	size_t *boff = (size_t *)xcalloc((size_t)g->nt, sizeof *boff);
	int *dec = (int *)xcalloc((size_t)g->nt, sizeof *dec);

	if (opt->n != g->n_params)
		die("gpu model: optimizer size differs from the model's: '%zu'", opt->n);
	for (int i = 0; i < g->nt; i++) {
		const struct gtensor *t = &g->t[i];
		off[i] = t->off;
		boff[i] = t->boff;
		for (int r = 0; r < opt->n_decay; r++) {
			size_t lo = opt->decay[r].offset, hi = lo + opt->decay[r].count;
			if (lo <= t->off && t->off + t->size <= hi)
				dec[i] = 1;
			else if (lo < t->off + t->size && t->off < hi)
				die("gpu model: a decay range splits tensor '%s'", t->name);
		}
	}
	if (!g->have_opt) {
		g->m = (float *)dalloc(&g->x, g->n_params * sizeof(float), "adamw m");
		g->v = (float *)dalloc(&g->x, g->n_params * sizeof(float), "adamw v");
		g->t_off = (size_t *)dalloc(&g->x, (size_t)g->nt * sizeof(size_t), "adamw table");
		g->t_boff = (size_t *)dalloc(&g->x, (size_t)g->nt * sizeof(size_t), "adamw table");
		g->t_decay = (int *)dalloc(&g->x, (size_t)g->nt * sizeof(int), "adamw table");
		g->have_opt = 1;
	}
	CUDA_CHECK(cudaMemcpyAsync(g->m, opt->m, g->n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->v, opt->v, g->n_params * sizeof(float),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->t_off, off, (size_t)g->nt * sizeof(size_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->t_boff, boff, (size_t)g->nt * sizeof(size_t),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(g->t_decay, dec, (size_t)g->nt * sizeof(int),
	                           cudaMemcpyHostToDevice, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	g->acfg = opt->cfg;
	g->step = opt->step;
	free(off);
	free(boff);
	free(dec);
}

extern "C" void gcuda_adamw_step(struct gcuda_model *g, float lr, float max_norm)
{
	struct adamw_args a;
	double bc1, bc2;
	if (!g->have_opt || !g->grads)
		die("gpu model: adamw step before gcuda_adamw_init and a training plan");
	g->step++;
	/* the scalars exactly as optim.c computes them */
	bc1 = 1.0 - pow(g->acfg.beta1, (double)g->step);
	bc2 = 1.0 - pow(g->acfg.beta2, (double)g->step);
	a.one_b1 = (float)(1.0 - g->acfg.beta1);
	a.b2 = (float)g->acfg.beta2;
	a.one_b2 = (float)(1.0 - g->acfg.beta2);
	a.eps = (float)g->acfg.eps;
	a.step_size = (float)((double)lr / bc1);
	a.bc2_sqrt = (float)sqrt(bc2);
	a.keep = (float)(1.0 - (double)lr * g->acfg.weight_decay);
	a.max_norm = max_norm;
	k_grad_norm(g->norm, g->norm_part, g->grads, g->n_params, g->x.s);
	k_adamw(g->params, g->wb, g->grads, g->m, g->v, g->n_params, g->t_off, g->t_boff,
	        g->t_decay, g->nt, g->norm, a, g->x.s);
}

extern "C" float gcuda_adamw_last_norm(struct gcuda_model *g)
{
	CUDA_CHECK(cudaMemcpyAsync(&g->h_loss[1], g->norm, sizeof(float), cudaMemcpyDeviceToHost,
	                           g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	return g->h_loss[1];
}

extern "C" void gcuda_adamw_download(struct gcuda_model *g, struct adamw *opt)
{
	if (!g->have_opt)
		die("gpu model: no optimizer state before gcuda_adamw_init");
	if (opt->n != g->n_params)
		die("gpu model: optimizer size differs from the model's: '%zu'", opt->n);
	CUDA_CHECK(cudaMemcpyAsync(opt->m, g->m, g->n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaMemcpyAsync(opt->v, g->v, g->n_params * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	opt->step = g->step;
}

extern "C" size_t gcuda_model_bytes(const struct gcuda_model *g)
{
	return g->x.bytes;
}

extern "C" size_t gcuda_model_peak_bytes(const struct gcuda_model *g)
{
	return g->x.peak;
}

extern "C" void gcuda_model_sync(struct gcuda_model *g)
{
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}

extern "C" void gcuda_model_free(struct gcuda_model *g)
{
	if (!g)
		return;
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
	plan_free(g);
	dfree(&g->x, g->params, g->n_params * sizeof(float));
	dfree(&g->x, g->wb, g->n_bf16 * sizeof(bf16));
	if (g->grads)
		dfree(&g->x, g->grads, g->n_params * sizeof(float));
	if (g->have_opt) {
		dfree(&g->x, g->m, g->n_params * sizeof(float));
		dfree(&g->x, g->v, g->n_params * sizeof(float));
		dfree(&g->x, g->t_off, (size_t)g->nt * sizeof(size_t));
		dfree(&g->x, g->t_boff, (size_t)g->nt * sizeof(size_t));
		dfree(&g->x, g->t_decay, (size_t)g->nt * sizeof(int));
	}
	dfree(&g->x, g->norm, sizeof(float));
	dfree(&g->x, g->norm_part, GK_NORM_PARTS * sizeof(double));
	CUDA_CHECK(cudaFreeHost(g->h_loss));
	ctx_free(&g->x);
	free(g->counts);
	free(g->t);
	free(g->lt);
	free(g);
}

/* ---- single kernels for tests (gpt_cuda_test.h) ---- */

/* Host floats to a new device buffer, as bf16 or float32. */
static bf16 *up16(struct gctx *x, const float *h, size_t n)
{
	float *tmp = (float *)dalloc(x, n * sizeof(float), "test");
	bf16 *d = (bf16 *)dalloc(x, n * sizeof(bf16), "test");
	CUDA_CHECK(cudaMemcpyAsync(tmp, h, n * sizeof(float), cudaMemcpyHostToDevice, x->s));
	k_f32_to_bf16(d, tmp, n, x->s);
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, tmp, n * sizeof(float));
	return d;
}

static float *up32(struct gctx *x, const float *h, size_t n)
{
	float *d = (float *)dalloc(x, n * sizeof(float), "test");
	if (h)
		CUDA_CHECK(cudaMemcpyAsync(d, h, n * sizeof(float), cudaMemcpyHostToDevice, x->s));
	else
		CUDA_CHECK(cudaMemsetAsync(d, 0, n * sizeof(float), x->s));
	return d;
}

static void down16(struct gctx *x, float *h, bf16 *d, size_t n)
{
	float *tmp = (float *)dalloc(x, n * sizeof(float), "test");
	k_bf16_to_f32(tmp, d, n, x->s);
	CUDA_CHECK(cudaMemcpyAsync(h, tmp, n * sizeof(float), cudaMemcpyDeviceToHost, x->s));
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, tmp, n * sizeof(float));
	dfree(x, d, n * sizeof(bf16));
}

static void down32(struct gctx *x, float *h, float *d, size_t n)
{
	CUDA_CHECK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, x->s));
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	dfree(x, d, n * sizeof(float));
}

static void free16(struct gctx *x, const bf16 *d, size_t n)
{
	dfree(x, (void *)d, n * sizeof(bf16));
}

/* Filled with NaN, so an element a kernel forgets to write shows. */
static bf16 *new16(struct gctx *x, size_t n)
{
	bf16 *d = (bf16 *)dalloc(x, n * sizeof(bf16), "test");
	CUDA_CHECK(cudaMemsetAsync(d, 0xff, n * sizeof(bf16), x->s));
	return d;
}

extern "C" void gcuda_test_layernorm(int N, int C, const float *inp, const float *w,
                                     const float *b, const float *dout, float *out,
                                     float *mean, float *rstd, float *dres, float *dw,
                                     float *db)
{
	struct gctx x;
	size_t nc = (size_t)N * C;
	ctx_init(&x);
	bf16 *di = up16(&x, inp, nc), *dwt = up16(&x, w, C), *dbs = up16(&x, b, C);
	bf16 *ddo = up16(&x, dout, nc), *dout16 = new16(&x, nc), *dres16 = new16(&x, nc);
	float *dm = up32(&x, NULL, N), *dr = up32(&x, NULL, N), *dres32 = up32(&x, dres, nc);
	float *ddw = up32(&x, dw, C), *ddb = up32(&x, db, C);
	float *part = up32(&x, NULL, (size_t)GK_PARTS * 2 * C);
	k_layernorm_fwd(dout16, dm, dr, di, dwt, dbs, N, C, x.s);
	k_layernorm_bwd(dres32, dres16, ddw, ddb, part, ddo, di, dwt, dm, dr, N, C, x.s);
	down16(&x, out, dout16, nc);
	down32(&x, mean, dm, N);
	down32(&x, rstd, dr, N);
	down32(&x, dres, dres32, nc);
	down32(&x, dw, ddw, C);
	down32(&x, db, ddb, C);
	dfree(&x, part, (size_t)GK_PARTS * 2 * C * sizeof(float));
	free16(&x, di, nc);
	free16(&x, dwt, C);
	free16(&x, dbs, C);
	free16(&x, ddo, nc);
	free16(&x, dres16, nc);
	ctx_free(&x);
}

extern "C" void gcuda_test_gelu(size_t n, const float *inp, const float *dout, float *out,
                                float *dinp)
{
	struct gctx x;
	ctx_init(&x);
	bf16 *di = up16(&x, inp, n), *dd = up16(&x, dout, n), *dout16 = new16(&x, n);
	k_gelu_fwd(dout16, di, n, x.s);
	k_gelu_bwd(dd, di, n, x.s);
	down16(&x, out, dout16, n);
	down16(&x, dinp, dd, n);
	free16(&x, di, n);
	ctx_free(&x);
}

extern "C" void gcuda_test_matmul(int N, int C, int OC, const float *inp, const float *W,
                                  const float *bias, const float *resid, const float *dout,
                                  float *out, float *dinp, float *dW, float *dbias)
{
	struct gctx x;
	size_t nc = (size_t)N * C, no = (size_t)N * OC, wc = (size_t)OC * C;
	ctx_init(&x);
	bf16 *di = up16(&x, inp, nc), *dwt = up16(&x, W, wc), *ddo = up16(&x, dout, no);
	bf16 *db = bias ? up16(&x, bias, OC) : NULL, *dr = resid ? up16(&x, resid, no) : NULL;
	bf16 *o16 = new16(&x, no), *din16 = new16(&x, nc);
	float *ddw = up32(&x, dW, wc), *ddb = bias ? up32(&x, dbias, OC) : NULL;
	float *part = up32(&x, NULL, (size_t)GK_PARTS * OC);
	linear_fwd(&x, o16, di, dwt, db, dr, N, C, OC);
	linear_bwd(&x, din16, ddw, ddb, part, ddo, di, dwt, N, C, OC);
	down16(&x, out, o16, no);
	down16(&x, dinp, din16, nc);
	down32(&x, dW, ddw, wc);
	if (bias)
		down32(&x, dbias, ddb, OC);
	dfree(&x, part, (size_t)GK_PARTS * OC * sizeof(float));
	free16(&x, di, nc);
	free16(&x, dwt, wc);
	free16(&x, ddo, no);
	if (db)
		free16(&x, db, OC);
	if (dr)
		free16(&x, dr, no);
	ctx_free(&x);
}

extern "C" int gcuda_test_attention(int B, int T, int C, int H, int flash,
                                    const float *qkv, const float *dy, float *y, float *lse,
                                    float *dqkv)
{
	struct gctx x;
	struct attn_buf a;
	size_t n3 = (size_t)B * T * 3 * C, n1 = (size_t)B * T * C, nl = (size_t)B * H * T;
	int used;
	ctx_init(&x);
	x.flash = flash;
	attn_alloc(&x, &a, B, T, C, H);
	bf16 *dq = up16(&x, qkv, n3), *ddy = up16(&x, dy, n1);
	bf16 *y16 = new16(&x, n1), *dqkv16 = new16(&x, n3);
	float *dl = up32(&x, NULL, nl);
	attention_fwd(&x, &a, y16, dl, dq, B, T, C, H);
	attention_bwd(&x, &a, dqkv16, ddy, y16, dq, dl, B, T, C, H);
	down16(&x, y, y16, n1);
	down16(&x, dqkv, dqkv16, n3);
	down32(&x, lse, dl, nl);
	free16(&x, dq, n3);
	free16(&x, ddy, n1);
	used = a.flash;
	attn_free(&x, &a, B, T, C, H);
	ctx_free(&x);
	return used;
}

extern "C" void gcuda_test_xent(int BT, int V, int Vp, const float *logits,
                                const uint32_t *targets, float dscale, float *row_loss,
                                float *dlogits)
{
	struct gctx x;
	size_t n = (size_t)BT * Vp;
	ctx_init(&x);
	bf16 *lg = up16(&x, logits, n);
	uint32_t *dt = (uint32_t *)dalloc(&x, (size_t)BT * sizeof(uint32_t), "test");
	float *dl = up32(&x, NULL, BT), *dlse = up32(&x, NULL, BT);
	CUDA_CHECK(cudaMemcpyAsync(dt, targets, (size_t)BT * sizeof(uint32_t),
	                           cudaMemcpyHostToDevice, x.s));
	k_xent_fwd(dl, dlse, lg, dt, BT, V, Vp, x.s);
	k_xent_bwd(lg, dlse, dt, dscale, BT, V, Vp, x.s);
	down32(&x, row_loss, dl, BT);
	down16(&x, dlogits, lg, n);
	dfree(&x, dlse, (size_t)BT * sizeof(float));
	dfree(&x, dt, (size_t)BT * sizeof(uint32_t));
	ctx_free(&x);
}

extern "C" void gcuda_test_embedding(int B, int T, int C, int V, const uint32_t *inputs,
                                     const float *wte, const float *wpe, const float *dres,
                                     float *out, float *dwte, float *dwpe)
{
	struct gctx x;
	size_t BT = (size_t)B * T, nc = BT * C;
	uint32_t *h = (uint32_t *)xcalloc(3 * BT + 1, sizeof(uint32_t));
	uint32_t *order = h + BT, *seg = order + BT;
	int *cnt = (int *)xcalloc((size_t)V, sizeof(int)), run = 0, nseg = 0;
	/* the same grouping as stage_inputs */
	memcpy(h, inputs, BT * sizeof *h);
	for (size_t i = 0; i < BT; i++)
		cnt[h[i]]++;
	for (int v = 0; v < V; v++) {
		int k = cnt[v];
		cnt[v] = run;
		run += k;
	}
	for (size_t i = 0; i < BT; i++)
		order[cnt[h[i]]++] = (uint32_t)i;
	for (size_t j = 0; j < BT; j++)
		if (j == 0 || h[order[j]] != h[order[j - 1]])
			seg[nseg++] = (uint32_t)j;
	seg[nseg] = (uint32_t)BT;
	ctx_init(&x);
	uint32_t *d = (uint32_t *)dalloc(&x, (3 * BT + 1) * sizeof(uint32_t), "test");
	CUDA_CHECK(cudaMemcpyAsync(d, h, (3 * BT + 1) * sizeof(uint32_t), cudaMemcpyHostToDevice,
	                           x.s));
	bf16 *te = up16(&x, wte, (size_t)V * C), *pe = up16(&x, wpe, (size_t)T * C);
	bf16 *o16 = new16(&x, nc);
	float *dr = up32(&x, dres, nc), *dte = up32(&x, dwte, (size_t)V * C);
	float *dpe = up32(&x, dwpe, (size_t)T * C);
	k_embed_fwd(o16, d, te, pe, (int)BT, T, C, x.s);
	k_embed_bwd(dte, dpe, dr, d, d + BT, d + 2 * BT, nseg, B, T, C, x.s);
	down16(&x, out, o16, nc);
	down32(&x, dwte, dte, (size_t)V * C);
	down32(&x, dwpe, dpe, (size_t)T * C);
	dfree(&x, dr, nc * sizeof(float));
	free16(&x, te, (size_t)V * C);
	free16(&x, pe, (size_t)T * C);
	dfree(&x, d, (3 * BT + 1) * sizeof(uint32_t));
	ctx_free(&x);
	free(h);
	free(cnt);
}

/* ==== inference: the decoder and per-row losses (gpt_cuda_infer.h) ====
 * Kept apart from the training engine above: it only reads the engine's
 * bf16 weights, stream and matrix-product helper, and allocates through
 * its counted allocator. */

#include "decode.h"
#include "gpt_cuda_infer.h"

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
	k_dec_embed(d->x, d->tok, W16(g, g->wte), W16(g, g->wpe), n, pos, C, x->s);
	xin = d->x;
	for (int l = 0; l < c->n_layer; l++) {
		struct glayer_t *o = &g->lt[l];
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
		                W16(g, g->lnfw), W16(g, g->lnfb), rows, C, x->s);
		linear_fwd(x, d->logits, d->ln, W16(g, g->head), NULL, NULL, rows, C, Vp);
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

extern "C" void gcuda_model_row_loss(struct gcuda_model *g, int r0, int n, float *dst)
{
	if (!g->has_targets)
		die("gpu model: row losses need a forward with targets just before");
	if (r0 < 0 || n < 0 || r0 + n > g->fB * g->fT)
		die("gpu model: loss rows out of range: '%d+%d'", r0, n);
	if (n == 0)
		return;
	CUDA_CHECK(cudaMemcpyAsync(dst, g->row_loss + r0, (size_t)n * sizeof(float),
	                           cudaMemcpyDeviceToHost, g->x.s));
	CUDA_CHECK(cudaStreamSynchronize(g->x.s));
}
