#!/bin/sh
# Builds the parquet/thrift fuzz target with libFuzzer, ASan and UBSan, and
# runs it on a copy of the corpus seeded with ../shared/data/parquet.
#   tests/fuzz/build.sh             build build/fuzz/fuzz_parquet
#   tests/fuzz/build.sh run SECS    build, then fuzz for SECS seconds (one core)
# Crashing inputs found go to tests/fuzz/crashes/ (committed as regression
# inputs; tests/cli/fetch.sh feeds each of them to gpt-fetch).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
OUT=$ROOT/build/fuzz
mkdir -p "$OUT/corpus" "$ROOT/tests/fuzz/crashes"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -I"$ROOT/libcommon" -o "$OUT/fuzz_parquet" \
	"$ROOT/tests/fuzz/fuzz_parquet.c" "$ROOT/libcommon/parquet.c" \
	"$ROOT/libcommon/thrift.c" "$ROOT/libcommon/err.c" \
	-lsnappy -lz -lzstd -lbrotlidec -llz4
[ "${1:-}" = run ] || exit 0
secs=${2:-600}
cp -n "$SHARED"/data/parquet/data/*.parquet "$SHARED"/data/parquet/bad_data/*.parquet \
	"$OUT/corpus/" 2>/dev/null || true
cd "$OUT"
exec nice -n 19 ./fuzz_parquet -max_total_time="$secs" -max_len=65536 -timeout=10 \
	-rss_limit_mb=1024 -malloc_limit_mb=512 -print_final_stats=1 \
	-artifact_prefix="$ROOT/tests/fuzz/crashes/" corpus
