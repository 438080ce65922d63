#!/usr/bin/env python3
"""pyarrow, the reference for gpt-fetch's parquet reader.

fetch_ref.py want OUTDIR FILE...
    For each string, binary or integer leaf column of each FILE that pyarrow
    reads (inside lists, maps and structs too, flattened), writes
    OUTDIR/N.want (every non-null value: strings as UTF-8, integers in
    decimal, each followed by NUL) and prints FILE<TAB>COLUMN<TAB>N.
fetch_ref.py fineweb OUT.parquet NDOCS SEED [key=value...]
    Writes a FineWeb-shaped file (text, id, dump, url, date, file_path,
    language, language_score, token_count) the way FineWeb was written
    (pyarrow defaults: snappy, dictionary on; 1000 rows per row group).
    Keys: compression, use_dictionary (0/1), data_page_version (1.0/2.0),
    data_page_size, row_group_size, dict_limit (dictionary page size limit,
    past which a chunk falls back to PLAIN, checked every write_batch_size
    rows), encodings (COL:ENCODING+COL:ENCODING..., dictionary off), nulls (fraction of null texts),
    empty (fraction of empty texts), big (documents over 1 MB), unicode
    (0/1: non-ASCII text), meanlog (log of the typical document length,
    default 7.6: about 2 KB), corpus (a text file to cut documents from).
fetch_ref.py slice FILE.parquet START END LIMIT WHERE_COL OP VALUE OUT
    What gpt-fetch --rows START:END --limit LIMIT --where ... should print
    (END -1: to the end; LIMIT 0: no limit; WHERE_COL -: no filter).
"""
import operator
import os
import random
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def leaf_columns(path):
    """Parquet leaf paths whose values are strings, binary or integers."""
    try:
        sch = pq.ParquetFile(path).schema
    except Exception:
        return []
    out = []
    for i in range(len(sch)):
        c = sch.column(i)
        if c.physical_type in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY", "INT32", "INT64"):
            lt = str(c.logical_type)
            if c.physical_type.startswith("INT") and \
               ("Timestamp" in lt or "Time" in lt or "Date" in lt or "Decimal" in lt or
                c.converted_type in ("DECIMAL", "DATE", "TIME_MILLIS", "TIME_MICROS",
                                     "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS")):
                continue
            out.append(c.path)
    return out


def leaf_values(path, leaf):
    """The values of one leaf column as pyarrow reads them, lists, maps and
    structs flattened in storage order, nulls dropped."""
    comps = leaf.split(".")
    t = pq.read_table(path, columns=[comps[0]], use_threads=False)
    arr = t.column(0).combine_chunks()
    comps = comps[1:]
    while comps:
        ty = arr.type
        if pa.types.is_struct(ty):
            arr = pc.struct_field(arr, [ty.get_field_index(comps[0])])
            comps = comps[1:]
        elif pa.types.is_map(ty):
            arr = arr.keys if comps[1] == "key" else arr.items
            comps = comps[2:]
        elif pa.types.is_list(ty) or pa.types.is_large_list(ty) or \
                pa.types.is_fixed_size_list(ty):
            arr = arr.flatten()
            nested = pa.types.is_struct(arr.type) or pa.types.is_map(arr.type) or \
                pa.types.is_list(arr.type)
            comps = comps[1:] if len(comps) == 1 and not nested else comps[2:]
        else:
            raise ValueError("cannot follow %s into %s" % (leaf, ty))
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or
            pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type) or
            pa.types.is_fixed_size_binary(arr.type) or pa.types.is_integer(arr.type)):
        raise ValueError("not a string or integer leaf")
    return [v for v in arr.to_pylist() if v is not None]


def as_bytes(v):
    if isinstance(v, str):
        return v.encode("utf-8", "surrogatepass")
    if isinstance(v, int):
        return str(v).encode()
    return v


def cmd_want(outdir, files):
    n = 0
    for p in files:
        for c in leaf_columns(p):
            try:
                vals = leaf_values(p, c)
            except Exception:
                continue
            with open(os.path.join(outdir, "%d.want" % n), "wb") as w:
                for v in vals:
                    w.write(as_bytes(v) + b"\0")
            print("%s\t%s\t%d" % (p, c, n))
            n += 1


WORDS = ("the of and to in a is that for it as was with be by on not he this "
         "are or his from at which but have an they you were her she there "
         "been one all we their has would when if so no will more what "
         "about out up them into who some time could these two may then "
         "do first any my now such like our over man me even most made "
         "after also did many before must through back years where much "
         "your way well down should because each just those people how "
         "too little state good very make world still own see men work "
         "long get here between both life being under never day same").split()
UNI = ["naïve", "café", "Straße", "日本語", "中文字", "русский", "ελληνικά",
       "עברית", "العربية", "हिन्दी", "한국어", "emoji🙂", "ünïcödé", "Ωμέγα"]


