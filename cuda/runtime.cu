/* runtime: what every part of the CUDA engine stands on: the error
 * report, cuBLASLt loaded with dlopen at first use (cudart is linked
 * statically, so one binary starts, and runs on the CPU, on a machine with
 * no CUDA installed at all), whether a usable GPU is there and what it
 * is, a stream with counted device memory (struct gctx), and mm(), the
 * row-major matrix product as cuBLASLt calls (internal.h). */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt_cuda.h"
#include "internal.h"

#ifndef GCUDA_LIBDIR
#define GCUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

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

/* Is an NVIDIA display or 3D controller on the PCI bus?  (Vendor 0x10de,
 * class 0x03xxxx: a GPU the driver would serve, not its audio function.) */
static int nvidia_on_pci(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		char path[512], vendor[16] = "", cls[16] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vendor", de->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			if (!fgets(vendor, sizeof vendor, f))
				vendor[0] = 0;
			fclose(f);
		}
		snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/class", de->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			if (!fgets(cls, sizeof cls, f))
				cls[0] = 0;
			fclose(f);
		}
		found = strncmp(vendor, "0x10de", 6) == 0 && strncmp(cls, "0x03", 4) == 0;
	}
	closedir(d);
	return found;
}

/* Why cudaGetDeviceCount found no device.  The runtime answers "CUDA
 * driver version is insufficient" also when no driver is loaded at all,
 * which on a machine without a GPU is simply "no GPU found"; an old
 * driver, or a GPU without its driver, keeps a reason of its own. */
