#!/bin/sh
# The RTX 3090 experiment as one script: FineWeb sample-10BT from the hub,
# tokenized and sharded one parquet file per job in parallel, a fixed test
# set cut from a file kept out of training, GPT-2 small trained on the GPU
# (the experiment's recipe with RECIPE=rtx3090), OpenAI's GPT-2 small and
# medium imported as baselines, every model scored on the same test set
# into table.md, and the loss chart with the baselines drawn in (loss.png).
# Every stage writes its outputs atomically and is skipped when they exist,
# so running the script again resumes; see gpt-pipeline(7).
usage() {
	cat <<'EOF'
usage: fineweb-gpt2.sh [--from STAGE] [--only STAGE] [-d DIR] [--recipe NAME] [-n]
Stages, in order: fetch, shard, testset, train, baselines, eval, instruct,
sample, report.
  --from STAGE   start at STAGE (its outputs and later ones are redone)
  --only STAGE   run STAGE alone (its outputs are redone)
  -d, --dir DIR  the working folder (default $FINEWEB_DIR or runs/fineweb);
                 point several machines at one shared folder and give each
                 its own --only stage
  --recipe NAME  rtx3090 or rtx3090-stacked: the experiment's settings
                 (also RECIPE=NAME); the variables below still override
  -n, --dry-run  print the plan (sizes, expected time, disk) and the
                 commands, run nothing
  -h, --help
Environment: DATASET (fineweb, fineweb-edu or ORG/NAME; default fineweb),
SUBSET (default sample/10BT), FILES (number of parquet files, or their paths
in the dataset; default all but the test file), JOBS (parallel files,
default 4), MODEL (d12 or 163m), BATCH (16), CONTEXT (1024), TOTAL_BATCH
(524288), LR (6e-4), WARMUP (700, or a share of the steps: 5%), SCHEDULE
(cosine), MIN_LR_FRAC, WEIGHT_DECAY (0.1), CLIP, DROPOUT, TOKENS (default:
one pass), VAL_TOKENS (10M), TEST_FILE (the parquet file the test set comes
from, default the subset's last; none: the validation shards instead),
TEST_SKIP (50000000), TEST_TOKENS (19660800), BASELINES (hub models, default
"openai-community/gpt2 openai-community/gpt2-medium"; none), HELLASWAG (val,
a JSONL file or URL, or none; default val), HELLASWAG_LIMIT, EVAL_BATCH (6),
JUDGE_URL and JUDGE_MODEL (the instruction column, as pipelines/instruct.sh;
INSTRUCT_STEPS, INSTRUCT_ARGS; its DATA, TEMPLATE, SPLIT, MAX_TOKENS,
VAL_EVERY, THREADS and JUDGE_JOBS pass through), CARD (rtx3090, a100 or
h100: for the expected time; default rtx3090), PROMPT, TRAIN_ARGS (more
gpt-train options), DEVICE (auto), RUN_NAME (the run's folder in the working
folder and its row's name in the tables; default the recipe's name, else
MODEL), GPUS (1; more trains data parallel, one rank a GPU), LAUNCH (how:
default "mpirun -np $GPUS"; "srun --mpi=pmix" under Slurm) and BIN (the
programs' folder, default the checkout's bin/).
EOF
}
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# the programs: $BIN when given (make's BIN, as the tests run), else the
# checkout's bin/ when built, else the PATH
BIN=${BIN:-$ROOT/bin}
[ -x "$BIN/gpt-train" ] && PATH=$BIN:$PATH
STAGES="fetch shard testset train baselines eval instruct sample report"
from= only= dry=0
RECIPE=${RECIPE:-}
DIR=${FINEWEB_DIR:-runs/fineweb}
while [ $# -gt 0 ]; do
	case $1 in
	--from) [ $# -ge 2 ] || { usage >&2; exit 2; }; from=$2; shift 2;;
	--from=*) from=${1#*=}; shift;;
	--only) [ $# -ge 2 ] || { usage >&2; exit 2; }; only=$2; shift 2;;
	--only=*) only=${1#*=}; shift;;
	-d|--dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; DIR=$2; shift 2;;
	--dir=*) DIR=${1#*=}; shift;;
	--recipe) [ $# -ge 2 ] || { usage >&2; exit 2; }; RECIPE=$2; shift 2;;
	--recipe=*) RECIPE=${1#*=}; shift;;
	-n|--dry-run) dry=1; shift;;
	-h|--help) usage; exit 0;;
	*) [ -n "${FINEWEB_WORKER:-}" ] && break
	   echo "fineweb-gpt2: unknown argument: '$1'" >&2; usage >&2; exit 2;;
	esac
