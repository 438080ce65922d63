# Data-parallel gpt-train under Open MPI's mpirun (issue 16), CPU engine:
# 2 and 3 ranks (3 does not divide the step's 12 windows evenly) give the
# single process's losses within 1e-5 relative per step and identical
# weights on every rank; --zero 1 gives the same weights as without it;
# a job stopped by a signal resumes on 2 ranks bit for bit, on 1 rank
# within 1e-5, and with --zero 1; a rank killed with SIGKILL ends the job
# within 60 s without harm to its checkpoints; a stopped (hung) rank is
# caught by the watchdog; ranks with other settings or data are refused
# before anything is written; a build without MPI refuses a launch; and
# on the GPU emulator, the NCCL path (a stand-in NCCL over MPI).
. "$ROOT/tests/lib.sh"
if ! command -v mpirun >/dev/null 2>&1; then
	fail "mpirun not found (tests/install-deps.sh installs openmpi-bin)"
	exit 0
fi
tiny_shards
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# more ranks than this machine's cores, and no binding, in every mpirun
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
MPI="mpirun -np"
S="--layers 2 --heads 4 --width 64 --context 64 --batch 4 --total-batch 768 --threads 1 --device cpu --lr 3e-3"
D="-i $TR --val $VA"

# hash RUN: the weights' checksum a run printed at its end
hash() { sed -n 's/.*weights identical on [0-9]* ranks (xxh64 \([0-9a-f]*\)).*/\1/p' "$1"; }

check "1 process, 30 steps" gpt-train -q $D -o "$TMP/one" $S --steps 30 --val-every 10
for n in 2 3; do
	check "$n ranks, 30 steps" $MPI $n gpt-train $D -o "$TMP/r$n" $S --steps 30 --val-every 10
	cp "$TMP/.err" "$TMP/r$n.err"
	check_eq "$n ranks: 30 steps logged once" "$(wc -l <"$TMP/r$n/log.tsv" | tr -d ' ')" 32
	check "$n ranks: losses within 1e-5 of 1 process" within "$TMP/one/log.tsv" "$TMP/r$n/log.tsv" 1e-5
	check_grep "$n ranks: weights identical on every rank" "weights identical on $n ranks" "$TMP/r$n.err"
	check_grep "$n ranks: job and per-rank tokens/s" "tokens/s for the job, [0-9]+ per rank \\($n ranks\\)" "$TMP/r$n.err"
done
# 8 windows a step on 3 ranks: 2, 3 and 3, each micro-batch weighted by
# its rows
U=$(echo "$S" | sed 's/--total-batch 768/--total-batch 512/')
check "1 process, 8 windows a step" gpt-train -q $D -o "$TMP/u1" $U --steps 30 --val-every 10
check "3 ranks, 8 windows a step" $MPI 3 gpt-train $D -o "$TMP/u3" $U --steps 30 --val-every 10
check_grep "3 ranks: the uneven split is said" "each takes 2 or one more of the 8 windows" "$TMP/.err"
check "3 ranks, uneven: losses within 1e-5 of 1 process" within "$TMP/u1/log.tsv" "$TMP/u3/log.tsv" 1e-5
check "3 ranks, uneven, --zero 1: the same" $MPI 3 gpt-train -q $D -o "$TMP/u3z" $U --steps 30 \
	--val-every 10 --zero 1
check "  losses within 1e-5 of 1 process" within "$TMP/u1/log.tsv" "$TMP/u3z/log.tsv" 1e-5
check_eq "rank 0 alone prints: one 'done' line" "$(grep -c 'done at step 30' "$TMP/r2.err")" 1
check "a checkpoint of 2 ranks is a plain one: gpt-eval reads it" \
	gpt-eval --device cpu "$TMP/r2" --val "$VA"

