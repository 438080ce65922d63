/* dist: the ranks of a data-parallel job over MPI (dist.h).  Built with
 * GPT_MPI (the Makefile sets it where mpicc is found), the collectives are
 * MPI's; without it, every function is the single-process case and a
 * launch with more than one rank is refused. */
#include "dist.h"
#include "err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int d_on, d_rank, d_world = 1, d_lrank, d_lworld = 1;

/* The world size a launcher announces in the environment, 0 when none
 * does: Open MPI's mpirun, a PMI or PMIx launcher (MPICH's, srun
 * --mpi=pmi2/pmix), Slurm's own step variables. */
static long env_world(const char **who)
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE",
					    "SLURM_STEP_NUM_TASKS" };

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		char *end;
		long n;

		if (!v || !*v)
			continue;
		n = strtol(v, &end, 10);
		if (*end == '\0' && n > 0) {
			*who = vars[i];
			return n;
		}
	}
	return 0;
}

/* A launcher that starts ranks without a world size in the environment
 * (PMIx gives only the rank) still marks each process. */
static int env_launched(void)
{
	const char *who;

	return env_world(&who) > 0 || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
	       getenv("OMPI_COMM_WORLD_RANK");
}

int dist_on(void) { return d_on; }
int dist_rank(void) { return d_rank; }
int dist_world(void) { return d_world; }
int dist_local_rank(void) { return d_lrank; }
int dist_local_world(void) { return d_lworld; }

void dist_slice(size_t n, int r, size_t *off, size_t *cnt)
{
	size_t w = (size_t)d_world, lo, hi;

	/* floor(r n / w) without overflow for any n: n = q w + m */
	lo = (n / w) * (size_t)r + (n % w) * (size_t)r / w;
	hi = (n / w) * (size_t)(r + 1) + (n % w) * (size_t)(r + 1) / w;
	*off = lo;
	*cnt = hi - lo;
}

#ifndef GPT_MPI

void dist_init(double timeout_s)
{
	const char *who = "";
	long n = env_world(&who);

	(void)timeout_s;
	if (n > 1)
		die("this gpt-train was built without MPI but was started as one of %ld ranks "
		    "(%s); rebuild with Open MPI installed (libopenmpi-dev), or run it alone", n, who);
}

void dist_finalize(void) {}
int dist_built(void) { return 0; }
const char *dist_describe(void) { return "built without MPI"; }
void dist_sum_f64(double *x, int n) { (void)x; (void)n; }
void dist_sum_f32(float *x, size_t n) { (void)x; (void)n; }
void dist_reduce_scatter_f32(const float *x, size_t n, float *mine)
{
	memcpy(mine, x, n * sizeof *x);
}
void dist_allgather_f32(float *x, size_t n) { (void)x; (void)n; }
void dist_gather_f32(const float *mine, size_t n, float *all, int root)
{
	(void)root;
	if (all != mine)
		memcpy(all, mine, n * sizeof *all);
}
void dist_bcast(void *buf, size_t len, int root) { (void)buf; (void)len; (void)root; }
void dist_allgather_u64(uint64_t v, uint64_t *all) { all[0] = v; }
void dist_wait_begin(const char *what) { (void)what; }
void dist_wait_end(void) {}

#else

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static MPI_Comm d_comm = MPI_COMM_NULL;
static double d_timeout;
static char d_desc[96];
static atomic_llong busy_since;          /* ns of the collective under way, 0 none */
static const char *_Atomic busy_what;
static int *d_counts, *d_displs;          /* per rank, for the v-collectives */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The watchdog: a collective that does not finish in time means another
 * rank died, hangs or was stopped; exit, so the launcher ends the job. */
