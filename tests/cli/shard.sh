# gpt-shard: round trips of every form and of ids at the vocabulary's
# edges, zstd compatibility, splitting and naming, refusals, corruption
# and truncation caught by verify, and interrupted writes that leave only
# complete shards.
. "$ROOT/tests/lib.sh"
S=gpt-shard
cd "$TMP" || exit 1

# Test streams: random ids with 0, 50255, 50256 at the edges; u32 ids of
# a 100,000-id vocabulary.
"$PY" - <<'EOF' || fail "test inputs not generated"
import numpy as np
r = np.random.default_rng(5)
a = r.integers(0, 50257, size=250000).astype('<u2')
a[:4] = [0, 50255, 50256, 0]
a[-1] = 50256
a[1000::777] = 50256
a.tofile('ids.u16')
a.astype('<u4').tofile('ids.u32')
open('ids.txt', 'w').write(' '.join(map(str, a.tolist())) + '\n')
b = r.integers(0, 100000, size=70000).astype('<u4')
b[:2] = [0, 99999]
b.tofile('big.u32')
EOF

# Round trips: every input form to every output form.
for f in u16 u32 txt; do
	fmt=$f; [ $f = txt ] && fmt=text
	rm -f rt-*
	check "write -f $fmt" $S -q -f $fmt -o rt --val-tokens 60000 --shard-tokens 100000 --frame-tokens 10000 ids.$f
	check_eq "-f $fmt: shard names" "$(ls rt-* | tr '\n' ' ')" \
		"rt-train-000000.tok.zst rt-train-000001.tok.zst rt-val-000000.tok.zst "
	$S cat -f u16 rt-val-* rt-train-* >back.u16
	check_files "-f $fmt: cat -f u16 gives the ids back" back.u16 ids.u16
	$S cat -f u32 rt-val-* rt-train-* >back.u32
	check_files "-f $fmt: cat -f u32" back.u32 ids.u32
done
$S cat rt-val-* rt-train-* | tr -s ' \n' '\n\n' >back.txt
tr -s ' \n' '\n\n' <ids.txt >want.txt
check_files "cat -f text" back.txt want.txt
check_eq "text form: a line ends after each end-of-text id" \
	"$($S cat rt-val-000000.tok.zst | head -1 | awk '{print $NF}')" 50256
for f in rt-val-* rt-train-*; do zstd -qdc "$f"; done >zstd.u16
check_files "zstd -dc yields the raw u16 tokens" zstd.u16 ids.u16
mkdir j3
$S -q -f u16 -j 3 -o j3/rt --val-tokens 60000 --shard-tokens 100000 --frame-tokens 10000 ids.u16
for f in rt-*; do cmp -s "$f" "j3/$f" || echo "$f differs"; done >j3.diff
check_eq "-j 3 writes the same shards as -j 1" "$(cat j3.diff)" ""
check "verify" $S verify rt-*
check_grep "verify says ok" "rt-val-000000.tok.zst: ok \(60000 tokens" .out

check "vocabulary of 100000 ids, u32" $S -q -f u32 --vocab-size 100000 --tokenizer my-bpe -o big --val-tokens 0 big.u32
$S cat -f u32 big-train-000000.tok.zst >back.big
check_files "u32 round trip with ids 0 and 99999" back.big big.u32
$S info --json big-train-000000.tok.zst >info.json
check_eq "info --json" "$("$PY" -c 'import json,sys; d=json.load(open("info.json")); print(d["tokenizer"], d["vocab_size"], d["token_bytes"], d["tokens"], d["eot"])')" \
	"my-bpe 100000 4 70000 99999"
$S info rt-val-000000.tok.zst >info.txt
check_grep "info: documents counted" "documents +[0-9]+" info.txt
docs=$("$PY" -c 'import numpy as np; print(int((np.fromfile("ids.u16","<u2")[:60000]==50256).sum()))')
check_grep "info: the right document count" "documents +$docs\$" info.txt
check_grep "info: tokenizer gpt2" "tokenizer +gpt2" info.txt

# Refusals.
check_status 2 "u16 input with a vocabulary over 65536" $S -f u16 --vocab-size 70000 -o no ids.u16
check_grep "says why" "does not fit u16" .err
check_status 1 "ids over --vocab-size" $S -q -f u16 --vocab-size 1000 -o no ids.u16
check_grep "names the id" "outside the vocabulary \(1000 ids\)" .err
head -c 7 ids.u16 >odd.u16
check_status 1 "input ends mid-token" $S -q -f u16 -o no odd.u16
check_grep "says mid-token" "ends mid-token" .err
printf '1 2 3 x\n' >bad.txt
check_status 1 "a non-digit in text" $S -q -o no bad.txt
check_grep "names offset and character" "byte 6 \('x'\)" .err
check_status 1 "text read as u16" $S -q -f u16 -o no ids.txt
check_eq "nothing written for refused inputs" "$(ls no-* 2>/dev/null; ls .*.tmp.* 2>/dev/null)" ""
: >empty
check "empty input" $S -f u16 -o em empty
check_grep "empty input: says so" "no tokens" .err
check_eq "empty input: no shards" "$(ls em-* 2>/dev/null)" ""
check_status 1 "existing shard is not overwritten" $S -q -f u16 -o rt ids.u16
check_grep "names the shard" "already exists.*rt-val-000000" .err
mkdir ex
cp rt-train-000001.tok.zst ex/e-train-000001.tok.zst
check_status 1 "an existing shard the run would reach later" \
	$S -q -f u16 -o ex/e --val-tokens 100 --shard-tokens 10000 ids.u16
