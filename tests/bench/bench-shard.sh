#!/bin/sh
# make bench-shard: gpt-shard against plain zstd on the same raw u16 bytes
# (200M GPT-2 tokens of English prose, the tokenized corpus repeated), at
# the same level, in one run.  Prints write and read tokens/s of each,
# the ratios, the compression ratio against raw u16 (llm.c's .bin), and
# the library reader's tokens/s for shuffled training windows, against
# the 50M tokens/s (50 GPUs at 1M tokens/s) one core should sustain.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
export GPT_VOCAB=${GPT_VOCAB:-$SHARED/data/gpt2} GPT_OFFLINE=1
BIN=$ROOT/bin
TOKENS=${BENCH_SHARD_TOKENS:-200000000}
LEVEL=${BENCH_SHARD_LEVEL:-3}
OUT=$ROOT/build/bench/shard
rm -rf "$OUT"
mkdir -p "$OUT"
trap 'rm -rf "$OUT"' EXIT

# On a shared machine wall time mostly measures the neighbours, so
# single-threaded figures are tokens per CPU second of the process
# (user + system); only the two-thread lines use wall time.
now() { date +%s.%N; }
rate() { "$PY" -c "import sys; print('%.1f' % ($1 / ($3 - $2) / 1e6))"; }
ratio() { "$PY" -c "print('%.2f' % ($1 / $2))"; }
cpu() { # cpu OUTFILE CMD... : run CMD >OUTFILE, print its CPU seconds
	_o=$1; shift
	/usr/bin/time -f "%U %S" -o "$OUT/.time" "$@" >"$_o"
	awk '{ print $1 + $2 }' "$OUT/.time"
}
per_cpu() { "$PY" -c "print('%.1f' % ($1 / max($2, 0.01) / 1e6))"; }

# The corpus: every text and LAMBADA passage as a document, tokenized once.
"$PY" - "$SHARED" "$OUT/docs" <<'PY'
import glob, json, sys
shared, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as f:
    for p in sorted(glob.glob(shared + "/data/text/*.txt")):
        f.write(open(p, "rb").read() + b"\0")
    for l in open(shared + "/data/eval/lambada_test.jsonl", encoding="utf-8"):
        f.write(json.loads(l)["text"].encode() + b"\0")
PY
"$BIN/gpt-tokenize" -z -f u16 "$OUT/docs" >"$OUT/unique.u16"
uniq=$(($(wc -c <"$OUT/unique.u16") / 2))
"$PY" - "$OUT/unique.u16" "$OUT/raw.u16" "$TOKENS" <<'PY'
import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = open(src, "rb").read()
with open(dst, "wb") as f:
    left = 2 * n
    while left:
        k = min(left, len(b))
        f.write(b[:k])
        left -= k
PY
echo "corpus: $uniq unique tokens, repeated to $TOKENS tokens ($(($(wc -c <"$OUT/raw.u16") >> 20)) MiB raw u16), zstd level $LEVEL"

# Writing.  The repeats lie within plain zstd's 2 MiB window, which makes
# it look faster and smaller than on fresh text; with its window cut to
# one of our frames (128 KiB) it cannot reach them, as on real data.
c1=$(cpu /dev/null "$BIN/gpt-shard" -q -f u16 --level "$LEVEL" -o "$OUT/s" --val-tokens 0 "$OUT/raw.u16")
c2=$(cpu "$OUT/raw.zst" zstd -q -T1 -"$LEVEL" -c "$OUT/raw.u16")
c3=$(cpu "$OUT/w17.zst" zstd -q -T1 -"$LEVEL" --zstd=wlog=17 -c "$OUT/raw.u16")
ws=$(per_cpu "$TOKENS" "$c1")
wz=$(per_cpu "$TOKENS" "$c2")
ww=$(per_cpu "$TOKENS" "$c3")
echo "write, per CPU second: gpt-shard $ws M tokens/s, zstd -$LEVEL $wz M tokens/s, ratio $(ratio "$ws" "$wz")"
echo "  zstd -$LEVEL with a 128 KiB window (no repeats in reach): $ww M tokens/s, ratio $(ratio "$ws" "$ww")"
t0=$(now)
"$BIN/gpt-shard" -q -f u16 --level "$LEVEL" -o "$OUT/j" --val-tokens 0 "$OUT/raw.u16"
t1=$(now)
rm -f "$OUT"/j-*
"$BIN/gpt-shard" -q -f u16 --level "$LEVEL" -j 2 -o "$OUT/j" --val-tokens 0 "$OUT/raw.u16"
t2=$(now)
rm -f "$OUT"/j-*
echo "write, wall clock: gpt-shard $(rate "$TOKENS" "$t0" "$t1") M tokens/s, -j 2 $(rate "$TOKENS" "$t1" "$t2") M tokens/s (load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs)"

