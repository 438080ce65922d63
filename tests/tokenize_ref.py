#!/usr/bin/env python3
"""Test inputs and expected outputs for gpt-tokenize.

  corpus OUTDIR       every text under $SHARED/data as NAME.txt (one text)
                      and NAME.docs (NUL-terminated documents)
  fuzz OUT N SEED     N random strings, NUL-terminated, mixing scripts,
                      emoji sequences, combining marks, digits of many
                      scripts, all Unicode white space, C0/C1 controls,
                      contractions in all cases and long runs up to 100 KB
  randbytes OUT N SEED  N random bytes (invalid UTF-8 and NULs included)
  expect FILE [-z] [gpt4]  tiktoken's ids for FILE in gpt-tokenize's text
                      form (gpt4: GPT-2's ranks with the cl100k split)
  golden OUT          sha256 of tiktoken's output for every input above,
                      committed so the check runs without tiktoken
  firstdiff A B       the first differing line of two outputs, for messages
"""
import gzip, json, os, random, sys

SHARED = os.environ.get("SHARED") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def corpus(outdir):
    data = os.path.join(SHARED, "data")
    sources = {}
    for name in sorted(os.listdir(os.path.join(data, "text"))):
        with open(os.path.join(data, "text", name), "rb") as f:
            raw = f.read()
        sources["text-" + name[:-4]] = [p + b"\n\n" for p in raw.split(b"\n\n")]
    for name in sorted(os.listdir(os.path.join(data, "web"))):
        docs = []
        with gzip.open(os.path.join(data, "web", name), "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append(json.loads(line)["text"].encode())
        sources["web-" + name.split(".json")[0]] = docs
    with open(os.path.join(data, "eval", "lambada_test.jsonl"), encoding="utf-8") as f:
        sources["eval-lambada"] = [json.loads(l)["text"].encode() for l in f if l.strip()]
    with open(os.path.join(data, "instruct", "instruction-data.json"), encoding="utf-8") as f:
        items = json.load(f)
    sources["instruct"] = [("%s\n\n%s\n\n%s" % (d.get("instruction", ""), d.get("input", ""),
                                                 d.get("output", ""))).encode() for d in items]
    os.makedirs(outdir, exist_ok=True)
    for name, docs in sources.items():
        with open(os.path.join(outdir, name + ".txt"), "wb") as f:
            f.write(b"".join(docs))
        with open(os.path.join(outdir, name + ".docs"), "wb") as f:
            for d in docs:
                f.write(d.replace(b"\0", b"") + b"\0")


def rng_range(r, a, b, k):
    return "".join(chr(r.randint(a, b)) for _ in range(k))


SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200b))) + \
    "\u2028\u2029\u202f\u205f\u3000" + "\u200b\u180e\ufeff\x1c\x1d\x1e\x1f"
DIGITS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯",
          "０１２３４５６７８９", "²³¹¼½¾", "ⅠⅡⅢⅣⅫ", "๐๑๒๓๔๕๖๗๘๙", "〇一二三"]
WORDS = ["the", "The", "THE", "hello", "world", "naïve", "café", "Straße", "über", "ĳssel",
         "Ελληνικά", "λόγος", "Москва", "привет", "日本語", "中文字符", "한국어", "مرحبا",
         "שלום", "नमस्ते", "हिन्दी", "ภาษาไทย", "ქართული", "Հայերեն", "x", "I", "a", "of"]
