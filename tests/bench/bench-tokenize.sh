#!/bin/sh
# make bench-tokenize: gpt-tokenize against tiktoken on the same mixed
# corpus (English prose, web text, C headers, translations in Cyrillic,
# CJK, Arabic, Devanagari, Greek, Hebrew, Korean...), >= 50 MB, in one run.
# Prints encode MB/s of each (single thread), the ratio, -j 2 scaling and
# decode MB/s.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-tokenize
bench_peers bench-tokenize tiktoken || :
[ -x "${PY:-}" ] || PY=python3
export SHARED GPT_VOCAB=${GPT_VOCAB:-$SHARED/data/gpt2} BIN=${BIN:-$ROOT/bin}
OUT=$ROOT/build/bench
mkdir -p "$OUT"
exec "$PY" - "$ROOT" "$OUT" <<'PY'
import glob, gzip, json, os, subprocess, sys, time, gettext, random
root, out = sys.argv[1], sys.argv[2]
shared = os.environ["SHARED"]
corpus = os.path.join(out, "tok-corpus.txt")
TARGET = 60 << 20

def mo_strings(langs, limit):
    got, n = [], 0
    for lang in langs:
        for mo in sorted(glob.glob("/usr/share/locale/%s/LC_MESSAGES/*.mo" % lang)):
            try:
                t = gettext.GNUTranslations(open(mo, "rb"))
            except Exception:
                continue
            for v in t._catalog.values():
                got.append(v)
                n += len(v.encode())
            if n > limit:
                return got
    return got

if not os.path.exists(corpus):
    parts = []
    prose = b""
    for f in sorted(glob.glob(os.path.join(shared, "data", "text", "*.txt"))):
        prose += open(f, "rb").read()
    for l in open(os.path.join(shared, "data", "eval", "lambada_test.jsonl"), encoding="utf-8"):
        prose += json.loads(l)["text"].encode() + b"\n\n"
    web = b""
    for f in sorted(glob.glob(os.path.join(shared, "data", "web", "*.gz"))):
        for l in gzip.open(f, "rt", encoding="utf-8"):
            web += json.loads(l)["text"].encode() + b"\n\n"
    code = b""
    for f in sorted(glob.glob("/usr/include/**/*.h", recursive=True)):
        try:
            code += open(f, "rb").read().decode("utf-8").encode()
        except (UnicodeDecodeError, OSError):
            continue
        if len(code) > 15 << 20:
            break
    intl = "\n".join(mo_strings(["ru", "uk", "zh_CN", "zh_TW", "ja", "ko", "ar", "fa", "he",
                                 "hi", "bn", "el", "th", "ka", "hy", "ta", "vi", "tr", "pl"],
                                14 << 20)).encode()
    blocks = [(prose, 20 << 20), (web, 6 << 20), (code, 15 << 20), (intl, 15 << 20)]
    data = bytearray()
    pieces = []
    for src, want in blocks:
        chunks = [src[i:i + 65536] for i in range(0, len(src), 65536)]
        total = 0
        while total < want and chunks:
            for c in chunks:
                pieces.append(c); total += len(c)
                if total >= want:
                    break
    random.Random(1).shuffle(pieces)
    data = b"".join(pieces)
    data = data.decode("utf-8", "ignore").encode()   # chunk cuts may split a character
    open(corpus, "wb").write(data)

size = os.path.getsize(corpus)
mb = size / 1e6
tok = os.path.join(os.environ.get("BIN") or os.path.join(root, "bin"), "gpt-tokenize")

def best(cmd, n=3, stdin=None, stdout=subprocess.DEVNULL):
    t = []
    for _ in range(n):
        with open(stdin, "rb") as f:
            s = time.perf_counter()
            subprocess.run(cmd, stdin=f, stdout=stdout, check=True)
            t.append(time.perf_counter() - s)
    return min(t)

print("corpus: %s, %.1f MB (prose, web, C headers, translations in 19 languages)" % (corpus, mb))
t1 = best([tok, "-f", "u32", "-q"], stdin=corpus)
t2 = best([tok, "-f", "u32", "-q", "-j", "2"], stdin=corpus)
ids = os.path.join(out, "tok-corpus.u32")
with open(corpus, "rb") as f, open(ids, "wb") as g:
    subprocess.run([tok, "-f", "u32", "-q"], stdin=f, stdout=g, check=True)
td = best([tok, "-d", "-f", "u32"], stdin=ids)
ntok = os.path.getsize(ids) // 4
print("gpt-tokenize encode -j 1: %7.1f MB/s  (%.2f s, %d tokens)" % (mb / t1, t1, ntok))
print("gpt-tokenize encode -j 2: %7.1f MB/s  (scaling %.2fx)" % (mb / t2, t1 / t2))
print("gpt-tokenize decode     : %7.1f MB/s" % (mb / td))
try:
    sys.path.insert(0, os.path.join(root, "tests"))
    import tiktoken_ref
    enc = tiktoken_ref.gpt2()
except Exception:
    enc = None
if enc is None:
    print("tiktoken not installed: no comparison")
    sys.exit(0)
text = open(corpus, "rb").read().decode("utf-8")
tt = []
for _ in range(2):
    s = time.perf_counter(); r = enc.encode_ordinary(text); tt.append(time.perf_counter() - s)
assert len(r) == ntok, "token counts differ: tiktoken %d, gpt-tokenize %d" % (len(r), ntok)
s = time.perf_counter(); enc.decode_bytes(r); tdt = time.perf_counter() - s
print("tiktoken encode (1 thread): %7.1f MB/s  (%.2f s)" % (mb / min(tt), min(tt)))
print("tiktoken decode_bytes     : %7.1f MB/s" % (mb / tdt))
print("ratio encode gpt-tokenize/tiktoken single thread: %.2fx" % (min(tt) / t1))
print("ratio decode: %.2fx" % (tdt / td))
PY
