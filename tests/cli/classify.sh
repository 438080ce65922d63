# Classification fine-tuning (issue 19): lines of two books of
# ../shared/data, labelled by their source, turn a small GPT-2-vocabulary
# base model into a classifier (gpt-train --classify, --balance, the
# seeded 70/10/20 split written out); gpt-classify on the held-out part
# is right on more than 90% of it; a stopped run resumes bit for bit;
# log.tsv has the accuracies; --trainable head leaves the blocks as
# they were; the classifier's checkpoint is refused by gpt-sample and by
# gpt-train's language-model training; bad data is one line, status 1.
# On the CPU engine.
. "$ROOT/tests/lib.sh"
verdict_shards
check "a base model" gpt-train -q -i "$VTR" -o "$TMP/base" --layers 2 --heads 2 --width 128 \
	--context 128 --steps 60 --threads 1 --device cpu --lr 3e-3
# 1,500 lines of each book longer than 40 characters, in a fixed order
awk 'length($0) > 40 { sub(/\r$/, ""); gsub(/\t/, " "); print "shakespeare\t" $0 }' \
	"$SHARED/data/text/tinyshakespeare.txt" | awk 'NR % 2 == 1' | head -1500 >"$TMP/books.tsv"
awk 'length($0) > 40 { sub(/\r$/, ""); gsub(/\t/, " "); print "botchan\t" $0 }' \
	"$SHARED/data/text/botchan.txt" | awk 'NR % 2 == 0' | head -1600 >>"$TMP/books.tsv"
C="--classify $TMP/books.tsv --init $TMP/base --balance --split 70,10,20 -b 8 --threads 1 --device cpu --lr 5e-4"

check "fine-tune a classifier, 2 epochs, every tensor learning" gpt-train $C --trainable all \
	--epochs 2 --val-every 100 --split-out "$TMP/split" -o "$TMP/c"
cp "$TMP/.err" "$TMP/c.err"
check_grep "the summary: classes, texts, what learns" \
	'classifying into 2 classes \(botchan,shakespeare\): 2100 texts .*training every tensor' "$TMP/c.err"
check_eq "balanced, then split 70/10/20: 2100, 300, 600" \
	"$(wc -l <"$TMP/split/train.tsv") $(wc -l <"$TMP/split/val.tsv") $(wc -l <"$TMP/split/test.tsv")" \
	"2100 300 600"
check_eq "log.tsv has the accuracies" "$(head -1 "$TMP/c/log.tsv" | cut -f9,10)" \
	"$(printf 'train_acc\tval_acc')"
cut -f2 "$TMP/split/test.tsv" >"$TMP/test.txt"
check "gpt-classify on the 600 held-out lines" sh -c "gpt-classify --device cpu '$TMP/c' \
	<'$TMP/test.txt' >'$TMP/pred'"