check "--zero 1 on 2 ranks" $MPI 2 gpt-train $D -o "$TMP/z2" $S --steps 30 --val-every 10 --zero 1
cp "$TMP/.err" "$TMP/z2.err"
check_grep "--zero 1 says what each rank holds" "ZeRO-1: AdamW state" "$TMP/z2.err"
check_eq "--zero 1: the same weights as without it" "$(hash "$TMP/z2.err")" "$(hash "$TMP/r2.err")"
check "--zero 1: the same losses" within "$TMP/r2/log.tsv" "$TMP/z2/log.tsv" 0
check "--zero 1 on 3 ranks" $MPI 3 gpt-train -q $D -o "$TMP/z3" $S --steps 30 --val-every 10 --zero 1
check "--zero 1, 3 ranks: losses within 1e-5 of 1 process" within "$TMP/one/log.tsv" "$TMP/z3/log.tsv" 1e-5
gpt-train -q $D -o "$TMP/z1" $S --steps 30 --val-every 10 --zero 1 2>/dev/null
check "--zero 1 on one process: the plain run's losses bit for bit" \
	within "$TMP/one/log.tsv" "$TMP/z1/log.tsv" 0

# -- stop and resume ------------------------------------------------------
# rank_pid PID: the newest gpt-train rank of the mpirun that is PID or its
# child (under timeout), so that only this test's processes are signalled
rank_pid() {
	_m=$(pgrep -P "$1" -x mpirun)
	pgrep -n -P "${_m:-$1}" -x gpt-train
}
L="--steps 200 --val-every 50"
check "2 ranks, 200 steps straight" $MPI 2 gpt-train -q $D -o "$TMP/st" $L $S
# wait_log RUN N: until RUN/log.tsv has N lines (bounded)
wait_log() {
	i=0
	while [ "$(cat "$1/log.tsv" 2>/dev/null | wc -l)" -lt "$2" ] && [ $i -lt 600 ]; do
		sleep 0.05; i=$((i + 1))
	done
}
$MPI 2 gpt-train -q $D -o "$TMP/sg" $L $S 2>"$TMP/sg.err" &
p=$!
wait_log "$TMP/sg" 25
kill -USR1 $p   # mpirun forwards SIGUSR1 to every rank
wait $p
check_eq "SIGUSR1 to mpirun: the job exits 0" "$?" 0
stopped=$(tail -1 "$TMP/sg/log.tsv" | cut -f1)
check_grep "it saved and says how to go on" "stopped by signal at step $stopped; saved .*--resume" "$TMP/sg.err"
check_eq "one acknowledgement, from rank 0" "$(grep -c 'stopping after this step' "$TMP/sg.err")" 1
check_eq "both ranks stopped after the same step: one checkpoint" \
	"$(ls "$TMP/sg" | grep -c '^ckpt-')" 1
cp -r "$TMP/sg" "$TMP/sg1"
cp -r "$TMP/sg" "$TMP/sgz"
check "resume on 2 ranks" $MPI 2 gpt-train -q --resume "$TMP/sg"
check "resumed on 2 ranks: the straight run's losses bit for bit" within "$TMP/st/log.tsv" "$TMP/sg/log.tsv" 0
check "resume on 1 process" gpt-train -q --resume "$TMP/sg1"
check "resumed on 1 process: within 1e-5 of the straight run" within "$TMP/st/log.tsv" "$TMP/sg1/log.tsv" 1e-5
check "resume on 2 ranks with --zero 1" $MPI 2 gpt-train -q --resume "$TMP/sgz" --zero 1
check "resumed with --zero 1: bit for bit" within "$TMP/st/log.tsv" "$TMP/sgz/log.tsv" 0

# SIGTERM to one rank's process (what Slurm's scancel sends to every task)
$MPI 2 gpt-train -q $D -o "$TMP/tm" $L $S 2>"$TMP/tm.err" &
p=$!
wait_log "$TMP/tm" 25
kill -TERM "$(rank_pid $p)"
wait $p
check_eq "SIGTERM to one rank: the job exits 0" "$?" 0
check_grep "and every rank stopped after one saved step" "stopped by signal at step" "$TMP/tm.err"

# -- faults -----------------------------------------------------------------
timeout 120 $MPI 2 gpt-train -q -i "$TR" -o "$TMP/k" $S --steps 100000 --checkpoint-every 20 2>"$TMP/k.err" &
p=$!
wait_log "$TMP/k" 50
t0=$(date +%s)
kill -KILL "$(rank_pid $p)"
wait $p
rc=$?
el=$(( $(date +%s) - t0 ))
check "SIGKILL to one rank: the job exits non-zero" test "$rc" -ne 0
check "within 60 s" test "$el" -le 60
check "its checkpoints are intact: the run resumes" gpt-train -q --resume "$TMP/k" --steps 60

