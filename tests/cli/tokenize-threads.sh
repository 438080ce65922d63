# gpt-tokenize -j N: the pipeline (a reader cutting chunks, N encoding
# workers, an in-order writer) writes byte for byte what -j 1 writes, in
# every output form, for input arriving in bursts through a pipe, for input
# ending mid-character, mid-piece or mid-special, and in bounded memory.
# -j 1 is the reference: tokenize.sh checks it against tiktoken.
. "$ROOT/tests/lib.sh"
T=gpt-tokenize

# A few MB of mixed text: English prose, the fuzz strings (every script,
# emoji, controls, long runs), arbitrary bytes, NULs and special texts,
# shuffled in blocks of up to 64 KB so that chunk cuts land everywhere.
"$PY" "$ROOT/tests/tokenize_ref.py" fuzz "$TMP/fuzz" 30000 3 &&
"$PY" "$ROOT/tests/tokenize_ref.py" randbytes "$TMP/rb" 400000 5 ||
	fail "test inputs not generated"
"$PY" - "$TMP/mix" "$TMP/fuzz" "$TMP/rb" "$SHARED"/data/text/*.txt <<'EOF' || fail "mixed text not generated"
import random, sys
r = random.Random(21)
srcs = [open(p, "rb").read() for p in sys.argv[2:]]
blocks = []
for s in srcs:
    i = 0
    while i < len(s):
        n = r.randint(1, 65536)
        blocks.append(s[i:i + n])
        i += n
blocks = blocks * 2
r.shuffle(blocks)
out = bytearray()
for b in blocks:
    out += b
    k = r.random()
    if k < 0.2:
        out += b"<|endoftext|>"
    elif k < 0.3:
        out += b"\0"
open(sys.argv[1], "wb").write(bytes(out))
EOF
size=$(wc -c <"$TMP/mix")
[ "$size" -gt 3000000 ] && pass "mixed text is $size bytes" || fail "mixed text is only $size bytes"

# same NAME FILE ARGS...: -j 2, 3 and 7 write what -j 1 writes, with the
# default chunk (a few chunks, fewer than -j 7's workers) and with 4 KB
# chunks (hundreds: the ring of slots wraps many times).
same() {
	_n=$1 _f=$2; shift 2
	$T -q "$@" <"$_f" >"$TMP/ref" 2>"$TMP/err" || { fail "$_n: -j 1 failed: $(head -c 200 "$TMP/err")"; return; }
	[ -s "$TMP/ref" ] || fail "$_n: -j 1 wrote nothing"
	for _j in 2 3 7; do
		for _c in "" "--chunk 4096"; do
			$T -q -j $_j $_c "$@" <"$_f" >"$TMP/got" 2>"$TMP/err" ||
				{ fail "$_n -j $_j $_c: failed: $(head -c 200 "$TMP/err")"; continue; }
			check_files "$_n -j $_j $_c" "$TMP/ref" "$TMP/got"
		done
	done
}
for f in text u16 u32; do
	same "-f $f" "$TMP/mix" -f $f
	same "-z -f $f" "$TMP/mix" -z -f $f
	same "--allow-special -f $f" "$TMP/mix" --allow-special -f $f
done
same "-c" "$TMP/mix" -c
same "-z -c" "$TMP/mix" -z -c
same "-z --allow-special -c" "$TMP/mix" -z --allow-special -c
same "-z --allow-special -f text" "$TMP/mix" -z --allow-special
same "--vocab bytes" "$TMP/mix" --vocab bytes
same "--vocab bytes -z -f u16" "$TMP/mix" --vocab bytes -z -f u16
same "--vocab bytes --allow-special -f u16" "$TMP/mix" --vocab bytes --allow-special -f u16

# Inputs that end mid-character, mid-piece, mid-special and right after a
# NUL: the last chunk ends where the input does, never earlier.
head -c 300000 "$TMP/mix" >"$TMP/cut"
printf 'Hello w\303' >>"$TMP/cut"
same "ends mid-character" "$TMP/cut"
same "ends mid-character -z" "$TMP/cut" -z -f u32
head -c 300000 "$TMP/mix" >"$TMP/cut"
printf ' internationalizati' >>"$TMP/cut"
same "ends mid-piece" "$TMP/cut"
head -c 300000 "$TMP/mix" >"$TMP/cut"
printf ' end<|endoft' >>"$TMP/cut"
same "ends mid-special --allow-special" "$TMP/cut" --allow-special
same "ends mid-special, bytes" "$TMP/cut" --vocab bytes --allow-special
head -c 300000 "$TMP/mix" >"$TMP/cut"
printf 'doc\0' >>"$TMP/cut"
same "ends after a NUL -z -c" "$TMP/cut" -z -c
same "ends after a NUL -z" "$TMP/cut" -z
for n in 1 2 3 5 4099 4100 4101; do  # every cut of a 4-byte character
	head -c $((200000 + n)) "$TMP/mix" >"$TMP/cut"
	printf 'x\360\237\230\200' | head -c $n >>"$TMP/cut"
	$T -q <"$TMP/cut" >"$TMP/ref"
	$T -q -j 3 --chunk 4096 <"$TMP/cut" >"$TMP/got"
	check_files "ends $n bytes into 'x' and an emoji" "$TMP/ref" "$TMP/got"
done

# Input arriving in bursts through a pipe: the reader must wait for more
# instead of cutting where the data ran out.  Pauses fall mid-character
# (byte 1000001 of the mixed text may be anything) and mid-word.
$T -q -f u32 <"$TMP/mix" >"$TMP/ref"
for j in 2 3 7; do
	for c in "" "--chunk 4096"; do
		(head -c 1000001 "$TMP/mix"; sleep 0.2; tail -c +1000002 "$TMP/mix") |
			$T -q -f u32 -j $j $c >"$TMP/got"
		check_files "two bursts through a pipe -j $j $c" "$TMP/ref" "$TMP/got"
	done
done
printf 'Hello internationalization of caf\303\251s' >"$TMP/w"
$T -q <"$TMP/w" >"$TMP/ref"
(printf 'Hello internatio'; sleep 0.2; printf 'nalization of caf\303'; sleep 0.2; printf '\251s') |
	$T -q -j 3 --chunk 64 >"$TMP/got"
check_files "bursts split a word and a character" "$TMP/ref" "$TMP/got"
dd if="$TMP/mix" bs=4000 count=200 status=none >"$TMP/head"
$T -q -z <"$TMP/head" >"$TMP/ref"
dd if="$TMP/head" bs=997 status=none | $T -q -z -j 7 --chunk 64 >"$TMP/got"
check_files "997-byte writes through a pipe -z -j 7" "$TMP/ref" "$TMP/got"
$T -q -j 3 "$TMP/cut" "$TMP/w" "$TMP/head" >"$TMP/got"
cat "$TMP/cut" "$TMP/w" "$TMP/head" | $T -q >"$TMP/ref"
check_files "several files read as one stream -j 3" "$TMP/ref" "$TMP/got"
check_eq "empty input -j 3" "$(printf '' | $T -q -j 3 | od -An -c | tr -d ' ')" '\n'
check_eq "empty input -j 3 -z" "$(printf '' | $T -q -j 3 -z | wc -c | tr -d ' ')" "0"
check_eq "empty input -j 3 -c" "$(printf '' | $T -q -j 3 -c)" "0"

# Memory stays bounded on long input: 2N+2 slots of one chunk each, not the
# input.  (RSS of -j 1 here is about 25 MB, -j 3 35 MB.)
if [ -x /usr/bin/time ]; then
	yes 'the quick brown fox jumps over' | head -c 100000000 |
		/usr/bin/time -f %M -o "$TMP/rss" $T -q -j 3 -f u16 >/dev/null
	rss=$(tail -1 "$TMP/rss")
	[ "$rss" -lt 150000 ] && pass "100 MB through -j 3 in $rss KB" ||
		fail "100 MB through -j 3 took $rss KB of memory"
else
	echo "note: no /usr/bin/time; memory bound not checked"
fi

# A closed pipe ends the program quietly, workers and all.
{ $T -q -j 3 <"$TMP/mix" 2>"$TMP/err"; echo $? >"$TMP/rc"; } | head -c 100 >/dev/null
check_eq "| head ends -j 3 with status 0" "$(cat "$TMP/rc")" "0"
check_eq "| head ends -j 3 quietly" "$(cat "$TMP/err")" ""