static void no_device_why(cudaError_t e, char *why, size_t len)
{
	int drv = 0, rt = 0;

	if (e == cudaSuccess || e == cudaErrorNoDevice) {
		snprintf(why, len, "no GPU found");
		return;
	}
	if (e != cudaErrorInsufficientDriver) {
		snprintf(why, len, "%s", cudaGetErrorString(e));
		return;
	}
	if (cudaDriverGetVersion(&drv) != cudaSuccess)
		drv = 0;
	if (cudaRuntimeGetVersion(&rt) != cudaSuccess)
		rt = 0;
	if (drv > 0)
		snprintf(why, len, "the CUDA driver (%d.%d) is older than this build's runtime (%d.%d)",
		         drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
	else if (nvidia_on_pci())
		snprintf(why, len, "an NVIDIA GPU is present but no CUDA driver is loaded");
	else
		snprintf(why, len, "no GPU found");
}

static int want_dev;

extern "C" void gcuda_select(int index)
{
	want_dev = index;
}

extern "C" int gcuda_available(void)
{
	int n = 0;
	cudaDeviceProp p;
	if (avail_state >= 0)
		return avail_state;
	avail_state = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n == 0) {
		no_device_why(e, avail_why, sizeof avail_why);
		cudaGetLastError(); /* clear the sticky-free error */
		return 0;
	}
	/* a launcher that shows each rank its own GPU (Slurm's
	 * --gpus-per-task 1) leaves one device, whatever the local rank */
	if (n == 1)
		want_dev = 0;
	if (want_dev >= n) {
		snprintf(avail_why, sizeof avail_why,
		         "this rank is number %d on its machine but the machine shows %d cuda device%s "
		         "(one GPU per rank)", want_dev, n, n == 1 ? "" : "s");
		return 0;
	}
	if (cudaGetDeviceProperties(&p, want_dev) != cudaSuccess || cudaSetDevice(want_dev) != cudaSuccess) {
		snprintf(avail_why, sizeof avail_why, "cannot open cuda device %d", want_dev);
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

void need_device(void)
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

void *dalloc(struct gctx *x, size_t n, const char *what)
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

void dfree(struct gctx *x, void *p, size_t n)
{
	if (!p)
		return;
	CUDA_CHECK(cudaFree(p));
	x->bytes -= n ? n : 1;
}

extern "C" int gcuda_attention_flash(void)
{
	const char *a = getenv("GPT_CUDA_ATTENTION");
	if (!a || !*a || strcmp(a, "flash") == 0)
		return 1;
	if (strcmp(a, "matmul") == 0 || strcmp(a, "batched") == 0)
		return 0;
	die("GPT_CUDA_ATTENTION must be flash or matmul: '%s'", a);
}

void ctx_init(struct gctx *x)
{
	need_device();
	memset(x, 0, sizeof *x);
	{
		const char *a = getenv("GPT_CUDA_GELU");
		x->flash = gcuda_attention_flash();
		if (a && *a && strcmp(a, "kernel") != 0 && strcmp(a, "fused") != 0)
			die("GPT_CUDA_GELU must be fused or kernel: '%s'", a);
		x->gelu_kernel = a && strcmp(a, "kernel") == 0;
		a = getenv("GPT_CUDA_DEBUG");
		gcuda_debug = a && strcmp(a, "0") != 0;
	}
	CUDA_CHECK(cudaStreamCreateWithFlags(&x->s, cudaStreamNonBlocking));
	LT_CHECK(p_cublasLtCreate(&x->lt));
	x->ws = dalloc(x, WORKSPACE_BYTES, "cublaslt workspace");
	x->algo = (struct algo_entry *)xcalloc(ALGO_CACHE, sizeof *x->algo);
}

void ctx_free(struct gctx *x)
{
	CUDA_CHECK(cudaStreamSynchronize(x->s));
	phase_on(x, 0);
	dfree(x, x->ws, WORKSPACE_BYTES);
	LT_CHECK(p_cublasLtDestroy(x->lt));
	CUDA_CHECK(cudaStreamDestroy(x->s));
	free(x->algo);
}

/* ---- phase marks ---- */

#define PHASE_MAX 2048 /* marks between two takes: d12's step makes ~230 */

struct gphases {
	int n;
	cudaEvent_t ev[PHASE_MAX + 1]; /* created when first used; the +1 ends the last */
	const char *name[PHASE_MAX];
};

static void mark(struct gphases *p, int i, cudaStream_t s)
{
	if (!p->ev[i])
		CUDA_CHECK(cudaEventCreate(&p->ev[i]));
	CUDA_CHECK(cudaEventRecord(p->ev[i], s));
}

void phase(struct gctx *x, const char *name)
{
	struct gphases *p = x->ph;
	if (!p)
		return;
	if (p->n == PHASE_MAX)
		die("gpu model: over %d phase marks before they were taken", PHASE_MAX);
	mark(p, p->n, x->s);
	p->name[p->n++] = name;
}

void phase_on(struct gctx *x, int on)
{
	if (on && !x->ph) {
		x->ph = (struct gphases *)xcalloc(1, sizeof *x->ph);
	} else if (!on && x->ph) {
		CUDA_CHECK(cudaStreamSynchronize(x->s));
		for (int i = 0; i <= PHASE_MAX; i++)
			if (x->ph->ev[i])
				CUDA_CHECK(cudaEventDestroy(x->ph->ev[i]));
		free(x->ph);
		x->ph = NULL;
	}
}

int phase_take(struct gctx *x, int max, const char **names, float *ms)
{
	struct gphases *p = x->ph;
	int n;
	if (!p)
		die("gpu model: phases taken without phase timing on");
	n = p->n;
	if (n > max)
		die("gpu model: %d phases, room for %d", n, max);
	mark(p, n, x->s);
	CUDA_CHECK(cudaEventSynchronize(p->ev[n]));
	for (int i = 0; i < n; i++) {
		names[i] = p->name[i];
		CUDA_CHECK(cudaEventElapsedTime(&ms[i], p->ev[i], p->ev[i + 1]));
	}
	p->n = 0;
	return n;
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
	int ab_f32;       /* A and B float32 too (mm32) */
	const void *Cm; float beta;
	const bf16 *bias;
	bf16 *aux; /* GELU_AUX(_BIAS): D = GELU(.), aux the GELU's input, ld m */
	const bf16 *daux; /* DGELU: D = product * GELU'(daux), ld m */
	float *bgradb;    /* BGRADB: bgradb[n] = sums over k of op(B), overwritten */
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
	e->k[5] = c->lda; e->k[6] = c->ldb; e->k[7] = c->ldd; e->k[8] = c->d_f32 | c->ab_f32 << 1;
	e->k[9] = (c->bias != NULL) | (c->aux != NULL) << 1 | (c->daux != NULL) << 2 |
	          (c->bgradb != NULL) << 3 | (long long)(align_of(c->bgradb) & 0xff) << 40 |
	          (long long)align_of(c->aux ? (const void *)c->aux : c->daux) << 8;
	e->k[10] = c->batch; e->k[11] = c->beta != 0;
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

/* 0 only when c->aux, daux or bgradb asks for an epilogue and cuBLASLt has no
 * algorithm for it (nothing was queued); otherwise 1 or dies. */
static int lt_run(struct gctx *x, const struct lt_call *c)
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
	if (c->bias || c->aux || c->daux || c->bgradb) {
		cublasLtEpilogue_t ep = c->bgradb ? CUBLASLT_EPILOGUE_BGRADB
		                        : c->daux ? CUBLASLT_EPILOGUE_DGELU
		                        : !c->aux ? CUBLASLT_EPILOGUE_BIAS
		                        : c->bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS
		                                  : CUBLASLT_EPILOGUE_GELU_AUX;
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep,
		                                          sizeof ep));
	}
	if (c->aux || c->daux) { /* the GELU input, D's type and layout; ld divisible by 8 */
		int64_t ald = c->m;
		const void *ap = c->aux ? (const void *)c->aux : (const void *)c->daux;
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,
		                                          &ap, sizeof ap));
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ald,
		                                          sizeof ald));
	}
	if (c->bgradb) { /* the bias gradient in float32, D's type */
		cudaDataType bt = CUDA_R_32F;
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
		                                          &c->bgradb, sizeof c->bgradb));
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
		                                          &bt, sizeof bt));
	}
	if (c->bias) {
		cudaDataType bt = CUDA_R_16BF;
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
		                                          &c->bias, sizeof c->bias));
		LT_CHECK(p_cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
		                                          &bt, sizeof bt));
	}
	cudaDataType abt = c->ab_f32 ? CUDA_R_32F : CUDA_R_16BF;
	size_t abz = c->ab_f32 ? 4 : sizeof(bf16);
	cublasLtMatrixLayout_t la = lt_layout(abt, c->ta ? c->k : c->m,
	                                      c->ta ? c->m : c->k, c->lda, batch, c->sA);
	cublasLtMatrixLayout_t lb = lt_layout(abt, c->tb ? c->n : c->k,
	                                      c->tb ? c->k : c->n, c->ldb, batch, c->sB);
	cublasLtMatrixLayout_t ld = lt_layout(dt, c->m, c->n, c->ldd, batch, c->sD);

	/* tell the heuristic the true alignments: the default assumes 256 */
	LT_CHECK(p_cublasLtMatmulPreferenceCreate(&pref));
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
	al = align_batch(c->A, c->sA, abz, batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
	al = align_batch(c->B, c->sB, abz, batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al));
	al = align_batch(Cm, c->sD, c->d_f32 ? 4 : 2, batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
	al = align_batch(c->D, c->sD, c->d_f32 ? 4 : 2, batch);
	LT_CHECK(p_cublasLtMatmulPreferenceSetAttribute(
		pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
	if (!algo_find(x, c, Cm, &heur.algo)) {
		int fused = c->aux || c->daux || c->bgradb;
		cublasStatus_t st = p_cublasLtMatmulAlgoGetHeuristic(x->lt, desc, la, lb, ld, ld, pref,
		                                                     1, &heur, &found);
		/* a fused epilogue this library or card does not offer may be
		 * refused outright (NOT_SUPPORTED) rather than with no algorithm:
		 * either way the caller does it the plain way */
		if (st != CUBLAS_STATUS_SUCCESS && !fused)
			LT_CHECK(st);
		if (st != CUBLAS_STATUS_SUCCESS)
			found = 0;
		if (found == 0 && fused) {
			LT_CHECK(p_cublasLtMatmulPreferenceDestroy(pref));
			LT_CHECK(p_cublasLtMatrixLayoutDestroy(la));
			LT_CHECK(p_cublasLtMatrixLayoutDestroy(lb));
			LT_CHECK(p_cublasLtMatrixLayoutDestroy(ld));
			LT_CHECK(p_cublasLtMatmulDescDestroy(desc));
			return 0;
		}
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
	return 1;
}

/* mm(), as internal.h says: the column-major call on the transposes. */
int mm(struct gctx *x, enum mm_kind kind, void *D, const bf16 *A, const bf16 *B, int M, int N,
        int K, const struct mm_opt *o)
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
	c.aux = o->gelu_pre;
	c.daux = o->dgelu_pre;
	c.bgradb = o->bgrad;
	c.batch = o->batch;
	if (c.aux && (kind != MM_NT || c.batch > 1 || c.d_f32 || c.Cm || N % 8))
		die("gpu model: the GELU epilogue is for one bf16 linear layer of width divisible by 8");
	if (c.daux && (c.aux || c.bias || c.batch > 1 || c.d_f32 || c.Cm || N % 8))
		die("gpu model: the DGELU epilogue is for one bf16 product of width divisible by 8");
	if (c.bgradb && (kind != MM_TN || c.aux || c.daux || c.bias || c.batch > 1 || !c.d_f32))
		die("gpu model: the BGRADB epilogue is for one float32 weight-gradient product");
	switch (kind) {
	case MM_NT: c.ta = 1; c.lda = K; c.tb = 0; c.ldb = K; break;
	case MM_NN: c.ta = 0; c.lda = N; c.tb = 0; c.ldb = K; break;
	case MM_TN: c.ta = 0; c.lda = N; c.tb = 1; c.ldb = M; break;
	}
	return lt_run(x, &c);
}

/* mm32(), as internal.h says: the column-major call on the transposes,
 * D^T = op(B)^T op(A)^T. */
void mm32(struct gctx *x, int ta, int tb, int M, int N, int K, const float *A, int lda,
          const float *B, int ldb, float beta, float *D, int ldd)
{
	struct lt_call c;
	memset(&c, 0, sizeof c);
	c.m = N;
	c.n = M;
	c.k = K;
	c.A = (const bf16 *)(const void *)B;
	c.ta = tb;
	c.lda = ldb;
	c.B = (const bf16 *)(const void *)A;
	c.tb = ta;
	c.ldb = lda;
	c.D = D;
	c.ldd = ldd;
	c.d_f32 = 1;
	c.ab_f32 = 1;
	c.beta = beta;
	lt_run(x, &c);
}
