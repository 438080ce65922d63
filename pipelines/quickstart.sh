#!/bin/sh
# The quickstart (make demo): a corpus through the toolchain, printing what
# each stage did.  For now: tokenize a text and decode it back.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH=$ROOT/bin:$PATH
SHARED=$(cd "$ROOT/.." && pwd)/shared
: "${GPT_VOCAB:=$SHARED/data/gpt2}"
export GPT_VOCAB
DATA=${DATA:-$SHARED/data/text/tinyshakespeare.txt}
[ -r "$DATA" ] || DATA=/usr/share/common-licenses/GPL-3
work=${WORK:-$ROOT/build/demo}
mkdir -p "$work"
echo "quickstart: corpus $DATA ($(wc -c <"$DATA") bytes)"
gpt-tokenize -j 2 -f u16 "$DATA" >"$work/tokens.u16"
echo "quickstart: gpt-tokenize wrote $(($(wc -c <"$work/tokens.u16") / 2)) tokens"
gpt-tokenize -d -f u16 "$work/tokens.u16" | cmp - "$DATA"
echo "quickstart: decoding gives back the corpus byte for byte"
