/* cublaslt: a stand-in libcublasLt.so.13 for cudasim, with the calls the
 * engine makes, written from the cuBLASLt documentation's definition:
 * column-major matrices, D = alpha op(A) op(B) + beta C (C not read when
 * beta is 0), then the epilogue (BIAS adds bias[row] to every column),
 * over strided batches.  Products run through OpenBLAS in float32 (bf16
 * inputs are exact in float32) and round once to D's type.  Layout mistakes are refused as the library would refuse
 * them, and every matrix is checked to lie inside device memory (through
 * gsim_check_range, exported by the test program). */
#include <cblas.h>
#include <cublasLt.h>
#include <math.h>
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

extern "C" void gsim_check_range(const void *p, size_t n, const char *what);
extern "C" void gsim_count_gemm(const char *name, double flops, double rd, double wr);

namespace {

struct desc {
	cublasComputeType_t compute;
	cudaDataType_t scale;
	cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
	cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_DEFAULT;
	const void *bias = nullptr;
	void *aux = nullptr; /* GELU_AUX: the GELU's input, D's type, ld aux_ld */
	int64_t aux_ld = 0;
	cudaDataType_t bias_type = CUDA_R_32F;
	int bias_type_set = 0;
};

struct layout {
	cudaDataType_t type;
	uint64_t rows, cols;
	int64_t ld;
	int32_t batch = 1;
	int64_t stride = 0;
};

int gelu_aux(const desc *x)
{
	return x->ep == CUBLASLT_EPILOGUE_GELU_AUX || x->ep == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}

int uses_aux(const desc *x) { return gelu_aux(x) || x->ep == CUBLASLT_EPILOGUE_DGELU; }

/* The documentation names no formula; GPT-2's tanh form is assumed (the
 * GPU run's comparison with the CPU engine checks it). */
float gelu(float v)
{
	return 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
}

float gelu_grad(float v)
{
	float t = tanhf(0.7978845608f * (v + 0.044715f * v * v * v));
	return 0.5f * (1.0f + t) +
	       0.5f * v * (1.0f - t * t) * 0.7978845608f * (1.0f + 3.0f * 0.044715f * v * v);
}

size_t type_size(cudaDataType_t t)
{
	return t == CUDA_R_32F ? 4 : t == CUDA_R_16BF ? 2 : 0;
}

double get(const void *p, cudaDataType_t t, size_t i)
{
	if (t == CUDA_R_32F)
		return ((const float *)p)[i];
	return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}

void put(void *p, cudaDataType_t t, size_t i, double v)
{
	if (t == CUDA_R_32F)
		((float *)p)[i] = (float)v;
	else
		((__nv_bfloat16 *)p)[i] = __float2bfloat16((float)v);
}

cublasStatus_t bad(const char *why)
{
	fprintf(stderr, "cublaslt (cudasim): %s\n", why);
	return CUBLAS_STATUS_INVALID_VALUE;
}

/* Bytes a layout's matrices span, from the first element of batch 0. */
size_t span(const layout *l)
{
	size_t one = ((l->cols - 1) * (size_t)l->ld + l->rows) * type_size(l->type);
	return one + (size_t)(l->batch - 1) * (size_t)l->stride * type_size(l->type);
}

/* One matrix of a batch, packed (leading dimension = rows), as float. */
void unpack(float *dst, const void *src, const layout *l, size_t off)
{
	for (uint64_t c = 0; c < l->cols; c++)
		for (uint64_t r = 0; r < l->rows; r++)
			dst[c * l->rows + r] = (float)get(src, l->type, off + r + c * (size_t)l->ld);
}

} // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
	*h = (cublasLtHandle_t)malloc(16);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
	free(h);
	return CUBLAS_STATUS_SUCCESS;
}

