# gpt-train --sft (issue 17, the fine-tuning run): a tiny GPT-2-vocabulary
# base model fine-tuned on the shared instruction data with the series'
# 85/5/10 split written out; the response-only validation loss falls; a
# stopped run resumes bit for bit; padding and packing agree on one
# example; --train-on-prompt counts the prompt too; two ranks give one
# process's losses; the emulated GPU follows the CPU; bad data and bad
# usage are refused with one line.  On the CPU engine.
. "$ROOT/tests/lib.sh"
I=$SHARED/data/instruct/instruction-data.json
verdict_shards
check "a base model" gpt-train -q -i "$VTR" -o "$TMP/base" --layers 2 --heads 2 \
	--width 64 --context 128 --steps 5 --threads 1 --device cpu
F="--sft $I --split 85,5,10 --init $TMP/base/latest -b 4 --threads 1 --device cpu --lr 1e-3"

check "fine-tune 60 steps, the split written" gpt-train $F -o "$TMP/a" --steps 60 --val-every 30 \
	--split-out "$TMP/split"
cp "$TMP/.err" "$TMP/a.err"
check_eq "the series' split: 935, 55, 110 records" \
	"$(wc -l <"$TMP/split/train.jsonl") $(wc -l <"$TMP/split/val.jsonl") $(wc -l <"$TMP/split/test.jsonl")" \
	"935 55 110"
check_grep "the test part starts where the series' does" '^\{"instruction": "Rewrite the sentence using a simile\."' \
	"$TMP/split/test.jsonl"
check "the parts are instruction files themselves" gpt-train -q --sft "$TMP/split/val.jsonl" \
	--init "$TMP/base/latest" -o "$TMP/p" -b 4 --steps 1 --threads 1 --device cpu
check_grep "the summary counts examples and response tokens" \
	'fine-tuning on 935 examples .*template alpaca, 4 per step.*loss on the responses: [0-9]+ tokens, [0-9]+ counted' \
	"$TMP/a.err"
check_grep "the series' recipe: constant rate, no warmup" 'constant schedule, warmup 0' "$TMP/a.err"
v0=$(awk -F'\t' 'NR == 2 { print $4 }' "$TMP/a/log.tsv")
v60=$(awk -F'\t' '$1 == 60 { print $4 }' "$TMP/a/log.tsv")
check "the response-only validation loss falls clearly ($v0 -> $v60)" \
	awk -v a="$v0" -v b="$v60" 'BEGIN { exit !(b < a - 2) }'

# -- the issue's end to end: the quickstart's size, a few hundred steps -------
# pipelines/quickstart.sh's model (4 layers, 4 heads, width 128, context
# 128), briefly pretrained, then 240 steps of 8 examples (about two
# epochs of the series' 935): the response-only validation loss must
# fall by more than 3 nats and keep falling from the middle to the end;
# the test part's responses are one valid JSON line each.
check "a base model of the quickstart's size" gpt-train -q -i "$VTR" -o "$TMP/qbase" \
	--layers 4 --heads 4 --width 128 --context 128 --steps 20 --threads 2 --device cpu
check "  fine-tuned 240 steps of 8" gpt-train -q --sft "$I" --split 85,5,10 \
	--init "$TMP/qbase/latest" -b 8 --threads 2 --device cpu --lr 5e-4 \
	-o "$TMP/q" --steps 240 --val-every 120 --split-out "$TMP/qsplit"
q0=$(awk -F'\t' 'NR == 2 { print $4 }' "$TMP/q/log.tsv")
q1=$(awk -F'\t' '$1 == 120 { print $4 }' "$TMP/q/log.tsv")
q2=$(awk -F'\t' '$1 == 240 { print $4 }' "$TMP/q/log.tsv")
check "  the response-only validation loss falls clearly ($q0 -> $q1 -> $q2)" \
	awk -v a="$q0" -v b="$q1" -v c="$q2" 'BEGIN { exit !(b < a - 3 && c < b) }'
check "  its test responses" sh -c "gpt-sample -q --template alpaca --jsonl \
	'$TMP/qsplit/test.jsonl' -m 24 --device cpu '$TMP/q' >'$TMP/qanswers.jsonl'"
check "  one valid JSON line for each of the 110, none empty" "$PY" -c '
import json, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "" and len(lines) == 111, len(lines)
for l in lines[:-1]:
    r = json.loads(l)
    assert isinstance(r["response"], str) and r["response"].strip(), r
' "$TMP/qanswers.jsonl"

# -- responses for the test part ---------------------------------------------
check "gpt-sample --jsonl on the test part" sh -c "gpt-sample -q --template alpaca --jsonl \
	'$TMP/split/test.jsonl' -m 16 --device cpu '$TMP/a' >'$TMP/answers.jsonl'"
