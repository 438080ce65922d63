# The pipelines end to end, shortened: the quickstart on part of
# tinyshakespeare must bring the validation loss well below a fresh
# model's, and the FineWeb pipeline runs offline on tiny FineWeb-shaped
# parquet files served by tests/httpd.py, with stand-ins for OpenAI's
# GPT-2 folders on the hub and HellaSwag's file on GitHub served the same
# way, ending with table.md and loss.png.  A second run of each must skip
# every finished stage.
. "$ROOT/tests/lib.sh"

# ---- the quickstart ----
head -c 150000 "$SHARED/data/text/tinyshakespeare.txt" >"$TMP/shakes.txt"
Q=$TMP/qs
qs() {
	env WORK="$Q" DATA="$TMP/shakes.txt" LAYERS=1 HEADS=2 WIDTH=32 CONTEXT=32 \
		BATCH=8 STEPS=40 LR=1e-2 VAL_EVERY=20 VAL_BATCHES=4 EVAL_WINDOWS=32 \
		SAMPLE_TOKENS=20 THREADS=2 sh "$ROOT/pipelines/quickstart.sh"
}
check "quickstart runs" qs
cp "$TMP/.out" "$TMP/qs1.out"
check_grep "quickstart: says what fetch did" '^quickstart: fetch: .* 1 documents, 150001 bytes' "$TMP/qs1.out"
check_grep "quickstart: says what tokenize did" '^quickstart: tokenize: [0-9]+ tokens' "$TMP/qs1.out"
check_grep "quickstart: ends with the validation loss" 'validation loss [0-9.]+ nats' "$TMP/qs1.out"
check_grep "quickstart: prints the sample" '^ROMEO:' "$TMP/qs1.out"
loss=$(sed -n 's/.*validation loss \([0-9.]*\) nats.*/\1/p' "$TMP/qs1.out")
log=$(ls "$Q"/corpus-*/run-*/log.tsv)
fresh=$(awk -F'\t' 'NR > 1 && $1 == 1 { print $3 }' "$log")
# a fresh model scores about ln 50257 = 10.82; training must take 2 nats off
check_eq "quickstart: first step at the untrained loss" \
	"$(awk -v f="$fresh" 'BEGIN{print (f > 10.3 && f < 11.3)}')" 1
check_eq "quickstart: validation loss $loss well below untrained $fresh" \
	"$(awk -v l="$loss" -v f="$fresh" 'BEGIN{print (l != "" && l < f - 2)}')" 1
check "quickstart: second run" qs
cp "$TMP/.out" "$TMP/qs2.out"
check_eq "quickstart: second run skips all six stages" \
	"$(grep -c 'done before' "$TMP/qs2.out")" 6
check_grep "quickstart: second run gives the same loss" "validation loss $loss nats" "$TMP/qs2.out"
check_eq "quickstart: second run did not train" "$(grep -c 'gpt-train' "$TMP/.err")" 0
check "quickstart: offline URL falls back to a local corpus" \
	env GPT_OFFLINE=1 WORK="$TMP/qs-off" DATA=http://127.0.0.1:9/none.txt STEPS=1 \
	LAYERS=1 HEADS=2 WIDTH=32 CONTEXT=32 BATCH=2 VAL_EVERY=0 EVAL_WINDOWS=2 \
	SAMPLE_TOKENS=2 sh "$ROOT/pipelines/quickstart.sh"
check_grep "quickstart: says the download failed" 'cannot download .* using .*tinyshakespeare' "$TMP/.out"

# ---- the FineWeb pipeline, offline ----
unset GPT_OFFLINE HF_HUB_OFFLINE HF_TOKEN HTTPD_FAULTS
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
no_proxy='*' NO_PROXY='*' GPT_HTTP_BACKOFF_MS=1
export no_proxy NO_PROXY GPT_HTTP_BACKOFF_MS
W=$TMP/www
P=$W/datasets/HuggingFaceFW/fineweb/resolve/main/sample/10BT
mkdir -p "$P"
"$PY" - "$SHARED/data/text" "$P" >"$TMP/rows" <<'EOF'
import sys, pyarrow as pa, pyarrow.parquet as pq
src, out = sys.argv[1], sys.argv[2]
paras = []
for name in ("botchan.txt", "the-verdict.txt"):
    text = open(f"{src}/{name}", encoding="utf-8", errors="replace").read()
    paras += [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200]
