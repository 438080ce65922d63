/* A stand-in libnccl.so.2 for the CPU emulator (tests/cudasim), as
 * cublaslt.cpp stands in for cuBLASLt: the handful of NCCL calls the
 * engine makes (cuda/nccl.cu), with the emulator's "device" memory being
 * host memory, so that an emulated data-parallel gpt-train under mpirun
 * runs the engine's NCCL path on a machine without GPUs.  The sum over
 * ranks is MPI's all-reduce on MPI_COMM_WORLD (the trainer has
 * initialised MPI); only float32 sums, which is all the engine asks.
 * The emulator's binaries find it first by their RPATH. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef GPT_MPI
#define OMPI_SKIP_MPICXX 1   /* the C API only, from C++ */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

extern "C" {

typedef struct stand_comm {
	int n, rank;
} *ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;
typedef int ncclResult_t;
enum { OK = 0, INTERNAL = 3, INVALID_ARGUMENT = 4, INVALID_USAGE = 5 };

ncclResult_t ncclGetVersion(int *v)
{
	*v = 22800;
	return OK;
}

const char *ncclGetErrorString(ncclResult_t r)
{
	switch (r) {
	case OK: return "no error";
	case INVALID_ARGUMENT: return "invalid argument (stand-in: float32 sums only)";
	case INVALID_USAGE: return "invalid usage (stand-in: several ranks need MPI)";
	default: return "internal error (stand-in)";
	}
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
	memset(id, 0, sizeof *id);
	snprintf(id->internal, sizeof id->internal, "cudasim-nccl %ld", (long)getpid());
	return OK;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int n, ncclUniqueId id, int rank)
{
	int on = 0;

	if (strncmp(id.internal, "cudasim-nccl ", 13) != 0 || n < 1 || rank < 0 || rank >= n)
		return INVALID_ARGUMENT;
#ifdef GPT_MPI
	MPI_Initialized(&on);
	if (on) {
		int w;

		MPI_Comm_size(MPI_COMM_WORLD, &w);
		if (w != n)
			return INVALID_USAGE;
	}
#endif
	if (n > 1 && !on)
		return INVALID_USAGE;
	*comm = (ncclComm_t)calloc(1, sizeof **comm);
	if (!*comm)
		return INTERNAL;
	(*comm)->n = n;
	(*comm)->rank = rank;
	return OK;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, int type, int op,
                           ncclComm_t comm, void *stream)
{
	(void)stream;
	if (type != 7 || op != 0)
		return INVALID_ARGUMENT;
	if (send != recv)
		memmove(recv, send, count * sizeof(float));
	if (comm->n == 1)
		return OK;
#ifdef GPT_MPI
	for (size_t at = 0; at < count; at += (size_t)INT_MAX / 2) {
		size_t len = count - at < (size_t)INT_MAX / 2 ? count - at : (size_t)INT_MAX / 2;

		if (MPI_Allreduce(MPI_IN_PLACE, (float *)recv + at, (int)len, MPI_FLOAT, MPI_SUM,
		                  MPI_COMM_WORLD) != MPI_SUCCESS)
			return INTERNAL;
	}
	return OK;
#else
	return INVALID_USAGE;
#endif
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *e)
{
	(void)comm;
	*e = OK;
	return OK;
}

ncclResult_t ncclCommAbort(ncclComm_t comm)
{
	free(comm);
	return OK;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
	free(comm);
	return OK;
}

}
