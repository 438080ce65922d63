#!/bin/sh
# make bench-tokenize: gpt-tokenize against tiktoken's encode_ordinary on
# the same corpus in the same run: real text, none of it repeated (English
# prose, web pages, C headers, the translated messages of 19 languages;
# tests/bench/tok_corpus.py), over 50 MB, and on its English prose part.
#
# Single-thread figures are MB per CPU-second (user + system: getrusage of
# the gpt-tokenize child, process_time of the Python process running
# tiktoken), the two interleaved over TOK_BENCH_ROUNDS rounds (default 5),
# best and median of each printed; the load average is printed before and
# after. The -j 2 scaling is wall-clock (the point of threads), the best
# -j 2 round against the best -j 1 round. The ids of both encoders are
# compared, and -j 2's with -j 1's, before any figure is printed.  Last,
# the corpus's lines split by script (mostly ASCII, 2-byte, 3-byte), each
# part against tiktoken: where the ratio comes from.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-tokenize
have_peer=1
bench_peers bench-tokenize tiktoken || have_peer=0
[ -x "${PY:-}" ] || PY=python3
export SHARED
bench_corpus bench-tokenize
export GPT_VOCAB=${GPT_VOCAB:-$SHARED/data/gpt2} BIN=${BIN:-$ROOT/bin} HAVE_PEER=$have_peer
"$PY" - "$ROOT" "$ROOT/build/bench" <<'PY'
import array, os, statistics, subprocess, sys, time
root, out = sys.argv[1], sys.argv[2]
rounds = int(os.environ.get("TOK_BENCH_ROUNDS", "5"))
tok = os.path.join(os.environ["BIN"], "gpt-tokenize")
files = {"mixed": os.path.join(out, "tok-corpus.txt"), "prose": os.path.join(out, "tok-prose.txt")}
text = {k: open(f, "rb").read() for k, f in files.items()}

def ours(name, *opts, stdout=subprocess.DEVNULL):
    """(wall s, CPU s) of one gpt-tokenize run over a corpus file"""
    with open(files[name], "rb") as f:
        s = time.perf_counter()
        p = subprocess.Popen([tok, "-f", "u32", "-q", *opts], stdin=f, stdout=stdout)
        _, st, ru = os.wait4(p.pid, 0)
        w = time.perf_counter() - s
    if st != 0:
        sys.exit("gpt-tokenize failed on %s" % files[name])
    return w, ru.ru_utime + ru.ru_stime

def ids_of(name, *opts):
    r = subprocess.run([tok, "-f", "u32", "-q", *opts], stdin=open(files[name], "rb"),
                       stdout=subprocess.PIPE, check=True)
    return r.stdout

enc = None
if os.environ.get("HAVE_PEER") == "1":
    sys.path.insert(0, os.path.join(root, "tests"))
    import tiktoken_ref
    enc = tiktoken_ref.gpt2()
    dec = {k: v.decode("utf-8") for k, v in text.items()}

# exactness first: a fast wrong answer is no answer
mine = {k: ids_of(k) for k in files}
if ids_of("mixed", "-j", "2") != mine["mixed"]:
    sys.exit("bench-tokenize: -j 2 gives other ids than -j 1")
for k in files:
    if enc is not None:
        theirs = array.array("I", enc.encode_ordinary(dec[k])).tobytes()
        if theirs != mine[k]:
            sys.exit("bench-tokenize: gpt-tokenize and tiktoken differ on %s" % files[k])
    print("%-5s %s: %.1f MB, %d tokens%s" % (k, files[k], len(text[k]) / 1e6, len(mine[k]) // 4,
                                           ", ids identical to tiktoken's" if enc else ""))

cpu = {}
wall = {}
def note(key, w, c):
    wall.setdefault(key, []).append(w)
    cpu.setdefault(key, []).append(c)

for r in range(rounds):
    for k in files:
        note(("ours", k), *ours(k))
        if enc is not None:
            s, c = time.perf_counter(), time.process_time()
            enc.encode_ordinary(dec[k])
            note(("tiktoken", k), time.perf_counter() - s, time.process_time() - c)
    note(("ours -j 2", "mixed"), *ours("mixed", "-j", "2"))