for f in range(3):
    rows = paras[f::3][:150]
    n = len(rows)
    t = pa.table({
        "text": rows,
        "id": [f"<urn:uuid:{f}-{i}>" for i in range(n)],
        "dump": ["CC-MAIN-2024-10"] * n,
        "url": [f"https://example.com/{f}/{i}" for i in range(n)],
        "date": ["2024-02-21T00:00:00Z"] * n,
        "file_path": ["s3://commoncrawl/x.warc.gz"] * n,
        "language": ["en"] * n,
        "language_score": pa.array([0.9] * n, pa.float64()),
        "token_count": pa.array([len(r) // 4 for r in rows], pa.int64()),
    })
    pq.write_table(t, f"{out}/{f:03d}_00000.parquet", row_group_size=50)
    print(n)
EOF
# the baselines: the quickstart's model as both GPT-2 folders, exported
for b in gpt2 gpt2-medium; do
	gpt-convert export "$(dirname "$log")/latest" -o "$W/openai-community/$b/resolve/main" ||
		fail "export the stand-in for $b"
done
mkdir -p "$W/rowanz/hellaswag/master/data"
cp "$ROOT/tests/fixtures/hf/hellaswag.jsonl" "$W/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
httpd_start "$W" 240   # requests logged to $TMP/log
HF_ENDPOINT=$HTTPD_URL XDG_CACHE_HOME=$TMP/xdg
GPT_HELLASWAG_URL=$HTTPD_URL/rowanz/hellaswag/master/data/hellaswag_val.jsonl
GPT_HELLASWAG_BLOB=$(git hash-object "$ROOT/tests/fixtures/hf/hellaswag.jsonl")
export HF_ENDPOINT XDG_CACHE_HOME GPT_HELLASWAG_URL GPT_HELLASWAG_BLOB
F=$TMP/fw
fw() {
	env FILES=2 JOBS=2 VAL_TOKENS=3000 CONTEXT=32 BATCH=4 TOTAL_BATCH=128 \
		TOKENS=1280 WARMUP=2 LR=1e-2 DEVICE=cpu EVAL_BATCH=4 \
		TEST_FILE=sample/10BT/002_00000.parquet TEST_SKIP=200 TEST_TOKENS=1000 \
		TRAIN_ARGS="--layers 1 --heads 2 --width 32 --val-batches 2 --threads 2" \
		sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$F" "$@"
}
check "fineweb: the whole pipeline" fw
cp "$TMP/.out" "$TMP/fw1.out"
check_eq "fineweb: no stage warned" "$(grep -v '^gpt-train\|^ *step\|^gpt-convert' "$TMP/.err" | head -3)" ""
check_grep "fineweb: fetched from the local hub" 'GET /datasets/HuggingFaceFW/fineweb/resolve/main/sample/10BT/001_00000.parquet' "$TMP/log"
check "fineweb: validation shard verifies" gpt-shard verify "$F"/shards/fineweb-000-val-000000.tok.zst
check "fineweb: training shards verify" sh -c "gpt-shard verify '$F'/shards/fineweb-00[01]-train-*"
docs=$(gpt-shard info --json "$F"/shards/fineweb-001-train-* | grep -o '"documents": *[0-9]*' | grep -o '[0-9]*$')
check_eq "fineweb: file 001 is all training, every row a document" "$docs" "$(sed -n 2p "$TMP/rows")"
check_eq "fineweb: ten steps trained" "$(tail -n 1 "$F/d12/log.tsv" | cut -f1)" 10
check_grep "fineweb: eval has a loss" '^[^	]+	[0-9]+	32	[0-9]+	[0-9.]+' "$F/eval.tsv"
check "fineweb: a sample was written" test -s "$F/sample.txt"
check_grep "fineweb: the test set's checksum" '^sha256 [0-9a-f]{64} tokens 1001 from 200 of sample/10BT/002_00000.parquet$' "$F/test/SHA256"
check "fineweb: the test shard verifies" gpt-shard verify "$F"/test/fineweb-test-val-000000.tok.zst
check_eq "fineweb: the test set is not trained on" "$(grep -c '002_00000' "$TMP/log")" 1
check_grep "fineweb: the baselines were imported from the hub" 'GET /openai-community/gpt2-medium/resolve/main/model.safetensors' "$TMP/log"
check_eq "fineweb: the baselines' downloads are in the working folder's cache" \
	"$(find "$F/cache/gpt" -name model.safetensors -path '*openai-community*' | wc -l | tr -d ' ')" 2
check_eq "fineweb: and not in the user's" "$(find "$TMP/xdg" -path '*openai-community*' 2>/dev/null | wc -l | tr -d ' ')" 0
check_grep "fineweb: HellaSwag was downloaded" 'GET /rowanz/hellaswag/master/data/hellaswag_val.jsonl' "$TMP/log"
# the run is named after its recipe, else its model: d12 here, in both tables
check_eq "fineweb: test.tsv has the run, named, and both baselines" "$(tail -n +2 "$F/test.tsv" | cut -f1 | xargs -n1 basename | tr '\n' ' ')" "d12 gpt2.gpt gpt2-medium.gpt "
check_eq "fineweb: every model scored on 1000 test tokens" "$(tail -n +2 "$F/test.tsv" | cut -f4 | sort -u)" 992
for m in gpt2 gpt2-medium d12; do
	check_grep "fineweb: table.md has $m's row" "^\| $m \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| - \|$" "$F/table.md"
done
check_grep "fineweb: table.md names the test set's checksum" "sha256 $(cut -d' ' -f2 "$F/test/SHA256")" "$F/table.md"
check_eq "fineweb: loss.png is a PNG" "$(head -c 4 "$F/loss.png" | od -An -c | tr -d ' ')" '211PNG'
check_eq "fineweb: loss.png is of a plausible size" "$(awk -v n="$(wc -c <"$F/loss.png")" 'BEGIN { print (n > 5000 && n < 2000000) }')" 1
gets=$(grep -c '^GET ' "$TMP/log")
check "fineweb: second run" fw
check_eq "fineweb: second run skips every stage" "$(grep -c 'done before' "$TMP/.out")" 9
check_grep "fineweb: second run: the instruction column is off" '^fineweb-gpt2: instruct: skipped \(no JUDGE_URL\)' "$TMP/.out"
check_eq "fineweb: second run downloads nothing" "$(grep -c '^GET ' "$TMP/log")" "$gets"
# the instruction column: with JUDGE_URL every model is fine-tuned and its
# test responses judged (tests/judge_server.py answers 42), tiny: 40
# records (4 test ones), 2 steps, 4 tokens a response
"$PY" -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))[:40], open(sys.argv[2], "w"))' \
	"$SHARED/data/instruct/instruction-data.json" "$TMP/instr.json"
