#!/bin/sh
# The quickstart (make demo): a text corpus through the whole toolchain,
# fetch -> tokenize -> shard -> train -> eval -> sample, on the GPU when
# there is one and else on the CPU, in minutes.  Every stage says what it
# did and is skipped when its outputs exist, so a rerun resumes; see
# gpt-pipeline(7).
#
# Environment (all optional):
#   DATA=PATH|URL   corpus (default: tinyshakespeare from its public URL;
#                   when that cannot be fetched, ../shared/data/text/
#                   tinyshakespeare.txt, else /usr/share/common-licenses)
#   WORK=DIR        where everything goes (default build/demo)
#   LAYERS HEADS WIDTH CONTEXT   model shape (default 4 4 128 128)
#   BATCH STEPS LR  sequences per step, optimizer steps, peak rate
#                   (default 8 300 3e-3)
#   VAL_EVERY VAL_BATCHES        validation during training (100 8)
#   EVAL_WINDOWS    gpt-eval windows, 0 = the whole validation set (0)
#   SAMPLE_TOKENS PROMPT SEED    the closing sample (120 "ROMEO:" 1337)
#   THREADS DEVICE  CPU threads (default: all), auto|cpu|cuda (auto)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH=$ROOT/bin:$PATH
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
if [ -z "${GPT_VOCAB:-}" ] && [ -d "$SHARED/data/gpt2" ]; then
	GPT_VOCAB=$SHARED/data/gpt2
	export GPT_VOCAB
fi
URL=https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt
DATA=${DATA:-$URL}
WORK=${WORK:-$ROOT/build/demo}
LAYERS=${LAYERS:-4} HEADS=${HEADS:-4} WIDTH=${WIDTH:-128} CONTEXT=${CONTEXT:-128}
BATCH=${BATCH:-8} STEPS=${STEPS:-300} LR=${LR:-3e-3}
VAL_EVERY=${VAL_EVERY:-100} VAL_BATCHES=${VAL_BATCHES:-8}
EVAL_WINDOWS=${EVAL_WINDOWS:-0}
SAMPLE_TOKENS=${SAMPLE_TOKENS:-120} PROMPT=${PROMPT:-ROMEO:} SEED=${SEED:-1337}
DEVICE=${DEVICE:-auto} THREADS=${THREADS:-}

say() { echo "quickstart: $*"; }
bytes() { wc -c <"$1" | tr -d ' '; }

for t in gpt-fetch gpt-tokenize gpt-shard gpt-train gpt-eval gpt-sample; do
	command -v "$t" >/dev/null 2>&1 ||
		{ say "$t is not built: run make first" >&2; exit 1; }
done
mkdir -p "$WORK"

