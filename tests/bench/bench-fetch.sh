#!/bin/sh
# make bench-fetch: text MB/s pulled out of a FineWeb-shaped parquet file
# (pyarrow-written, snappy, dictionary on, 1000 rows per row group, >= 200
# MB, made here once and kept in build/bench), by gpt-fetch and by pyarrow
# (read_table(columns=['text']) and the strings written out NUL-ended), one
# thread each, same file, same run.  Best of 3 each, alternating.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-fetch
bench_peers bench-fetch pyarrow || exit 0
BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/build/bench
mkdir -p "$OUT"
FILE=$OUT/fetch-fineweb.parquet
export OMP_NUM_THREADS=1 ARROW_NUM_THREADS=1 SHARED
if [ ! -s "$FILE" ]; then
	echo "bench-fetch: writing $FILE (once)" >&2
	"$PY" - "$ROOT/tests" "$OUT/fetch-corpus.txt" "$FILE" <<'PYEOF'
import glob, gzip, json, os, sys
sys.path.insert(0, sys.argv[1])
from fetch_ref import cmd_fineweb
shared = os.environ["SHARED"]
parts = []
for f in sorted(glob.glob(os.path.join(shared, "data", "text", "*.txt"))):
    parts.append(open(f, "rb").read())
for f in sorted(glob.glob(os.path.join(shared, "data", "web", "*.gz"))):
    for l in gzip.open(f, "rt", encoding="utf-8"):
        parts.append(json.loads(l)["text"].encode() + b"\n\n")
open(sys.argv[2], "wb").write(b"".join(parts))
# about 3 KB a document: 95,000 documents make a file over 200 MB
cmd_fineweb(sys.argv[3], 95000, 1, ["corpus=" + sys.argv[2], "meanlog=7.7"])
PYEOF
fi
size=$(wc -c <"$FILE")
[ "$size" -ge 200000000 ] || { echo "bench-fetch: $FILE is only $size bytes" >&2; exit 1; }
exec "$PY" - "$BIN/gpt-fetch" "$FILE" <<'PYEOF'
import os, resource, subprocess, sys, time
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
gf, path = sys.argv[1], sys.argv[2]
pa.set_cpu_count(1)
pa.set_io_thread_count(1)

def run_pyarrow():
    t0, c0 = time.perf_counter(), time.process_time()
    col = pq.read_table(path, columns=["text"], use_threads=False).column(0)
    n = 0
    with open(os.devnull, "wb") as w:
        for chunk in col.chunks:
            chunk = pc.drop_null(chunk)
            if len(chunk) == 0:
                continue
            joined = pc.binary_join(pa.ListArray.from_arrays([0, len(chunk)], chunk), "\0")
            b = joined[0].as_buffer()
            w.write(b)
            w.write(b"\0")
            n += b.size + 1 - len(chunk)
    return time.perf_counter() - t0, time.process_time() - c0, n

def run_pyarrow_read_only():
    c0 = time.process_time()
    pq.read_table(path, columns=["text"], use_threads=False)
    return time.process_time() - c0

def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def run_fetch(out):
    t0, c0 = time.perf_counter(), child_cpu()
    subprocess.run([gf, "-q", path], stdout=out, check=True)
    return time.perf_counter() - t0, child_cpu() - c0

# Same text from both, checked once.
p = subprocess.run([gf, "-q", path], stdout=subprocess.PIPE, check=True)
nbytes = len(p.stdout) - p.stdout.count(b"\0")
del p
best = {"py": [1e9, 1e9], "gf": [1e9, 1e9]}
for _ in range(3):
    wall, cpu, n = run_pyarrow()
    assert n == nbytes, (n, nbytes)
    best["py"] = [min(best["py"][0], wall), min(best["py"][1], cpu)]
    with open(os.devnull, "wb") as w:
        wall, cpu = run_fetch(w)
    best["gf"] = [min(best["gf"][0], wall), min(best["gf"][1], cpu)]
read_only = min(run_pyarrow_read_only() for _ in range(2))
mb = nbytes / 1e6
print("file %.0f MB, text %.0f MB; best of 3; MB/s by wall clock and by CPU time" %
      (os.path.getsize(path) / 1e6, mb))
print("gpt-fetch  %8.1f MB/s wall (%.2f s)  %8.1f MB/s CPU (%.2f s)" %
      (mb / best["gf"][0], best["gf"][0], mb / best["gf"][1], best["gf"][1]))
print("pyarrow    %8.1f MB/s wall (%.2f s)  %8.1f MB/s CPU (%.2f s)  "
      "[read_table(columns=['text'], use_threads=False) + NUL-joined write]" %
      (mb / best["py"][0], best["py"][0], mb / best["py"][1], best["py"][1]))
print("pyarrow read_table alone, no output: %.1f MB/s CPU (%.2f s)" % (mb / read_only, read_only))
print("ratio      %8.2f x pyarrow (wall)        %8.2f x pyarrow (CPU)" %
      (best["py"][0] / best["gf"][0], best["py"][1] / best["gf"][1]))
PYEOF
