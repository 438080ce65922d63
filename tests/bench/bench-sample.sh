#!/bin/sh
# bench-sample: CPU sampling speed (tokens/s, with the key/value cache) of
# gpt-sample next to transformers' generate() with its cache, on the same
# random weights and the same machine and thread count: a d12-sized model
# (GPT-2 small: 12 layers, width 768, context 1024, vocabulary 50257) and a
# small one (4 layers, width 256).  Needs torch and transformers in the
# virtualenv for the peer and to make the weights; without them it says so
# and stops.  Prints both rates and their ratio (ours / theirs).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/bin}
PY=${PY:-$ROOT/.venv/bin/python}
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
TOKENS=${TOKENS:-64}
THREADS=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$THREADS GPT_VOCAB=${GPT_VOCAB:-$SHARED/data/gpt2} GPT_OFFLINE=1
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-sample
bench_peers bench-sample torch transformers || exit 0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-sample.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PROMPT="Every effort moves you forward, and the work of many hands makes light of every"

cat >"$TMP/peer.py" <<'PYEOF'
import sys, time, torch
from transformers import GPT2Config, GPT2LMHeadModel
mode, folder, layers, width, heads, ctx = sys.argv[1:7]
torch.set_num_threads(int(sys.argv[7]))
if mode == "make":
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=int(layers), n_embd=int(width), n_head=int(heads),
                     n_positions=int(ctx), vocab_size=50257)
    GPT2LMHeadModel(cfg).save_pretrained(folder, safe_serialization=True)
    sys.exit(0)
m = GPT2LMHeadModel.from_pretrained(folder).eval()
ids = torch.tensor([[int(x) for x in sys.argv[8].split()]])
n = int(sys.argv[9])
with torch.no_grad():
    m.generate(ids, max_new_tokens=4, do_sample=True, top_k=40, use_cache=True,
               pad_token_id=50256)
    t = time.perf_counter()
    out = m.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=True, top_k=40,
                     use_cache=True, pad_token_id=50256)
    dt = time.perf_counter() - t
print("%.2f" % ((out.shape[1] - ids.shape[1]) / dt))
PYEOF

ids=$(printf %s "$PROMPT" | "$BIN/gpt-tokenize")
echo "bench-sample: $TOKENS tokens after a ${#PROMPT}-byte prompt, top-k 40, $THREADS threads"
for spec in "d12 12 768 12 1024" "small 4 256 4 256"; do
	set -- $spec
	name=$1
	"$PY" "$TMP/peer.py" make "$TMP/$name" "$2" "$3" "$4" "$5" "$THREADS" 2>/dev/null
	"$BIN/gpt-convert" -q import "$TMP/$name" -o "$TMP/$name.gpt"
	rm -f "$TMP/$name/model.safetensors.tmp"
	"$BIN/gpt-sample" -m 4 "$TMP/$name.gpt" "$PROMPT" >/dev/null
	ours=$("$BIN/gpt-sample" --stats --ignore-eot -m "$TOKENS" "$TMP/$name.gpt" "$PROMPT" \
		2>&1 >/dev/null | sed -n 's/.*, \([0-9.]*\) tokens\/s/\1/p')
	theirs=$("$PY" "$TMP/peer.py" run "$TMP/$name" "$2" "$3" "$4" "$5" "$THREADS" "$ids" "$TOKENS" \
		2>/dev/null | tail -1)
	ratio=$("$PY" -c "print('%.2f' % ($ours / $theirs))")
	echo "$name: gpt-sample $ours tokens/s, transformers generate() $theirs tokens/s, ratio $ratio"
	rm -rf "$TMP/$name" "$TMP/$name.gpt"
done