static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		long long b;

		usleep(200000);
		b = atomic_load(&busy_since);
		if (b && (double)(now_ns() - b) / 1e9 > d_timeout) {
			char msg[320];
			int n = snprintf(msg, sizeof msg,
					 "%s: rank %d of %d: %s has waited more than %g s for the other "
					 "ranks (one died, hangs or is stopped); exiting so that the "
					 "launcher stops the job\n",
					 prog_name, d_rank, d_world, atomic_load(&busy_what), d_timeout);

			if (n > 0 && write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
				n = 0;
			_exit(EXIT_FAIL);
		}
	}
	return NULL;
}

static void begin(const char *what)
{
	atomic_store(&busy_what, what);
	atomic_store(&busy_since, now_ns());
}

static void end(void)
{
	atomic_store(&busy_since, 0);
}

void dist_wait_begin(const char *what)
{
	if (d_on)
		begin(what);
}

void dist_wait_end(void)
{
	end();
}

static int to_int(size_t n, const char *what)
{
	if (n > (size_t)INT_MAX)
		die("%s of %zu items is beyond one MPI call (at most %d)", what, n, INT_MAX);
	return (int)n;
}

static void mpi_check(int rc, const char *what)
{
	char s[MPI_MAX_ERROR_STRING];
	int len = 0;

	if (rc == MPI_SUCCESS)
		return;
	MPI_Error_string(rc, s, &len);
	die("MPI %s failed: %s", what, s);
}

int dist_built(void) { return 1; }
const char *dist_describe(void) { return d_desc; }

void dist_init(double timeout_s)
{
	int provided, lib_len;
	char lib[MPI_MAX_LIBRARY_VERSION_STRING];
	const char *who = "";
	long env_n;
	MPI_Comm local;
	pthread_t th;

	if (!env_launched()) {
		snprintf(d_desc, sizeof d_desc, "not started by mpirun or srun");
		return;
	}
	env_n = env_world(&who);
	/* srun without an MPI plugin starts tasks MPI cannot join up */
	if (env_n > 1 && strcmp(who, "SLURM_STEP_NUM_TASKS") == 0 && !getenv("PMIX_RANK") &&
	    !getenv("PMI_RANK") && !getenv("OMPI_COMM_WORLD_RANK"))
		die("srun started %ld tasks without an MPI plugin, so they cannot form one job; "
		    "give srun --mpi=pmix (or pmi2)", env_n);
	mpi_check(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "initialisation");
	mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &d_comm), "communicator");
	MPI_Comm_rank(d_comm, &d_rank);
	MPI_Comm_size(d_comm, &d_world);
	if (env_n > 1 && d_world != env_n)
		die("the launcher started %ld ranks (%s) but MPI sees %d: this MPI is not the "
		    "launcher's (with srun, give --mpi=pmix or pmi2)", env_n, who, d_world);
	mpi_check(MPI_Comm_split_type(d_comm, MPI_COMM_TYPE_SHARED, d_rank, MPI_INFO_NULL, &local),
		  "split by machine");
	MPI_Comm_rank(local, &d_lrank);
	MPI_Comm_size(local, &d_lworld);
	MPI_Comm_free(&local);
	MPI_Get_library_version(lib, &lib_len);
	lib[strcspn(lib, ",\n")] = '\0';
	snprintf(d_desc, sizeof d_desc, "%.90s", lib);
	d_on = 1;
	d_counts = xmalloc(xmul((size_t)d_world, sizeof *d_counts));
	d_displs = xmalloc(xmul((size_t)d_world, sizeof *d_displs));
	d_timeout = timeout_s > 0 ? timeout_s : 300;
	if (pthread_create(&th, NULL, watchdog, NULL) != 0)
		die("cannot start the MPI watchdog thread");
	pthread_detach(th);
}

void dist_finalize(void)
{
	if (!d_on)
		return;
	begin("the end of the job");
	MPI_Comm_free(&d_comm);
	MPI_Finalize();
	end();
	d_on = 0;
	free(d_counts);
	free(d_displs);
}

/* counts and displacements of the ranks' slices of n items */
static void slices(size_t n, const char *what)
{
	for (int r = 0; r < d_world; r++) {
		size_t off, cnt;

		dist_slice(n, r, &off, &cnt);
		d_counts[r] = to_int(cnt, what);
		d_displs[r] = to_int(off, what);
	}
}

