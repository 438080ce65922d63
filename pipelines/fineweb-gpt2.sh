#!/bin/sh
# The RTX 3090 experiment as one script: FineWeb sample-10BT from the hub,
# tokenized and sharded one parquet file per job in parallel, GPT-2 small
# trained on the GPU with the usual recipe, then evaluated and sampled.
# Every stage writes its outputs atomically and is skipped when they
# exist, so running the script again resumes; see gpt-pipeline(7).
usage() {
	cat <<'EOF'
usage: fineweb-gpt2.sh [--from STAGE] [--only STAGE] [-d DIR] [-n]
Stages, in order: fetch, shard, train, eval, sample.
  --from STAGE   start at STAGE (its outputs and later ones are redone)
  --only STAGE   run STAGE alone (its outputs are redone)
  -d, --dir DIR  the working folder (default $FINEWEB_DIR or runs/fineweb);
                 point several machines at one shared folder and give each
                 its own --only stage
  -n, --dry-run  print the plan and the commands, run nothing
  -h, --help
Environment: DATASET (fineweb, fineweb-edu or ORG/NAME; default fineweb),
SUBSET (default sample/10BT), FILES (number of parquet files, or their paths
in the dataset), JOBS (parallel files, default 4), MODEL (d12 or 163m),
BATCH (16), CONTEXT (1024), TOTAL_BATCH (524288), LR (6e-4), WARMUP (700),
TOKENS (default: one pass), VAL_TOKENS (10M), HELLASWAG (a JSONL file),
PROMPT, TRAIN_ARGS (more gpt-train options), DEVICE (auto), GPUS (1; more
trains data parallel, one rank a GPU) and LAUNCH (how: default
"mpirun -np $GPUS"; "srun --mpi=pmix" under Slurm).
EOF
}
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/bin/gpt-train" ] && PATH=$ROOT/bin:$PATH
STAGES="fetch shard train eval sample"
from= only= dry=0
DIR=${FINEWEB_DIR:-runs/fineweb}
while [ $# -gt 0 ]; do
	case $1 in
	--from) [ $# -ge 2 ] || { usage >&2; exit 2; }; from=$2; shift 2;;
	--from=*) from=${1#*=}; shift;;
	--only) [ $# -ge 2 ] || { usage >&2; exit 2; }; only=$2; shift 2;;
	--only=*) only=${1#*=}; shift;;
	-d|--dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; DIR=$2; shift 2;;
	--dir=*) DIR=${1#*=}; shift;;
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
FILES=${FILES:-$NFILES}
JOBS=${JOBS:-4}
MODEL=${MODEL:-d12} BATCH=${BATCH:-16} CONTEXT=${CONTEXT:-1024}
TOTAL_BATCH=${TOTAL_BATCH:-524288} LR=${LR:-6e-4} WARMUP=${WARMUP:-700}
TOKENS=${TOKENS:-} VAL_TOKENS=${VAL_TOKENS:-10M} HELLASWAG=${HELLASWAG:-}
PROMPT=${PROMPT:-The meaning of life is} TRAIN_ARGS=${TRAIN_ARGS:-}
DEVICE=${DEVICE:-auto}
GPUS=${GPUS:-1}
case $GPUS in ''|*[!0-9]*|0) echo "fineweb-gpt2: GPUS must be a count of GPUs: '$GPUS'" >&2; exit 2;; esac
LAUNCH=${LAUNCH:-mpirun -np $GPUS}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
# The download cache lives in the working folder, so that a machine given
# only the shard stage finds what another fetched.
CACHE=$DIR/cache
SH=$DIR/shards
RUN=$DIR/run
TRAIN_GLOB="$SH/fineweb-*-train-*"
VAL_GLOB="$SH/fineweb-*-val-*"

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
	set -- "$@" -i "$TRAIN_GLOB" --val "$VAL_GLOB" -o "$RUN" --model "$MODEL" \
		-b "$BATCH" --context "$CONTEXT" --total-batch "$TOTAL_BATCH" \
		--lr "$LR" --warmup "$WARMUP" --weight-decay 0.1 --schedule cosine
	[ -n "$TOKENS" ] && set -- "$@" --tokens "$TOKENS"
	# shellcheck disable=SC2086
	set -- "$@" $TRAIN_ARGS
	say "train: $MODEL, $TOTAL_BATCH tokens a step${launch:+ on $GPUS GPUs} -> $RUN"
	[ $dry = 1 ] && { echo "  ${launch:+$launch }$(words gpt-train "$@")"; return; }
	rm -rf "$RUN"
	# shellcheck disable=SC2086
	$launch gpt-train "$@"
}

# newer_than_run FILE: FILE exists and is newer than the run's checkpoint
newer_than_run() { [ -s "$1" ] && [ "$1" -nt "$RUN/latest" ]; }

stage_eval() {
	E=$DIR/eval.tsv
	if ! forced eval && newer_than_run "$E"; then say "eval: done before: $E"; return; fi
	set -- --tsv -q "$RUN" "$VAL_GLOB"
	[ -n "$HELLASWAG" ] && set -- --hellaswag "$HELLASWAG" "$@"
	[ $dry = 1 ] && { echo "  $(words gpt-eval "$@") > $(words "$E")"; return; }
	gpt-eval "$@" >"$E.tmp"
	mv "$E.tmp" "$E"
	say "eval: -> $E"
	cat "$E"
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

say "$REPO/$SUBSET, $(file_list | wc -l | tr -d ' ') parquet files, in $DIR"
for stage_name in $STAGES; do
	wanted "$stage_name" || continue
	case $stage_name in
	fetch) run_files fetch "$DIR/.fetch";;
	shard) run_files shard "$SH";;
	train) stage_train;;
	eval) stage_eval;;
	sample) stage_sample;;
	esac
done