done
for s in $from $only; do
	case " $STAGES " in *" $s "*) ;; *)
		echo "fineweb-gpt2: no such stage: '$s' (stages: $STAGES)" >&2; exit 2;;
	esac
done

DATASET=${DATASET:-fineweb}
case $DATASET in
fineweb) REPO=HuggingFaceFW/fineweb; NFILES=15;;
fineweb-edu) REPO=HuggingFaceFW/fineweb-edu; NFILES=14;;
*/*) REPO=$DATASET; NFILES=1;;
*) echo "fineweb-gpt2: unknown DATASET: '$DATASET'" >&2; exit 2;;
esac
SUBSET=${SUBSET:-sample/10BT}
# The test set's file is the subset's last, kept out of training; a
# dataset of one file has none unless TEST_FILE names one.
if [ "$NFILES" -gt 1 ]; then
	TEST_FILE=${TEST_FILE:-$(printf '%s/%03d_00000.parquet' "$SUBSET" $((NFILES - 1)))}
	FILES=${FILES:-$((NFILES - 1))}
else
	TEST_FILE=${TEST_FILE:-none}
	FILES=${FILES:-$NFILES}
fi
TEST_SKIP=${TEST_SKIP:-50000000} TEST_TOKENS=${TEST_TOKENS:-19660800}
JOBS=${JOBS:-4}

# The recipes: the RTX 3090 experiment's settings, and the changes it found
# to help (gpt-pipeline(7) says where each number comes from).  They are
# defaults: a variable given in the environment still wins.
case $RECIPE in
'') recipe_words="this script's defaults (llm.c's GPT-2 small recipe)"
	MODEL=${MODEL:-d12} BATCH=${BATCH:-16} CONTEXT=${CONTEXT:-1024}
	TOTAL_BATCH=${TOTAL_BATCH:-524288} LR=${LR:-6e-4} WARMUP=${WARMUP:-700}
	SCHEDULE=${SCHEDULE:-cosine} WEIGHT_DECAY=${WEIGHT_DECAY:-0.1}
	MIN_LR_FRAC=${MIN_LR_FRAC:-} CLIP=${CLIP:-} DROPOUT=${DROPOUT:-} TOKENS=${TOKENS:-};;
rtx3090) recipe_words="the RTX 3090 experiment"
	MODEL=${MODEL:-163m} BATCH=${BATCH:-6} CONTEXT=${CONTEXT:-1024}
	TOTAL_BATCH=${TOTAL_BATCH:-6144} LR=${LR:-4e-4} WARMUP=${WARMUP:-0}
	SCHEDULE=${SCHEDULE:-constant} WEIGHT_DECAY=${WEIGHT_DECAY:-0.1}
	MIN_LR_FRAC=${MIN_LR_FRAC:-} CLIP=${CLIP:-0} DROPOUT=${DROPOUT:-0.1}
	TOKENS=${TOKENS:-3260190720};;
rtx3090-stacked) recipe_words="the RTX 3090 experiment with the changes that helped"
	MODEL=${MODEL:-163m} BATCH=${BATCH:-6} CONTEXT=${CONTEXT:-1024}
	TOTAL_BATCH=${TOTAL_BATCH:-98304} LR=${LR:-1.4e-3} WARMUP=${WARMUP:-5%}
	SCHEDULE=${SCHEDULE:-cosine} WEIGHT_DECAY=${WEIGHT_DECAY:-0.01}
	MIN_LR_FRAC=${MIN_LR_FRAC:-0.1} CLIP=${CLIP:-3.5} DROPOUT=${DROPOUT:-0}
	TOKENS=${TOKENS:-3260190720};;
*) echo "fineweb-gpt2: unknown recipe: '$RECIPE' (rtx3090, rtx3090-stacked)" >&2; exit 2;;
esac
for v in BATCH CONTEXT TOTAL_BATCH TEST_SKIP TEST_TOKENS; do
	eval "x=\$$v"
	case $x in ''|*[!0-9]*) echo "fineweb-gpt2: $v must be a number: '$x'" >&2; exit 2;; esac
done
# WARMUP as a share of the steps ("5%") needs the steps: TOKENS / TOTAL_BATCH
case $WARMUP in
*%) case $TOKENS in ''|*[!0-9]*)
		echo "fineweb-gpt2: WARMUP=$WARMUP needs TOKENS as a number: '$TOKENS'" >&2; exit 2;; esac
	WARMUP=$((TOKENS / TOTAL_BATCH * ${WARMUP%\%} / 100));;
esac
VAL_TOKENS=${VAL_TOKENS:-10M}
HELLASWAG=${HELLASWAG:-val} HELLASWAG_LIMIT=${HELLASWAG_LIMIT:-} EVAL_BATCH=${EVAL_BATCH:-6}
BASELINES=${BASELINES-openai-community/gpt2 openai-community/gpt2-medium}
[ "$BASELINES" = none ] && BASELINES=
JUDGE_URL=${JUDGE_URL:-} JUDGE_MODEL=${JUDGE_MODEL:-llama3}
INSTRUCT_STEPS=${INSTRUCT_STEPS:-} INSTRUCT_ARGS=${INSTRUCT_ARGS:-}
CARD=${CARD:-rtx3090}
PROMPT=${PROMPT:-The meaning of life is} TRAIN_ARGS=${TRAIN_ARGS:-}
DEVICE=${DEVICE:-auto}
GPUS=${GPUS:-1}
case $GPUS in ''|*[!0-9]*|0) echo "fineweb-gpt2: GPUS must be a count of GPUs: '$GPUS'" >&2; exit 2;; esac
LAUNCH=${LAUNCH:-mpirun -np $GPUS}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case $DIR in *[[:space:]]*) echo "fineweb-gpt2: the working folder's path has a blank: '$DIR'" >&2; exit 2;; esac
# The download cache lives in the working folder, so that a machine given
# only the shard stage finds what another fetched.
CACHE=$DIR/cache
SH=$DIR/shards
# The run's folder, and its row's name in test.tsv and table.md beside
# the baselines': the recipe's name, else the model's (RUN_NAME=run
# resumes a working folder made before runs were named)
RUN_NAME=${RUN_NAME:-${RECIPE:-$MODEL}}
case $RUN_NAME in
'' | *[!A-Za-z0-9._-]* | .* | cache | shards | test | baselines | instruct)
	echo "fineweb-gpt2: RUN_NAME must be a plain name, not one of the working folder's others: '$RUN_NAME'" >&2
	exit 2;;
esac
RUN=$DIR/$RUN_NAME
TRAIN_GLOB="$SH/fineweb-*-train-*"
VAL_GLOB="$SH/fineweb-*-val-*"
TEST=$DIR/test
if [ "$TEST_FILE" = none ]; then TEST_GLOB=$VAL_GLOB; else TEST_GLOB="$TEST/fineweb-test-val-*"; fi
BASE=$DIR/baselines

say() { echo "fineweb-gpt2: $*"; }
# words W...: W as shell words, each quoted unless it is plain, so that a
# dry run's commands can be pasted (a glob stays a glob, a prompt one word)
words() {
	_out=
	for _w in "$@"; do
		case $_w in
		'' | *[!A-Za-z0-9_./=:,+@%-]*)
			_w="'$(printf '%s' "$_w" | sed "s/'/'\\\\''/g")'";;
		esac
		_out="$_out${_out:+ }$_w"
	done
	printf '%s\n' "$_out"
}
# The parquet files, one "NUMBER PATH" per line: FILES is either a count
# (the hub's names NNN_00000.parquet) or a list of paths in the dataset.
file_list() {
	case $FILES in
	*[!0-9]*) i=0; for f in $FILES; do printf '%03d %s\n' $i "$f"; i=$((i + 1)); done;;
	*) i=0; while [ $i -lt "$FILES" ]; do
		printf '%03d %s/%03d_00000.parquet\n' $i "$SUBSET" $i; i=$((i + 1)); done;;
	esac
}
url() { echo "hf://datasets/$REPO/$1"; }

# Which stages run: from --from on, or --only; a stage named by either is
# redone even when its outputs exist.
wanted() {
	if [ -n "$only" ]; then [ "$1" = "$only" ]; return; fi
	[ -z "$from" ] && return 0
	for _w in $STAGES; do
		[ "$_w" = "$from" ] && return 0
		[ "$_w" = "$1" ] && return 1
	done
}
forced() { [ "$1" = "$only" ] || [ "$1" = "$from" ] ||
	{ [ -n "$from" ] && [ -z "$only" ]; }; }

# ---- per-file workers, run by xargs -P (the script calls itself) ----
if [ "${FINEWEB_WORKER:-}" ]; then
	n=$1 path=$2
	case $FINEWEB_WORKER in
	fetch)
		# the whole file into the cache; one document read proves it whole
		gpt-fetch -q --cache "$CACHE" -n 1 "$(url "$path")" >/dev/null
		: >"$DIR/.fetch/.done-$n"
		say "fetch: $path";;
	shard)
		# file 000 gives the validation tokens; the shards go to a scratch
		# folder renamed into place only when the whole file is done
		val=0; [ "$n" = 000 ] && val=$VAL_TOKENS
		tmp=$SH/.tmp-$n
		rm -rf "$tmp"
		mkdir -p "$tmp"
		# a pipe hides the status of all but its last program: each
		# failure leaves a mark, and any mark fails the file
		{ gpt-fetch -q --cache "$CACHE" "$(url "$path")" || : >"$tmp/.failed"; } |
			{ gpt-tokenize -q -z -f u16 || : >"$tmp/.failed"; } |
			gpt-shard -q -f u16 --val-tokens "$val" -o "$tmp/fineweb-$n"
		if [ -e "$tmp/.failed" ]; then
			echo "fineweb-gpt2: shard: failed: $path" >&2; exit 1
		fi
		rm -f "$SH/fineweb-$n"-*
		mv "$tmp"/fineweb-* "$SH/"
		rmdir "$tmp"
		: >"$SH/.done-$n"
		say "shard: $path: $(ls "$SH" | grep -c "^fineweb-$n-") shards";;
	esac
	exit 0
fi

# run_files STAGE MARKER_DIR: the per-file worker over every file whose
# marker is missing, JOBS at a time.
run_files() {
	stage=$1 mdir=$2
	again=0
	forced "$stage" && again=1
	todo=$(file_list | while read -r n p; do
		[ $again = 0 ] && [ -e "$mdir/.done-$n" ] || echo "$n $p"; done)
	if [ -z "$todo" ]; then
		say "$stage: done before: $(file_list | wc -l | tr -d ' ') files"
		return
	fi
	say "$stage: $(echo "$todo" | wc -l | tr -d ' ') files, $JOBS at a time"
	if [ $dry = 1 ]; then echo "$todo" | sed "s/^/  $stage /"; return; fi
	mkdir -p "$mdir"
	[ $again = 1 ] && rm -f "$mdir"/.done-*
	echo "$todo" | FINEWEB_WORKER=$stage xargs -P "$JOBS" -L 1 sh "$0" -d "$DIR" ||
		{ echo "fineweb-gpt2: $stage: some files failed; run again to retry them" >&2; exit 1; }
}

last_step() { tail -n 1 "$RUN/log.tsv" 2>/dev/null | cut -f1 | grep -E '^[0-9]+$' || echo 0; }
planned_steps() { awk '$1=="steps"{print $2}' "$RUN/config" 2>/dev/null || echo 0; }
run_done() { [ -e "$RUN/latest" ] && [ "$(last_step)" -ge "$(planned_steps)" ] &&
	[ "$(planned_steps)" -gt 0 ]; }

stage_train() {
	if ! forced train && run_done; then
		say "train: done before: $RUN at step $(last_step)"; return
	fi
	set -- --device "$DEVICE"
	# several GPUs: one gpt-train rank each, started by the launcher
	launch=
	[ "$GPUS" -gt 1 ] && launch=$LAUNCH
	if [ -e "$RUN/latest" ] && ! { forced train && run_done; }; then
		say "train: resuming $RUN from step $(last_step)"
		# shellcheck disable=SC2086
		[ $dry = 1 ] && { echo "  ${launch:+$launch }$(words gpt-train --resume "$RUN" "$@")"; return; }
		# shellcheck disable=SC2086
		$launch gpt-train --resume "$RUN" "$@"
		return
	fi
	set -- "$@" -i "$TRAIN_GLOB" --val "$VAL_GLOB" -o "$RUN"
	# shellcheck disable=SC2046 # recipe_args prints words without blanks
	set -- "$@" $(recipe_args)
	# shellcheck disable=SC2086
	set -- "$@" $TRAIN_ARGS
	say "train: $MODEL, $TOTAL_BATCH tokens a step${launch:+ on $GPUS GPUs} -> $RUN"
	[ $dry = 1 ] && { echo "  ${launch:+$launch }$(words gpt-train "$@")"; return; }
	rm -rf "$RUN"
	# shellcheck disable=SC2086
	$launch gpt-train "$@"
}

# recipe_args: the model and optimizer options of the training run
recipe_args() {
	set -- --model "$MODEL" -b "$BATCH" --context "$CONTEXT" --total-batch "$TOTAL_BATCH" \
		--lr "$LR" --warmup "$WARMUP" --schedule "$SCHEDULE" --weight-decay "$WEIGHT_DECAY"
	[ -n "$MIN_LR_FRAC" ] && set -- "$@" --min-lr-frac "$MIN_LR_FRAC"
	[ -n "$CLIP" ] && set -- "$@" --clip "$CLIP"
	[ -n "$DROPOUT" ] && set -- "$@" --dropout "$DROPOUT"
	[ -n "$TOKENS" ] && set -- "$@" --tokens "$TOKENS"
	echo "$@"
}

# newer_than_run FILE: FILE exists and is newer than the run's checkpoint
newer_than_run() { [ -s "$1" ] && [ "$1" -nt "$RUN/latest" ]; }

# The test set: TEST_TOKENS + 1 tokens (TEST_TOKENS predicted ones, in
# windows of the context) of TEST_FILE's token stream after its first
# TEST_SKIP, one shard, with the SHA-256 of its tokens in test/SHA256.
stage_testset() {
	if [ "$TEST_FILE" = none ]; then
		say "testset: TEST_FILE=none: the validation shards are the test set"; return
	fi
	if ! forced testset && [ -s "$TEST/SHA256" ]; then
		say "testset: done before: $(cat "$TEST/SHA256")"; return
	fi
	file_list | while read -r _n p; do
		[ "$p" != "$TEST_FILE" ] || {
			echo "fineweb-gpt2: testset: the test file is also a training file: '$p'" >&2; exit 1; }
	done
	want=$((TEST_TOKENS + 1))
	say "testset: $TEST_TOKENS tokens of $TEST_FILE from token $TEST_SKIP -> $TEST"
	if [ $dry = 1 ]; then
		echo "  $(words gpt-fetch -q --cache "$CACHE" "$(url "$TEST_FILE")") | gpt-tokenize -q -z -f u16 |" \
			"tail -c +$((2 * TEST_SKIP + 1)) | head -c $((2 * want)) |" \
			"$(words gpt-shard -q -f u16 --val-tokens "$want" -o "$TEST/fineweb-test")"
		return
	fi
	tmp=$DIR/.tmp-test
	rm -rf "$tmp"
	mkdir -p "$tmp"
	# the fetch and the tokenizer stop early when head has all it needs;
	# a failure of either leaves a mark, and the count catches a short file
	{ gpt-fetch -q --cache "$CACHE" "$(url "$TEST_FILE")" || : >"$tmp/.failed"; } |
		{ gpt-tokenize -q -z -f u16 || : >"$tmp/.failed"; } |
		tail -c +$((2 * TEST_SKIP + 1)) | head -c $((2 * want)) >"$tmp/tokens.u16"
	got=$(($(wc -c <"$tmp/tokens.u16") / 2))
	if [ -e "$tmp/.failed" ] || [ "$got" -ne "$want" ]; then
		echo "fineweb-gpt2: testset: $got of $want tokens after token $TEST_SKIP: '$TEST_FILE'" >&2
		rm -rf "$tmp"; exit 1
	fi
	gpt-shard -q -f u16 --val-tokens "$want" -o "$tmp/fineweb-test" "$tmp/tokens.u16"
	sum=$(sha256sum <"$tmp/tokens.u16" | cut -d' ' -f1)
	printf 'sha256 %s tokens %s from %s of %s\n' "$sum" "$want" "$TEST_SKIP" "$TEST_FILE" >"$tmp/SHA256"
	rm -f "$tmp/tokens.u16"
	rm -rf "$TEST"
	mv "$tmp" "$TEST"
	say "testset: $(cat "$TEST/SHA256")"
}

# name_of CKPT: the row name of a checkpoint in the tables
# name_of MODEL: its row's name, the file or folder name without .gpt
name_of() { basename "$1" .gpt; }
models() { echo "$RUN"; for b in $BASELINES; do echo "$BASE/$(basename "$b").gpt"; done; }

stage_baselines() {
	if [ -z "$BASELINES" ]; then say "baselines: none"; return; fi
	for b in $BASELINES; do
		out=$BASE/$(basename "$b").gpt
		if ! forced baselines && [ -s "$out" ]; then say "baselines: done before: $out"; continue; fi
		say "baselines: hf://$b -> $out"
		[ $dry = 1 ] && { echo "  XDG_CACHE_HOME=$(words "$CACHE") $(words gpt-convert -q import "hf://$b" -o "$out" --force)"; continue; }
		mkdir -p "$BASE"
		# the hub's files into the working folder's cache, beside the
		# parquet files, not the user's: the cache root is
		# $XDG_CACHE_HOME/gpt (gpt-convert has no --cache)
		XDG_CACHE_HOME=$CACHE gpt-convert -q import "hf://$b" -o "$out" --force
	done
}

# eval: the run on the validation shards (eval.tsv); every model on the
# test set (test.tsv) and on HellaSwag (hellaswag.tsv, left out with a
# warning when the file cannot be had)
stage_eval() {
	E=$DIR/eval.tsv
	if ! forced eval && newer_than_run "$E" && [ -s "$DIR/test.tsv" ] &&
		[ "$DIR/test.tsv" -nt "$RUN/latest" ]; then
		say "eval: done before: $E, $DIR/test.tsv"; return
	fi
	# "$@": the HellaSwag command; model paths hold no blanks (-d is made absolute,
	# a blank in it would split them: refused at the start)
	hs=
	if [ "$HELLASWAG" != none ]; then
		# shellcheck disable=SC2046
		set -- --tsv -q --hellaswag "$HELLASWAG" ${HELLASWAG_LIMIT:+--limit $HELLASWAG_LIMIT} $(models)
		hs=1
	fi
	if [ $dry = 1 ]; then
		say "eval: the run on the validation shards, every model on the test set${hs:+ and HellaSwag}"
		echo "  $(words gpt-eval --tsv -q "$RUN" "$VAL_GLOB") > $(words "$E")"
		# shellcheck disable=SC2046
		echo "  $(words gpt-eval --tsv -q -T "$CONTEXT" -b "$EVAL_BATCH" $(models) "$TEST_GLOB") > $(words "$DIR/test.tsv")"
		[ -n "$hs" ] && echo "  $(words gpt-eval "$@") > $(words "$DIR/hellaswag.tsv")"
		return
	fi
	gpt-eval --tsv -q "$RUN" "$VAL_GLOB" >"$E.tmp"
	mv "$E.tmp" "$E"
	say "eval: -> $E"
	cat "$E"
	# shellcheck disable=SC2046
	gpt-eval --tsv -q -T "$CONTEXT" -b "$EVAL_BATCH" $(models) "$TEST_GLOB" >"$DIR/test.tsv.tmp"
	rm -f "$DIR/hellaswag.tsv"
	if [ -n "$hs" ]; then
		if gpt-eval "$@" >"$DIR/hellaswag.tsv.tmp"; then
			mv "$DIR/hellaswag.tsv.tmp" "$DIR/hellaswag.tsv"
		else
			rm -f "$DIR/hellaswag.tsv.tmp"
			echo "fineweb-gpt2: eval: no HellaSwag column: the file could not be had (HELLASWAG=$HELLASWAG)" >&2
		fi
	fi
	mv "$DIR/test.tsv.tmp" "$DIR/test.tsv"
	say "eval: -> $DIR/test.tsv"
	cat "$DIR/test.tsv"
}

# instruct: each model fine-tuned and judged as pipelines/instruct.sh does;
# its mean score into instruct.tsv (only with JUDGE_URL)
stage_instruct() {
	I=$DIR/instruct.tsv
	if [ -z "$JUDGE_URL" ]; then say "instruct: skipped (no JUDGE_URL)"; return; fi
	if ! forced instruct && newer_than_run "$I"; then say "instruct: done before: $I"; return; fi
	[ $dry = 1 ] || printf 'model\tjudge_mean\n' >"$I.tmp"
	for m in $(models); do
		n=$(name_of "$m")
		[ $dry = 1 ] && { echo "  BASE=$(words "$m") WORK=$(words "$DIR/instruct/$n") sh pipelines/instruct.sh"; continue; }
		# BIN: instruct.sh runs the same programs as this script
		env BASE="$m" WORK="$DIR/instruct/$n" JUDGE_URL="$JUDGE_URL" JUDGE_MODEL="$JUDGE_MODEL" \
			STEPS="$INSTRUCT_STEPS" TRAIN_ARGS="$INSTRUCT_ARGS" DEVICE="$DEVICE" BIN="$BIN" \
			BATCH= LR= EPOCHS= sh "$ROOT/pipelines/instruct.sh" >&2
		# the judge's mean to two places as instruct.sh prints it; "-"
		# when it scored nothing (null)
		mean=$(sed -n 's/.*"mean":\([^,}]*\).*/\1/p' "$DIR/instruct/$n/judge-summary.json" | tail -n 1)
		case $mean in ''|null) mean=-;; *) mean=$(printf '%.2f' "$mean");; esac
		printf '%s\t%s\n' "$n" "$mean" >>"$I.tmp"
	done
	[ $dry = 1 ] && return
	mv "$I.tmp" "$I"
	say "instruct: -> $I"
}