timeout 120 $MPI 2 gpt-train -q -i "$TR" -o "$TMP/h" $S --steps 100000 --dist-timeout 3 2>"$TMP/h.err" &
p=$!
wait_log "$TMP/h" 50
hung=$(rank_pid $p)
t0=$(date +%s)
kill -STOP "$hung"
wait $p
rc=$?
el=$(( $(date +%s) - t0 ))
kill -KILL "$hung" 2>/dev/null
check "a stopped rank: the job exits non-zero" test "$rc" -ne 0
check "within --dist-timeout and a little" test "$el" -le 30
check_grep "the watchdog names the wait" "waited more than 3 s for the other ranks" "$TMP/h.err"

# -- the GPU engine's path, on the emulator (tests/cudasim) --------------------
# The emulated gpt-train with the stand-in NCCL (tests/cudasim/nccl.cpp):
# the engine's device all-reduce, the communicator's id sent by MPI, one
# GPU per local rank, and --zero 1's host-side step pushed to the device.
G=$O/sim/allbin/gpt-train
if [ -x "$G" ]; then
	# two layers and two micro-batches a rank: the overlapped sums of the
	# last one's layers, and the others' gradients accumulated first
	C="--layers 2 --heads 2 --width 32 --context 32 --batch 2 --total-batch 256 --threads 1 --device cuda --steps 4 --lr 3e-3 --val-every 2 --val-batches 2"
	check "emulated gpu, 1 process" "$G" -q $D -o "$TMP/c1" $C
	check "emulated gpus, 2 ranks" $MPI 2 "$G" $D -o "$TMP/c2" $C
	cp "$TMP/.err" "$TMP/c2.err"
	check_grep "2 emulated gpus: the gradients go through NCCL" "gradients summed by NCCL on the gpus" "$TMP/c2.err"
	check_grep "2 emulated gpus: weights identical" "weights identical on 2 ranks" "$TMP/c2.err"
	check "2 emulated gpus: losses within 1e-5 of one" within "$TMP/c1/log.tsv" "$TMP/c2/log.tsv" 1e-5
	# every gradient is summed once whether the sums overlap the backward
	# (a bucket left out would leave the ranks' weights apart)
	check "2 emulated gpus, GPT_CUDA_OVERLAP=0" env GPT_CUDA_OVERLAP=0 $MPI 2 "$G" $D -o "$TMP/c4" $C
	check_eq "  the same weights as overlapped" "$(hash "$TMP/.err")" "$(hash "$TMP/c2.err")"
	check "2 emulated gpus, --zero 1" $MPI 2 "$G" -q $D -o "$TMP/c3" $C --zero 1
	check "--zero 1 on emulated gpus: losses within 1e-4" within "$TMP/c1/log.tsv" "$TMP/c3/log.tsv" 1e-4
	check "a run of 2 emulated gpus resumes on 2 cpu ranks" $MPI 2 gpt-train -q --resume "$TMP/c2" \
		--device cpu --steps 6
	check_eq "  and logs steps 5 and 6" "$(tail -1 "$TMP/c2/log.tsv" | cut -f1)" 6
	# make bench-gpu's scaling rows, on the emulator (what they print, not
	# how fast: the emulator's speed means nothing)
	mkdir -p "$TMP/bo/tests"
	ln -s "$O/sim/bench-gpu" "$TMP/bo/tests/bench-gpu"
	check "bench-gpu's scaling rows under mpirun" env O="$TMP/bo" BENCH_GPU_MODEL=1/2/64/256 \
		BENCH_GPU_T=32 BENCH_GPU_B=1 BENCH_GPU_TORCH_B= BENCH_GPU_STEPS=1 BENCH_GPU_PHASES_B= \
		BENCH_GPU_RECOMPUTE_B= BENCH_GPU_NO_TORCH=1 BENCH_GPU_RANKS="1 2" BENCH_GPU_SCALE_B=2 \
		BENCH_GPU_SCALE_STEPS=4 BENCH_GPU_TRAIN="$G" sh "$ROOT/tests/bench/bench-gpu.sh"
	check_grep "  one rank's tokens/s" '^scaling 1/2/64/256 B=2 T=32, 128 tokens a step: 1 rank\(s\) [0-9.]+ tok/s' "$TMP/.out"
	check_grep "  two ranks' against it" '2 rank\(s\) [0-9.]+ tok/s = [0-9.]+x one rank, [0-9]+% of linear' "$TMP/.out"
