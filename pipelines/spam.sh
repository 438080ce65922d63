#!/bin/sh
# Classification fine-tuning, the series' chapter 6 as one script: the UCI
# SMS Spam Collection as it is published (a zip) -> label<TAB>text lines
# -> balanced, split 70/10/20 -> a classifier fine-tuned from a base
# checkpoint -> its accuracy, precision, recall and confusion on the test
# part -> two messages through gpt-classify.  Each stage says what it did
# and is skipped when its outputs exist, so a rerun resumes; see
# gpt-pipeline(7).
#
# Environment (all optional):
#   SMS=URL|FILE    the collection (default the UCI archive's URL; offline,
#                   put the zip at WORK/sms+spam+collection.zip, or give a
#                   label<TAB>text file)
#   BASE=CKPT|RUN|hf://ORG/NAME   the model to fine-tune (default
#                   hf://openai-community/gpt2, the series' 124M, imported
#                   once with gpt-convert)
#   WORK=DIR        where everything goes (default build/spam)
#   TRAINABLE       head, last-block (default, the series') or all
#   BATCH EPOCHS LR (default 8 5 5e-5, the series'), STEPS instead of EPOCHS
#   MAX_LENGTH      tokens per message (default: the longest, at most the context)
#   VAL_EVERY       validation every N steps (default 50)
#   TRAIN_ARGS      more gpt-train options; THREADS, DEVICE (default auto)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH=$ROOT/bin:$PATH
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
if [ -z "${GPT_VOCAB:-}" ] && [ -d "$SHARED/data/gpt2" ]; then
	GPT_VOCAB=$SHARED/data/gpt2
	export GPT_VOCAB
fi
URL=https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip
SMS=${SMS:-$URL}
BASE=${BASE:-hf://openai-community/gpt2}
WORK=${WORK:-$ROOT/build/spam}
TRAINABLE=${TRAINABLE:-last-block} BATCH=${BATCH:-8} EPOCHS=${EPOCHS:-5} LR=${LR:-5e-5}
STEPS=${STEPS:-} MAX_LENGTH=${MAX_LENGTH:-} VAL_EVERY=${VAL_EVERY:-50}
TRAIN_ARGS=${TRAIN_ARGS:-} THREADS=${THREADS:-} DEVICE=${DEVICE:-auto}

say() { echo "spam: $*"; }
for t in gpt-fetch gpt-convert gpt-train gpt-eval gpt-classify; do
	command -v "$t" >/dev/null 2>&1 || { say "$t is not built: run make first" >&2; exit 1; }
done
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
TSV=$WORK/sms.tsv RUN=$WORK/run SPL=$WORK/split
TAB=$(printf '\t')

# 1. data: the archive's documents, of which the collection's lines are
# those that start with a label and a tab (its readme's are not)
if [ -s "$TSV" ]; then
	say "data: done before: $TSV ($(wc -l <"$TSV" | tr -d ' ') messages)"
else
	src=$SMS
	[ "$src" = "$URL" ] && [ -s "$WORK/sms+spam+collection.zip" ] && src=$WORK/sms+spam+collection.zip
	say "data: $src"
	if ! gpt-fetch -q -o "$WORK/sms.docs" "$src" 2>"$WORK/fetch.err"; then
		cat "$WORK/fetch.err" >&2
		say "cannot fetch the collection; download $URL to $WORK/sms+spam+collection.zip" \
			"(or give SMS=FILE) and run again" >&2
		exit 1
	fi
	tr '\0' '\n' <"$WORK/sms.docs" | grep -E "^(ham|spam)$TAB" >"$TSV.tmp" || :
	rm -f "$WORK/sms.docs"
	[ -s "$TSV.tmp" ] || { say "no ham<TAB> or spam<TAB> lines in '$src'" >&2; rm -f "$TSV.tmp"; exit 1; }
	mv "$TSV.tmp" "$TSV"
	say "data: $(grep -c "^ham$TAB" "$TSV") ham, $(grep -c "^spam$TAB" "$TSV") spam in $TSV"
fi

# 2. base: a checkpoint file, a run folder (its latest), or a hub model
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

# 3. fine-tune: balanced, split 70/10/20 (written out), a run with a
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
	set -- "$@" --classify "$TSV" --balance --split 70,10,20 --split-out "$SPL" --init "$B" \
		-o "$RUN" -b "$BATCH" --lr "$LR" --trainable "$TRAINABLE" --val-every "$VAL_EVERY"
	[ -n "$MAX_LENGTH" ] && set -- "$@" --max-length "$MAX_LENGTH"
	if [ -n "$STEPS" ]; then set -- "$@" --steps "$STEPS"; else set -- "$@" --epochs "$EPOCHS"; fi
	# shellcheck disable=SC2086 # TRAIN_ARGS is a list of options
	set -- "$@" $TRAIN_ARGS
	say "fine-tune: $TSV -> $RUN (training $TRAINABLE)"
	gpt-train "$@"
fi
say "fine-tune: validation accuracy $(awk -F'\t' 'NR > 1 && $10 != "" { v = $10 } END { print v }' "$RUN/log.tsv")"

# 4. evaluate on the test part
say "evaluate: $(wc -l <"$SPL/test.tsv" | tr -d ' ') test messages"
gpt-eval -q --device "$DEVICE" --classify "$SPL/test.tsv" "$RUN" | sed 's/^/spam: /'

# 5. two messages through the filter
say "classify: two messages"
printf '%s\n' \
	"You are a winner you have been specially selected to receive \$1000 cash or a \$2000 award." \
	"Hey, just wanted to check if we're still on for dinner tonight? Let me know!" |
	gpt-classify -q --device "$DEVICE" "$RUN" | sed 's/^/spam:   /'
