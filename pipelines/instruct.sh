#!/bin/sh
# Instruction fine-tuning, the series' chapter 7 as one script: a base
# checkpoint -> the 85/5/10 split of the instruction data -> fine-tuning
# on the training part (response tokens only) -> the model's responses to
# the test part, as JSON lines -> scores from a judge model when one is
# given, and the series' table of the mean score.  Each stage says what it did
# and is skipped when its outputs exist, so a rerun resumes (a stopped
# fine-tuning goes on from its checkpoint); see gpt-pipeline(7).
#
# Environment (all optional):
#   BASE=CKPT|RUN|hf://ORG/NAME   the model to fine-tune (default
#                   hf://openai-community/gpt2-medium, the series' model,
#                   imported with gpt-convert)
#   DATA=FILE       instruction records (default the series' 1,100 in
#                   ../shared/data/instruct/instruction-data.json)
#   WORK=DIR        where everything goes (default build/instruct)
#   TEMPLATE        alpaca, phi3, transcript or a file (default alpaca)
#   SPLIT           train,val,test percent (default 85,5,10)
#   BATCH EPOCHS LR WEIGHT_DECAY   (default 8 2 5e-5 0.1, the series')
#   STEPS           optimizer steps instead of EPOCHS
#   VAL_EVERY       validation every N steps (default 50)
#   MAX_TOKENS      tokens per test response (default 256)
#   TRAIN_ARGS      more gpt-train options; THREADS, DEVICE (auto)
#   JUDGE_URL       an OpenAI-compatible server to score the responses
#                   (e.g. Ollama's http://localhost:11434/v1); the judge
#                   stage runs only when it is set
#   JUDGE_MODEL     the judge model (default llama3, the series'); its
#                   key, if any, in OPENAI_API_KEY
#   JUDGE_JOBS      requests in flight (default 4)
#   BIN             the programs' folder (default the checkout's bin/)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# the programs: $BIN when given (make's BIN, as the tests run), else the
# checkout's bin/ when built, else the PATH
BIN=${BIN:-$ROOT/bin}
[ -x "$BIN/gpt-train" ] && PATH=$BIN:$PATH
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
if [ -z "${GPT_VOCAB:-}" ] && [ -d "$SHARED/data/gpt2" ]; then
	GPT_VOCAB=$SHARED/data/gpt2
	export GPT_VOCAB
fi
BASE=${BASE:-hf://openai-community/gpt2-medium}
DATA=${DATA:-$SHARED/data/instruct/instruction-data.json}
WORK=${WORK:-$ROOT/build/instruct}
TEMPLATE=${TEMPLATE:-alpaca} SPLIT=${SPLIT:-85,5,10}
BATCH=${BATCH:-8} EPOCHS=${EPOCHS:-2} LR=${LR:-5e-5} WEIGHT_DECAY=${WEIGHT_DECAY:-0.1}
STEPS=${STEPS:-} VAL_EVERY=${VAL_EVERY:-50} MAX_TOKENS=${MAX_TOKENS:-256}
TRAIN_ARGS=${TRAIN_ARGS:-} THREADS=${THREADS:-} DEVICE=${DEVICE:-auto}
JUDGE_URL=${JUDGE_URL:-} JUDGE_MODEL=${JUDGE_MODEL:-llama3} JUDGE_JOBS=${JUDGE_JOBS:-4}

say() { echo "instruct: $*"; }
for t in gpt-convert gpt-train gpt-sample; do
	command -v "$t" >/dev/null 2>&1 || { say "$t is not built: run make first" >&2; exit 1; }
done
[ -r "$DATA" ] || { say "cannot read the instruction data '$DATA'" >&2; exit 1; }
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
RUN=$WORK/run
SPL=$WORK/split
ANS=$WORK/test-responses.jsonl

# 1. base: a checkpoint file, a run folder (its latest), or a hub model
# imported once into WORK/base.gpt
case $BASE in
hf://* | http://* | https://*)
	B=$WORK/base.gpt
	if [ -s "$B" ]; then
		say "base: done before: $B"
	else
		say "base: importing $BASE"
		gpt-convert import "$BASE" -o "$B"
	fi;;
*)
	B=$BASE
	[ -d "$B" ] && B=$B/latest
	[ -e "$B" ] || { say "no base checkpoint '$BASE'" >&2; exit 1; }
	say "base: $B";;
