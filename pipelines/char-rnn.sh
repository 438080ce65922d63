#!/bin/sh
# Karpathy's char-rnn with the toolchain: tinyshakespeare as bytes ->
# shards (5% held out) -> a byte-level LSTM (gpt-train --model char-rnn:
# 3 layers of 512, dropout 0.5, windows of 100 bytes, batch 100, Adam at
# 3e-4, clipping at 5, truncated backpropagation through time) -> eval
# (bits per byte) -> sample.  Every stage says what it did and is skipped
# when its outputs exist, so a rerun resumes (an interrupted training
# goes on from its last checkpoint); see gpt-pipeline(7).
#
# Environment (all optional):
#   DATA=PATH|URL   corpus (default: tinyshakespeare from its public URL;
#                   when that cannot be fetched, ../shared/data/text/
#                   tinyshakespeare.txt)
#   WORK=DIR        where everything goes (default build/char-rnn)
#   LAYERS WIDTH EMBED CONTEXT   the LSTM (default char-rnn's: 3 512 512 100)
#   BATCH STEPS LR DROPOUT       default 100, one pass over the data,
#                   3e-4, 0.5
#   VAL_FRAC        the held-out share in percent (default 5)
#   VAL_EVERY VAL_BATCHES        validation during training (200 10)
#   SAMPLE_BYTES PROMPT SEED TEMPERATURE   the closing sample
#                   (1000 "ROMEO:" 1337 0.8)
#   THREADS DEVICE  CPU threads (default: all), auto|cpu (auto)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH=$ROOT/bin:$PATH
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
URL=https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt
DATA=${DATA:-$URL}
WORK=${WORK:-$ROOT/build/char-rnn}
LAYERS=${LAYERS:-3} WIDTH=${WIDTH:-512} EMBED=${EMBED:-$WIDTH} CONTEXT=${CONTEXT:-100}
BATCH=${BATCH:-100} STEPS=${STEPS:-} LR=${LR:-3e-4} DROPOUT=${DROPOUT:-0.5}
VAL_FRAC=${VAL_FRAC:-5} VAL_EVERY=${VAL_EVERY:-200} VAL_BATCHES=${VAL_BATCHES:-10}
SAMPLE_BYTES=${SAMPLE_BYTES:-1000} PROMPT=${PROMPT:-ROMEO:} SEED=${SEED:-1337}
TEMPERATURE=${TEMPERATURE:-0.8}
DEVICE=${DEVICE:-auto} THREADS=${THREADS:-}

say() { echo "char-rnn: $*"; }
bytes() { wc -c <"$1" | tr -d ' '; }

for t in gpt-fetch gpt-tokenize gpt-shard gpt-train gpt-eval gpt-sample; do
	command -v "$t" >/dev/null 2>&1 ||
		{ say "$t is not built: run make first" >&2; exit 1; }
done
mkdir -p "$WORK"