void dist_sum_f64(double *x, int n)
{
	double *all;

	if (!d_on || d_world == 1 || n <= 0)
		return;
	all = xmalloc(xmul(xmul((size_t)n, (size_t)d_world), sizeof *all));
	begin("a sum of the losses");
	mpi_check(MPI_Allgather(x, n, MPI_DOUBLE, all, n, MPI_DOUBLE, d_comm), "all-gather");
	end();
	for (int i = 0; i < n; i++) {
		double s = 0;

		for (int r = 0; r < d_world; r++)
			s += all[(size_t)r * (size_t)n + (size_t)i];
		x[i] = s;
	}
	free(all);
}

void dist_reduce_scatter_f32(const float *x, size_t n, float *mine)
{
	size_t off, cnt;

	dist_slice(n, d_rank, &off, &cnt);
	if (!d_on || d_world == 1) {
		memcpy(mine, x + off, cnt * sizeof *x);
		return;
	}
	slices(n, "a gradient reduce-scatter");
	begin("the gradient reduce-scatter");
	mpi_check(MPI_Reduce_scatter(x, mine, d_counts, MPI_FLOAT, MPI_SUM, d_comm),
		  "reduce-scatter");
	end();
}

void dist_allgather_f32(float *x, size_t n)
{
	if (!d_on || d_world == 1)
		return;
	slices(n, "a weight all-gather");
	begin("the all-gather");
	mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, x, d_counts, d_displs, MPI_FLOAT,
				 d_comm), "all-gather");
	end();
}

/* Big arrays go in chunks, so that no count nears INT_MAX and the
 * reduce-scatter's result fits a chunk-sized buffer. */
#define SUM_CHUNK ((size_t)1 << 26)

void dist_sum_f32(float *x, size_t n)
{
	float *mine;

	if (!d_on || d_world == 1 || n == 0)
		return;
	mine = xmalloc(xmul(((n < SUM_CHUNK ? n : SUM_CHUNK) + (size_t)d_world - 1) /
			    (size_t)d_world + 1, sizeof *mine));
	for (size_t at = 0; at < n; at += SUM_CHUNK) {
		size_t len = n - at < SUM_CHUNK ? n - at : SUM_CHUNK, off, cnt;

		dist_slice(len, d_rank, &off, &cnt);
		slices(len, "a gradient sum");
		begin("the gradient sum");
		mpi_check(MPI_Reduce_scatter(x + at, mine, d_counts, MPI_FLOAT, MPI_SUM, d_comm),
			  "reduce-scatter");
		memcpy(x + at + off, mine, cnt * sizeof *mine);
		mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, x + at, d_counts, d_displs,
					 MPI_FLOAT, d_comm), "all-gather");
		end();
	}
	free(mine);
}

void dist_gather_f32(const float *mine, size_t n, float *all, int root)
{
	size_t off, cnt;

	dist_slice(n, d_rank, &off, &cnt);
	if (!d_on || d_world == 1) {
		memcpy(all, mine, cnt * sizeof *mine);
		return;
	}
	slices(n, "a gather of the optimizer state");
	begin("the gather of the optimizer state");
	mpi_check(MPI_Gatherv(mine, (int)cnt, MPI_FLOAT, all, d_counts, d_displs, MPI_FLOAT, root,
			      d_comm), "gather");
	end();
}

void dist_bcast(void *buf, size_t len, int root)
{
	if (!d_on || d_world == 1)
		return;
	begin("a broadcast");
	mpi_check(MPI_Bcast(buf, to_int(len, "a broadcast"), MPI_BYTE, root, d_comm), "broadcast");
	end();
}

void dist_allgather_u64(uint64_t v, uint64_t *all)
{
	if (!d_on || d_world == 1) {
		all[0] = v;
		return;
	}
	begin("the start-up check");
	mpi_check(MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d_comm), "all-gather");
	end();
}

#endif
