#!/usr/bin/env python3
"""The slow reference for gpt-bpe, and test inputs for it.

  train SIZE PATTERN ZERO MAX_CHARS DOC_CAP FILE...
        a straightforward BPE trainer that recounts every pair before each
        merge; prints the merges as "LEFT RIGHT ID" lines, as
        gpt-bpe --merges writes them, and "ties N reuses N" on stderr.
        ZERO is 0 or 1 (-z), MAX_CHARS and DOC_CAP are 0 for no limit.
  gen OUT SEED N      N random NUL-terminated documents over a small
                      alphabet, so that pair counts tie and merges reach
                      the same bytes by two routes, mixed with words of
                      other scripts, digits, contractions and white space
  expect VOCAB OUTDIR FILE...   tiktoken's ids for each FILE with the rank
                      file VOCAB (and VOCAB.meta), in gpt-tokenize's text
                      form, into OUTDIR/NAME; FILEs named *.docs are read
                      as NUL-terminated documents (gpt-tokenize -z)

Rules shared with libcommon/bpetrain.c: the text is split with the
pattern's regular expression, each document on its own; pairs are counted
over all pieces (overlapping, "aaa" holds "aa" twice) weighted by the
piece's frequency; the pair with the highest count wins, ties to the
smallest (left id, right id); it is replaced left to right in every piece;
a pair whose bytes already form a token reuses that token's id; a pair
whose bytes would be longer than 4096 is never merged; bytes are ids
0..255 and new tokens take the next id.
"""
import collections, os, random, sys

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
MAX_TOKEN_BYTES = 4096


def documents(paths, zero, max_chars, doc_cap):
    raw = b"".join(open(p, "rb").read() for p in paths)
    if zero:
        docs = raw.split(b"\0")
        if docs and docs[-1] == b"":
            docs.pop()
    else:
        docs = [raw]
    used = 0
    for d in docs:
        text = d.decode("utf-8")
        if doc_cap:
            text = text[:doc_cap]
        if max_chars:
            text = text[:max_chars - used]
        used += len(text)
        yield text
        if max_chars and used >= max_chars:
            return


def train(size, pattern, zero, max_chars, doc_cap, paths):
    import regex
    pat = regex.compile(GPT4_PATTERN if pattern == "gpt4" else GPT2_PATTERN)
    counts = collections.Counter()
    for text in documents(paths, zero, max_chars, doc_cap):
        for piece in pat.findall(text):
            b = piece.encode("utf-8")
            if len(b) >= 2:
                counts[b] += 1
    words = [[list(b), n] for b, n in counts.items()]
    tokens = [bytes([i]) for i in range(256)]
    ids = {t: i for i, t in enumerate(tokens)}
    merges, ties, reuses = [], 0, 0
    while len(tokens) < size - 1:
        stats = collections.Counter()
        for syms, n in words:
            for pair in zip(syms, syms[1:]):
                stats[pair] += n
        cands = [(-n, p) for p, n in stats.items()
                 if len(tokens[p[0]]) + len(tokens[p[1]]) <= MAX_TOKEN_BYTES]
        if not cands:
            break
        best = min(cands)
        if sum(1 for c in cands if c[0] == best[0]) > 1:
            ties += 1
        a, b = best[1]
        joined = tokens[a] + tokens[b]
        if joined in ids:
            c = ids[joined]
            reuses += 1
        else:
            c = len(tokens)
            tokens.append(joined)
            ids[joined] = c
        merges.append((a, b, c))
        for w in words:
            syms, out, i = w[0], [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(c)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            w[0] = out
    sys.stdout.write("".join("%d %d %d\n" % m for m in merges))
    sys.stderr.write("ties %d reuses %d\n" % (ties, reuses))


def gen(out, seed, n):
    r = random.Random(seed)
    words = ["naïve", "café", "Москва", "日本語", "한국어", "مرحبا", "😀", "👍🏽", "'s", "'LL",
             "don't", "I'm", "42", "2024", "1234567", "٣٤", "...", "--", "?!", "(x)"]
    with open(out, "wb") as f:
        for _ in range(n):
            parts = []
            for _ in range(r.randint(1, 30)):
                k = r.random()
                if k < 0.6:
                    parts.append("".join(r.choice("aab") for _ in range(r.randint(1, 7))))
                elif k < 0.75:
                    parts.append(r.choice(words))
                elif k < 0.85:
                    parts.append(r.choice(["\n", "\n\n", "  ", "\t", " \n", "\r\n"]))
                else:
                    parts.append(r.choice("abc") * r.randint(2, 12))
                parts.append(r.choice([" ", " ", " ", "", ",", ". "]))
            f.write("".join(parts).encode("utf-8") + b"\0")


def expect(vocab, outdir, paths):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    meta = {"name": os.path.basename(vocab).rsplit(".", 1)[0], "pattern": "gpt2"}
    specials = {}
    lines = open(vocab + ".meta", encoding="utf-8") if os.path.exists(vocab + ".meta") else []
    for line in lines:
        key, _, val = line.rstrip("\n").partition(" ")
        if key == "special":
            text, _, i = val.rpartition(" ")
            specials[text] = int(i)
        elif key:
            meta[key] = val
    ranks = load_tiktoken_bpe(vocab)
    if not specials:
        specials["<|endoftext|>"] = max(ranks.values()) + 1
    enc = tiktoken.Encoding(meta["name"], mergeable_ranks=ranks, special_tokens=specials,
                            pat_str=GPT4_PATTERN if meta["pattern"] == "gpt4" else GPT2_PATTERN)
    eot = specials["<|endoftext|>"]
    for path in paths:
        raw = open(path, "rb").read()
        with open(os.path.join(outdir, os.path.basename(path)), "w") as out:
            if not path.endswith(".docs"):
                out.write(" ".join(map(str, enc.encode_ordinary(raw.decode("utf-8")))) + "\n")
                continue
            docs = raw.split(b"\0")
            last = docs.pop()
            for d in docs:
                ids = enc.encode_ordinary(d.decode("utf-8")) + [eot]
                out.write(" ".join(map(str, ids)) + "\n")
            if last:
                out.write(" ".join(map(str, enc.encode_ordinary(last.decode("utf-8")))) + "\n")


def main(argv):
    if len(argv) >= 7 and argv[1] == "train":
        train(int(argv[2]), argv[3], argv[4] == "1", int(argv[5]), int(argv[6]), argv[7:])
    elif len(argv) == 5 and argv[1] == "gen":
        gen(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) >= 5 and argv[1] == "expect":
        expect(argv[2], argv[3], argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