# Reading everything back in order.
c1=$(cpu /dev/null "$BIN/gpt-shard" cat -f u16 "$OUT"/s-train-*)
c2=$(cpu /dev/null zstd -q -dc "$OUT/raw.zst")
c3=$(cpu /dev/null zstd -q -dc "$OUT/w17.zst")
"$BIN/gpt-shard" cat -f u16 "$OUT"/s-train-* | cmp - "$OUT/raw.u16" ||
	{ echo "bench-shard: cat gave other tokens" >&2; exit 1; }
rs=$(per_cpu "$TOKENS" "$c1")
rz=$(per_cpu "$TOKENS" "$c2")
rw=$(per_cpu "$TOKENS" "$c3")
echo "read in order, per CPU second (every checksum): gpt-shard cat $rs M tokens/s, zstd -dc $rz M tokens/s, ratio $(ratio "$rs" "$rz")"
echo "  zstd -dc of the 128 KiB-window stream: $rw M tokens/s, ratio $(ratio "$rs" "$rw")"

# Compression against raw u16.
raw=$((TOKENS * 2))
sb=$(cat "$OUT"/s-train-* | wc -c)
zb=$(wc -c <"$OUT/raw.zst")
wb=$(wc -c <"$OUT/w17.zst")
"$BIN/gpt-shard" -q -f u16 --level "$LEVEL" -o "$OUT/u" --val-tokens 0 "$OUT/unique.u16"
usb=$(cat "$OUT"/u-train-* | wc -c)
uzb=$(zstd -q -T1 -"$LEVEL" -c "$OUT/unique.u16" | wc -c)
"$PY" - "$raw" "$sb" "$zb" "$((uniq * 2))" "$usb" "$uzb" "$wb" <<'PY'
import sys
raw, sb, zb, uraw, usb, uzb, wb = map(int, sys.argv[1:])
print("size against raw u16: gpt-shard %.3f (%d MiB), zstd %.3f (%d MiB), zstd with a 128 KiB window %.3f"
      % (raw / sb, sb >> 20, raw / zb, zb >> 20, raw / wb))
print("  on the unique corpus (no repeats for zstd's window to find): gpt-shard %.3f, zstd %.3f"
      % (uraw / usb, uraw / uzb))
PY

# The library reader as gpt-train uses it: shuffled windows of 1024 + 1.
cat >"$OUT/reader.c" <<'C'
#include "shard.h"
#include "err.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char **argv)
{
	struct shards *s;
	uint32_t ids[1025];
	uint64_t k, n, sum = 0;
	double t0, t1;	/* CPU seconds of this process */
	int shuffle;

	err_init(argv[0]);
	if (argc < 3)
		return 2;
	shuffle = atoi(argv[2]);
	s = shards_open(argv[1]);
	shards_iter_init(s, 1024, 1, shuffle, 0, 1);
	n = shards_windows(s);
	t0 = now();
	for (k = 0; k < n; k++) {
		shards_next(s, ids);
		sum += ids[k % 1025];
	}
	t1 = now();
	printf("%.1f %llu\n", (double)n * 1024 / (t1 - t0) / 1e6, (unsigned long long)sum);
	shards_close(s);
	return 0;
}
C
cc -O2 -I"$ROOT/libcommon" -o "$OUT/reader" "$OUT/reader.c" "$ROOT/build/libcommon.a" \
	-lzstd -lxxhash -lcurl -larchive -lsnappy -lz -lbrotlidec -llz4 -lopenblas -lm -fopenmp -pthread
shuf=$("$OUT/reader" "$OUT/s-train-*" 1 | cut -d' ' -f1)
seq=$("$OUT/reader" "$OUT/s-train-*" 0 | cut -d' ' -f1)
echo "reader, windows of 1024+1 over one epoch, per CPU second: shuffled $shuf M tokens/s, in order $seq M tokens/s; target 50, shuffled reaches $(ratio "$shuf" 50)x it"
