"""The tokenizer benchmarks' corpus: real text, none of it repeated.

    python tok_corpus.py OUT_DIR

writes OUT_DIR/tok-corpus.txt (over 50 MB: English prose about 14 MB,
web pages, C headers 22 MB, the translated messages of 19 languages up
to 18 MB, cut in 64 KiB chunks and shuffled) and OUT_DIR/tok-prose.txt
(the English prose part alone, in order), unless they exist. The prose is
the books under $SHARED/data/text, LAMBADA's test passages and the Python
documentation's sources (Debian's python3-doc, which the benchmarks
install when missing); the web pages are $SHARED/data/web; the headers
and translations come from the machine (/usr/include, /usr/share/locale).
Each source goes in once: a text repeated would flatter the encoder's
caches. The corpus differs a little between machines, so the benchmarks
print its size and rate every program on the same file in the same run.
"""
import glob, gzip, gettext, json, os, random, sys

out = sys.argv[1]
shared = os.environ["SHARED"]
corpus = os.path.join(out, "tok-corpus.txt")
prose_file = os.path.join(out, "tok-prose.txt")
if os.path.exists(corpus) and os.path.exists(prose_file):
    sys.exit(0)


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


prose = b""
for f in sorted(glob.glob(os.path.join(shared, "data", "text", "*.txt"))):
    prose += open(f, "rb").read()
for l in open(os.path.join(shared, "data", "eval", "lambada_test.jsonl"), encoding="utf-8"):
    prose += json.loads(l)["text"].encode() + b"\n\n"
seen = set()
for f in sorted(glob.glob("/usr/share/doc/python3*/html/_sources/**/*.txt", recursive=True)):
    r = os.path.realpath(f)
    if r in seen:
        continue
    seen.add(r)
    prose += open(r, "rb").read() + b"\n\n"
web = b""
for f in sorted(glob.glob(os.path.join(shared, "data", "web", "*.gz"))):
    for l in gzip.open(f, "rt", encoding="utf-8"):
        web += json.loads(l)["text"].encode() + b"\n\n"
code = b""
for f in sorted(glob.glob("/usr/include/**/*.h", recursive=True)):
    if os.path.getsize(f) > 1 << 20:   # generated register maps, not code people write
        continue
    try:
        code += open(f, "rb").read().decode("utf-8").encode()
    except (UnicodeDecodeError, OSError):
        continue
    if len(code) > 22 << 20:
        break
intl = "\n".join(mo_strings(["ru", "uk", "zh_CN", "zh_TW", "ja", "ko", "ar", "fa", "he",
                             "hi", "bn", "el", "th", "ka", "hy", "ta", "vi", "tr", "pl"],
                            18 << 20)).encode()
pieces = []
for src in (prose, web, code, intl):
    pieces += [src[i:i + 65536] for i in range(0, len(src), 65536)]
random.Random(1).shuffle(pieces)
data = b"".join(pieces)
data = data.decode("utf-8", "ignore").encode()   # chunk cuts may split a character
open(corpus + ".tmp", "wb").write(data)
os.rename(corpus + ".tmp", corpus)
p = prose.decode("utf-8", "ignore").encode()
open(prose_file + ".tmp", "wb").write(p)
os.rename(prose_file + ".tmp", prose_file)
