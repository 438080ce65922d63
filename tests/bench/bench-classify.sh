#!/bin/sh
# bench-classify: CPU classification speed (texts per CPU-second) of
# gpt-classify next to transformers' GPT2ForSequenceClassification of the
# same shape, on the same texts (lines of ../shared/data books), batch and
# thread count, measured in turns (ours, theirs, ours, theirs, ...) so the
# shared machine's swings fall on both.  Two shapes: GPT-2 small (12
# layers, width 768) and a small one (4 layers, width 256), two classes.
# Ours counts everything its process spends (loading the checkpoint and
# the vocabulary, tokenizing); theirs only the forward passes after the
# model is loaded.  Needs torch and transformers in the virtualenv; without
# them it says so and stops.  Prints both rates and their ratio.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/bin}
PY=${PY:-$ROOT/.venv/bin/python}
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
THREADS=${OMP_NUM_THREADS:-$(nproc)}
N=${N:-512} ROUNDS=${ROUNDS:-3} BATCH=${BATCH:-16}
export OMP_NUM_THREADS=$THREADS GPT_VOCAB=${GPT_VOCAB:-$SHARED/data/gpt2} GPT_OFFLINE=1
. "$ROOT/tests/bench/peers.sh"
bench_machine bench-classify
bench_peers bench-classify torch transformers || exit 0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-classify.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
awk 'length($0) > 40' "$SHARED/data/text/botchan.txt" | head -n "$N" >"$TMP/texts"
awk 'NR <= 64 { print (NR % 2 ? "a" : "b") "\t" $0 }' "$TMP/texts" >"$TMP/labelled.tsv"

cat >"$TMP/bench.py" <<'PYEOF'
import os, resource, subprocess, sys, time
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2ForSequenceClassification, GPT2TokenizerFast
mode = sys.argv[1]
if mode == "make":
    folder, layers, width, heads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=layers, n_embd=width, n_head=heads, n_positions=1024,
                     vocab_size=50257, num_labels=2, pad_token_id=50256)
    GPT2LMHeadModel(cfg).save_pretrained(folder, safe_serialization=True)
    GPT2ForSequenceClassification(cfg).save_pretrained(folder + "-cls", safe_serialization=True)
    sys.exit(0)
folder, ckpt, texts, gpt_classify, rounds, batch, threads = sys.argv[2:9]
torch.set_num_threads(int(threads))
lines = open(texts).read().splitlines()
# the same token ids on both sides: gpt-tokenize's, one line each
flat = subprocess.run([os.path.join(os.path.dirname(gpt_classify), "gpt-tokenize"), "-z"],
                      input=("\0".join(lines) + "\0").encode(), capture_output=True,
                      check=True).stdout.split()
ids, cur = [], []
for t in map(int, flat):
    if t == 50256:
        ids.append(cur or [50256])
        cur = []
    else:
        cur.append(t)
assert len(ids) == len(lines), (len(ids), len(lines))
m = GPT2ForSequenceClassification.from_pretrained(folder + "-cls").eval()
def theirs():
    t = time.process_time()
    with torch.no_grad():
        for i in range(0, len(ids), int(batch)):
            chunk = ids[i:i + int(batch)]
            w = max(len(x) for x in chunk)
            inp = torch.tensor([x + [50256] * (w - len(x)) for x in chunk])
            att = torch.tensor([[1] * len(x) + [0] * (w - len(x)) for x in chunk])
            m(input_ids=inp, attention_mask=att).logits.argmax(-1)
    return len(lines) / (time.process_time() - t)
def ours():
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(texts, "rb") as f:
        out = subprocess.run([gpt_classify, "-q", "--device", "cpu", "-b", batch, ckpt], stdin=f,
                             capture_output=True, check=True).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert out.count(b"\n") == len(lines)
    return len(lines) / ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
theirs()  # warm up
a, b = [], []
for _ in range(int(rounds)):
    a.append(ours())
    b.append(theirs())
a.sort(); b.sort()
print("%.1f %.1f" % (a[len(a) // 2], b[len(b) // 2]))
PYEOF

echo "bench-classify: $N lines, batches of $BATCH, $THREADS threads, $ROUNDS rounds in turns (medians)"
for spec in "d12 12 768 12" "small 4 256 4"; do
	set -- $spec
	name=$1
	"$PY" "$TMP/bench.py" make "$TMP/$name" "$2" "$3" "$4" 2>/dev/null
	"$BIN/gpt-convert" -q import "$TMP/$name" -o "$TMP/$name.gpt"
	# a classifier of this shape: one step of --classify (the speed does not
	# depend on what it learnt)
	"$BIN/gpt-train" -q --classify "$TMP/labelled.tsv" --init "$TMP/$name.gpt" --steps 1 \
		--device cpu -o "$TMP/$name.run"
	set -- $("$PY" "$TMP/bench.py" run "$TMP/$name" "$TMP/$name.run" "$TMP/texts" \
		"$BIN/gpt-classify" "$ROUNDS" "$BATCH" "$THREADS" 2>/dev/null | tail -1)
	ratio=$("$PY" -c "print('%.2f' % ($1 / $2))")
	echo "$name: gpt-classify $1 texts per CPU-second, transformers GPT2ForSequenceClassification $2, ratio $ratio"
	rm -rf "$TMP/$name" "$TMP/$name-cls" "$TMP/$name.gpt" "$TMP/$name.run"
done