check "  one JSON object a line, each record with a non-empty response" "$PY" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
test = [json.loads(l) for l in open(sys.argv[2])]
assert len(recs) == len(test) == 110, (len(recs), len(test))
for r, t in zip(recs, test):
    assert {k: r[k] for k in t} == t, r
    assert r["response"].strip() == r["response"] != "", r
' "$TMP/answers.jsonl" "$TMP/split/test.jsonl"
check "  greedy: the same answers again" sh -c "gpt-sample -q --template alpaca --jsonl \
	'$TMP/split/test.jsonl' -m 16 --device cpu '$TMP/a' | cmp -s - '$TMP/answers.jsonl'"
check "gpt-sample --template with one instruction" gpt-sample -q --template phi3 -t 0 -m 8 --device cpu \
	"$TMP/a" "Name a color."
check "  prints the response alone" test -n "$(cat "$TMP/.out")"
check_status 2 "--jsonl without --template" gpt-sample --jsonl "$TMP/split/test.jsonl" "$TMP/a"

# -- resume ----------------------------------------------------------------
check "30 steps, then" gpt-train -q $F -o "$TMP/b" --steps 30 --val-every 30
check "resumed to 60" gpt-train -q --resume "$TMP/b" --steps 60
cut -f1-6 "$TMP/a/log.tsv" >"$TMP/a.cut"
cut -f1-6 "$TMP/b/log.tsv" >"$TMP/b.cut"
check_files "a resumed fine-tuning run logs the straight one bit for bit" "$TMP/a.cut" "$TMP/b.cut"
check_status 1 "a resume over other examples is refused" gpt-train -q --resume "$TMP/b" --steps 61 \
	--train-on-prompt
check_grep "  naming why" "the fine-tuning examples differ from the run's" "$TMP/.err"

# -- batching --------------------------------------------------------------
G1="--sft $I --init $TMP/base/latest -b 1 --steps 1 --threads 1 --device cpu --lr 1e-3"
check "one example padded" gpt-train -q $G1 -o "$TMP/pad"
check "one example packed" gpt-train -q $G1 -o "$TMP/pack" --pack
check_eq "padding and packing give the same loss on one example" \
	"$(col "$TMP/pad/log.tsv" train_loss)" "$(col "$TMP/pack/log.tsv" train_loss)"
check "four examples packed into rows" gpt-train -q --sft "$I" --init "$TMP/base/latest" -b 4 \
	--steps 3 --threads 1 --device cpu --pack -o "$TMP/pack4"
check "--train-on-prompt" gpt-train $G1 -o "$TMP/top" --train-on-prompt
check_grep "  counts every token" 'loss on every token' "$TMP/.err"
check "  and a different loss" test "$(col "$TMP/top/log.tsv" train_loss)" != \
	"$(col "$TMP/pad/log.tsv" train_loss)"
check "--val-frac 0.05" gpt-train -q --sft "$I" --init "$TMP/base/latest" -b 4 --steps 2 \
	--threads 1 --device cpu --val-frac 0.05 --val-every 2 -o "$TMP/vf"
check "  validates" test -n "$(col "$TMP/vf/log.tsv" val_loss)"
check "--epochs 2 of 8 examples a step" gpt-train -q --sft "$TMP/split/val.jsonl" \
	--init "$TMP/base/latest" -b 8 --epochs 2 --threads 1 --device cpu -o "$TMP/ep"
check_eq "  is 2 x floor(55 / 8) steps" "$(tail -1 "$TMP/ep/log.tsv" | cut -f1)" 12

check "--val FILE" gpt-train -q --sft "$TMP/split/train.jsonl" --val "$TMP/split/val.jsonl" \
	--init "$TMP/base/latest" -b 4 --steps 2 --val-every 2 --threads 1 --device cpu -o "$TMP/vfile"
check_eq "  validates on the file's examples as --split did" "$(awk -F'\t' 'NR == 2 { print $4 }' "$TMP/vfile/log.tsv")" \
	"$(awk -F'\t' 'NR == 2 { print $4 }' "$TMP/a/log.tsv")"