fi

# -- Slurm's srun, where this machine runs Slurm (sinfo answers) ----------------
if command -v srun >/dev/null 2>&1 && timeout 5 sinfo >/dev/null 2>&1; then
	check "srun --mpi=pmix, 2 tasks" timeout 120 srun -n 2 --mpi=pmix gpt-train -q $D -o "$TMP/sr" $S \
		--steps 30 --val-every 10
	check "srun: the losses of mpirun's 2 ranks bit for bit" within "$TMP/r2/log.tsv" "$TMP/sr/log.tsv" 0
	check_status 1 "srun without an MPI plugin is refused" timeout 60 srun -n 2 --mpi=none \
		gpt-train -q -i "$TR" -o "$TMP/sn" $S --steps 3
	check_grep "  saying to give --mpi=pmix" "without an MPI plugin.*--mpi=pmix" "$TMP/.err"
fi

# -- refusals -------------------------------------------------------------
check_status 1 "ranks with another --lr are refused" $MPI 1 gpt-train -q -i "$TR" -o "$TMP/m1" $S \
	--steps 5 --lr 1e-3 : -np 1 gpt-train -q -i "$TR" -o "$TMP/m1" $S --steps 5 --lr 2e-3
check_grep "naming the configuration" "rank 1 runs another configuration" "$TMP/.err"
check "before anything is written" test ! -e "$TMP/m1/log.tsv"
check_status 1 "ranks with other data are refused" $MPI 1 gpt-train -q -i "$TR" -o "$TMP/m2" $S \
	--steps 5 : -np 1 gpt-train -q -i "$VA" -o "$TMP/m2" $S --steps 5
check_grep "naming the data" "rank 1 reads other data" "$TMP/.err"
check_status 1 "weights that drift apart are caught" env GPT_TEST_DIST_PERTURB=1 \
	$MPI 2 gpt-train -q -i "$TR" -o "$TMP/m3" $S --steps 3
check_grep "naming the rank" "the weights of rank 1 differ from rank 0's" "$TMP/.err"
check_status 2 "a step too small to share is refused" $MPI 4 gpt-train -q -i "$TR" -o "$TMP/m4" \
	--layers 1 --heads 2 --width 32 --context 32 --batch 1 --device cpu --steps 2
check_grep "saying what total batch would do" "cannot be shared by 4 ranks" "$TMP/.err"

# dist.c built without MPI: one process as always, a launch of several refused
cat >"$TMP/nompi.c" <<'EOF'
#include <stdio.h>
#include "dist.h"
#include "err.h"
int main(int argc, char **argv)
{
	(void)argc;
	err_init(argv[0]);
	dist_init(10);
	printf("rank %d of %d\n", dist_rank(), dist_world());
	return 0;
}
EOF
if ${CC:-cc} -std=gnu11 -D_GNU_SOURCE -I"$ROOT/libcommon" -o "$TMP/gpt-nompi" "$TMP/nompi.c" \
	"$ROOT/libcommon/dist.c" "$ROOT/libcommon/err.c" 2>"$TMP/cc.err"; then
	check_eq "without MPI, alone: rank 0 of 1" "$("$TMP/gpt-nompi")" "rank 0 of 1"
	check_status 1 "without MPI, one of 2 ranks: refused" env OMPI_COMM_WORLD_SIZE=2 "$TMP/gpt-nompi"
	check_grep "saying it was built without MPI" "built without MPI but was started as one of 2 ranks" "$TMP/.err"
else
	fail "cannot build dist.c without MPI: $(head -c 300 "$TMP/cc.err")"
fi