const char *cublasLtGetStatusString(cublasStatus_t s)
{
	return s == CUBLAS_STATUS_SUCCESS ? "success" : s == CUBLAS_STATUS_NOT_SUPPORTED ? "not supported" : "invalid value";
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c,
                                        cudaDataType_t s)
{
	desc *x = new desc();
	x->compute = c;
	x->scale = s;
	if (c != CUBLAS_COMPUTE_32F || s != CUDA_R_32F)
		return bad("only float32 compute and scale are modelled");
	*d = (cublasLtMatmulDesc_t)x;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
	delete (desc *)d;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t a, const void *buf,
                                              size_t n)
{
	desc *x = (desc *)d;
	switch (a) {
	case CUBLASLT_MATMUL_DESC_TRANSA:
		if (n != sizeof(int32_t)) return bad("TRANSA size");
		memcpy(&x->ta, buf, n);
		break;
	case CUBLASLT_MATMUL_DESC_TRANSB:
		if (n != sizeof(int32_t)) return bad("TRANSB size");
		memcpy(&x->tb, buf, n);
		break;
	case CUBLASLT_MATMUL_DESC_EPILOGUE:
		if (n != sizeof(uint32_t)) return bad("EPILOGUE size");
		memcpy(&x->ep, buf, n);
		if (x->ep != CUBLASLT_EPILOGUE_DEFAULT && x->ep != CUBLASLT_EPILOGUE_BIAS &&
		    x->ep != CUBLASLT_EPILOGUE_GELU_AUX && x->ep != CUBLASLT_EPILOGUE_GELU_AUX_BIAS &&
		    x->ep != CUBLASLT_EPILOGUE_DGELU && x->ep != CUBLASLT_EPILOGUE_BGRADB)
			return bad("epilogue not modelled");
		break;
	case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER:
		if (n != sizeof(void *)) return bad("EPILOGUE_AUX_POINTER size");
		memcpy(&x->aux, buf, n);
		break;
	case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD:
		if (n != sizeof(int64_t)) return bad("EPILOGUE_AUX_LD size");
		memcpy(&x->aux_ld, buf, n);
		break;
	case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
		if (n != sizeof(void *)) return bad("BIAS_POINTER size");
		memcpy(&x->bias, buf, n);
		break;
	case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
		if (n != sizeof(int32_t)) return bad("BIAS_DATA_TYPE size");
		memcpy(&x->bias_type, buf, n);
		x->bias_type_set = 1;
		break;
	default:
		return bad("matmul descriptor attribute not modelled");
	}
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows,
                                          uint64_t cols, int64_t ld)
{
	if (type_size(t) == 0)
		return bad("matrix type not modelled");
	if (rows == 0 || cols == 0 || ld < (int64_t)rows)
		return bad("layout: leading dimension below the row count");
	layout *x = new layout();
	x->type = t;
	x->rows = rows;
	x->cols = cols;
	x->ld = ld;
	*l = (cublasLtMatrixLayout_t)x;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
	delete (layout *)l;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t a, const void *buf,
                                                size_t n)
{
	layout *x = (layout *)l;
	switch (a) {
	case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
		if (n != sizeof(int32_t)) return bad("BATCH_COUNT size");
		memcpy(&x->batch, buf, n);
		if (x->batch < 1) return bad("batch count below 1");
		break;
	case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
		if (n != sizeof(int64_t)) return bad("STRIDED_BATCH_OFFSET size");
		memcpy(&x->stride, buf, n);
		break;
	default:
		return bad("layout attribute not modelled");
	}
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
	*p = (cublasLtMatmulPreference_t)malloc(16);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
	free(p);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *buf, size_t n)
{
	(void)p; (void)a; (void)buf; (void)n;
	return CUBLAS_STATUS_SUCCESS;
}