def rate(key):
    mb = len(text[key[1]]) / 1e6
    return mb / min(cpu[key]), mb / statistics.median(cpu[key])

print("MB per CPU-second, single thread, %d interleaved rounds (best, median):" % rounds)
for k in files:
    b, m = rate(("ours", k))
    print("  gpt-tokenize %-5s %7.1f  %7.1f" % (k, b, m))
    if enc is not None:
        tb, tm = rate(("tiktoken", k))
        print("  tiktoken     %-5s %7.1f  %7.1f" % (k, tb, tm))
        print("  ratio        %-5s %6.2fx  %6.2fx" % (k, b / tb, m / tm))
mb = len(text["mixed"]) / 1e6
w1, w2 = min(wall[("ours", "mixed")]), min(wall[("ours -j 2", "mixed")])
print("gpt-tokenize -j 1 wall %.1f MB/s, -j 2 wall %.1f MB/s (%.1f CPU-s): -j 2 scaling %.2fx on %d CPUs"
      % (mb / w1, mb / w2, min(cpu[("ours -j 2", "mixed")]), w1 / w2, os.cpu_count()))

ids = os.path.join(out, "tok-corpus.u32")
open(ids, "wb").write(mine["mixed"])
td = []
for _ in range(3):
    with open(ids, "rb") as f:
        p = subprocess.Popen([tok, "-d", "-f", "u32"], stdin=f, stdout=subprocess.DEVNULL)
        _, st, ru = os.wait4(p.pid, 0)
        td.append(ru.ru_utime + ru.ru_stime)
line = "decode MB per CPU-second: gpt-tokenize %.1f" % (mb / min(td))
if enc is not None:
    toks = array.array("I", mine["mixed"]).tolist()
    c = time.process_time(); enc.decode_bytes(toks); c = time.process_time() - c
    line += ", tiktoken decode_bytes %.1f, ratio %.2fx" % (mb / c, c / min(td))
print(line)

# Where the ratio comes from: the corpus's lines by script, each part timed
# as above (3 interleaved rounds, best of each), so that a change can be
# told apart by the text it helps.
def script(l):
    n2 = sum(1 for b in l if 0xC0 <= b < 0xE0)
    n3 = sum(1 for b in l if 0xE0 <= b < 0xF0)
    return "cjk" if 3 * n3 > len(l) / 2 else "2byte" if 2 * n2 > len(l) / 2 else "latin"
parts = {"latin": [], "2byte": [], "cjk": []}
for l in text["mixed"].split(b"\n"):
    parts[script(l)].append(l)
names = {"latin": "mostly ASCII lines", "2byte": "lines mostly in 2-byte scripts (Cyrillic, Greek, Arabic...)",
         "cjk": "lines mostly in 3-byte scripts (CJK, Indic, Thai...)"}
for k in parts:
    f = os.path.join(out, "tok-part-%s.txt" % k)
    open(f, "wb").write(b"\n".join(parts[k]))
    files["part " + k] = f
    text["part " + k] = open(f, "rb").read()
    if enc is not None:
        dec["part " + k] = text["part " + k].decode("utf-8")
        if array.array("I", enc.encode_ordinary(dec["part " + k])).tobytes() != ids_of("part " + k):
            sys.exit("bench-tokenize: gpt-tokenize and tiktoken differ on %s" % f)
for r in range(3):
    for k in parts:
        note(("ours", "part " + k), *ours("part " + k))
        if enc is not None:
            c = time.process_time()
            enc.encode_ordinary(dec["part " + k])
            note(("tiktoken", "part " + k), 0, time.process_time() - c)
print("by script, MB per CPU-second, best of 3 interleaved rounds:")
for k in parts:
    mb = len(text["part " + k]) / 1e6
    b = rate(("ours", "part " + k))[0]
    line = "  %-5s %5.1f MB  gpt-tokenize %6.1f" % (k, mb, b)
    if enc is not None:
        tb = rate(("tiktoken", "part " + k))[0]
        line += "  tiktoken %5.1f  ratio %5.2fx" % (tb, b / tb)
    print(line + "  " + names[k])
PY
bench_machine bench-tokenize