# chat records through phi3: a system message, two turns
cat >"$TMP/chat.jsonl" <<'JSON'
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "Blue."}]}
{"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}
JSON
check "chat records, phi3" gpt-train --sft "$TMP/chat.jsonl" --template phi3 --init "$TMP/base/latest" \
	-b 2 --steps 3 --threads 1 --device cpu -o "$TMP/chat"
check_grep "  2 examples" "fine-tuning on 2 examples .*template phi3" "$TMP/.err"

if command -v mpirun >/dev/null 2>&1; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
		OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
	check "2 ranks fine-tune" mpirun -np 2 gpt-train -q $F -o "$TMP/m2" --steps 10 -b 2 --total-batch 1024
	check "1 process, the same steps" gpt-train -q $F -o "$TMP/m1" --steps 10 -b 2 --total-batch 1024
	m=$(paste "$TMP/m1/log.tsv" "$TMP/m2/log.tsv" | awk -F'\t' 'NR > 1 && $3 != "" {
		d = ($3 - $11) / $3; if (d < 0) d = -d; if (d > m) m = d } END { print m + 0 }')
	check "  the same losses within 1e-5 ($m)" awk -v m="$m" 'BEGIN { exit !(m <= 1e-5) }'
fi
G=$O/sim/allbin/gpt-train
if [ -x "$G" ]; then
	check "the emulated gpu fine-tunes" "$G" -q --sft "$I" --init "$TMP/base/latest" -b 2 --steps 2 \
		--threads 1 --device cuda --lr 1e-3 -o "$TMP/gpu"
	check "  the cpu, the same steps" gpt-train -q --sft "$I" --init "$TMP/base/latest" -b 2 \
		--steps 2 --threads 1 --device cpu --lr 1e-3 -o "$TMP/cpu"
	m=$(paste "$TMP/cpu/log.tsv" "$TMP/gpu/log.tsv" | awk -F'\t' 'NR > 1 {
		d = ($3 - $11) / $3; if (d < 0) d = -d; if (d > m) m = d } END { print m + 0 }')
	check "  losses within 1e-2 of the cpu's ($m)" awk -v m="$m" 'BEGIN { exit !(m <= 1e-2) }'
fi

# -- refusals ----------------------------------------------------------------
printf '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n' >"$TMP/bad.jsonl"
check_status 1 "a bad record is refused" gpt-train -q --sft "$TMP/bad.jsonl" --init "$TMP/base/latest" \
	-o "$TMP/x1" --device cpu
check_grep "  naming its line" "bad.jsonl: line 2: no \"output\"" "$TMP/.err"
check "  and nothing is written" test ! -e "$TMP/x1"
check_status 2 "--sft without --init" gpt-train -q --sft "$I" -o "$TMP/x2"
check_grep "  says fine-tuning starts from a trained model" "needs --init" "$TMP/.err"
check_status 2 "--sft with -i" gpt-train -q --sft "$I" -i "$VTR" --init "$TMP/base/latest" -o "$TMP/x3"
check_status 1 "an unknown template" gpt-train -q --sft "$I" --template alpacca --init "$TMP/base/latest" -o "$TMP/x4"
check_grep "  names the known ones" "unknown template 'alpacca' \\(alpaca, phi3, transcript" "$TMP/.err"
check_status 2 "--pack without --sft" gpt-train -q -i "$VTR" --pack -o "$TMP/x5"
check_status 2 "a bad --split" gpt-train -q $F --split 80,30,10 -o "$TMP/x6"

# -- pipelines/instruct.sh ---------------------------------------------------
ip() { env BASE="$TMP/base" WORK="$TMP/pipe" STEPS=20 BATCH=4 LR=1e-3 MAX_TOKENS=8 THREADS=1 \
	DEVICE=cpu VAL_EVERY=10 sh "$ROOT/pipelines/instruct.sh"; }
check "pipelines/instruct.sh: base, split, fine-tune, respond" ip
check_grep "  the judge stage says why it is skipped" '^instruct: judge: skipped \(no JUDGE_URL\)' "$TMP/.out"
check_eq "  a response for each of the 110 test records" "$(wc -l <"$TMP/pipe/test-responses.jsonl" | tr -d ' ')" 110
check_eq "  20 steps fine-tuned" "$(tail -1 "$TMP/pipe/run/log.tsv" | cut -f1)" 20
check "  again" ip
check_eq "  again: fine-tune and respond done before" "$(grep -c 'done before' "$TMP/.out")" 2
# the judge stage, against tests/judge_server.py (it answers 42 to these)
"$PY" "$ROOT/tests/judge_server.py" --port-file "$TMP/jport" --log "$TMP/jlog" &
at_exit "kill $! 2>/dev/null"
i=0
while [ ! -s "$TMP/jport" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
export JUDGE_URL=http://127.0.0.1:$(cat "$TMP/jport")/v1 JUDGE_MODEL=the-judge
check "pipelines/instruct.sh with JUDGE_URL: the judge stage" ip
check_grep "  prints the series' table: model, judge, mean score" \
	'^instruct: pipe +the-judge +42.00 +110/110$' "$TMP/.out"
check_eq "  a score for each test record" "$(grep -c '"score":42' "$TMP/pipe/scores.jsonl")" 110
check_eq "  110 requests" "$(wc -l <"$TMP/jlog" | tr -d ' ')" 110
check "  again" ip
check_eq "  again: nothing sent to the judge" "$(wc -l <"$TMP/jlog" | tr -d ' ')" 110
check_grep "  the same table" '^instruct: pipe +the-judge +42.00 +110/110$' "$TMP/.out"
unset JUDGE_URL JUDGE_MODEL