stage_sample() {
	S=$DIR/sample.txt
	if ! forced sample && newer_than_run "$S"; then say "sample: done before: $S"; return; fi
	[ $dry = 1 ] && {
		echo "  $(words gpt-sample -n 3 -m 100 "$RUN" "$PROMPT") > $(words "$S")"; return; }
	gpt-sample -n 3 -m 100 "$RUN" "$PROMPT" >"$S.tmp"
	mv "$S.tmp" "$S"
	say "sample: -> $S"
	cat "$S"
}

# report: table.md (one row a model: test loss, perplexity, bits per byte,
# HellaSwag, the judge's score) and loss.png (the run's curves, the
# baselines' test losses as horizontal lines)
stage_report() {
	T=$DIR/table.md P=$DIR/loss.png
	if ! forced report && [ -s "$T" ] && [ -s "$P" ] && [ "$T" -nt "$DIR/test.tsv" ]; then
		say "report: done before: $T, $P"; return
	fi
	say "report: -> $T, $P"
	[ $dry = 1 ] && { echo "  sh pipelines/plot-loss.sh $(words "$RUN") > $(words "$P")"; return; }
	hs=$DIR/hellaswag.tsv ins=$DIR/instruct.tsv
	[ -s "$hs" ] || hs=/dev/null
	[ -s "$ins" ] || ins=/dev/null
	testsum=$(cut -d' ' -f2 "$TEST/SHA256" 2>/dev/null || echo "the validation shards")
	# the columns by name; rows in the order of test.tsv
	awk -F'\t' -v sum="$testsum" '
	function name(p,  n) { n = p; sub(/.*\//, "", n); sub(/\.gpt$/, "", n); return n }
	FNR == 1 { for (i = 1; i <= NF; i++) col[f, $i] = i; next }
	f == 1 { n = name($col[1, "checkpoint"]); hsw[n] = $col[1, "hellaswag_norm"] }
	f == 2 { judge[$1] = $2 }
	f == 3 { n = name($col[3, "checkpoint"]); order[++rows] = n
		params[n] = $col[3, "params"]; loss[n] = $col[3, "loss"]; ppl[n] = $col[3, "ppl"]
		bpb[n] = $col[3, "bpb"]; tokens = $col[3, "tokens"] }
	END {
		printf "Test set: %s tokens, sha256 %s.\n\n", tokens, sum
		printf "| model | parameters | test loss | perplexity | bits per byte | HellaSwag (acc_norm) | instruction score |\n"
		printf "|---|---:|---:|---:|---:|---:|---:|\n"
		for (r = 1; r <= rows; r++) { n = order[r]
			printf "| %s | %s | %s | %s | %s | %s | %s |\n", n, params[n], loss[n], ppl[n], bpb[n],
				(n in hsw) ? hsw[n] : "-", (n in judge) ? judge[n] : "-" }
	}' f=1 "$hs" f=2 "$ins" f=3 "$DIR/test.tsv" >"$T.tmp"
	# the baselines' test losses, NAME=LOSS, for the chart
	lines=$(awk -F'\t' -v run="$RUN" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$c["checkpoint"] != run { n = $c["checkpoint"]; sub(/.*\//, "", n); sub(/\.gpt$/, "", n)
		printf "%s%s=%s", sep, n, $c["loss"]; sep = " " }' "$DIR/test.tsv")
	BASELINE_LOSSES=$lines TITLE="$RUN_NAME: loss" sh "$ROOT/pipelines/plot-loss.sh" "$RUN" >"$P.tmp"
	mv "$P.tmp" "$P"
	mv "$T.tmp" "$T"
	cat "$T"
}

# The plan: what the run is, how big, how long on CARD, how much disk.
plan() {
	case $MODEL in
	d12) params=124;; 163m) params=163;; d24) params=350;; d36) params=774;;
	d48) params=1558;; *) params=0;;
	esac
	steps=?
	[ -n "$TOKENS" ] && steps=$((TOKENS / TOTAL_BATCH))
	say "plan: recipe: $recipe_words"
	say "plan: gpt-train $(recipe_args)"
	say "plan: model $MODEL (${params}M parameters), micro-batch $BATCH x $CONTEXT," \
		"$TOTAL_BATCH tokens a step ($((TOTAL_BATCH / (BATCH * CONTEXT))) micro-batches), ${TOKENS:-one pass of the} training tokens, $steps steps"
	if [ "$TEST_FILE" != none ]; then
		say "plan: test set: $TEST_TOKENS tokens of $TEST_FILE from token $TEST_SKIP ($((TEST_TOKENS / CONTEXT)) windows of $CONTEXT)"
	fi
	say "plan: baselines: ${BASELINES:-none}; HellaSwag: $HELLASWAG; instruction column: ${JUDGE_URL:-off (no JUDGE_URL)}"
	# tokens/s of GPT-2 small on each card: README's table
	case $CARD in
	rtx3090) card="an RTX 3090" lo=12000 hi=20000;;
	a100) card="an A100 80 GB" lo=231000 hi=231000;;
	h100) card="an H100 80 GB" lo=470000 hi=470000;;
	*) echo "fineweb-gpt2: unknown CARD: '$CARD' (rtx3090, a100, h100)" >&2; exit 2;;
	esac
	ntok=${TOKENS:-$((FILES_N * 680000000))}   # one pass: about 680M tokens a file
	say "plan: expected time on $card ($lo-$hi tokens/s, README's table, for GPT-2 small):" \
		"$(awk -v t="$ntok" -v lo="$lo" -v hi="$hi" -v g="$GPUS" 'BEGIN {
		a = t / hi / g / 3600; b = t / lo / g / 3600
		if (a == b) printf "%.1f h", a; else printf "%.1f-%.1f h", a, b
		if (g > 1) printf " on %d GPUs", g }')"
	# estimates: about 2.1 GB of parquet and 680M tokens (10B / 15) a file of
	# sample-10BT; shards
	# hold about 1.5 bytes a token; a checkpoint 12 bytes a parameter
	# (weights and two AdamW moments), --keep 3; a baseline 4 bytes a parameter
	awk -v f="$FILES_N" -v pn="${params}e6" -v tt="$TEST_TOKENS" 'BEGIN {
		pq = (f + 1) * 2.1; sh = f * 680e6 * 1.5 / 1e9; ck = 3 * pn * 12 / 1e9
		bl = (124439808 + 354823168) * 4 * 2 / 1e9; te = tt * 1.5 / 1e9
		printf "fineweb-gpt2: plan: disk (estimated): %.0f GB parquet in the cache, %.0f GB shards, %.2f GB test set," \
			" %.2f GB checkpoints, %.1f GB baselines (downloads and imports): about %.0f GB\n",
			pq, sh, te, ck, bl, pq + sh + te + ck + bl }'
}

say "$REPO/$SUBSET, $(file_list | wc -l | tr -d ' ') parquet files, in $DIR"
FILES_N=$(file_list | wc -l | tr -d ' ')
[ $dry = 1 ] && plan
for stage_name in $STAGES; do
	wanted "$stage_name" || continue
	case $stage_name in
	fetch) run_files fetch "$DIR/.fetch";;
	shard) run_files shard "$SH";;
	testset) stage_testset;;
	train) stage_train;;
	baselines) stage_baselines;;
	eval) stage_eval;;
	instruct) stage_instruct;;
	sample) stage_sample;;
	report) stage_report;;
	esac
done
