#!/bin/sh
# make bench-train-cpu: training tokens/s of the CPU engine (libcommon
# model + AdamW) against PyTorch on the CPU, same model shape, batch,
# optimizer and thread count, in the same run, for two shapes: a tiny
# model with the GPT-2 vocabulary (the head dominates) and 4 layers of
# width 256 at context 256.  Each side runs 3 times, alternating, and the
# best is kept (the machine is shared).  Also prints the model GFLOP/s
# as a fraction of this machine's measured sgemm GFLOP/s.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-train-cpu
THREADS=${THREADS:-$(nproc)}
OUT=$ROOT/build/bench
mkdir -p "$OUT"
cc -std=gnu11 -O2 -fopenmp -I"$ROOT/libcommon" -o "$OUT/train_cpu" \
	"$ROOT/tests/bench/train_cpu.c" "$ROOT/build/libcommon.a" -lopenblas -lm
export OMP_NUM_THREADS=$THREADS

have_torch=1
bench_peers bench-train-cpu torch || have_torch=0
[ "$have_torch" = 1 ] || echo "bench-train-cpu: C side only"

sgemm_best() { # best of the runs so far: a busy machine only ever slows it
	g=$("$OUT/train_cpu" sgemm 1024 | awk '{print $2}')
	sgemm=$(best "$g" "${sgemm:-0}")
}

best() { # keep the larger of $1 and $2
	awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'
}

run_shape() { # name L H C T B V STEPS
	name=$1; shift
	c_best=0 t_best=0 gf_best=0
	for round in 1 2 3; do
		"$OUT/train_cpu" "$@" >"$OUT/c.txt" 2>/dev/null
		tps=$(awk '/tokens_per_s/ {print $2}' "$OUT/c.txt")
		gf=$(awk '/model_gflops/ {print $2}' "$OUT/c.txt")
		[ "$(best "$tps" "$c_best")" = "$tps" ] && gf_best=$gf
		c_best=$(best "$tps" "$c_best")
		if [ "$have_torch" = 1 ]; then
			tps=$("$PY" "$ROOT/tests/bench/train_cpu.py" "$@" "$THREADS" 2>/dev/null |
				awk '/tokens_per_s/ {print $2}')
			t_best=$(best "$tps" "$t_best")
		fi
	done
	frac=$(awk -v g="$gf_best" -v s="$sgemm" 'BEGIN { printf "%.0f%%", 100 * g / s }')
	if [ "$have_torch" = 1 ]; then
		ratio=$(awk -v c="$c_best" -v t="$t_best" 'BEGIN { printf "%.2f", c / t }')
		printf '%-28s C %8.1f tok/s   PyTorch %8.1f tok/s   ratio %sx   C at %s GFLOP/s = %s of sgemm\n' \
			"$name" "$c_best" "$t_best" "$ratio" "$gf_best" "$frac"
	else
		printf '%-28s C %8.1f tok/s   C at %s GFLOP/s = %s of sgemm\n' \
			"$name" "$c_best" "$gf_best" "$frac"
	fi
}

sgemm_best
sgemm_best
sgemm_best
echo "machine: $(nproc) cores, $THREADS threads, sgemm ${sgemm} GFLOP/s (1024^3 single precision, OpenBLAS split as the model splits it, best of 21)"
#         name                        L H C   T   B V     steps
run_shape "tiny 2x64 ctx64 B8 V50257"  2 4 64  64  8 50257 6
run_shape "4x256 ctx256 B4 V50257"     4 4 256 256 4 50257 3