check_grep "names it" "already exists.*ex/e-train-000001" .err
check_eq "and nothing is written before the refusal" "$(ls -A ex)" "e-train-000001.tok.zst"
head -c 2000 ids.u16 >k1.u16
check "--force overwrites" $S -q -f u16 -o ex/e --val-tokens 0 --shard-tokens 1000 --force k1.u16
check_grep "and warns of an older shard after the last one written" \
	"older shard.*ex/e-train-000001" .err
check "--start-index avoids the clash" $S -q -f u16 -o rt --start-index 5 --val-tokens 0 ids.u16
check "--start-index: numbered from 5" test -f rt-train-000005.tok.zst
check_status 2 "bad --level" $S --level 99 -o x ids.u16
check_status 2 "missing -o" $S ids.u16
check_status 1 "verify a non-shard" $S verify ids.u16
check_grep "not a shard" "not a gpt-shard file.*ids.u16" .err

# Corruption: every single-byte flip is reported, naming the file.
head -c 40000 ids.u16 >small.u16
$S -q -f u16 -o c --val-tokens 0 --frame-tokens 5000 small.u16
cp c-train-000000.tok.zst good.shard
mkdir flips
"$PY" - <<'EOF2' || fail "flipped shards not generated"
import random
b = open('good.shard', 'rb').read()
n = len(b)
r = random.Random(3)
pos = list(range(0, 128)) + list(range(n - 64, n)) + [r.randrange(n) for _ in range(150)]
for k, p in enumerate(pos):
    c = bytearray(b)
    c[p] ^= 1 << r.randrange(8)
    open('flips/%d-at-%d.tok.zst' % (k, p), 'wb').write(c)