def make_text(rng, n, unicode_, corpus):
    if corpus:
        off = rng.randrange(0, max(1, len(corpus) - n))
        s = corpus[off:off + n]
        return s.decode("utf-8", "ignore")
    words = []
    size = 0
    while size < n:
        w = rng.choice(UNI) if unicode_ and rng.random() < 0.1 else rng.choice(WORDS)
        if rng.random() < 0.07:
            w += "."
        if rng.random() < 0.02:
            w += "\n\n"
        words.append(w)
        size += len(w) + 1
    return " ".join(words)


def cmd_fineweb(out, ndocs, seed, kv):
    rng = random.Random(seed)
    opt = dict(x.split("=", 1) for x in kv)
    corpus = open(opt["corpus"], "rb").read() if "corpus" in opt else None
    nulls = float(opt.get("nulls", 0))
    empty = float(opt.get("empty", 0))
    big = int(opt.get("big", 0))
    unicode_ = opt.get("unicode", "0") == "1"
    meanlog = float(opt.get("meanlog", 7.6))
    cols = {k: [] for k in ("text", "id", "dump", "url", "date", "file_path",
                            "language", "language_score", "token_count")}
    for i in range(ndocs):
        r = rng.random()
        if r < nulls:
            text = None
        elif r < nulls + empty:
            text = ""
        else:
            n = int(min(60000, rng.lognormvariate(meanlog, 1.0)))
            text = make_text(rng, n, unicode_, corpus)
        if big and i % max(1, ndocs // big) == 1:
            text = make_text(rng, 1100000 + rng.randrange(200000), unicode_, None)
        cols["text"].append(text)
        cols["id"].append("<urn:uuid:%08x-%04x-%04x-%04x-%012x>" % tuple(
            rng.getrandbits(b) for b in (32, 16, 16, 16, 48)))
        cols["dump"].append("CC-MAIN-2013-20")
        cols["url"].append("http://example%d.com/page/%d" % (rng.randrange(500), i))
        cols["date"].append("2013-05-18T05:48:%02dZ" % rng.randrange(60))
        cols["file_path"].append("s3://commoncrawl/crawl-data/CC-MAIN-2013-20/"
                                 "segments/1368696381249.%d/warc/x.warc.gz" % rng.randrange(9))
        cols["language"].append("en")
        cols["language_score"].append(round(0.65 + 0.35 * rng.random(), 4))
        cols["token_count"].append(int(len(text or "") / 4.3) + rng.randrange(3))
    schema = pa.schema([("text", pa.string()), ("id", pa.string()), ("dump", pa.string()),
                        ("url", pa.string()), ("date", pa.string()),
                        ("file_path", pa.string()), ("language", pa.string()),
                        ("language_score", pa.float64()), ("token_count", pa.int64())])
    table = pa.table(cols, schema=schema)
    kw = {}
    if "compression" in opt:
        kw["compression"] = opt["compression"]
    if "use_dictionary" in opt:
        kw["use_dictionary"] = opt["use_dictionary"] == "1"
    if "data_page_version" in opt:
        kw["data_page_version"] = opt["data_page_version"]
    if "data_page_size" in opt:
        kw["data_page_size"] = int(opt["data_page_size"])
    if "encodings" in opt:
        kw["use_dictionary"] = False
        kw["column_encoding"] = dict(x.split(":") for x in opt["encodings"].split("+"))
    if "write_batch_size" in opt:
        kw["write_batch_size"] = int(opt["write_batch_size"])
    if "dict_limit" in opt:
        kw["dictionary_pagesize_limit"] = int(opt["dict_limit"])
    if "write_page_checksum" in opt:
        kw["write_page_checksum"] = opt["write_page_checksum"] == "1"
    pq.write_table(table, out, row_group_size=int(opt.get("row_group_size", 1000)), **kw)


def cmd_slice(path, start, end, limit, wcol, op, value, out):
    t = pq.read_table(path, use_threads=False)
    texts = t.column("text").to_pylist()
    wv = t.column(wcol).to_pylist() if wcol != "-" else None
    ops = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
           "==": operator.eq, "!=": operator.ne}
    end = len(texts) if end < 0 else min(end, len(texts))
    n = 0
    with open(out, "wb") as w:
        for i in range(start, end):
            if texts[i] is None:
                continue
            if wv is not None and (wv[i] is None or not ops[op](wv[i], value)):
                continue
            w.write(texts[i].encode() + b"\0")
            n += 1
            if limit and n >= limit:
                break


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "want":
        cmd_want(sys.argv[2], sys.argv[3:])
    elif cmd == "fineweb":
        cmd_fineweb(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    elif cmd == "slice":
        a = sys.argv[2:]
        cmd_slice(a[0], int(a[1]), int(a[2]), int(a[3]), a[4], a[5], float(a[6]), a[7])
    else:
        sys.exit("unknown command " + cmd)
