# gpt-tokenize: exactness against tiktoken (live when the virtualenv has it,
# and always against committed golden hashes of tiktoken's output), round
# trips, thread and chunk independence, options and errors.
. "$ROOT/tests/lib.sh"
REF="$PY $ROOT/tests/tokenize_ref.py"
GOLD=$ROOT/tests/fixtures/tokenize/golden.sha256
T=gpt-tokenize

$REF corpus "$TMP/c" && $REF fuzz "$TMP/fuzz.docs" 100000 1 || fail "test inputs not generated"
cp "$TMP/fuzz.docs" "$TMP/c/fuzz.docs"
live=0
have_tiktoken && live=1
for f in "$TMP"/c/*; do
	n=$(basename "$f")
	case $n in *.docs) z=-z;; *) z=;; esac
	$T $z <"$f" >"$TMP/out" 2>"$TMP/err" || fail "$n: gpt-tokenize failed: $(head -c 200 "$TMP/err")"
	got=$(sha256sum <"$TMP/out" | cut -d' ' -f1)
	want=$(awk -v n="$n" '$2 == n { print $1 }' "$GOLD")
	check_eq "golden $n" "$got" "$want"
	if [ $live = 1 ]; then
		$REF expect "$f" $z >"$TMP/exp"
		if cmp -s "$TMP/out" "$TMP/exp"; then pass "tiktoken $n"; else
			fail "tiktoken $n: $($REF firstdiff "$TMP/out" "$TMP/exp")"; fi
	fi
done
[ $live = 1 ] || echo "note: tiktoken not installed; compared with golden hashes only"

# Thread count, chunk size and read sizes never change the output.
cat "$TMP"/c/*.txt "$TMP/fuzz.docs" >"$TMP/all"
$T <"$TMP/all" >"$TMP/a1"
$T -j 2 --chunk 100 <"$TMP/all" >"$TMP/a2"
check_files "-j 2 with tiny chunks equals -j 1" "$TMP/a1" "$TMP/a2"
$T -z -j 2 --chunk 64 <"$TMP/all" >"$TMP/z2"
$T -z <"$TMP/all" >"$TMP/z1"
check_files "-z -j 2 with tiny chunks equals -j 1" "$TMP/z1" "$TMP/z2"
dd if="$TMP/c/text-the-verdict.txt" bs=1 status=none | $T --chunk 64 >"$TMP/slow"
$T <"$TMP/c/text-the-verdict.txt" >"$TMP/fast"
check_files "1-byte writes through a pipe" "$TMP/slow" "$TMP/fast"
$T "$TMP/c/text-botchan.txt" "$TMP/c/instruct.txt" >"$TMP/files"
cat "$TMP/c/text-botchan.txt" "$TMP/c/instruct.txt" | $T >"$TMP/piped"
check_files "files are read as one stream" "$TMP/files" "$TMP/piped"

# u32 ids are encoded straight into the output: the same ids as the text
# form, with a piece of more ids than one batch (a 200,000-letter word).
{ cat "$TMP/all"; $PY -c "import random; r = random.Random(3); print(''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(200000)))"; cat "$TMP/all"; } >"$TMP/u32in"
$T <"$TMP/u32in" | tr -s ' \n' '\n\n' | grep -v '^$' >"$TMP/u32.text"
$T -f u32 <"$TMP/u32in" | od -An -v -tu4 | tr -s ' \n' '\n\n' | grep -v '^$' >"$TMP/u32.bin"
check_files "-f u32 gives the text form's ids, long pieces included" "$TMP/u32.text" "$TMP/u32.bin"
check_eq "the long word is over 8192 ids" "$(($(wc -l <"$TMP/u32.text") - 2 * $(tr -s ' \n' '\n\n' <"$TMP/a1" | grep -vc '^$') > 8192))" 1

# One regular file is mapped, a pipe is read: the same ids either way, from
# any starting offset, and the file's offset is left at its end.
cat "$TMP/all" | $T >"$TMP/p1"
check_files "a pipe and a mapped file give the same ids" "$TMP/a1" "$TMP/p1"
cat "$TMP/all" | $T -j 2 --chunk 100 >"$TMP/p2"
check_files "a pipe and a mapped file, 2 threads, tiny chunks" "$TMP/a2" "$TMP/p2"
(dd bs=4099 count=1 of=/dev/null status=none; $T) <"$TMP/all" >"$TMP/off"
tail -c +4100 "$TMP/all" | $T >"$TMP/offp"
check_files "a mapped file from an offset inside a page" "$TMP/offp" "$TMP/off"
check_eq "the input's offset is left at its end" "$( ($T -c >/dev/null; wc -c) <"$TMP/all")" 0
# Grown and shrunk while mapped: gpt-tokenize blocks writing the first
# chunk's ids into a full pipe, the file changes, then the pipe drains.
for i in 1 2 3 4 5 6; do cat "$TMP/all"; done | head -c 2500000 >"$TMP/grow0"
[ "$(wc -c <"$TMP/grow0")" -eq 2500000 ] || fail "the growing file is too short"
mkfifo "$TMP/fifo"
changed_while_mapped() { # how: grow or shrink; output in $TMP/g.out, status in $TMP/g.rc
	cp "$TMP/grow0" "$TMP/grow"
	($T "$TMP/grow" >"$TMP/fifo" 2>"$TMP/g.err"; echo $? >"$TMP/g.rc") &
	exec 3<"$TMP/fifo"
	dd bs=1 count=1 status=none <&3 >"$TMP/g.out"
	case $1 in
	grow) printf 'lo world, and then some more words' >>"$TMP/grow";;
	shrink) truncate -s 1200000 "$TMP/grow";;
	esac
	cat <&3 >>"$TMP/g.out"
	exec 3<&-
	wait
}
changed_while_mapped grow
$T <"$TMP/grow" >"$TMP/g.want"
check_files "what is appended to a mapped file is read after it" "$TMP/g.want" "$TMP/g.out"
changed_while_mapped shrink
check_eq "a file cut short while mapped: exit 1" "$(cat "$TMP/g.rc")" 1
check_grep "a file cut short while mapped: one line says so" "shrank while it was read" "$TMP/g.err"

# Round trips on arbitrary bytes, invalid UTF-8 and NULs included.
$REF randbytes "$TMP/rb" 2000000 7
for f in text u16 u32; do
	$T -f $f <"$TMP/rb" | $T -d -f $f >"$TMP/rt"
	check_files "round trip -f $f" "$TMP/rb" "$TMP/rt"
	$T -z -f $f -j 2 --chunk 1000 <"$TMP/rb" | $T -d -z -f $f >"$TMP/rt"
	check_files "round trip -z -f $f" "$TMP/rb" "$TMP/rt"
done
$T <"$TMP/fuzz.docs" | $T -d >"$TMP/rt"
check_files "round trip of the fuzz strings" "$TMP/fuzz.docs" "$TMP/rt"

# Output forms.
check_eq "text form" "$(printf 'Hello world' | $T)" "15496 995"
check_eq "-z text form: one line per document" "$(printf 'a\0b\0c' | $T -z)" "$(printf '64 50256\n65 50256\n66')"
check_eq "empty input" "$(printf '' | $T -z | wc -c)" "0"
check_eq "u16 is little-endian" "$(printf 'Hello' | $T -f u16 | od -An -tx1 | tr -d ' \n')" "883c"
check_eq "-c counts tokens" "$(printf 'Hello world' | $T -c)" "2"
check_eq "-c -z counts per document" "$(printf 'Hello world\0a\0' | $T -z -c | tr '\n' ,)" "2,1,"
check_eq "literal <|endoftext|> is text by default" "$(printf '<|endoftext|>' | $T)" "27 91 437 1659 5239 91 29"
check_eq "--allow-special" "$(printf 'a<|endoftext|>b' | $T --allow-special)" "64 50256 65"
check_eq "-d -z turns 50256 into NUL" "$(printf '64 50256 65' | $T -d -z | od -An -c | tr -s ' ')" " a \\0 b"
check_eq "-d without -z spells it out" "$(printf '64 50256' | $T -d)" "a<|endoftext|>"

# The same ranks from a .tiktoken file.
$T --vocab "$SHARED/data/gpt2/gpt2.tiktoken" <"$TMP/c/text-botchan.txt" >"$TMP/tk"
$T <"$TMP/c/text-botchan.txt" >"$TMP/dir"
check_files "--vocab gpt2.tiktoken equals encoder.json + vocab.bpe" "$TMP/tk" "$TMP/dir"

# Errors: clear message, right status, no crash.
check_status 1 "id outside the vocabulary" sh -c 'printf "1 2 50257" | gpt-tokenize -d'
check_grep "the error names the id and its position" "50257 at position 2" "$TMP/.err"
check_status 1 "text ids that are not numbers" sh -c 'printf "1 x" | gpt-tokenize -d'
check_status 1 "u16 input ending mid-token" sh -c 'printf "abc" | gpt-tokenize -d -f u16'
check_status 2 "unknown option" $T --bogus
check_status 2 "bad -j" $T -j 0
check_status 2 "bad format" $T -f u8
check_status 2 "-c with -d" $T -c -d
check_status 1 "missing vocabulary offline" env GPT_VOCAB= XDG_CACHE_HOME=$TMP/none HOME=$TMP/none GPT_OFFLINE=1 $T </dev/null
check_grep "says where to put the vocabulary" "encoder.json" "$TMP/.err"
check_status 1 "vocabulary that is not one" $T --vocab "$SHARED/data/text/the-verdict.txt" </dev/null
# A GPT-2 folder whose encoder.json is broken: one line naming the file.
G=$TMP/badgpt2
mkdir -p "$G"
cp "$SHARED/data/gpt2/vocab.bpe" "$G/"
head -c 100000 "$SHARED/data/gpt2/encoder.json" >"$G/encoder.json"
check_status 1 "encoder.json cut short" $T --vocab "$G" </dev/null
check_grep "  the error says so and names the file" "malformed JSON.*encoder.json" "$TMP/.err"
check_eq "  in one line" "$(wc -l <"$TMP/.err")" "1"
sed 's/"!": 0,/"!": 0.5,/' "$SHARED/data/gpt2/encoder.json" >"$G/encoder.json"
check_status 1 "a token id that is not whole" $T --vocab "$G" </dev/null
check_grep "  the error names the token" "token id of '!'" "$TMP/.err"
sed 's/"!": 0,/"!": "0",/' "$SHARED/data/gpt2/encoder.json" >"$G/encoder.json"
check_status 1 "a token id that is a string" $T --vocab "$G" </dev/null
{ cat "$SHARED/data/gpt2/encoder.json"; echo ' {}'; } >"$G/encoder.json"
check_status 1 "trailing characters after the object" $T --vocab "$G" </dev/null
check_grep "  named" "trailing characters" "$TMP/.err"
echo '[1, 2]' >"$G/encoder.json"
check_status 1 "an array, not an object" $T --vocab "$G" </dev/null
sed 's/"!": 0,/"!": 1,/' "$SHARED/data/gpt2/encoder.json" >"$G/encoder.json"
check_status 1 "two tokens with one id" $T --vocab "$G" </dev/null
check_grep "  named" "appears twice" "$TMP/.err"
check_status 0 "--help" $T --help
check_grep "--help prints usage to stdout" "usage: gpt-tokenize" "$TMP/.out"
script -qec "gpt-tokenize -f u16 < $SHARED/data/text/the-verdict.txt" /dev/null >"$TMP/tty" 2>&1
check_grep "binary output to a terminal is refused" "refusing to write binary" "$TMP/tty"

# A vocabulary over 65,536 ids cannot be written as u16.
$PY - "$TMP/big.tiktoken" <<'PY'
import base64, sys
with open(sys.argv[1], "w") as f:
    r = 0
    for b in range(256):
        f.write("%s %d\n" % (base64.b64encode(bytes([b])).decode(), r)); r += 1
    for a in range(256):
        for b in range(256):
            f.write("%s %d\n" % (base64.b64encode(bytes([a, b])).decode(), r)); r += 1
PY
check_status 2 "u16 refused for a 65,793-id vocabulary" sh -c "printf hi | gpt-tokenize --vocab $TMP/big.tiktoken -f u16"
check_eq "the big vocabulary still encodes as u32" "$(printf 'hi' | $T --vocab "$TMP/big.tiktoken" -f u32 | $T --vocab "$TMP/big.tiktoken" -d -f u32)" "hi"

# Memory stays bounded on a long stream (200 MB through a pipe).
$PY - <<'PY' >"$TMP/rss"
import resource, subprocess
p = subprocess.Popen("yes 'The quick brown fox, 1234 jumps; naïve café' | head -c 200000000 | gpt-tokenize -c -j 2",
                     shell=True, stdout=subprocess.PIPE)
out = p.communicate()[0]
print(out.decode().strip(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
PY
read -r ntok rss <"$TMP/rss"
# tiktoken: the 46-byte line is 12 tokens; 4,347,826 lines and "The " (2).
check_eq "200 MB stream is counted" "$ntok" "52173914"
if [ "${rss:-9999}" -lt 150 ]; then pass "200 MB stream in ${rss} MB of memory"; else fail "200 MB stream used ${rss} MB"; fi

# Without a vocabulary anywhere, it is downloaded (from a local server
# here), checked against OpenAI's SHA-256 sums and cached; a file whose
# sum is wrong is refused and leaves no cache entry.
W=$TMP/www
mkdir -p "$W/good" "$W/bad"
cp "$SHARED/data/gpt2/encoder.json" "$SHARED/data/gpt2/vocab.bpe" "$W/good/"
cp "$W/good/vocab.bpe" "$W/bad/"
sed 's/"!": 0/"!": 0 /' "$W/good/encoder.json" >"$W/bad/encoder.json"
httpd_start "$W"
U=$HTTPD_URL
dl() { env -u GPT_VOCAB -u GPT_OFFLINE no_proxy='*' NO_PROXY='*' HOME="$TMP/home" "$@"; }
dl XDG_CACHE_HOME="$TMP/c1" GPT_VOCAB_URL="$U/good" $T -q <"$TMP/c/text-the-verdict.txt" >"$TMP/dl.out" 2>"$TMP/dl.err"
$T <"$TMP/c/text-the-verdict.txt" >"$TMP/dl.want"
check_files "downloaded vocabulary encodes the same" "$TMP/dl.out" "$TMP/dl.want"
check_eq "vocabulary installed in the user cache" "$(ls "$TMP/c1/gpt/gpt2" | tr '\n' ' ')" "encoder.json vocab.bpe "
check_status 0 "cached vocabulary used offline" dl XDG_CACHE_HOME="$TMP/c1" GPT_OFFLINE=1 $T -c "$TMP/c/text-the-verdict.txt"
check_status 1 "a vocabulary with the wrong checksum is refused" dl XDG_CACHE_HOME="$TMP/c2" GPT_VOCAB_URL="$U/bad" $T -q </dev/null
check_grep "the error names the checksum" "(sha|SHA).?256" "$TMP/.err"
check_eq "no vocabulary cached after the failure" "$(ls "$TMP/c2/gpt/gpt2" 2>/dev/null | grep -c encoder)" "0"

# The GPT-4 (cl100k) split pattern, named in a rank file's .meta, checked
# with GPT-2's ranks against tiktoken using the same pattern.
cp "$SHARED/data/gpt2/gpt2.tiktoken" "$TMP/g4.tiktoken"
printf 'name gpt2-gpt4split\npattern gpt4\nspecial <|endoftext|> 50256\n' >"$TMP/g4.tiktoken.meta"
$T --vocab "$TMP/g4.tiktoken" -z <"$TMP/fuzz.docs" >"$TMP/g4.out"
check_eq "golden fuzz.docs with the GPT-4 split" "$(sha256sum <"$TMP/g4.out" | cut -d' ' -f1)" \
	"$(awk '$2 == "fuzz.docs.gpt4" { print $1 }' "$GOLD")"
$T --vocab "$TMP/g4.tiktoken" -z -j 2 --chunk 64 <"$TMP/fuzz.docs" >"$TMP/g4.chunked"
check_files "GPT-4 split: tiny chunks on 2 threads change nothing" "$TMP/g4.out" "$TMP/g4.chunked"
if [ $live = 1 ]; then
	for f in "$TMP"/c/*.docs; do
		$T --vocab "$TMP/g4.tiktoken" -z <"$f" >"$TMP/g4.o"
		$REF expect "$f" -z gpt4 >"$TMP/g4.e"
		if cmp -s "$TMP/g4.o" "$TMP/g4.e"; then pass "tiktoken GPT-4 split $(basename "$f")"; else
			fail "tiktoken GPT-4 split $(basename "$f"): $($REF firstdiff "$TMP/g4.o" "$TMP/g4.e")"; fi
	done
fi

# -h is --help; --help and gpt-tokenize(1) name the same options; -q is quiet.
help_opts() { grep -oE -- '(^|[][ ,|(])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[][ ,|(]*//' | sort -u | tr '\n' ' '; }
man_opts() { awk '/^\.Sh /{o = ($2 == "OPTIONS")} o && /^\.It /{for (i = 1; i < NF; i++) if ($i == "Fl") print "-" $(i + 1)}' "$1" | sort -u | tr '\n' ' '; }
check "-h" $T -h
check_eq "-h prints --help" "$(cat "$TMP/.out")" "$($T --help)"
check_eq "--help lists what gpt-tokenize(1) documents, and only that" \
	"$($T --help | help_opts)" "$(man_opts "$ROOT/man/man1/gpt-tokenize.1")"
check "-q after --progress" $T --progress -q "$SHARED/data/text/the-verdict.txt"
check_eq "-q: no progress line" "$(cat "$TMP/.err")" ""