EMOJI = ["😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "❤️", "🧑🏿‍🚀", "👩🏻‍💻",
         "✌🏼", "🤷‍♀️", "©", "™", "☃", "🀄", "𝕏", "𝔘𝔫𝔦"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
PUNCT = ".,;:!?-_()[]{}<>@#$%^&*+=/\\|~`\"'«»“”‘’—–…·•§¶"


def atom(r):
    k = r.random()
    if k < 0.18:
        return r.choice(WORDS)
    if k < 0.28:
        c = r.choice(CONTRACTIONS)
        c = "".join(ch.upper() if r.random() < 0.5 else ch for ch in c)
        return r.choice(["", "I", "you", "it", "they", "O"]) + c.replace("'", r.choice("'''’"))
    if k < 0.38:
        return "".join(r.choice(SPACES) for _ in range(r.randint(1, 4)))
    if k < 0.45:
        d = r.choice(DIGITS)
        return "".join(r.choice(d) for _ in range(r.randint(1, 7)))
    if k < 0.52:
        return "".join(r.choice(PUNCT) for _ in range(r.randint(1, 4)))
    if k < 0.58:
        return r.choice(EMOJI)
    if k < 0.63:   # combining marks on a base letter
        return r.choice("aeoAnuαи") + rng_range(r, 0x300, 0x36f, r.randint(1, 3))
    if k < 0.68:   # C0 and C1 controls, no NUL (it ends documents)
        return "".join(chr(r.choice(list(range(1, 32)) + list(range(0x7f, 0xa0))))
                       for _ in range(r.randint(1, 3)))
    if k < 0.88:   # a run from a script block
        a, b = r.choice([(0x41, 0x7a), (0xc0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff),
                         (0x4e00, 0x9fff), (0x3040, 0x30ff), (0xac00, 0xd7a3), (0x600, 0x6ff),
                         (0x900, 0x97f), (0x5d0, 0x5ea), (0xe00, 0xe7f), (0x1f300, 0x1f64f),
                         (0x2000, 0x206f), (0x20a0, 0x20cf), (0x2100, 0x214f), (0xff00, 0xffef),
                         (0x10000, 0x1007f), (0x1d400, 0x1d7ff)])
        return rng_range(r, a, b, r.randint(1, 6))
    return " " + r.choice(WORDS)


def fuzz(out, n, seed):
    r = random.Random(seed)
    with open(out, "wb") as f:
        for i in range(n):
            if i % 2500 == 0:   # long runs of one character, up to 100 KB
                ch = r.choice(["a", " ", "\n", "0"])
                s = r.choice(["", "x", " ", "'"]) + ch * int(10 ** r.uniform(1, 5)) + r.choice(["", "b", "\n", " z"])
            else:
                s = "".join(atom(r) for _ in range(r.randint(1, 12)))
            f.write(s.encode("utf-8") + b"\0")


def randbytes(out, n, seed):
    r = random.Random(seed)
    data = bytearray()
    while len(data) < n:
        k = r.random()
        if k < 0.3:
            data += bytes(r.getrandbits(8) for _ in range(r.randint(1, 50)))
        elif k < 0.6:
            data += atom(r).encode()
        else:
            data += r.choice([b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                              b"\xe2\x82", b"\0", b"\0\0", b"abc\0", b" \xce", b"\xf0\x9f\x98"])
    with open(out, "wb") as f:
        f.write(bytes(data[:n]))


def expect(path, zero, pattern="gpt2"):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tiktoken_ref
    enc = tiktoken_ref.gpt2(tiktoken_ref.GPT4_PATTERN if pattern == "gpt4" else tiktoken_ref.GPT2_PATTERN)
    raw = open(path, "rb").read()
    out = sys.stdout
    if not zero:
        out.write(" ".join(map(str, enc.encode_ordinary(raw.decode("utf-8")))) + "\n")
        return
    docs = raw.split(b"\0")
    last = docs.pop()
    for d in docs:
        ids = enc.encode_ordinary(d.decode("utf-8")) + [50256]
        out.write(" ".join(map(str, ids)) + "\n")
    if last:
        out.write(" ".join(map(str, enc.encode_ordinary(last.decode("utf-8")))) + "\n")


def firstdiff(a, b):
    with open(a) as fa, open(b) as fb:
        for i, (x, y) in enumerate(zip(fa, fb)):
            if x != y:
                print("line %d: got %s... wanted %s..." % (i + 1, x[:120].strip(), y[:120].strip()))
                return
    print("outputs differ in length")


def golden(out):
    """Writes the sha256 of tiktoken's output for every test input."""
    import hashlib, io, tempfile, contextlib
    tmp = tempfile.mkdtemp()
    corpus(os.path.join(tmp, "c"))
    fuzz(os.path.join(tmp, "fuzz.docs"), 100000, 1)
    lines = []
    names = sorted(os.listdir(os.path.join(tmp, "c")))
    for name in names:
        path = os.path.join(tmp, "c", name)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            expect(path, name.endswith(".docs"))
        lines.append("%s  %s" % (hashlib.sha256(buf.getvalue().encode()).hexdigest(), name))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        expect(os.path.join(tmp, "fuzz.docs"), True)
    lines.append("%s  fuzz.docs" % hashlib.sha256(buf.getvalue().encode()).hexdigest())
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        expect(os.path.join(tmp, "fuzz.docs"), True, "gpt4")
    lines.append("%s  fuzz.docs.gpt4" % hashlib.sha256(buf.getvalue().encode()).hexdigest())
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "corpus":
        corpus(args[0])
    elif cmd == "fuzz":
        fuzz(args[0], int(args[1]), int(args[2]))
    elif cmd == "randbytes":
        randbytes(args[0], int(args[1]), int(args[2]))
    elif cmd == "expect":
        expect(args[0], "-z" in args[1:], "gpt4" if "gpt4" in args[1:] else "gpt2")
    elif cmd == "golden":
        golden(args[0])
    elif cmd == "firstdiff":
        firstdiff(args[0], args[1])
    else:
        sys.exit("unknown command " + cmd)
