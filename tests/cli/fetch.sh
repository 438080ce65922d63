# gpt-fetch: every parquet file of the shared test data with a readable
# string or integer column against pyarrow (or, without pyarrow, against
# committed golden hashes); FineWeb-shaped files written by pyarrow in
# every writer variation, byte for byte; selection; bad and corrupted files
# (a clear one-line error, never a crash: `make asan` runs this under
# AddressSanitizer); JSONL, text, archives and compressed streams
# recognised by content; URLs through the download cache.
. "$ROOT/tests/lib.sh"
F=gpt-fetch
PQ=$SHARED/data/parquet
FX=$ROOT/tests/fixtures/fetch
cd "$TMP" || exit 1
have_pyarrow() { "$PY" -c 'import pyarrow' 2>/dev/null; }

# clean_fail DESC CMD...: exit status 1 with one line "gpt-fetch: ..." on
# stderr and no sanitizer report.
clean_fail() {
	_d=$1; shift
	"$@" >"$TMP/.out" 2>"$TMP/.err"
	_rc=$?
	if [ "$_rc" -eq 1 ] && [ "$(wc -l <"$TMP/.err")" -eq 1 ] &&
	   grep -q '^gpt-fetch: ' "$TMP/.err" &&
	   ! grep -Eq 'Sanitizer|runtime error' "$TMP/.err"; then pass "$_d"
	else fail "$_d (status $_rc: $(head -c 300 "$TMP/.err"))"; fi
}

# no_crash DESC CMD...: status 0, or a clean failure.
no_crash() {
	_d=$1; shift
	"$@" >"$TMP/.out" 2>"$TMP/.err"
	_rc=$?
	if [ "$_rc" -eq 0 ] && ! grep -Eq 'Sanitizer|runtime error' "$TMP/.err"; then pass "$_d"
	else clean_fail "$_d" "$@"; fi
}

