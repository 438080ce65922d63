/* nccl: the GPU engine's gradient all-reduce over NCCL, loaded at run time
 * (dlopen, as cuBLASLt is) so that the programs start where NCCL is not
 * installed; the few declarations NCCL's API needs are written here, from
 * its documented ABI (nccl.h, stable across 2.x), so the build needs no
 * NCCL headers either.
 *
 * Faults: a communicator is created blocking (the trainer bounds the wait
 * with its MPI watchdog, dist.h); an all-reduce is queued on the model's
 * stream and waited for by polling, so that a rank that died or hangs is
 * noticed within the timeout: the communicator is aborted
 * (ncclCommAbort) and this rank dies, which makes the launcher stop the
 * job. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include "err.h"
}
#include "gpt_cuda.h"
#include "internal.h"

/* NCCL's ABI (nccl.h). */
typedef struct nccl_comm *ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;
typedef int ncclResult_t;
enum { NCCL_SUCCESS = 0, NCCL_IN_PROGRESS = 7, NCCL_FLOAT32 = 7, NCCL_SUM = 0 };

static ncclResult_t (*p_get_version)(int *);
static ncclResult_t (*p_get_unique_id)(ncclUniqueId *);
static ncclResult_t (*p_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
static ncclResult_t (*p_all_reduce)(const void *, void *, size_t, int, int, ncclComm_t,
                                    cudaStream_t);
static ncclResult_t (*p_async_error)(ncclComm_t, ncclResult_t *);
static ncclResult_t (*p_abort)(ncclComm_t);
static ncclResult_t (*p_destroy)(ncclComm_t);
static const char *(*p_error_string)(ncclResult_t);

static void *lib;
static int nccl_version;

static const char *nccl_err(ncclResult_t r)
{
	return p_error_string ? p_error_string(r) : "unknown error";
}

extern "C" int gcuda_nccl_load(char *why, size_t cap)
{
	static const char *names[] = {
		"libnccl.so.2", GCUDA_LIBDIR "/libnccl.so.2", GCUDA_LIBDIR "/../lib/libnccl.so.2",
		"libnccl.so",
	};
	if (lib)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
		lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, cap, "cannot load libnccl.so.2 (install NCCL, e.g. pip's "
		         "nvidia-nccl-cu13, and add its lib folder to LD_LIBRARY_PATH)");
		return -1;
	}
#define NCCL_SYM(p, name) \
	if (!(*(void **)&p = dlsym(lib, name))) { \
		snprintf(why, cap, "libnccl lacks %s", name); \
		dlclose(lib); lib = NULL; return -1; }
	NCCL_SYM(p_get_version, "ncclGetVersion");
	NCCL_SYM(p_get_unique_id, "ncclGetUniqueId");
	NCCL_SYM(p_init_rank, "ncclCommInitRank");
	NCCL_SYM(p_all_reduce, "ncclAllReduce");
	NCCL_SYM(p_async_error, "ncclCommGetAsyncError");
	NCCL_SYM(p_abort, "ncclCommAbort");
	NCCL_SYM(p_destroy, "ncclCommDestroy");
	NCCL_SYM(p_error_string, "ncclGetErrorString");
#undef NCCL_SYM
	if (p_get_version(&nccl_version) != NCCL_SUCCESS || nccl_version < 21200) {
		snprintf(why, cap, "libnccl is version %d; 2.12 or newer is needed", nccl_version);
		dlclose(lib);
		lib = NULL;
		return -1;
	}
	return 0;
}

extern "C" void gcuda_nccl_id(void *id)
{
	ncclUniqueId u;
	ncclResult_t r = p_get_unique_id(&u);

	if (r != NCCL_SUCCESS)
		die("NCCL cannot make a communicator id: %s", nccl_err(r));
	memcpy(id, &u, sizeof u);
}

struct gcuda_comm {
	ncclComm_t c;
	int rank, world;
	double timeout;
};

extern "C" struct gcuda_comm *gcuda_comm_open(const void *id, int rank, int world,
                                              double timeout_s, char *why, size_t cap)
{
	ncclUniqueId u;
	ncclComm_t c = NULL;
	ncclResult_t r;
	struct gcuda_comm *k;

	if (!lib && gcuda_nccl_load(why, cap) != 0)
		return NULL;
	memcpy(&u, id, sizeof u);
	r = p_init_rank(&c, world, u, rank);
	if (r != NCCL_SUCCESS) {
		snprintf(why, cap, "NCCL cannot join rank %d of %d: %s", rank, world, nccl_err(r));
		return NULL;
	}
	k = (struct gcuda_comm *)xcalloc(1, sizeof *k);
	k->c = c;
	k->rank = rank;
	k->world = world;
	k->timeout = timeout_s > 0 ? timeout_s : 300;
	return k;
}

extern "C" void gcuda_comm_close(struct gcuda_comm *k)
{
	if (!k)
		return;
	p_destroy(k->c);
	free(k);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void gcuda_comm_enqueue(struct gcuda_comm *k, float *buf, size_t n, cudaStream_t s)
{
	ncclResult_t r = p_all_reduce(buf, buf, n, NCCL_FLOAT32, NCCL_SUM, k->c, s);

	if (r != NCCL_SUCCESS && r != NCCL_IN_PROGRESS) {
		p_abort(k->c);
		die("NCCL all-reduce of the gradients failed: %s", nccl_err(r));
	}
}

void gcuda_comm_wait(struct gcuda_comm *k, cudaStream_t s)
{
	ncclResult_t st;
	double t0 = now_s();

	for (unsigned spin = 0;; spin++) {
		cudaError_t q = cudaStreamQuery(s);

		if (q == cudaSuccess)
			break;
		if (q != cudaErrorNotReady)
			die("the gradient all-reduce failed on the gpu: %s", cudaGetErrorString(q));
		if (p_async_error(k->c, &st) == NCCL_SUCCESS && st != NCCL_SUCCESS &&
		    st != NCCL_IN_PROGRESS) {
			p_abort(k->c);
			die("NCCL failed during the gradient all-reduce (another rank died?): %s",
			    nccl_err(st));
		}
		if (now_s() - t0 > k->timeout) {
			p_abort(k->c);
			die("rank %d of %d: the gradient all-reduce has waited more than %g s for the "
			    "other ranks (one died, hangs or is stopped); aborted the NCCL communicator",
			    k->rank, k->world, k->timeout);
		}
		if (spin > 1000)
			usleep(50);
	}
}

void gcuda_comm_allreduce(struct gcuda_comm *k, float *buf, size_t n, cudaStream_t s)
{
	gcuda_comm_enqueue(k, buf, n, s);
	gcuda_comm_wait(k, s);
}

extern "C" int gcuda_nccl_version(void)
{
	return nccl_version;
}