"$PY" "$ROOT/tests/judge_server.py" --port-file "$TMP/jport" --log "$TMP/jlog" &
at_exit "kill $! 2>/dev/null"
i=0
while [ ! -s "$TMP/jport" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fwj() (
	JUDGE_URL="http://127.0.0.1:$(cat "$TMP/jport")/v1" JUDGE_MODEL=the-judge
	DATA="$TMP/instr.json" MAX_TOKENS=4 INSTRUCT_STEPS=2 VAL_EVERY=0 THREADS=2
	export JUDGE_URL JUDGE_MODEL DATA MAX_TOKENS INSTRUCT_STEPS VAL_EVERY THREADS
	fw "$@"
)
check "fineweb: the instruction column (JUDGE_URL)" fwj --from instruct
check_eq "fineweb: a score for each model's 4 test responses" "$(wc -l <"$TMP/jlog" | tr -d ' ')" 12
for m in gpt2 gpt2-medium d12; do
	check_grep "fineweb: table.md has $m's instruction score" \
		"^\| $m \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 42\.00 \|$" "$F/table.md"
	check "fineweb: $m was fine-tuned from its own checkpoint" test -s "$F/instruct/$m/run/latest"
done
check "fineweb: the instruction column again" fwj
check_grep "fineweb: again: the instruct stage is done before" '^fineweb-gpt2: instruct: done before' "$TMP/.out"
check_eq "fineweb: again: nothing sent to the judge" "$(wc -l <"$TMP/jlog" | tr -d ' ')" 12
cp "$F/test/SHA256" "$TMP/test.sha256"
cp "$F/test/fineweb-test-val-000000.tok.zst" "$TMP/test.tok.zst"
check "fineweb: the test set again" fw --only testset
check_files "fineweb: the test set's checksum is the same twice" "$F/test/SHA256" "$TMP/test.sha256"
check_files "fineweb: and so is its shard" "$F/test/fineweb-test-val-000000.tok.zst" "$TMP/test.tok.zst"
check_status 1 "fineweb: a test set longer than its file is refused" env FILES=2 \
	TEST_FILE=sample/10BT/002_00000.parquet TEST_SKIP=500 TEST_TOKENS=10000000 \
	sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/fw-short" --only testset
check_grep "fineweb: says how many tokens it had" 'testset: [0-9]+ of 10000001 tokens after token 500' "$TMP/.err"
check "fineweb: and leaves no test set" test ! -e "$TMP/fw-short/test"
check_status 1 "fineweb: a test file that is trained on is refused" \
	env TEST_FILE=sample/10BT/001_00000.parquet FILES=2 sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/fw-over" --only testset
check_grep "fineweb: says so" 'the test file is also a training file' "$TMP/.err"
# the recipes, exactly as the RTX 3090 experiment set them
check "fineweb: RECIPE=rtx3090 -n" env RECIPE=rtx3090 sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/dry" -n
check_grep "fineweb: rtx3090: the settings" '^fineweb-gpt2: plan: gpt-train --model 163m -b 6 --context 1024 --total-batch 6144 --lr 4e-4 --warmup 0 --schedule constant --weight-decay 0.1 --clip 0 --dropout 0.1 --tokens 3260190720$' "$TMP/.out"
check_grep "fineweb: rtx3090: 530,630 steps" '3260190720 training tokens, 530630 steps' "$TMP/.out"
check_grep "fineweb: rtx3090: the test set" 'test set: 19660800 tokens of sample/10BT/014_00000.parquet from token 50000000 \(19200 windows of 1024\)' "$TMP/.out"
check_grep "fineweb: rtx3090: the expected time on the card" 'expected time on an RTX 3090 .*: 45.3-75.5 h' "$TMP/.out"
check_grep "fineweb: rtx3090: the disk" 'plan: disk \(estimated\): .* about [0-9]+ GB' "$TMP/.out"
check_grep "fineweb: rtx3090: the training command" '^  gpt-train .*--model 163m -b 6 --context 1024 --total-batch 6144 --lr 4e-4 --warmup 0 --schedule constant --weight-decay 0.1 --clip 0 --dropout 0.1 --tokens 3260190720$' "$TMP/.out"
check "fineweb: --recipe rtx3090-stacked -n" sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/dry" --recipe rtx3090-stacked -n
check_grep "fineweb: rtx3090-stacked: the settings" '^fineweb-gpt2: plan: gpt-train --model 163m -b 6 --context 1024 --total-batch 98304 --lr 1.4e-3 --warmup 1658 --schedule cosine --weight-decay 0.01 --min-lr-frac 0.1 --clip 3.5 --dropout 0 --tokens 3260190720$' "$TMP/.out"
check_grep "fineweb: rtx3090-stacked: 96 sequences a step by accumulation" '98304 tokens a step \(16 micro-batches\)' "$TMP/.out"
check_grep "fineweb: rtx3090-stacked: its run is named after it" "-o $TMP/dry/rtx3090-stacked( |\$)" "$TMP/.out"
check_status 2 "fineweb: a RUN_NAME that is another folder is refused" env RUN_NAME=shards \
	sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/dry" -n
check_status 2 "fineweb: an unknown recipe is refused" sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/dry" --recipe nosuch -n
cp "$F/eval.tsv" "$TMP/eval1.tsv"
touch -d '2000-01-01' "$F/eval.tsv"
check "fineweb: --only eval" fw --only eval
check_grep "fineweb: --only eval runs eval alone" '^fineweb-gpt2: eval: ->' "$TMP/.out"
check_eq "fineweb: --only eval: no other stage" "$(grep -c 'done before\|sample:' "$TMP/.out")" 0
check_files "fineweb: eval again gives the same table" "$F/eval.tsv" "$TMP/eval1.tsv"
check "fineweb: --from sample" fw --from sample
check_grep "fineweb: --from sample redoes the sample" '^fineweb-gpt2: sample: ->' "$TMP/.out"
check_eq "fineweb: --from sample: no earlier stage" "$(grep -c 'fetch:\|shard:\|train:\|eval:' "$TMP/.out")" 0
if command -v mpirun >/dev/null 2>&1; then
	(
		export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
			OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none GPUS=2
		check "fineweb: GPUS=2 trains on two ranks" fw --only train
	)
	check_grep "fineweb: GPUS=2: the job is data parallel" 'data parallel over 2 ranks' "$TMP/.err"
	check_eq "fineweb: GPUS=2: ten steps trained" "$(tail -n 1 "$F/d12/log.tsv" | cut -f1)" 10
fi
check "fineweb: GPUS=8 --dry-run" env GPUS=8 sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$F" --dry-run --only train
check_grep "fineweb: GPUS=8 --dry-run: mpirun starts 8 ranks" '^  mpirun -np 8 gpt-train ' "$TMP/.out"
check_status 2 "fineweb: GPUS=x is refused" env GPUS=x sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$F" --dry-run
check "fineweb: --dry-run" fw --dry-run --from train
check_grep "fineweb: --dry-run shows the training command" '^  gpt-train .*--total-batch 128' "$TMP/.out"
# The dry run's commands can be pasted: run through sh with stand-ins
# that print their arguments, the globs arrive unexpanded (the shards
# exist, so an unquoted glob would expand) and the prompt as one word.
mkdir -p "$TMP/standin"
for p in gpt-train gpt-eval gpt-sample; do
	printf '#!/bin/sh\nprintf "%%s\\n" "$@"\n' >"$TMP/standin/$p"
	chmod +x "$TMP/standin/$p"
done
paste_cmd() { # PROGRAM LINE: LINE run by sh, PROGRAM printing its arguments
	PATH="$TMP/standin:$PATH" sh -c "$2"
}
line=$(sed -n 's/^  \(gpt-train .*\)/\1/p' "$TMP/.out")
paste_cmd gpt-train "$line" >"$TMP/train.args"
check_eq "fineweb: --dry-run: the pasted gpt-train gets the training glob" \
	"$(grep -A1 '^-i$' "$TMP/train.args" | tail -1)" "$F/shards/fineweb-*-train-*"
check_eq "fineweb: --dry-run: and the validation glob" \
	"$(grep -A1 '^--val$' "$TMP/train.args" | tail -1)" "$F/shards/fineweb-*-val-*"
cp "$F/eval.tsv" "$F/sample.txt" "$TMP/"
PROMPT="It's the \$HOME of *"
export PROMPT
fw --dry-run --from eval >"$TMP/dry.out"
unset PROMPT
line=$(sed -n 's/^  \(gpt-eval .*\)/\1/p' "$TMP/dry.out")
paste_cmd gpt-eval "$line"
check_eq "fineweb: --dry-run: the pasted gpt-eval gets the glob, into eval.tsv" \
	"$(tail -1 "$F/eval.tsv")" "$F/shards/fineweb-*-val-*"
line=$(sed -n 's/^  \(gpt-sample .*\)/\1/p' "$TMP/dry.out")
paste_cmd gpt-sample "$line"
check_eq "fineweb: --dry-run: the pasted gpt-sample gets the prompt whole" \
	"$(tail -1 "$F/sample.txt")" "It's the \$HOME of *"
cp "$TMP/eval.tsv" "$TMP/sample.txt" "$F/"
check_status 2 "fineweb: unknown stage refused" fw --only nosuch
check_status 1 "fineweb: a missing parquet file fails" env FILES="sample/10BT/000_00000.parquet sample/10BT/nosuch.parquet" \
	sh "$ROOT/pipelines/fineweb-gpt2.sh" -d "$TMP/fw-bad" --only shard
check_eq "fineweb: no shard for the missing file" "$(ls "$TMP/fw-bad/shards" | grep -c '^fineweb-001')" 0

# ---- the loss chart of both runs ----
check "plot-loss: two runs on one chart" sh -c "sh '$ROOT/pipelines/plot-loss.sh' '$F/d12' '$log' >'$TMP/loss.png'"
check_eq "plot-loss: a PNG" "$(head -c 4 "$TMP/loss.png" | od -An -c | tr -d ' ')" '211PNG'
check_status 1 "plot-loss: a file that is not a log is refused" sh "$ROOT/pipelines/plot-loss.sh" "$TMP/shakes.txt"