# ---- the shared parquet files, every flat string/binary/integer column
if have_pyarrow; then
	mkdir want
	# (large_string_map holds a 1 GiB page, over our page limit: below)
	"$PY" "$ROOT/tests/fetch_ref.py" want want $(ls "$PQ"/data/*.parquet | grep -v large_string_map) \
		"$FX/fineweb-small.parquet" >list.tsv || fail "pyarrow reference"
	n=0
	while IFS="$(printf '\t')" read -r f c k; do
		b=$(basename "$f")
		case $b in
		*corrupt-checksum*)
			# pyarrow does not check page CRCs by default; we do.
			clean_fail "$b $c: bad page CRC refused" $F -c "$c" "$f"
			check_grep "$b $c: says checksum" "checksum" "$TMP/.err"
			continue;;
		esac
		if $F -c "$c" "$f" >got 2>err; then
			if cmp -s got "want/$k.want"; then n=$((n + 1)); else
				fail "$b column '$c' differs from pyarrow: $(cmp got "want/$k.want" 2>&1 | head -1)"; fi
		else
			fail "$b column '$c': $(head -c 200 err)"
		fi
	done <list.tsv
	check_eq "leaf columns read as pyarrow reads them (at least 110)" "$([ "$n" -ge 110 ] && echo ok)" ok
else
	echo "note: pyarrow missing; checking against tests/fixtures/fetch/golden.sha256" >&2
fi
# Golden hashes: the same files, without pyarrow.
n=0
while IFS="$(printf '\t')" read -r h b c; do
	case $b in fineweb-small.parquet) f=$FX/$b;; *) f=$PQ/data/$b;; esac
	case $b in *corrupt-checksum*) continue;; esac
	got=$($F -c "$c" "$f" 2>/dev/null | sha256sum | cut -c1-64)
	if [ "$got" = "$h" ]; then n=$((n + 1)); else fail "golden: $b column '$c'"; fi
done <"$FX/golden.sha256"
check_eq "golden hashes matched (at least 110)" "$([ "$n" -ge 110 ] && echo ok)" ok
clean_fail "a page over 1 GiB: a clear error" $F -c arr.key_value.key "$PQ/data/large_string_map.brotli.parquet"
check_grep "page over 1 GiB: says so" "over the limit" "$TMP/.err"

# ---- FineWeb-shaped files from pyarrow, each writer variation
if have_pyarrow; then
	"$PY" - "$ROOT/tests" <<'EOF' || fail "FineWeb-shaped files not written"
import sys
sys.path.insert(0, sys.argv[1])
from fetch_ref import cmd_fineweb as fw
v = dict(unicode="1", meanlog="6.5", nulls="0.04", empty="0.03")
def w(name, n, seed, **kw):
    o = dict(v); o.update(kw)
    fw(name + ".parquet", n, seed, ["%s=%s" % kv for kv in o.items()])
w("snappy", 2300, 1)
w("zstd", 1200, 2, compression="zstd")
w("gzip", 1200, 3, compression="gzip")
w("brotli", 600, 4, compression="brotli")
w("lz4", 600, 5, compression="lz4")
w("none", 600, 6, compression="none")
w("nodict", 1200, 7, use_dictionary="0")
w("v2", 1200, 8, data_page_version="2.0")
w("v2zstd", 1200, 9, data_page_version="2.0", compression="zstd", use_dictionary="0")
w("tiny", 700, 10, data_page_size="512", row_group_size="97")
w("fallback", 900, 15, dict_limit="3000", data_page_size="4000", row_group_size="450",
  write_batch_size="16")
w("dlba", 700, 16, encodings="text:DELTA_LENGTH_BYTE_ARRAY+token_count:DELTA_BINARY_PACKED")
w("dba", 700, 17, encodings="text:DELTA_BYTE_ARRAY+url:DELTA_BYTE_ARRAY+language_score:BYTE_STREAM_SPLIT",
  data_page_version="2.0", compression="zstd")
w("crc", 700, 11, write_page_checksum="1", data_page_version="2.0")
w("big", 40, 12, big="2", row_group_size="7")
w("allnull", 50, 13, nulls="1.0")
w("noascii", 300, 14, meanlog="4")
EOF
	mkdir fw
	"$PY" "$ROOT/tests/fetch_ref.py" want fw snappy.parquet zstd.parquet gzip.parquet brotli.parquet \
		lz4.parquet none.parquet nodict.parquet v2.parquet v2zstd.parquet tiny.parquet \
		crc.parquet big.parquet allnull.parquet noascii.parquet fallback.parquet dlba.parquet dba.parquet >fw.tsv || fail "pyarrow reference"
	while IFS="$(printf '\t')" read -r f c k; do
		case $c in text|url|token_count) ;; *) continue;; esac
		$F -c "$c" "$f" >got 2>err
		check_files "FineWeb-shaped ${f%.parquet}, column $c: as pyarrow" got "fw/$k.want"
	done <fw.tsv
	if $F big.parquet | "$PY" -c '
import sys; sys.exit(sum(len(d) > 1000000 for d in sys.stdin.buffer.read().split(b"\0")) < 2)'; then
		pass "big: documents over 1 MB"; else fail "big: no document over 1 MB"; fi
	check_eq "allnull: no documents" "$($F allnull.parquet | wc -c | tr -d ' ')" 0
	# A flipped byte inside a page that carries a CRC is caught.
	"$PY" - <<'EOF'
d = bytearray(open("crc.parquet", "rb").read())
d[len(d) // 3] ^= 0x20
open("crc-flip.parquet", "wb").write(d)
EOF
	clean_fail "crc: a flipped byte is a clean error" $F crc-flip.parquet
	check_grep "crc: says checksum" "checksum" "$TMP/.err"

	# ---- selection against pyarrow slices
	sl() { "$PY" "$ROOT/tests/fetch_ref.py" slice snappy.parquet "$@"; }
	sl 0 -1 0 - ">=" 0 all.want
	sl 1500 2100 0 - ">=" 0 rows.want
	sl 995 1003 0 - ">=" 0 edge.want
	sl 0 -1 7 - ">=" 0 limit.want
	sl 0 -1 3 - ">=" 0 lim3.want
	sl 0 -1 0 token_count ">=" 500 where.want
	sl 100 -1 20 language_score "<" 0.7 combo.want
	$F --rows 1500:2100 snappy.parquet >got; check_files "--rows 1500:2100" got rows.want
	$F --rows 995:1003 snappy.parquet >got; check_files "--rows across a row group edge" got edge.want
	$F -n 7 snappy.parquet >got; check_files "--limit 7" got limit.want
	$F --where 'token_count>=500' snappy.parquet >got; check_files "--where token_count>=500" got where.want
	$F --rows 100: -n 20 --where 'language_score < 0.7' snappy.parquet >got
	check_files "--rows 100: --limit 20 --where 'language_score < 0.7'" got combo.want
	$F --rows 0:99999 snappy.parquet >got; check_files "--rows past the end" got all.want
	"$PY" "$ROOT/tests/fetch_ref.py" slice dba.parquet 0 -1 0 language_score ">" 0.8 bss.want
	$F --where 'language_score>0.8' dba.parquet >got
	check_files "--where on a BYTE_STREAM_SPLIT column" got bss.want
	"$PY" "$ROOT/tests/fetch_ref.py" slice dlba.parquet 0 -1 0 token_count "<" 200 dbp.want
	$F --where 'token_count<200' dlba.parquet >got
	check_files "--where on a DELTA_BINARY_PACKED column" got dbp.want
	$F -n 3 allnull.parquet snappy.parquet >got; check_files "--limit counts across inputs" got lim3.want
	$F snappy.parquet zstd.parquet >got
	k=$(awk -F'\t' '$1=="zstd.parquet" && $2=="text" {print $3}' fw.tsv)
	cat all.want "fw/$k.want" >two.want
	check_files "two inputs, in order" got two.want
	$F - <snappy.parquet >got; check_files "parquet on stdin" got all.want
	$F -o out.bin snappy.parquet; check_files "-o FILE" out.bin all.want
	gzip -c snappy.parquet >snappy.gz; $F snappy.gz >got
	check_files "parquet inside gzip, by content" got all.want

	# ---- truncated and corrupted copies: clean errors, never a crash
	sz=$(wc -c <snappy.parquet)
	for cut in 11 100 $((sz / 2)) $((sz - 9)) $((sz - 5)) $((sz - 1)); do
		head -c "$cut" snappy.parquet >cut.parquet
		clean_fail "truncated to $cut bytes" $F cut.parquet
	done
	"$PY" - <<'EOF'
import random
d = open("tiny.parquet", "rb").read()
r = random.Random(3)
for i in range(16):
    b = bytearray(d)
    for _ in range(1 + i % 4):
        p = r.randrange(len(b)) if i % 2 else len(b) - 8 - r.randrange(min(2000, len(b) - 8))
        b[p] = r.randrange(256)
    open("flip%02d.parquet" % i, "wb").write(b)
EOF
	for f in flip*.parquet; do
		no_crash "$f" $F "$f"
		no_crash "$f -c token_count" $F -c token_count "$f"
	done
else
	echo "note: pyarrow missing; FineWeb-shaped variations skipped" >&2
fi

# ---- bad_data and fuzzer finds: every column read; a clean error somewhere
for f in "$PQ"/bad_data/*.parquet "$ROOT"/tests/fuzz/regress/*; do
	[ -f "$f" ] || continue
	b=$(basename "$f")
	if $F --schema "$f" >schema.txt 2>err; then
		bad=0
		# flat columns and the first 5 nested ones (test_parquet reads
		# every column of these files, in-process)
		for c in $(awk '/^column / && !/ nested$/ {print $2}' schema.txt) \
			 $(awk '/^column / && / nested$/ {print $2}' schema.txt | head -5); do
			$F -c "$c" "$f" >/dev/null 2>err
			rc=$?
			if [ $rc -gt 1 ] || grep -Eq 'Sanitizer|runtime error' err; then
				fail "$b column '$c': status $rc: $(head -c 200 err)"; bad=2
			elif [ $rc -eq 1 ]; then
				if [ "$(wc -l <err)" -ne 1 ] || ! grep -q '^gpt-fetch: ' err; then
					fail "$b column '$c': not one clear line: $(head -c 200 err)"; bad=2; fi
				[ $bad -eq 0 ] && bad=1
			fi
		done
		case $bad in
		1) pass "$b: clear errors, no crash";;
		0) fail "$b: read without complaint";;
		esac
	else
		clean_fail "$b: --schema refuses it clearly" $F --schema "$f"
		clean_fail "$b: reading refuses it clearly" $F "$f"
	fi
done

# ---- schema, columns, usage
$F --schema "$FX/fineweb-small.parquet" >schema.txt
check_grep "--schema: text column" "^column text BYTE_ARRAY STRING optional" schema.txt
check_grep "--schema: row groups and codec" "^row group 2: rows 60, .*SNAPPY" schema.txt
clean_fail "missing column names the choices" $F -c nope "$FX/fineweb-small.parquet"
check_grep "missing column: lists columns" "token_count" "$TMP/.err"
clean_fail "--rows on a nested column refused" \
	$F -c a.list.element.list.element.list.element --rows 1:2 "$PQ/data/nested_lists.snappy.parquet"
printf 'a\0b\0c\0d\0a\0b\0c\0d\0e\0a\0b\0c\0d\0e\0f\0' >nested.want
$F -c element "$PQ/data/nested_lists.snappy.parquet" >got 2>/dev/null
check_files "nested lists flattened, by the leaf's last name" got nested.want
clean_fail "--where on a string column" $F --where 'url>3' "$FX/fineweb-small.parquet"
# The codec of the text column patched to LZO (3) in the footer's thrift:
# path_in_schema ["text"] is followed by field 4, codec, SNAPPY (zigzag 2).
"$PY" - "$FX/fineweb-small.parquet" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
pat = b"\x19\x18\x04text\x15\x02"
assert d.count(pat) == 3, d.count(pat)
open("lzo.parquet", "wb").write(d.replace(pat, b"\x19\x18\x04text\x15\x06"))
EOF
clean_fail "a codec we lack is a clear error" $F lzo.parquet
check_grep "the codec is named" "codec LZO" "$TMP/.err"
$F --schema lzo.parquet >lzo.txt
check_grep "--schema names the codec" "codecs LZO" lzo.txt
check_status 2 "no input" $F
check_status 2 "bad --rows" $F --rows 5 x
check_status 2 "--rows end before start" $F --rows 9:3 x
check_status 2 "bad --where" $F --where 'score>>x' x
check_status 2 "bad --limit" $F -n 0 x
check "--help" $F --help
check_grep "--help names --where" "--where" "$TMP/.out"
clean_fail "missing file" $F no-such-file
clean_fail "--schema of a text file" $F --schema "$SHARED/data/text/the-verdict.txt"

# ---- JSONL, text, archives, compression: recognised by content
"$PY" - <<'EOF'
import json, random
r = random.Random(1)
docs = []
for i in range(500):
    n = r.randrange(0, 300)
    docs.append("".join(r.choice("abc \u00e9\u00fc\u4e2d\U0001F642\t\n\"\\/{}") for _ in range(n)))
with open("d.jsonl", "w") as f:
    for i, s in enumerate(docs):
        obj = {"id": i, "text": s, "score": i % 5}
        if i == 3:
            obj = {"id": i, "body": "no text"}
        if i == 4:
            obj["text"] = None
        f.write(json.dumps(obj, ensure_ascii=(i % 2 == 0)) + "\n")
        if i == 10:
            f.write("\n")
with open("d.want", "wb") as f:
    for i, s in enumerate(docs):
        if i not in (3, 4):
            f.write(s.encode() + b"\0")
with open("d3.want", "wb") as f:
    for i, s in enumerate(docs):
        if i not in (3, 4) and i % 5 >= 3:
            f.write(s.encode() + b"\0")
with open("rows.want", "wb") as f:
    f.write(docs[2].encode() + b"\0")
with open("body.jsonl", "w") as f:
    f.write('{"body": "one"}\n{"body": "two"}\n')
EOF
$F d.jsonl >got; check_files "JSONL: text field; nulls and missing skipped" got d.want
cp d.jsonl d.txt; $F d.txt >got; check_files "JSONL named .txt: recognised by content" got d.want
$F --where 'score>=3' d.jsonl >got; check_files "JSONL --where" got d3.want
printf 'one\0two\0' >body.want
$F --field body body.jsonl >got; check_files "JSONL --field" got body.want
gzip -c d.jsonl >d.jsonl.gz; $F d.jsonl.gz >got; check_files "JSONL.gz" got d.want
if xz -c d.jsonl >d.xz 2>/dev/null; then $F d.xz >got; check_files "JSONL.xz" got d.want; fi
if zstd -q -c d.jsonl >d.zst 2>/dev/null; then $F d.zst >got; check_files "JSONL.zst" got d.want; fi
if bzip2 -c d.jsonl >d.bz2 2>/dev/null; then $F d.bz2 >got; check_files "JSONL.bz2" got d.want; fi
cat d.jsonl.gz d.jsonl.gz >dd.gz; $F dd.gz >got; cat d.want d.want >dd.want
check_files "multi-member gzip" got dd.want
gzip -c d.jsonl | $F - >got; check_files "gzip on stdin" got d.want
$F -n 2 d.jsonl >got; check_eq "JSONL --limit" "$(tr -cd '\000' <got | wc -c | tr -d ' ')" 2
$F --rows 2:5 d.jsonl >got; check_files "JSONL --rows 2:5 (rows 3 and 4 hold no text)" got rows.want
printf 'plain text\nsecond line\n' >t1.txt
: >empty.txt
cp "$SHARED/data/text/the-verdict.txt" verdict.txt
{ cat t1.txt; printf '\0'; } >t1.want
$F t1.txt >got; check_files "text file: one document" got t1.want
$F empty.txt >got; check_eq "empty text file: no document" "$(wc -c <got | tr -d ' ')" 0
{ cat verdict.txt; printf '\0'; cat t1.want; } >vt.want
$F verdict.txt t1.txt >got; check_files "two text files" got vt.want
tar cf a.tar t1.txt d.jsonl d.jsonl.gz
cat t1.want d.want d.want >tar.want
$F a.tar >got; check_files "tar: each member by its own format" got tar.want
gzip -c a.tar >a.tgz; $F a.tgz >got; check_files "tar.gz" got tar.want
"$PY" -c '
import zipfile
z = zipfile.ZipFile("a.zip", "w", zipfile.ZIP_DEFLATED)
z.write("t1.txt"); z.write("d.jsonl"); z.close()'
$F a.zip >got; cat t1.want d.want >zip.want; check_files "zip" got zip.want
printf '\357\273\277{"text": "bom"}\r\n{"text": "crlf"}\r\n' >bom.jsonl
printf 'bom\0crlf\0' >bom.want
$F bom.jsonl >got; check_files "JSONL with a byte-order mark and CRLF lines" got bom.want
printf '{"text": "a"}\n{"text": bad}\n' >bad.jsonl
clean_fail "bad JSON: a clean error" $F bad.jsonl
check_grep "bad JSON: names line 2" "line 2" "$TMP/.err"
printf '{"text": 5}\n' >num.jsonl
clean_fail "a non-string field" $F num.jsonl
head -c 3000 d.jsonl.gz >cut.gz
clean_fail "truncated gzip" $F cut.gz
check_grep "truncated gzip: says truncated" "truncated gzip" "$TMP/.err"

# ---- every compressed input's checksum is checked.  The data is random
# bytes, which every compressor stores nearly as they are, so a flipped
# bit in the middle leaves the stream decodable and only the checksum can
# catch it; the trailer flips hit the checksum (or, for gzip, the length)
# alone.
"$PY" - <<'EOF'
import bz2, gzip, lzma, random
r = random.Random(7)
data = bytes(r.randrange(256) for _ in range(60000))
open("rnd.bin", "wb").write(data)
for name, blob in (("rnd.gz", gzip.compress(data)), ("rnd.bz2", bz2.compress(data)),
                   ("rnd.xz", lzma.compress(data)),
                   ("rnd-crc32.xz", lzma.compress(data, check=lzma.CHECK_CRC32)),
                   ("rnd-sha256.xz", lzma.compress(data, check=lzma.CHECK_SHA256))):
    open(name, "wb").write(blob)
EOF
{ cat rnd.bin; printf '\0'; } >rnd.want
command -v zstd >/dev/null && zstd -q -c rnd.bin >rnd.zst
command -v lz4 >/dev/null && lz4 -q -c rnd.bin >rnd.lz4
flip() { # FILE OFFSET OUT: FILE with one bit flipped at OFFSET (negative: from the end)
	"$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[int(sys.argv[2])] ^= 0x10; open(sys.argv[3], "wb").write(b)' "$@"
}
for f in rnd.gz rnd.bz2 rnd.xz rnd-crc32.xz rnd-sha256.xz rnd.zst rnd.lz4; do
	[ -f "$f" ] || continue
	$F "$f" >got; check_files "$f: read" got rnd.want
	flip "$f" $(($(wc -c <"$f") / 2)) "flip-$f"
	clean_fail "$f: a bit flipped in the middle is caught" $F "flip-$f"
	check_grep "$f: names the file" "flip-$f" "$TMP/.err"
	head -c $(($(wc -c <"$f") - 2)) "$f" >"cut-$f"
	clean_fail "$f: truncated" $F "cut-$f"
	check_grep "$f: says truncated" "truncated" "$TMP/.err"
done
flip rnd.gz -8 crc.gz
clean_fail "gzip: a bad CRC-32 in the trailer alone is caught" $F crc.gz
check_grep "gzip: says CRC-32" "CRC-32 mismatch.*crc.gz" "$TMP/.err"
flip rnd.gz -2 isize.gz
clean_fail "gzip: a bad length in the trailer alone is caught" $F isize.gz
check_grep "gzip: says length" "length mismatch.*isize.gz" "$TMP/.err"
if [ -f rnd.zst ]; then flip rnd.zst -2 sum.zst; clean_fail "zstd: a bad checksum alone is caught" $F sum.zst; fi
if [ -f rnd.lz4 ]; then flip rnd.lz4 -2 sum.lz4; clean_fail "lz4: a bad content checksum alone is caught" $F sum.lz4; fi
cat rnd.gz rnd.gz >two.gz
flip two.gz -8 two-crc.gz
clean_fail "gzip: the second member's CRC-32 too" $F two-crc.gz
printf 'x' >>two.gz
clean_fail "gzip: data after the last member" $F two.gz
# A tar ends before its gzip stream does: the trailer is read all the same.
tar cf r.tar rnd.bin t1.txt
gzip -c r.tar >r.tgz
flip r.tgz -8 r-crc.tgz
clean_fail "tar.gz: a bad CRC-32 after the tar's end is caught" $F r-crc.tgz
tar cf rz.tar rnd.gz
$F rz.tar >got; check_files "a .gz member of a tar" got rnd.want
tar cf rz.tar crc.gz
clean_fail "a .gz member with a bad CRC-32" $F rz.tar
check_grep "names the member" "rz.tar:crc.gz" "$TMP/.err"
gzip -c d.jsonl | head -c 12 >head.gz
clean_fail "gzip cut inside its header" $F head.gz
check_grep "says truncated" "truncated gzip" "$TMP/.err"
gzip -c rnd.bin | $F - >got; check_files "gzip on stdin" got rnd.want
clean_fail "gzip on stdin: a bad CRC-32 is caught" sh -c '$0 - <crc.gz' "$F"

# ---- options that do not apply to an input are errors, as for parquet
clean_fail "--field naming no field of a JSONL input" $F --field nope d.jsonl
check_grep "names the field and the ones there" "no field 'nope'.*id, text, score.*d.jsonl" "$TMP/.err"
clean_fail "JSONL without the default field" $F body.jsonl
clean_fail "--where naming no field of a JSONL input" $F --where 'nope>1' d.jsonl
check_grep "says so" "no --where field 'nope'" "$TMP/.err"
clean_fail "--column on a JSONL input" $F -c text d.jsonl
check_grep "says use --field" "--column is for parquet.*--field" "$TMP/.err"
clean_fail "--column on a text input" $F -c text t1.txt
clean_fail "--where on a text input" $F --where 'score>=3' t1.txt
check_grep "names the input" "--where.*text.*t1.txt" "$TMP/.err"
clean_fail "--field on a parquet input" $F --field text "$FX/fineweb-small.parquet"
clean_fail "--field on a text member of an archive" $F --field text a.tar
$F --field text d.jsonl >got; check_files "--field text, given, is the default" got d.want

# ---- a reader that goes away (`| head`) ends --schema quietly, status 0
many=$(i=0; while [ $i -lt 2000 ]; do printf ' %s' "$FX/fineweb-small.parquet"; i=$((i + 1)); done)
# shellcheck disable=SC2086
{ $F --schema $many 2>ep.err; echo $? >ep.rc; } | head -1 >/dev/null
check_eq "--schema | head: status 0" "$(cat ep.rc)" 0
check_eq "--schema | head: nothing on stderr" "$(cat ep.err)" ""

# ---- -h is --help; --help and gpt-fetch(1) name the same options
help_opts() { grep -oE -- '(^|[][ ,|(])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[][ ,|(]*//' | sort -u | tr '\n' ' '; }
man_opts() { awk '/^\.Sh /{o = ($2 == "OPTIONS")} o && /^\.It /{for (i = 1; i < NF; i++) if ($i == "Fl") print "-" $(i + 1)}' "$1" | sort -u | tr '\n' ' '; }
check "-h" $F -h
check_eq "-h prints --help" "$(cat "$TMP/.out")" "$($F --help)"
check_eq "--help lists what gpt-fetch(1) documents, and only that" \
	"$($F --help | help_opts)" "$(man_opts "$ROOT/man/man1/gpt-fetch.1")"
check "-q" $F -q d.jsonl
check_eq "-q: nothing on stderr" "$(cat "$TMP/.err")" ""


# ---- URLs through the download cache (tests/httpd.py on 127.0.0.1)
unset GPT_OFFLINE HF_HUB_OFFLINE HF_TOKEN HF_ENDPOINT http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
no_proxy='*' NO_PROXY='*' GPT_HTTP_BACKOFF_MS=1
export no_proxy NO_PROXY GPT_HTTP_BACKOFF_MS
mkdir -p www/datasets/o/n/resolve/main/data
cp "$FX/fineweb-small.parquet" www/fw.parquet
cp "$FX/fineweb-small.parquet" www/datasets/o/n/resolve/main/data/x.parquet
cp d.jsonl.gz www/d.jsonl.gz
httpd_start www
U=$HTTPD_URL
$F "$FX/fineweb-small.parquet" >local.out
$F -q --cache c "$U/_f/drop=20000/fw.parquet" >got 2>err
check_files "URL with a dropped connection: same documents" got local.out
HF_ENDPOINT=$U $F -q --cache c hf://datasets/o/n/data/x.parquet >got 2>err
check_files "hf:// URL through HF_ENDPOINT" got local.out
$F -q --cache c -j 3 "$U/fw.parquet" "$U/d.jsonl.gz" "$FX/fineweb-small.parquet" >got 2>err
cat local.out d.want local.out >j.want
check_files "-j 3: URLs downloaded ahead, read in order" got j.want
$F --offline --cache c "$U/fw.parquet" >got 2>err
check_files "--offline: from the cache" got local.out
clean_fail "--offline: not in the cache" $F --offline --cache c "$U/nothere.parquet"
httpd_stop