# 1. fetch: the corpus as NUL-ended documents.  A URL that cannot be
# fetched (no network, or offline) falls back to a local corpus.
is_url() { case $1 in http://*|https://*|hf://*) return 0;; esac; return 1; }
fallback() {
	if [ -r "$SHARED/data/text/tinyshakespeare.txt" ]; then
		echo "$SHARED/data/text/tinyshakespeare.txt"
	else
		echo /usr/share/common-licenses
	fi
}
src=$DATA
key=$(printf '%s' "$src" | cksum | cut -d' ' -f1)
D=$WORK/corpus-$key
mkdir -p "$D"
if [ -s "$D/corpus.docs" ]; then
	say "fetch: done before: $D/corpus.docs (from $(cat "$D/source" 2>/dev/null))"
else
	ok=1
	if is_url "$src"; then
		say "fetch: downloading $src"
		# a short backoff: an unreachable network is reported in seconds
		GPT_HTTP_BACKOFF_MS=${GPT_HTTP_BACKOFF_MS:-100} \
			gpt-fetch -q -o "$D/corpus.docs" "$src" 2>"$D/fetch.err" || ok=0
		if [ $ok = 0 ]; then
			tail -n 1 "$D/fetch.err" >&2
			src=$(fallback)
			say "fetch: cannot download $DATA (network unreachable or offline); using $src instead"
		fi
		rm -f "$D/fetch.err"
	fi
	if ! is_url "$src" && { [ $ok = 0 ] || [ ! -s "$D/corpus.docs" ]; }; then
		if [ -d "$src" ]; then
			# a folder: each readable file is one document
			set -- $(find "$src" -maxdepth 1 -type f | LC_ALL=C sort)
		else
			set -- "$src"
		fi
		[ $# -gt 0 ] && [ -r "$1" ] || { say "no corpus at '$src'" >&2; exit 1; }
		gpt-fetch -q -o "$D/corpus.docs" "$@"
	fi
	echo "$src" >"$D/source"
	say "fetch: $(cat "$D/source") -> $D/corpus.docs: $(tr -cd '\0' <"$D/corpus.docs" | wc -c | tr -d ' ') documents, $(bytes "$D/corpus.docs") bytes"
fi

# 2. tokenize: documents to GPT-2 token ids, u16, <|endoftext|> between them.
if [ -s "$D/tokens.u16" ]; then
	say "tokenize: done before: $D/tokens.u16"
else
	gpt-tokenize -q -z -f u16 -j "${THREADS:-2}" "$D/corpus.docs" >"$D/tokens.u16.tmp"
	mv "$D/tokens.u16.tmp" "$D/tokens.u16"
	say "tokenize: $(($(bytes "$D/tokens.u16") / 2)) tokens -> $D/tokens.u16"
fi
ntok=$(($(bytes "$D/tokens.u16") / 2))

# 3. shard: the first tenth for validation, the rest for training.  The
# shards are written in a scratch folder renamed whole when complete.
if [ -d "$D/shards" ]; then
	say "shard: done before: $D/shards"
else
	rm -rf "$D/shards.tmp"
	mkdir "$D/shards.tmp"
	gpt-shard -q -f u16 -o "$D/shards.tmp/corpus" --val-tokens $((ntok / 10)) \
		"$D/tokens.u16"
	mv "$D/shards.tmp" "$D/shards"
	say "shard: $((ntok / 10)) validation and $((ntok - ntok / 10)) training tokens -> $D/shards/"
fi
TRAIN="$D/shards/corpus-train-*"
VAL="$D/shards/corpus-val-*"

# 4. train: a run folder per model shape; an unfinished run is resumed.
R=$D/run-l$LAYERS-h$HEADS-w$WIDTH-t$CONTEXT
last_step() { tail -n 1 "$R/log.tsv" 2>/dev/null | cut -f1 | grep -E '^[0-9]+$' || echo 0; }
set --
[ -n "$THREADS" ] && set -- --threads "$THREADS"
if [ -e "$R/latest" ] && [ "$(last_step)" -ge "$STEPS" ]; then
	say "train: done before: $R at step $(last_step)"
else
	if [ -e "$R/latest" ]; then
		say "train: resuming $R from step $(last_step)"
		gpt-train --resume "$R" --steps "$STEPS" --device "$DEVICE" "$@"
	else
		rm -rf "$R"
		say "train: $LAYERS layers, $HEADS heads, width $WIDTH, context $CONTEXT, $STEPS steps of $BATCH x $CONTEXT tokens -> $R"
		gpt-train -i "$TRAIN" --val "$VAL" -o "$R" --layers "$LAYERS" \
			--heads "$HEADS" --width "$WIDTH" --context "$CONTEXT" \
			-b "$BATCH" --steps "$STEPS" --lr "$LR" --seed "$SEED" \
			--val-every "$VAL_EVERY" --val-batches "$VAL_BATCHES" \
			--checkpoint-every 100 --keep 1 --device "$DEVICE" "$@"
	fi
	say "train: step $(last_step), train loss $(tail -n 1 "$R/log.tsv" | cut -f3), $(tail -n 1 "$R/log.tsv" | cut -f8) s"
fi

# 5. eval: the validation loss of the final checkpoint.
E=$D/eval-$(basename "$R")-$STEPS-w$EVAL_WINDOWS.tsv
if [ -s "$E" ] && [ "$E" -nt "$R/latest" ]; then
	say "eval: done before: $E"
else
	set -- -w "$EVAL_WINDOWS"
	[ "$EVAL_WINDOWS" = 0 ] && set --
	gpt-eval -q --tsv "$@" "$R" "$VAL" >"$E.tmp"
	mv "$E.tmp" "$E"
	say "eval: scored the validation shards -> $E"
fi
col() { awk -F'\t' -v c="$1" 'NR==1{for(i=1;i<=NF;i++)if($i==c)k=i;next}k{print $k;exit}' "$E"; }
loss=$(col loss)

# 6. sample: text from the trained model.
S=$D/sample-$(basename "$R")-$STEPS-s$SEED.txt
if [ -s "$S" ] && [ "$S" -nt "$R/latest" ]; then
	say "sample: done before: $S"
else
	gpt-sample -s "$SEED" -m "$SAMPLE_TOKENS" "$R" "$PROMPT" >"$S.tmp"
	mv "$S.tmp" "$S"
	say "sample: $SAMPLE_TOKENS tokens after '$PROMPT' -> $S"
fi

echo
cat "$S"
echo
echo
say "validation loss $loss nats/token (an untrained model: ln 50257 = 10.82), perplexity $(col ppl), $(col bpb) bits per byte"
