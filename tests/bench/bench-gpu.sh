#!/bin/sh
# make bench-gpu: GPT-2 small (d12) training on the GPU, context 1024,
# micro-batches 8, 16 and 32: tokens/s, step time, MFU against the card's
# dense bf16 peak and peak memory, for the CUDA engine and for a PyTorch
# reference of the same model (bf16 autocast, SDPA, fused AdamW,
# torch.compile) on the same GPU in the same run, and their ratio.
# Without a GPU (or a CPU-only build) it says so and exits 0, so that
# `make bench` still runs elsewhere.  BENCH_GPU_B, BENCH_GPU_STEPS and
# PEAK_TFLOPS (for a card not in the engine's table) change the run; the
# engine runs twice per batch, attention by batched products and flash;
# BENCH_GPU_RECOMPUTE=1 adds engine runs with activation recomputation.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-$ROOT/build}
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
BS=${BENCH_GPU_B:-8 16 32}
STEPS=${BENCH_GPU_STEPS:-20}
T=1024
C_BIN=$O/tests/bench-gpu

if [ ! -x "$C_BIN" ]; then
	echo "bench-gpu: $C_BIN not built (a CPU-only build, no nvcc): skipped"
	exit 0
fi
if ! probe=$("$C_BIN" probe); then
	echo "bench-gpu: no usable GPU here: skipped"
	exit 0
fi
echo "device: $(echo "$probe" | head -1)"
PEAK=$(echo "$probe" | awk '/^peak_tflops/ {print $2}')
have_torch=1
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null ||
	have_torch=0
[ "$have_torch" = 1 ] || echo "bench-gpu: PyTorch with CUDA not importable by $PY: engine only"

tps() { # the tok/s figure of a result line
	echo "$1" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "tok/s") print $i}'
}

summary=""
for B in $BS; do
	c=$(GPT_CUDA_ATTENTION=matmul "$C_BIN" d12 "$B" "$T" "$STEPS" 2>&1 | tail -1)
	echo "$c"
	f=$(GPT_CUDA_ATTENTION=flash "$C_BIN" d12 "$B" "$T" "$STEPS" 2>&1 | tail -1)
	echo "$f"
	if [ "${BENCH_GPU_RECOMPUTE:-0}" = 1 ]; then
		GPT_CUDA_ATTENTION=flash "$C_BIN" d12 "$B" "$T" "$STEPS" recompute 2>&1 | tail -1
	fi
	if [ "$have_torch" = 1 ]; then
		t=$("$PY" "$ROOT/tests/bench/bench_gpu_torch.py" --batch "$B" --context "$T" \
			--steps "$STEPS" --peak "$PEAK" 2>&1 | tail -1)
		echo "$t"
		ct=$(tps "$c") ft=$(tps "$f") tt=$(tps "$t")
		if [ -n "$ct" ] && [ -n "$tt" ]; then
			r=$(awk -v a="$ct" -v b="$tt" 'BEGIN { printf "%.2f", a / b }')
			rf=$(awk -v a="${ft:-0}" -v b="$tt" 'BEGIN { printf "%.2f", a / b }')
			summary="$summary
d12 B=$B T=$T: cuda engine / PyTorch = ${r}x (batched products), ${rf}x (flash)"
		else
			summary="$summary
d12 B=$B T=$T: no ratio (a side failed, see above)"
		fi
	fi
done
[ -n "$summary" ] && echo "$summary" | sed '/^$/d'
exit 0
