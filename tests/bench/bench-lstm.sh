#!/bin/sh
# make bench-lstm: training tokens/s of the CPU LSTM (libcommon's lstm.c,
# Adam, clip 5, state carried between windows) against PyTorch's nn.LSTM
# on the CPU, same shape, batch, optimizer and thread count, in the same
# run, for two shapes: char-rnn's 3x512 at B100 T100 and a small 2x256.
# Each side runs 3 times, alternating, and the best is kept (the machine
# is shared).  Also prints tokens per CPU-second (user + system time of
# all threads), which a busy machine disturbs less than the wall clock.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-lstm
THREADS=${THREADS:-$(nproc)}
OUT=$ROOT/build/bench
mkdir -p "$OUT"
cc -std=gnu11 -O2 -fopenmp -I"$ROOT/libcommon" -o "$OUT/lstm_cpu" \
	"$ROOT/tests/bench/lstm_cpu.c" "$ROOT/build/libcommon.a" -lopenblas -lm
export OMP_NUM_THREADS="$THREADS"

have_torch=1
bench_peers bench-lstm torch || have_torch=0
[ "$have_torch" = 1 ] || echo "bench-lstm: C side only"

best() { # keep the larger of $1 and $2
	awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'
}

field() { # the figure called $1 in file $2
	awk -v k="$1" '$1 == k {print $2}' "$2"
}

run_shape() { # name V E H L T B STEPS
	name=$1; shift
	c_best=0 c_cpu=0 t_best=0 t_cpu=0
	for _ in 1 2 3; do
		"$OUT/lstm_cpu" "$@" >"$OUT/lstm-c.txt" 2>/dev/null
		c_best=$(best "$(field tokens_per_s "$OUT/lstm-c.txt")" "$c_best")
		c_cpu=$(best "$(field cpu_tokens_per_s "$OUT/lstm-c.txt")" "$c_cpu")
		if [ "$have_torch" = 1 ]; then
			"$PY" "$ROOT/tests/bench/lstm_cpu.py" "$@" "$THREADS" >"$OUT/lstm-t.txt" 2>/dev/null
			t_best=$(best "$(field tokens_per_s "$OUT/lstm-t.txt")" "$t_best")
			t_cpu=$(best "$(field cpu_tokens_per_s "$OUT/lstm-t.txt")" "$t_cpu")
		fi
	done
	if [ "$have_torch" = 1 ]; then
		printf '%-26s C %7.1f tok/s   PyTorch %7.1f tok/s   ratio %sx   per CPU-s: C %7.1f   PyTorch %7.1f   ratio %sx\n' \
			"$name" "$c_best" "$t_best" \
			"$(awk -v c="$c_best" -v t="$t_best" 'BEGIN { printf "%.2f", c / t }')" \
			"$c_cpu" "$t_cpu" \
			"$(awk -v c="$c_cpu" -v t="$t_cpu" 'BEGIN { printf "%.2f", c / t }')"
	else
		printf '%-26s C %7.1f tok/s   per CPU-s: C %7.1f\n' "$name" "$c_best" "$c_cpu"
	fi
}

echo "machine: $(nproc) cores, $THREADS threads"
#         name                        V   E   H   L T   B   steps
run_shape "char-rnn 3x512 B100 T100"  257 512 512 3 100 100 1
run_shape "2x256 E64 B32 T64"         257 64  256 2 64  32  5
