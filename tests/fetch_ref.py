#!/usr/bin/env python3
"""Reference output for gpt-fetch, read by pyarrow: every non-null value of
one column of a parquet file, as bytes (strings UTF-8, integers in decimal),
each followed by one NUL byte.

usage: fetch_ref.py FILE.parquet COLUMN OUT     one column
       fetch_ref.py --list FILE...              print "FILE<TAB>COLUMN" for each
                                                flat string/binary/integer
                                                column pyarrow can read
"""
import sys
import pyarrow as pa
import pyarrow.parquet as pq


def flat_columns(path):
    try:
        sch = pq.ParquetFile(path).schema_arrow
    except Exception:
        return []
    out = []
    for f in sch:
        t = f.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or \
           pa.types.is_binary(t) or pa.types.is_large_binary(t) or \
           pa.types.is_integer(t):
            out.append(f.name)
    return out


def dump(path, col, out):
    t = pq.read_table(path, columns=[col], use_threads=False)
    with open(out, "wb") as w:
        for chunk in t.column(0).chunks:
            for v in chunk.to_pylist():
                if v is None:
                    continue
                if isinstance(v, str):
                    v = v.encode("utf-8", "surrogatepass")
                elif isinstance(v, int):
                    v = str(v).encode()
                w.write(v)
                w.write(b"\0")


if __name__ == "__main__":
    if sys.argv[1] == "--list":
        for p in sys.argv[2:]:
            for c in flat_columns(p):
                try:
                    pq.read_table(p, columns=[c], use_threads=False)
                except Exception:
                    continue
                print("%s\t%s" % (p, c))
    else:
        dump(sys.argv[1], sys.argv[2], sys.argv[3])
