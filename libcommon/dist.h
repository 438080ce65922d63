/* dist: the processes of one data-parallel job, over MPI.
 *
 * A job is started by a launcher (mpirun, Slurm's srun) that runs one
 * process per rank; dist_init finds out from the launcher's environment
 * whether it was started that way and only then initialises MPI, so a
 * plain `gpt-train` never touches MPI (and a build without MPI runs
 * single-process, refusing a launch with more than one rank).
 *
 *   dist_init(timeout_s)
 *       join the job: rank, world size, the rank on this machine and the
 *       ranks on this machine (MPI_COMM_TYPE_SHARED); 0, 1, 0, 1 when not
 *       launched.  timeout_s bounds every collective (below).
 *   dist_rank(), dist_world(), dist_local_rank(), dist_local_world()
 *   dist_on()            MPI is in use (a launcher started this process)
 *   dist_describe()      "Open MPI v4.1.4" or why there is no MPI
 *   dist_finalize()      leave the job (MPI_Finalize); a no-op when off
 *
 * Collectives, every rank calling them in the same order; with one rank
 * they copy or do nothing.  Results are the same bits on every rank:
 * sums of float arrays are a reduce-scatter (each slice summed once, by
 * one rank) followed by an all-gather, never an all-reduce whose
 * algorithm may sum in a different order on different ranks.
 *   dist_sum_f64(x, n)              x[0..n) summed over ranks, in place
 *   dist_sum_f32(x, n)              the same for a float array (gradients)
 *   dist_reduce_scatter_f32(x, n, mine)
 *       x[0..n) summed over ranks; this rank's slice (dist_slice) into
 *       mine
 *   dist_allgather_f32(x, n)        each rank's slice of x to every rank
 *   dist_gather_f32(mine, n, all, root)
 *       each rank's slice (dist_slice) of an n-float array, from mine,
 *       into all[0..n) on root (all may be NULL elsewhere): for a
 *       checkpoint of sharded optimizer state
 *   dist_bcast(buf, len, root)
 *   dist_allgather_u64(v, all)      all[r] = rank r's v
 *   dist_sum_f64 on a few values (a loss, a flag) gathers them and sums
 *   in rank order, so it is the same bits on every rank as well.
 *   dist_slice(n, r, &off, &cnt)    rank r's part of n items: contiguous,
 *                                   sizes differing by at most one
 *
 * Faults: a collective that has not finished timeout_s seconds after it
 * began (a rank died, hangs, or is stuck on a slow disk) makes this rank
 * print one line and exit 1, which makes the launcher stop the job: a
 * lost rank never leaves the others waiting forever.  A rank that exits
 * (die) makes the launcher stop the others as well.  dist_wait_begin
 * and dist_wait_end put the same bound on a wait of the caller's. */
#ifndef GPT_DIST_H
#define GPT_DIST_H

#include <stddef.h>
#include <stdint.h>

void dist_init(double timeout_s);
void dist_finalize(void);
int dist_on(void);
int dist_rank(void);
int dist_world(void);
int dist_local_rank(void);
int dist_local_world(void);
const char *dist_describe(void);
/* Whether this build has MPI. */
int dist_built(void);

void dist_slice(size_t n, int r, size_t *off, size_t *cnt);
void dist_sum_f64(double *x, int n);
void dist_sum_f32(float *x, size_t n);
void dist_reduce_scatter_f32(const float *x, size_t n, float *mine);
void dist_allgather_f32(float *x, size_t n);
void dist_gather_f32(const float *mine, size_t n, float *all, int root);
void dist_bcast(void *buf, size_t len, int root);
void dist_allgather_u64(uint64_t v, uint64_t *all);
/* Bracket a wait on the other ranks that is not one of these (joining
 * an NCCL communicator): the watchdog bounds it as it bounds them. */
void dist_wait_begin(const char *what);
void dist_wait_end(void);

#endif