/* The shapes must fit together for an algorithm to exist. */
static cublasStatus_t check_shapes(const desc *x, const layout *A, const layout *B,
                                   const layout *C, const layout *D)
{
	uint64_t m = D->rows, n = D->cols;
	uint64_t am = x->ta == CUBLAS_OP_N ? A->rows : A->cols, ak = x->ta == CUBLAS_OP_N ? A->cols : A->rows;
	uint64_t bk = x->tb == CUBLAS_OP_N ? B->rows : B->cols, bn = x->tb == CUBLAS_OP_N ? B->cols : B->rows;
	if (am != m || bn != n || ak != bk)
		return bad("op(A) op(B) does not have D's shape");
	if (A->type != B->type || (A->type != CUDA_R_16BF && A->type != CUDA_R_32F))
		return bad("only bf16 or float32 A and B (both the same) are modelled");
	if (A->type == CUDA_R_32F && D->type != CUDA_R_32F)
		return bad("float32 A and B need a float32 D");
	if (C->type != D->type || C->rows != D->rows || C->cols != D->cols)
		return bad("C and D differ in type or shape");
	if (A->batch != D->batch || B->batch != D->batch || C->batch != D->batch)
		return bad("batch counts differ");
	int has_bias = x->ep == CUBLASLT_EPILOGUE_BIAS || x->ep == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
	if (has_bias && !x->bias)
		return bad("BIAS epilogue without a bias pointer");
	if (uses_aux(x) && !x->aux)
		return bad("GELU_AUX or DGELU epilogue without an aux pointer");
	/* the header: "Must be divisible by 8 and be no less than the number
	 * of rows in the output matrix" */
	if (uses_aux(x) && (x->aux_ld % 8 != 0 || x->aux_ld < (int64_t)D->rows))
		return bad("GELU aux leading dimension not divisible by 8 or under D's rows");
	if (uses_aux(x) && D->batch > 1)
		return bad("batched GELU epilogues are not modelled");
	if (x->ep == CUBLASLT_EPILOGUE_BGRADB && (!x->bias || D->batch > 1))
		return bad("BGRADB without a bias pointer, or batched");
	/* the bias gradient's type is D's unless set (the header: "the same
	 * type as the elements of output matrix") */
	if (x->ep == CUBLASLT_EPILOGUE_BGRADB && x->bias_type_set && x->bias_type != D->type)
		return bad("BGRADB bias type differs from D's");
	if (has_bias && x->bias_type_set && x->bias_type != D->type &&
	    !(D->type == CUDA_R_32F && x->bias_type == CUDA_R_16BF))
		return bad("bias type does not suit D's type");
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd,
                                              cublasLtMatmulPreference_t p, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *found)
{
	(void)h; (void)p;
	*found = 0;
	if (want < 1)
		return bad("asked for no algorithms");
	cublasStatus_t st = check_shapes((const desc *)d, (const layout *)a, (const layout *)b,
	                                 (const layout *)c, (const layout *)dd);
	if (st != CUBLAS_STATUS_SUCCESS)
		return CUBLAS_STATUS_NOT_SUPPORTED;
	/* GSIM_LT_PLAIN=1: a library without the fused epilogues (GELU, DGELU,
	 * BGRADB), refusing them as NOT_SUPPORTED, so the engine's fallbacks
	 * to its own kernels run under test */
	{
		const desc *x = (const desc *)d;
		const char *plain = getenv("GSIM_LT_PLAIN");
		if (plain && strcmp(plain, "0") != 0 && x->ep != CUBLASLT_EPILOGUE_DEFAULT &&
		    x->ep != CUBLASLT_EPILOGUE_BIAS)
			return CUBLAS_STATUS_NOT_SUPPORTED;
	}
	memset(res, 0, sizeof *res);
	res->state = CUBLAS_STATUS_SUCCESS;
	res->wavesCount = 1;
	*found = 1;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t dsc, const void *alpha,
                              const void *Ap, cublasLtMatrixLayout_t al, const void *Bp,
                              cublasLtMatrixLayout_t bl, const void *beta, const void *Cp,
                              cublasLtMatrixLayout_t cl, void *Dp, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t wsn,
                              cudaStream_t s)
{
	(void)h; (void)algo; (void)ws; (void)wsn; (void)s;
	const desc *x = (const desc *)dsc;
	const layout *A = (const layout *)al, *B = (const layout *)bl, *C = (const layout *)cl,
	             *D = (const layout *)dl;
	cublasStatus_t st = check_shapes(x, A, B, C, D);
	if (st != CUBLAS_STATUS_SUCCESS)
		return st;
	if (Cp == Dp && (C->ld != D->ld || C->stride != D->stride))
		return bad("in place with C's layout unlike D's");
	double a = *(const float *)alpha, bt = *(const float *)beta;
	gsim_check_range(Ap, span(A), "cublasLtMatmul A");
	gsim_check_range(Bp, span(B), "cublasLtMatmul B");
	gsim_check_range(Dp, span(D), "cublasLtMatmul D");
	if (bt != 0)
		gsim_check_range(Cp, span(C), "cublasLtMatmul C");
	cudaDataType_t btype = x->bias_type_set ? x->bias_type : D->type;
	int has_bias = x->ep == CUBLASLT_EPILOGUE_BIAS || x->ep == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
	if (has_bias)
		gsim_check_range(x->bias, D->rows * type_size(btype), "cublasLtMatmul bias");
	if (x->ep == CUBLASLT_EPILOGUE_BGRADB)
		gsim_check_range(x->bias, D->cols * type_size(D->type), "cublasLtMatmul BGRADB bias");
	if (uses_aux(x))
		gsim_check_range(x->aux, ((size_t)x->aux_ld * (D->cols - 1) + D->rows) * type_size(D->type),
		                 "cublasLtMatmul GELU aux");
	int64_t m = (int64_t)D->rows, n = (int64_t)D->cols, k = (int64_t)(x->ta == CUBLAS_OP_N ? A->cols : A->rows);
	{ /* the work, for make gpu-model (count.h) */
		double nb = (double)D->batch, ab = (double)(A->rows * A->cols * type_size(A->type)),
		       bb = (double)(B->rows * B->cols * type_size(B->type)),
		       cb = bt != 0 ? (double)(C->rows * C->cols * type_size(C->type)) : 0,
		       db = (double)(D->rows * D->cols * type_size(D->type)),
		       biasb = has_bias ? (double)(D->rows * type_size(btype)) : 0,
		       auxr = x->ep == CUBLASLT_EPILOGUE_DGELU ? db : 0,
		       bgw = x->ep == CUBLASLT_EPILOGUE_BGRADB ? (double)(D->cols * type_size(D->type)) : 0;
		char name[56];
		snprintf(name, sizeof name, "gemm %lldx%lldx%lld%s", (long long)m, (long long)n,
		         (long long)k, D->batch > 1 ? " batched" : "");
		/* a batch's shared operand (stride 0) is read once */
		gsim_count_gemm(name, 2.0 * (double)m * (double)n * (double)k * nb,
		                ab * (A->stride ? nb : 1) + bb * (B->stride ? nb : 1) + cb * nb + biasb + auxr,
		                db * nb * (gelu_aux(x) ? 2 : 1) + bgw);
	}
	std::vector<float> af(A->rows * A->cols), bf(B->rows * B->cols), prod((size_t)(m * n));
	for (int32_t bi = 0; bi < D->batch; bi++) {
		size_t oa = (size_t)bi * A->stride, ob = (size_t)bi * B->stride,
		       oc = (size_t)bi * C->stride, od = (size_t)bi * D->stride;
		unpack(af.data(), Ap, A, oa);
		unpack(bf.data(), Bp, B, ob);
		if (x->ep == CUBLASLT_EPILOGUE_BGRADB) /* sums of op(B) over k, per column of D */
			for (int64_t j = 0; j < n; j++) {
				double sum = 0;
				for (int64_t kk = 0; kk < k; kk++)
					sum += bf[x->tb == CUBLAS_OP_N ? (size_t)(kk + j * (int64_t)B->rows)
					                               : (size_t)(j + kk * (int64_t)B->rows)];
				put((void *)x->bias, D->type, (size_t)j, sum);
			}
		/* float32 products with float32 accumulation, as the tensor cores */
		cblas_sgemm(CblasColMajor, x->ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
		            x->tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, (int)m, (int)n, (int)k,
		            1.0f, af.data(), (int)A->rows, bf.data(), (int)B->rows, 0.0f, prod.data(),
		            (int)m);
		for (int64_t j = 0; j < n; j++)
			for (int64_t i = 0; i < m; i++) {
				float v = (float)a * prod[(size_t)(i + j * m)];
				if (bt != 0)
					v += (float)bt * (float)get(Cp, C->type, oc + (size_t)(i + j * C->ld));
				if (has_bias)
					v += (float)get(x->bias, btype, (size_t)i);
				if (gelu_aux(x)) {
					put(x->aux, D->type, (size_t)(i + j * x->aux_ld), v);
					v = gelu(v);
				} else if (x->ep == CUBLASLT_EPILOGUE_DGELU) {
					v *= gelu_grad((float)get(x->aux, D->type, (size_t)(i + j * x->aux_ld)));
				}
				put(Dp, D->type, od + (size_t)(i + j * D->ld), v);
			}
	}
	return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
