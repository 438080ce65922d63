#!/bin/sh
# make bench-gpu: GPT-2 small (d12) training on the GPU, context 1024:
# tokens/s, step time, MFU against the card's dense bf16 peak and peak
# memory of the CUDA engine at micro-batches 8, 16 and 32 (attention by
# batched products, the engine's default, and by the flash kernel), one
# row with activation recomputation, and a PyTorch reference of the same
# model (bf16 autocast, SDPA, fused AdamW, torch.compile) on the same GPU
# in the same run, with the engine / PyTorch ratio for each batch.
# It fails, status 1 with the reason on stderr, where it cannot measure:
# no usable GPU, a build without nvcc, no PyTorch with CUDA for $PY, or a
# row that failed.  BENCH_GPU_OPTIONAL=1 turns "no GPU here" into a skip
# with status 0 (make bench sets it, so a CPU machine runs the rest);
# BENCH_GPU_NO_TORCH=1 accepts engine rows without the reference.
# BENCH_GPU_B (batches), BENCH_GPU_STEPS, BENCH_GPU_RECOMPUTE_B (the
# recompute row's batch; empty for none) and PEAK_TFLOPS (a card not in
# the engine's table) change the run.  A GPU session has minutes, and
# each torch.compile costs tens of seconds, so BENCH_GPU_TORCH_B names the
# batches that get a PyTorch row (default: every one), and
# BENCH_GPU_TORCH_COMPILE=0 measures PyTorch eager.  BENCH_GPU_PHASES_B
# (default 16; empty for none) is the batch whose step is timed phase by
# phase (bench-gpu phases) beside make gpu-model's prediction in
# cuda/gpu-model.tsv.  BENCH_GPU_MODEL and BENCH_GPU_T (default d12, 1024)
# take a small LAYERS/HEADS/WIDTH/VOCAB shape and context, which is how
# the emulator runs this script (tests/cuda/gpu-session.sh selftest); the
# PyTorch rows need a preset.
# Data-parallel scaling: on a machine with several GPUs (nvidia-smi -L),
# or with BENCH_GPU_RANKS="1 2 ..." given, gpt-train itself runs under
# "$BENCH_GPU_LAUNCH N" (default mpirun -np N) on random tokens, each rank
# at micro-batch BENCH_GPU_SCALE_B (default 16), the step the same
# largest-N x B x T tokens for every N, and the job's tokens/s is
# printed for each N with its speed-up over one rank and the share of
# linear (BENCH_GPU_SCALE_STEPS steps, default 12, the median of those
# after the first 2).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-$ROOT/build}
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
BS=${BENCH_GPU_B:-8 16 32}
TB=${BENCH_GPU_TORCH_B-$BS}
RB=${BENCH_GPU_RECOMPUTE_B-32}
PB=${BENCH_GPU_PHASES_B-16}
# batches name shell variables below (c_16), so they must be numbers
case "$BS $TB $RB $PB" in *[!0-9\ ]*)
	echo "bench-gpu: BENCH_GPU_B, _TORCH_B, _RECOMPUTE_B, _PHASES_B: not batch sizes: '$BS', '$TB', '$RB', '$PB'" >&2
	exit 2 ;;
