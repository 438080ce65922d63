#!/bin/sh
# make bench-bpe: gpt-bpe against Hugging Face tokenizers' ByteLevelBPE
# trainer, both learning a 32,768-token vocabulary from the same corpus in
# one run: the tokenizer benchmarks' real text, none of it repeated
# (tests/bench/tok_corpus.py: English prose, web pages, C headers, the
# translated messages of 19 languages; over 50 MB), so the trainers meet
# the hundreds of thousands of distinct words such text has.  Prints wall
# time, CPU seconds and peak memory (/usr/bin/time -v) of each and the
# ratios; the load average before and after.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-bpe
have_peer=1
bench_peers bench-bpe tokenizers || have_peer=0
SIZE=${BPE_BENCH_SIZE:-32768}
OUT=$ROOT/build/bench
mkdir -p "$OUT"
export SHARED
bench_corpus bench-bpe
CORPUS=$OUT/tok-corpus.txt

echo "bench-bpe: vocabulary $SIZE tokens; $(nproc) CPUs"

# "seconds peakMB cpu-seconds" of a command, from /usr/bin/time -v (the
# machine may be shared: CPU seconds, user + system, say more than wall time)
measure() {
	/usr/bin/time -v "$@" >/dev/null 2>"$OUT/bpe-time.txt" || {
		cat "$OUT/bpe-time.txt" >&2; exit 1; }
	awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0;
			for (i = 1; i <= n; i++) s = s * 60 + t[i] }
		/Maximum resident set size/ { m = $2 / 1024 }
		/(User|System) time \(seconds\)/ { c += $2 }
		END { printf "%.2f %.0f %.2f\n", s, m, c }' "$OUT/bpe-time.txt"
}

set -- $(measure "${BIN:-$ROOT/bin}/gpt-bpe" -v "$SIZE" -o "$OUT/bpe-bench.tiktoken" "$CORPUS")
ours_s=$1 ours_m=$2 ours_c=$3
grep '^gpt-bpe:' "$OUT/bpe-time.txt" || true
echo "gpt-bpe (1 thread)        : ${ours_s} s wall, ${ours_c} s CPU, peak ${ours_m} MB"

[ "$have_peer" = 1 ] || exit 0
cat >"$OUT/bpe-hf.py" <<'PY'
import sys
from tokenizers import ByteLevelBPETokenizer
tok = ByteLevelBPETokenizer()
tok.train([sys.argv[1]], vocab_size=int(sys.argv[2]), min_frequency=1,
          special_tokens=["<|endoftext|>"], show_progress=False)
PY
set -- $(measure "$PY" "$OUT/bpe-hf.py" "$CORPUS" "$SIZE")
hf_s=$1 hf_m=$2 hf_c=$3
set -- $(measure env RAYON_NUM_THREADS=1 "$PY" "$OUT/bpe-hf.py" "$CORPUS" "$SIZE")
hf1_s=$1 hf1_m=$2 hf1_c=$3
echo "tokenizers ($(nproc) threads)     : ${hf_s} s wall, ${hf_c} s CPU, peak ${hf_m} MB"
echo "tokenizers (1 thread)      : ${hf1_s} s wall, ${hf1_c} s CPU, peak ${hf1_m} MB"
awk -v o="$ours_s" -v oc="$ours_c" -v om="$ours_m" -v h="$hf_s" -v hm="$hf_m" -v h1="$hf1_s" -v hc="$hf1_c" 'BEGIN {
	printf "speed-up gpt-bpe vs tokenizers, wall: %.2fx (all threads), %.2fx (1 thread)\n", h / o, h1 / o
	printf "speed-up gpt-bpe vs tokenizers, CPU seconds (1 thread each): %.2fx\n", hc / oc
	printf "peak memory gpt-bpe / tokenizers: %.2f\n", om / hm }'
bench_machine bench-bpe