EOF2
missed=0 unnamed=0
for f in flips/*; do
	$S verify "$f" >/dev/null 2>flip.err
	rc=$?
	[ $rc -eq 1 ] || { missed=$((missed + 1)); echo "verify: $f not caught (status $rc)"; }
	grep -q "$f" flip.err || unnamed=$((unnamed + 1))
	$S cat -f u16 "$f" >/dev/null 2>&1
	rc=$?
	[ $rc -eq 1 ] || { missed=$((missed + 1)); echo "cat: $f not caught (status $rc)"; }
done
check_eq "every flipped byte ($(ls flips | wc -l) files) caught by verify and cat" "$missed" 0
check_eq "every report names the file" "$unnamed" 0
"$PY" -c "b=bytearray(open('good.shard','rb').read()); b[2000]^=1; open('c-train-000000.tok.zst','wb').write(b)"
check_status 1 "flip in a frame" $S verify c-train-000000.tok.zst
check_grep "names the frame" "frame [0-9]+" .err
for len in 0 100 128 129 2000 $(($(wc -c <good.shard) - 1)); do
	head -c "$len" good.shard >c-train-000000.tok.zst
	check_status 1 "truncated to $len bytes" $S verify c-train-000000.tok.zst
done

# Through the tokenizer: text -> ids -> shards -> ids -> text.
if [ -x "$BIN/gpt-tokenize" ]; then
	{ cat "$SHARED/data/text/the-verdict.txt"; printf '\0second document\0'; } >docs
	gpt-tokenize -z -f u16 docs | $S -q -f u16 -o tk --val-tokens 1000 --frame-tokens 999
	$S cat tk-val-000000.tok.zst tk-train-000000.tok.zst | gpt-tokenize -d -z >docs.back
	check_files "gpt-tokenize -z | gpt-shard | gpt-shard cat | gpt-tokenize -d -z" docs.back docs
	check_eq "two documents" "$($S info --json tk-* | "$PY" -c 'import sys,json; print(sum(json.loads(l)["documents"] for l in sys.stdin))')" 2
fi

# A full disk (file size limit, SIGXFSZ ignored) fails and leaves nothing.
mkdir full
(ulimit -f 200; trap '' XFSZ; exec $S -q -f u16 -o full/f --val-tokens 0 ids.u16) 2>full.err
check_eq "write error exits 1" "$?" 1
check_grep "full disk: says what failed" "write error|cannot" full.err
check_eq "full disk: no files left" "$(ls -A full)" ""

# Interrupted: SIGTERM during a large piped write leaves only complete,
# verified shards and no temporary files.
mkdir big
"$PY" -c '
import sys, numpy as np
a = np.random.default_rng(1).integers(0, 50257, size=1 << 20).astype("<u2").tobytes()
try:
    while True: sys.stdout.buffer.write(a)
except BrokenPipeError:
    pass
' 2>/dev/null | $S -f u16 -o big/b --val-tokens 0 --shard-tokens 1500000 2>term.err &
pid=$!
i=0
while [ "$(ls big | grep -c '^b-train.*zst$')" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.2
kill -TERM $pid
wait $pid
rc=$?
check_eq "SIGTERM: status of death by signal" "$rc" 143
n=$(ls big | grep -c '^b-train-.*tok.zst$')
[ "$n" -ge 2 ] && pass "SIGTERM: complete shards kept ($n)" || fail "SIGTERM: only $n shards"
check_eq "SIGTERM: no temporary files" "$(ls -A big | grep -v '^b-train-[0-9]*\.tok\.zst$')" ""
check "SIGTERM: every shard left passes verify" $S verify big/*
check_grep "SIGTERM: says what was written" "stopped: [0-9]+ complete shards" term.err

# One output prefix, one writer: a second run on a prefix that another is
# writing fails at once naming the holder's pid and touches nothing.  The
# first run holds its lock while it waits for its input on a FIFO.
mkdir lk
mkfifo lk.fifo
$S -q -o lk/p --val-tokens 0 --shard-tokens 1000 lk.fifo 2>lk1.err &
pid=$!
i=0
while [ ! -s lk/p.lock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check_status 1 "a second run on a prefix being written is refused" \
	$S -q -o lk/p --val-tokens 0 --shard-tokens 1000 --force ids.u16 -f u16
check_grep "names the holder's pid" "pid $pid\b.*lk/p" .err
check_eq "one line" "$(wc -l <.err | tr -d ' ')" 1
check_eq "the second run touched nothing" "$(ls -A lk)" "p.lock"
head -c 8000 ids.u16 | od -An -tu2 -v >lk.txt
timeout 60 sh -c 'cat lk.txt >lk.fifo' || fail "the first run did not read its FIFO"
wait $pid
check_eq "the first run ends well" "$?" 0
check_eq "its shards alone, and its lock removed" "$(ls -A lk | tr '\n' ' ')" \
	"p-train-000000.tok.zst p-train-000001.tok.zst p-train-000002.tok.zst p-train-000003.tok.zst "
$S cat lk/p-* | tr -s ' \n' '\n\n' >lk.back
tr -s ' \n' '\n\n' <lk.txt | sed '/^$/d' >lk.want
check_files "its shards hold its input" lk.back lk.want
echo 999999 >lk/p.lock
check "a lock file left by a killed run holds no one back" \
	$S -q -f u16 -o lk/p --val-tokens 0 --start-index 7 small.u16
check_eq "and is removed" "$(ls lk/p.lock 2>/dev/null)" ""

# An id outside the vocabulary is named by its position in the input, not
# in the shard being written.
printf '1 2 3 4 5 6 7 99999 8\n' >oor.txt
check_status 1 "an id outside the vocabulary, in the fourth shard" \
	$S -q -o oor --val-tokens 1 --shard-tokens 2 oor.txt
check_grep "named at its input position" "token id 99999 at position 7 of the input" .err

# A reader that goes away (`| head`) ends info and verify quietly, status 0.
printf '1 2 3\n' | $S -q -o ep --val-tokens 0
many=$(i=0; while [ $i -lt 3000 ]; do printf ' ep-train-000000.tok.zst'; i=$((i + 1)); done)
for cmd in info verify; do
	# shellcheck disable=SC2086
	{ $S $cmd $many 2>ep.err; echo $? >ep.rc; } | head -1 >/dev/null
	check_eq "$cmd | head: status 0" "$(cat ep.rc)" 0
	check_eq "$cmd | head: nothing on stderr" "$(cat ep.err)" ""
done

# -h is --help; --help and gpt-shard(1) name the same options; -q is quiet.
help_opts() { grep -oE -- '(^|[][ ,|(])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[][ ,|(]*//' | sort -u | tr '\n' ' '; }
man_opts() { awk '/^\.Sh /{o = ($2 == "OPTIONS")} o && /^\.It /{for (i = 1; i < NF; i++) if ($i == "Fl") print "-" $(i + 1)}' "$1" | sort -u | tr '\n' ' '; }
check "-h" $S -h
check_eq "-h prints --help" "$(cat .out)" "$($S --help)"
check_eq "--help lists what gpt-shard(1) documents, and only that" \
	"$($S --help | help_opts)" "$(man_opts "$ROOT/man/man1/gpt-shard.1")"
check "-q" $S -q -f u16 -o q --val-tokens 100 small.u16
check_eq "-q: nothing on stderr" "$(cat .err)" ""
check "verify -q" $S verify -q q-*
check_eq "verify -q: nothing on stdout" "$(cat .out)" ""