esac

# 2. fine-tune: the split is written when the run starts; a run with a
# checkpoint goes on from it, a finished one is left alone
last_step() { tail -n 1 "$RUN/log.tsv" 2>/dev/null | cut -f1 | grep -E '^[0-9]+$' || echo 0; }
planned() { awk '$1 == "steps" { print $2 }' "$RUN/config" 2>/dev/null || echo 0; }
set -- --device "$DEVICE"
[ -n "$THREADS" ] && set -- "$@" --threads "$THREADS"
if [ -e "$RUN/latest" ] && [ "$(last_step)" -ge "$(planned)" ] && [ "$(planned)" -gt 0 ]; then
	say "fine-tune: done before: $RUN at step $(last_step)"
elif [ -e "$RUN/latest" ]; then
	say "fine-tune: resuming $RUN from step $(last_step)"
	gpt-train -q --resume "$RUN" "$@"
else
	rm -rf "$RUN" "$SPL"
	set -- "$@" --sft "$DATA" --template "$TEMPLATE" --split "$SPLIT" --split-out "$SPL" \
		--init "$B" -o "$RUN" -b "$BATCH" --lr "$LR" --weight-decay "$WEIGHT_DECAY" \
		--val-every "$VAL_EVERY"
	if [ -n "$STEPS" ]; then set -- "$@" --steps "$STEPS"; else set -- "$@" --epochs "$EPOCHS"; fi
	# shellcheck disable=SC2086 # TRAIN_ARGS is a list of options
	set -- "$@" $TRAIN_ARGS
	say "fine-tune: $(basename "$DATA") through $TEMPLATE -> $RUN"
	gpt-train "$@"
fi
say "fine-tune: validation loss $(awk -F'\t' 'NR > 1 && $4 != "" { v = $4 } END { print v }' "$RUN/log.tsv")"

# 3. respond: greedy responses to the test part, written whole or not at all
if [ -s "$ANS" ] && [ "$ANS" -nt "$RUN/latest" ]; then
	say "respond: done before: $ANS"
else
	say "respond: $(wc -l <"$SPL/test.jsonl" | tr -d ' ') test records -> $ANS"
	gpt-sample -q --template "$TEMPLATE" --jsonl "$SPL/test.jsonl" -m "$MAX_TOKENS" \
		--device "$DEVICE" "$RUN" >"$ANS.tmp"
	mv "$ANS.tmp" "$ANS"
fi

# 4. judge: each response scored 0-100 by a bigger model; gpt-judge
# resumes from its output, so a rerun sends only what is not scored yet
SCORES=$WORK/scores.jsonl
if [ -z "$JUDGE_URL" ]; then
	say "judge: skipped (no JUDGE_URL); the responses are in $ANS"
else
	command -v gpt-judge >/dev/null 2>&1 || { say "gpt-judge is not built: run make first" >&2; exit 1; }
	[ "$SCORES" -nt "$ANS" ] || rm -f "$SCORES"   # new responses: judge afresh
	say "judge: $JUDGE_MODEL at $JUDGE_URL -> $SCORES"
	if ! gpt-judge -q --json --url "$JUDGE_URL" --model "$JUDGE_MODEL" -j "$JUDGE_JOBS" \
		-o "$SCORES" "$ANS" 2>"$WORK/judge-summary.json"; then
		cat "$WORK/judge-summary.json" >&2
		exit 1
	fi
	field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$WORK/judge-summary.json" | tail -n 1; }
	mean=$(field mean) scored=$(field scored) records=$(field records)
	[ "$mean" = null ] || mean=$(printf '%.2f' "$mean")
	say "judge: the series' table"
	printf 'instruct: %-24s %-20s %10s %10s\n' model judge "mean score" scored
	printf 'instruct: %-24s %-20s %10s %10s\n' "$(basename "$WORK")" "$JUDGE_MODEL" "$mean" \
		"$scored/$records"
fi