# 1. fetch: the corpus, one document.  A URL that cannot be fetched falls
# back to the local copy.
is_url() { case $1 in http://*|https://*|hf://*) return 0;; esac; return 1; }
key=$(printf '%s' "$DATA" | cksum | cut -d' ' -f1)
D=$WORK/corpus-$key
mkdir -p "$D"
if [ -s "$D/corpus.txt" ]; then
	say "fetch: done before: $D/corpus.txt (from $(cat "$D/source" 2>/dev/null))"
else
	src=$DATA
	if is_url "$src"; then
		say "fetch: downloading $src"
		if ! GPT_HTTP_BACKOFF_MS=${GPT_HTTP_BACKOFF_MS:-100} \
			gpt-fetch -q -o "$D/corpus.docs" "$src" 2>"$D/fetch.err"; then
			tail -n 1 "$D/fetch.err" >&2
			src=$SHARED/data/text/tinyshakespeare.txt
			say "fetch: cannot download $DATA; using $src instead"
		fi
		rm -f "$D/fetch.err"
	fi
	if ! is_url "$src"; then
		[ -r "$src" ] || { say "no corpus at '$src'" >&2; exit 1; }
		gpt-fetch -q -o "$D/corpus.docs" "$src"
	fi
	# one text: the documents' NUL ends dropped (char-rnn reads bytes)
	tr -d '\0' <"$D/corpus.docs" >"$D/corpus.txt.tmp"
	mv "$D/corpus.txt.tmp" "$D/corpus.txt"
	rm -f "$D/corpus.docs"
	echo "$src" >"$D/source"
	say "fetch: $(cat "$D/source") -> $D/corpus.txt: $(bytes "$D/corpus.txt") bytes"
fi
n=$(bytes "$D/corpus.txt")

# 2. bytes -> shards: every byte its own id (gpt-tokenize --vocab bytes),
# the last VAL_FRAC percent held out for validation, as char-rnn's split.
if [ -d "$D/shards" ]; then
	say "shard: done before: $D/shards"
else
	nval=$((n * VAL_FRAC / 100))
	ntrain=$((n - nval))
	rm -rf "$D/shards.tmp"
	mkdir "$D/shards.tmp"
	# gpt-shard takes its validation tokens first: the held-out tail is
	# cut off and put in front
	{ tail -c "$nval" "$D/corpus.txt"; head -c "$ntrain" "$D/corpus.txt"; } |
		gpt-tokenize -q --vocab bytes -f u16 |
		gpt-shard -q -f u16 --vocab bytes -o "$D/shards.tmp/bytes" --val-tokens "$nval"
	mv "$D/shards.tmp" "$D/shards"
	say "shard: $ntrain training and $nval validation bytes -> $D/shards/"
fi
TRAIN="$D/shards/bytes-train-*"
VAL="$D/shards/bytes-val-*"

# 3. train: a run folder per shape; an unfinished run is resumed.
R=$D/run-lstm-l$LAYERS-w$WIDTH-e$EMBED-t$CONTEXT-b$BATCH
last_step() { tail -n 1 "$R/log.tsv" 2>/dev/null | cut -f1 | grep -E '^[0-9]+$' || echo 0; }
set --
[ -n "$THREADS" ] && set -- --threads "$THREADS"
[ -n "$STEPS" ] && set -- "$@" --steps "$STEPS"
want=${STEPS:-$(( (n - n * VAL_FRAC / 100 - 1) / BATCH / CONTEXT ))}
if [ -e "$R/latest" ] && [ "$(last_step)" -ge "$want" ]; then
	say "train: done before: $R at step $(last_step)"
else
	if [ -e "$R/latest" ]; then
		say "train: resuming $R from step $(last_step)"
		gpt-train --resume "$R" --device "$DEVICE" "$@"
	else
		rm -rf "$R"
		say "train: lstm of $LAYERS layers, width $WIDTH, embedding $EMBED, windows of $CONTEXT bytes, batch $BATCH, $want steps -> $R"
		gpt-train -i "$TRAIN" --val "$VAL" -o "$R" --model char-rnn --layers "$LAYERS" \
			--width "$WIDTH" --embed "$EMBED" --context "$CONTEXT" -b "$BATCH" \
			--lr "$LR" --dropout "$DROPOUT" --seed "$SEED" \
			--val-every "$VAL_EVERY" --val-batches "$VAL_BATCHES" \
			--checkpoint-every 100 --keep 2 --device "$DEVICE" "$@"
	fi
	say "train: step $(last_step), train loss $(tail -n 1 "$R/log.tsv" | cut -f3), $(tail -n 1 "$R/log.tsv" | cut -f8) s"
fi

# 4. eval: the held-out bytes as one stream, the state carried through.
E=$D/eval-$(basename "$R").tsv
if [ -s "$E" ] && [ "$E" -nt "$R/latest" ]; then
	say "eval: done before: $E"
else
	gpt-eval -q --tsv --device "$DEVICE" "$R" "$VAL" >"$E.tmp"
	mv "$E.tmp" "$E"
	say "eval: scored the validation bytes -> $E"
fi
col() { awk -F'\t' -v c="$1" 'NR==1{for(i=1;i<=NF;i++)if($i==c)k=i;next}k{print $k;exit}' "$E"; }

# 5. sample: a scene, byte by byte.
S=$D/sample-$(basename "$R")-s$SEED.txt
if [ -s "$S" ] && [ "$S" -nt "$R/latest" ]; then
	say "sample: done before: $S"
else
	gpt-sample -q --device "$DEVICE" -s "$SEED" -t "$TEMPERATURE" -k 0 -m "$SAMPLE_BYTES" \
		"$R" "$PROMPT" >"$S.tmp"
	mv "$S.tmp" "$S"
	say "sample: $SAMPLE_BYTES bytes after '$PROMPT' -> $S"
fi

echo
cat "$S"
echo
echo
say "validation $(col bpb) bits per byte (random: 8; a bigram model: about 3.3), loss $(col loss) nats"