esac
STEPS=${BENCH_GPU_STEPS:-20}
MODEL=${BENCH_GPU_MODEL:-d12}
T=${BENCH_GPU_T:-1024}
C_BIN=$O/tests/bench-gpu
TSV=$ROOT/cuda/gpu-model.tsv
TORCH_OPT=
[ "${BENCH_GPU_TORCH_COMPILE:-1}" = 0 ] && TORCH_OPT=--no-compile
case $MODEL in */*) TB= ;; esac # a shape bench_gpu_torch.py has no preset for

cannot() { # why
	if [ "${BENCH_GPU_OPTIONAL:-0}" = 1 ]; then
		echo "bench-gpu: $1: skipped"
		exit 0
	fi
	echo "bench-gpu: $1; this benchmark needs an NVIDIA GPU of compute capability 8.0 or newer and a build with nvcc" >&2
	exit 1
}

[ -x "$C_BIN" ] || cannot "$C_BIN not built (a CPU-only build: no nvcc)"
if ! probe=$("$C_BIN" probe 2>&1); then
	cannot "no usable GPU here ($(echo "$probe" | tail -1 | sed 's/^bench-gpu: \(no usable gpu: \)\{0,1\}//'))"
fi
echo "device: $(echo "$probe" | head -1)"
PEAK=$(echo "$probe" | awk '/^peak_tflops/ {print $2}')
have_torch=1
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
	have_torch=0
	if [ "${BENCH_GPU_NO_TORCH:-0}" != 1 ]; then
		echo "bench-gpu: PyTorch with CUDA is not importable by $PY, so there is no reference to compare with;" \
			"install it (pip install torch), point PY at a python that has it, or set BENCH_GPU_NO_TORCH=1" >&2
		exit 1
	fi
	echo "bench-gpu: PyTorch with CUDA not importable by $PY: engine rows only (BENCH_GPU_NO_TORCH=1)"
fi

field() { # the number before (tok/s) or after (peak) a word in a result line
	echo "$2" | awk -v w="$1" '{for (i = 2; i < NF; i++) {
		if (w == "tok/s" && $(i+1) == w) print $i; if (w == "peak" && $i == w) print $(i+1) }}'
}

failed=0
line=""
row() { # label command...: prints the result line into $line, or counts a failure
	_l=$1
	shift
	_out=$("$@" 2>&1)
	_rc=$?
	line=$(printf '%s\n' "$_out" | tail -1)
	if [ "$_rc" -ne 0 ] || [ -z "$(field tok/s "$line")" ]; then
		echo "bench-gpu: $_l failed (status $_rc): $line" >&2
		failed=$((failed + 1))
		line=""
		return 1
	fi
	echo "$line"
}

ratio() { # tokens/s of two result lines, "-" when one is missing
	if [ -n "$1" ] && [ -n "$2" ]; then
		awk -v a="$(field tok/s "$1")" -v b="$(field tok/s "$2")" 'BEGIN { printf "%.2fx", a / b }'
	else
		printf '%s' -
	fi
}

summary=""
add() { summary="$summary
$*"; }
flash_line=""
# The engine's rows and phases first, PyTorch's last: a session whose
# time runs out during a torch.compile keeps the engine's numbers.
for B in $BS; do
	row "engine B=$B" env GPT_CUDA_ATTENTION=matmul "$C_BIN" "$MODEL" "$B" "$T" "$STEPS"
	eval "c_$B=\$line"
	row "engine B=$B flash" env GPT_CUDA_ATTENTION=flash "$C_BIN" "$MODEL" "$B" "$T" "$STEPS"
	eval "f_$B=\$line"
	[ "$B" = "$RB" ] && flash_line=$line
done
if [ -n "$RB" ]; then
	row "engine B=$RB flash recompute" env GPT_CUDA_ATTENTION=flash "$C_BIN" "$MODEL" "$RB" "$T" \
		"$STEPS" recompute
	r=$line
	if [ -n "$r" ] && [ -n "$flash_line" ]; then
		add "$MODEL B=$RB T=$T flash: --recompute peak $(field peak "$r") GiB against" \
			"$(field peak "$flash_line") GiB without, at $(ratio "$r" "$flash_line") the tokens/s"
	fi
fi
# The phases of one step beside the model's prediction, for both paths
# (gpu-model.tsv predicts d12; another shape prints no prediction).
[ -f "$TSV" ] || TSV=
for B in $PB; do
	for att in matmul flash; do
		if ! env GPT_CUDA_ATTENTION=$att "$C_BIN" phases "$MODEL" "$B" "$T" "$STEPS" ${TSV:+"$TSV"} 2>&1; then
			echo "bench-gpu: phases $MODEL B=$B ($att attention) failed" >&2
			failed=$((failed + 1))
		fi
	done
done
# -- data-parallel scaling ------------------------------------------------------
NGPU=1
command -v nvidia-smi >/dev/null 2>&1 && NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU') &&
	[ "$NGPU" -ge 1 ] || NGPU=1
RANKS=${BENCH_GPU_RANKS-}
[ -z "${BENCH_GPU_RANKS+x}" ] && [ "$NGPU" -gt 1 ] && RANKS="1 $NGPU"
case "$RANKS" in *[!0-9\ ]*)
	echo "bench-gpu: BENCH_GPU_RANKS: not rank counts: '$RANKS'" >&2; exit 2 ;;
esac
if [ -n "$RANKS" ]; then
	TRAIN=${BENCH_GPU_TRAIN:-${BIN:-$ROOT/bin}/gpt-train}
	SHARD=${BENCH_GPU_SHARD:-$(dirname "$TRAIN")/gpt-shard}
	command -v "$SHARD" >/dev/null 2>&1 || SHARD=gpt-shard
	LAUNCH=${BENCH_GPU_LAUNCH:-mpirun -np}
	SB=${BENCH_GPU_SCALE_B:-16}
	SSTEPS=${BENCH_GPU_SCALE_STEPS:-12}
	NMAX=0
	for n in $RANKS; do [ "$n" -gt "$NMAX" ] && NMAX=$n; done
	case $MODEL in
	*/*) IFS=/ read -r l h w v <<-EOF
		$MODEL
		EOF
	     SHAPE="--layers $l --heads $h --width $w --vocab-size $v" V=$v ;;
	*) SHAPE="--model $MODEL" V=50257 ;;
	esac
	TOTAL=$((NMAX * SB * T))
	sd=$(mktemp -d "${TMPDIR:-/tmp}/bench-gpu-scale.XXXXXX")
	trap 'rm -rf "$sd"' EXIT
	# random ids, enough for every step and a little more
	awk -v n=$(( (SSTEPS + 1) * TOTAL + T + 1 )) -v v="$V" \
		'BEGIN { srand(1); for (i = 0; i < n; i++) print int(rand() * v) }' |
		"$SHARD" -q -f text -o "$sd/rand" --vocab-size "$V" --tokenizer random >/dev/null ||
		{ echo "bench-gpu: scaling: cannot make the random shards" >&2; failed=$((failed + 1)); RANKS=; }
	one=""
	for n in $RANKS; do
		rm -rf "$sd/run"
		# shellcheck disable=SC2086 # LAUNCH and SHAPE are words
		if ! $LAUNCH "$n" "$TRAIN" -q -i "$sd/rand-*" -o "$sd/run" $SHAPE --context "$T" \
			--batch "$SB" --total-batch "$TOTAL" --steps "$SSTEPS" --val-every 0 \
			--checkpoint-every 0 --device cuda >"$sd/log" 2>&1; then
			echo "bench-gpu: scaling: $n ranks failed: $(tail -3 "$sd/log")" >&2
			failed=$((failed + 1))
			continue
		fi
		tps=$(awk -F'\t' 'NR > 3 { print $7 }' "$sd/run/log.tsv" | sort -n |
			awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }')
		[ -n "$tps" ] || tps=$(awk -F'\t' 'NR > 1 { print $7 }' "$sd/run/log.tsv" | tail -1)
		[ "$n" = 1 ] && one=$tps
		if [ -n "$one" ]; then
			echo "scaling $MODEL B=$SB T=$T, $TOTAL tokens a step: $n rank(s) $tps tok/s" \
				"$(awk -v a="$tps" -v b="$one" -v n="$n" 'BEGIN { printf "= %.2fx one rank, %.0f%% of linear", a / b, 100 * a / b / n }')"
		else
			echo "scaling $MODEL B=$SB T=$T, $TOTAL tokens a step: $n rank(s) $tps tok/s"
		fi
		add "$MODEL data parallel: $n rank(s) $tps tok/s${one:+ ($(awk -v a="$tps" -v b="$one" 'BEGIN { printf "%.2fx", a / b }') one rank)}"
	done
fi

if [ "$have_torch" = 1 ]; then
	for B in $TB; do
		# shellcheck disable=SC2086 # TORCH_OPT is one option or none
		row "PyTorch B=$B" "$PY" "$ROOT/tests/bench/bench_gpu_torch.py" --model "$MODEL" --batch "$B" \
			--context "$T" --steps "$STEPS" --peak "$PEAK" $TORCH_OPT
		t=$line
		eval "c=\${c_$B:-} f=\${f_$B:-}"
		add "$MODEL B=$B T=$T: cuda engine / PyTorch = $(ratio "$c" "$t") (batched products)," \
			"$(ratio "$f" "$t") (flash)"
	done
fi
[ -n "$summary" ] && echo "$summary" | sed '/^$/d'
if [ "$failed" -gt 0 ]; then
	echo "bench-gpu: $failed run(s) failed, see above" >&2
	exit 1
fi
exit 0