check_eq "  one answer a line" "$(wc -l <"$TMP/pred" | tr -d ' ')" 600
cut -f1 "$TMP/pred" >"$TMP/pred.labels"
acc=$(cut -f1 "$TMP/pred" | paste - "$TMP/split/test.tsv" | awk -F'\t' '$1 == $2 { n++ }
	END { printf "%.4f", n / NR }')
check "  right on more than 90% of them ($acc)" awk -v a="$acc" 'BEGIN { exit !(a > 0.90) }'
check "gpt-eval --classify on the same part" gpt-eval --device cpu --classify "$TMP/split/test.tsv" \
	"$TMP/c" "$TMP/c/latest"
cp "$TMP/.out" "$TMP/ev"
check_eq "  the same accuracy as gpt-classify's answers" \
	"$(awk 'NR == 2 { print $4 }' "$TMP/ev")" "$acc"
check_grep "  per-class precision, recall and F1 columns" \
	'accuracy +precision_botchan +recall_botchan +f1_botchan +precision_shakespeare .*macro_f1' "$TMP/ev"
check_grep "  and the confusion matrix" '^confusion of .* \(rows: the true class, columns: the predicted\)' "$TMP/ev"
check "  --json: the matrix counts all 600" sh -c "gpt-eval --device cpu --json --classify \
	'$TMP/split/test.tsv' '$TMP/c' | tail -1 | '$PY' -c '
import json, sys
m = json.load(sys.stdin)[\"confusion\"]
assert sum(map(sum, m)) == 600 and len(m) == 2, m'"
check "gpt-classify -b 1 gives the same labels as batches of 16" sh -c "gpt-classify --device cpu \
	-b 1 '$TMP/c' <'$TMP/test.txt' | cut -f1 | cmp -s - '$TMP/pred.labels'"
check "  each probability at least 1/2 (two classes)" awk -F'\t' '
	$2 < 0.5 || $2 > 1 { bad = 1 } END { exit bad }' "$TMP/pred"
check "--all --json: every class's probability, adding up to 1" sh -c "head -3 '$TMP/test.txt' |
	gpt-classify --device cpu --all --json '$TMP/c' >'$TMP/json'"
check "  valid JSON lines" "$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    p = r["probabilities"]
    assert set(p) == {"botchan", "shakespeare"} and abs(sum(p.values()) - 1) < 1e-5, r
    assert r["probability"] == max(p.values()) and p[r["label"]] == r["probability"], r
' "$TMP/json"
printf 'a\0b c\nd\0' >"$TMP/z"
check_eq "-z: NUL-ended documents" "$(gpt-classify --device cpu -z "$TMP/c" "$TMP/z" | wc -l | tr -d ' ')" 2

# -- resume ----------------------------------------------------------------------
check "60 steps, then" gpt-train -q $C --steps 120 --val-every 60 -o "$TMP/r" --trainable last-block \
	--checkpoint-every 60
check "a run stopped at 60" gpt-train -q $C --steps 60 --val-every 60 -o "$TMP/s" --trainable last-block
check "resumed to 120" gpt-train -q --resume "$TMP/s" --steps 120
cut -f1-6,9,10 "$TMP/r/log.tsv" >"$TMP/r.cut"
cut -f1-6,9,10 "$TMP/s/log.tsv" >"$TMP/s.cut"
check_files "a resumed classification run logs the straight one bit for bit" "$TMP/r.cut" "$TMP/s.cut"

# -- what --trainable head leaves alone -------------------------------------------
check "--trainable head, 5 steps" gpt-train -q $C --steps 5 --trainable head -o "$TMP/h"
check "  the blocks' weights are the base's, bit for bit" "$PY" - "$TMP/base/latest" "$TMP/h/latest" <<'PYEOF'
import struct, sys
def read(p):
    b = open(p, "rb").read()
    n = struct.unpack_from("<I", b, 28)[0]
    off = struct.unpack_from("<Q", b, 280)[0]
    woff = struct.unpack_from("<Q", b, 280 + 24)[0]
    t = {}
    for i in range(n):
        e = b[off + 128 * i: off + 128 * (i + 1)]
        name = e[:64].split(b"\0")[0].decode()
        o, c = struct.unpack_from("<QQ", e, 104)
        t[name] = b[woff + 4 * o: woff + 4 * (o + c)]
    return t
a, h = read(sys.argv[1]), read(sys.argv[2])
assert set(h) - set(a) == {"cls.weight", "cls.bias"}, set(h) - set(a)
for k in a:
    assert a[k] == h[k], k
PYEOF

# -- the emulated GPU: the CPU engine's steps -----------------------------------------
G=$O/sim/allbin/gpt-train
if [ -x "$G" ]; then
	check "the emulated GPU fine-tunes a classifier, 3 steps" "$G" -q $(echo "$C" |
		sed 's/--device cpu/--device cuda/') --trainable last-block --steps 3 --val-every 0 \
		-o "$TMP/gpu"
	check "  the CPU engine, the same steps" gpt-train -q $C --trainable last-block --steps 3 \
		--val-every 0 -o "$TMP/cpu"
	m=$(paste "$TMP/cpu/log.tsv" "$TMP/gpu/log.tsv" | awk -F'\t' 'NR > 1 {
		d = ($3 - $13) / $3; if (d < 0) d = -d; if (d > m) m = d } END { print m + 0 }')
	check "  losses within 1e-2 of the CPU's ($m)" awk -v m="$m" 'BEGIN { exit !(m <= 1e-2) }'
fi

# -- refusals ----------------------------------------------------------------------
check_status 1 "gpt-sample refuses a classifier" gpt-sample --device cpu "$TMP/c" hello
check_grep "  saying what it is" "a classifier of 2 classes, not a language model" "$TMP/.err"
check_status 1 "gpt-train --init refuses a classifier" gpt-train -q -i "$VTR" --init "$TMP/c" -o "$TMP/x1"
check_status 1 "gpt-classify refuses a language model" gpt-classify "$TMP/base" "$TMP/test.txt"
check_grep "  saying so" "a language model, not a classifier" "$TMP/.err"
printf 'ham\tok\nno tab here\n' >"$TMP/bad1"
check_status 1 "a line without a tab" gpt-train -q --classify "$TMP/bad1" --init "$TMP/base" -o "$TMP/x2"
check_grep "  named by line" "bad1: line 2: no tab between the label and the text" "$TMP/.err"
check "  and nothing is written" test ! -e "$TMP/x2"
printf 'ham\tok\nham\tfine\n' >"$TMP/bad2"
check_status 1 "one class only" gpt-train -q --classify "$TMP/bad2" --init "$TMP/base" -o "$TMP/x3"
check_grep "  says so" "holds one class only \\('ham'\\)" "$TMP/.err"
: >"$TMP/bad3"
check_status 1 "an empty file" gpt-train -q --classify "$TMP/bad3" --init "$TMP/base" -o "$TMP/x4"
check_status 1 "an unknown label" gpt-train -q --classify "$TMP/books.tsv" --labels ham,spam \
	--init "$TMP/base" -o "$TMP/x5"
check_grep "  names it" "label 'shakespeare' is not one of --labels" "$TMP/.err"
awk 'BEGIN { for (i = 0; i < 10000; i++) print "c" i "\tx" }' >"$TMP/bad4"
check_status 1 "10,000 classes" gpt-train -q --classify "$TMP/bad4" --init "$TMP/base" -o "$TMP/x6"
check_grep "  more than the 1024 allowed" "more than 1024 classes" "$TMP/.err"
check_status 2 "--classify without --init" gpt-train -q --classify "$TMP/books.tsv" -o "$TMP/x7"
check_status 2 "--trainable of something else" gpt-train -q $C --trainable some -o "$TMP/x8"
check_status 2 "--balance without --classify" gpt-train -q -i "$VTR" --balance -o "$TMP/x9"

# -- pipelines/spam.sh on a stand-in for the UCI zip --------------------------------
# the archive as published: SMSSpamCollection (label<TAB>text) and a readme
"$PY" - "$TMP/books.tsv" "$TMP/sms.zip" <<'PYEOF'
import sys, zipfile
lines = open(sys.argv[1]).read().splitlines()
lab = {"botchan": "ham", "shakespeare": "spam"}
body = "".join(lab[l.split("\t")[0]] + "\t" + l.split("\t", 1)[1] + "\n" for l in lines[::3])
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("SMSSpamCollection", body)
    z.writestr("readme", "SMS Spam Collection v.1\n\nA set of tagged messages.\n")
PYEOF
sp() { env SMS="$TMP/sms.zip" BASE="$TMP/base" WORK="$TMP/spam" EPOCHS=2 LR=5e-4 TRAINABLE=all \
	THREADS=1 VAL_EVERY=50 sh "$ROOT/pipelines/spam.sh"; }
check "pipelines/spam.sh: data, base, fine-tune, evaluate, classify" sp
cp "$TMP/.out" "$TMP/sp1"
check_grep "  the collection's lines, not the readme's" '^spam: data: [0-9]+ ham, [0-9]+ spam in ' "$TMP/sp1"
check_eq "  every line of the TSV a label and a text" \
	"$(grep -cv "^\(ham\|spam\)$(printf '\t')" "$TMP/spam/sms.tsv")" 0
check_grep "  the test part evaluated" '^spam: checkpoint .*accuracy.*macro_f1' "$TMP/sp1"
check_eq "  two messages classified" "$(grep -cE '^spam:   (ham|spam)	0\.[0-9]+$' "$TMP/sp1")" 2
check "  again" sp
check_eq "  again: data and fine-tune done before" "$(grep -c 'done before' "$TMP/.out")" 2
