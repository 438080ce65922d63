# gpt-convert and the char-lstm folder: config.json (model_type
# "char-lstm") and model.safetensors holding PyTorch's state dict
# (tests/fixtures/lstm/torch, from tests/gen_lstm_fixtures.py).  The
# safetensors files and the checkpoint are read here by hand (json and
# struct, no safetensors package); when the virtualenv has torch and
# safetensors, the man page's snippet is run and the export is loaded into
# nn.LSTM with strict names and shapes.
. "$ROOT/tests/lib.sh"
F=$ROOT/tests/fixtures/lstm/torch

# st.py: safetensors and checkpoints by hand.
#   same A B [DTYPE]      A and B hold the same tensors: names, shapes, bytes,
#                         each of dtype DTYPE (F32)
#   ckpt CKPT ST          CKPT's tensors are ST's, padding rows zero;
#                         prints "version tokenizer context arch input"
#   drop SRC DST NAME     DST is SRC without tensor NAME
#   f16 SRC DST           DST is SRC with every tensor float16
#   dtype SRC DST NAME D  NAME relabelled dtype D (same bytes)
#   nan SRC DST NAME      NAME's first value NaN
#   shape SRC DST NAME S  NAME relabelled with shape S (comma-separated)
#   add SRC DST NAME      an extra float32 tensor NAME [4]
cat >"$TMP/st.py" <<'PYEOF'
import json, struct, sys

def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = [v["dtype"], list(v["shape"]), raw[8 + n + b:8 + n + e]]
    return out

def write(path, ts):
    hdr, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for k, (dt, shape, data) in ts.items():
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    h = json.dumps(hdr).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)

def ckpt(path):
    raw = open(path, "rb").read()
    if raw[:8] != b"GPTCKPT\0":
        die("not a checkpoint")
    version, = struct.unpack_from("<I", raw, 8)
    ntens, = struct.unpack_from("<I", raw, 28)
    context, = struct.unpack_from("<I", raw, 52)
    vocab, padded = struct.unpack_from("<II", raw, 56)
    tok = raw[216:280].split(b"\0")[0].decode()
    arch, inp = struct.unpack_from("<II", raw, 452)
    sec = [struct.unpack_from("<QQQ", raw, 280 + 24 * i) for i in range(2)]
    table, params = sec[0][0], sec[1][0]
    ts = {}
    for i in range(ntens):
        e = raw[table + 128 * i:table + 128 * (i + 1)]
        name = e[:64].split(b"\0")[0].decode()
        dtype, ndim = struct.unpack_from("<II", e, 64)
        shape = list(struct.unpack_from("<4Q", e, 72))[:ndim]
        off, count = struct.unpack_from("<QQ", e, 104)
        ts[name] = [shape, raw[params + 4 * off:params + 4 * (off + count)]]
    return version, tok, context, vocab, padded, arch, inp, ts

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "same":
    x, y = read(a[0]), read(a[1])
    want = a[2] if len(a) > 2 else "F32"
    if sorted(x) != sorted(y):
        die("names differ: %s / %s" % (sorted(x), sorted(y)))
    for k in x:
        if x[k][0] != want or y[k][0] != want:
            die("%s: dtypes %s, %s" % (k, x[k][0], y[k][0]))
        if x[k][1] != y[k][1]:
            die("%s: shapes %s, %s" % (k, x[k][1], y[k][1]))
        if x[k][2] != y[k][2]:
            die("%s: the bytes differ" % k)
elif cmd == "ckpt":
    version, tok, context, vocab, padded, arch, inp, ts = ckpt(a[0])
    st = read(a[1])
    if sorted(ts) != sorted(st):
        die("names differ: %s / %s" % (sorted(ts), sorted(st)))
    for k, (dt, shape, data) in st.items():
        cshape, cdata = ts[k]
        vocab_rows = k in ("embedding.weight", "decoder.weight", "decoder.bias")
        want = [padded] + shape[1:] if vocab_rows else shape
        if cshape != want:
            die("%s: checkpoint shape %s, wanted %s" % (k, cshape, want))
        if cdata[:len(data)] != data:
            die("%s: the weights differ" % k)
        if cdata[len(data):] != bytes(len(cdata) - len(data)):
            die("%s: padding rows not zero" % k)
    print(version, tok, context, arch, inp)
elif cmd == "drop":
    ts = read(a[0])
    del ts[a[2]]
    write(a[1], ts)
elif cmd == "f16":
    ts = read(a[0])
    for k, v in ts.items():
        n = len(v[2]) // 4
        v[0], v[2] = "F16", struct.pack("<%de" % n, *struct.unpack("<%df" % n, v[2]))
    write(a[1], ts)
elif cmd == "dtype":
    ts = read(a[0])
    ts[a[2]][0] = a[3]
    write(a[1], ts)
elif cmd == "nan":
    ts = read(a[0])
    ts[a[2]][2] = struct.pack("<f", float("nan")) + ts[a[2]][2][4:]
    write(a[1], ts)
elif cmd == "shape":
    ts = read(a[0])
    ts[a[2]][1] = [int(s) for s in a[3].split(",")]
    write(a[1], ts)
elif cmd == "add":
    ts = read(a[0])
    ts[a[2]] = ["F32", [4], bytes(16)]
    write(a[1], ts)
PYEOF
st() { "$PY" "$TMP/st.py" "$@"; }

# The fixture in: its tensors, byte for byte, the padding zero; bytes.
check "import the PyTorch folder" gpt-convert import "$F" -o "$TMP/a.gpt"
check_grep "summary names the family" "char-lstm, 2 layers, hidden 32, embedding 16, context 65536, vocabulary 257.*tokenizer bytes" "$TMP/.err"
check "the checkpoint holds the fixture's tensors, padding zero" st ckpt "$TMP/a.gpt" "$F/model.safetensors"
check_eq "version 3, tokenizer bytes, context 65536, arch 1, embedding width 16" \
	"$(cat "$TMP/.out")" "3 bytes 65536 1 16"

# The imported model scores as PyTorch's does (tests/fixtures/lstm/
# torch-loss.txt: the first 4096 bytes of its text as one stream), through
# the tokenizer the import recorded.
head -c 4096 "$SHARED/data/$(awk '$1 == "file" { print $2 }' "$ROOT/tests/fixtures/lstm/torch-loss.txt")" >"$TMP/text"
check "gpt-eval scores it" sh -c 'gpt-eval --text --tsv "$1" <"$2" >"$3"' sh "$TMP/a.gpt" "$TMP/text" "$TMP/eval.tsv"
want=$(awk '$1 == "loss" { print $2 }' "$ROOT/tests/fixtures/lstm/torch-loss.txt")
check "PyTorch's loss ($want) on 4095 bytes" awk -v a="$(col "$TMP/eval.tsv" loss)" -v b="$want" \
	-v n="$(col "$TMP/eval.tsv" tokens)" 'BEGIN { d = a - b; exit !(n == 4095 && d < 1e-3 && d > -1e-3) }'

# Out again: PyTorch's tensors and config, then the same checkpoint back.
check "export" gpt-convert export "$TMP/a.gpt" -o "$TMP/hf"
check "import then export: the fixture's tensors, byte for byte" \
	st same "$TMP/hf/model.safetensors" "$F/model.safetensors"
check_files "import then export: the fixture's config.json" "$TMP/hf/config.json" "$F/config.json"
check "import the export" gpt-convert -q import "$TMP/hf" -o "$TMP/b.gpt"
check_files "export then import: the same checkpoint" "$TMP/a.gpt" "$TMP/b.gpt"

# A context of one's own: --context or context_length, and back out.
check "--context 128" gpt-convert -q import "$F" -o "$TMP/c.gpt" --context 128
check "its tensors" st ckpt "$TMP/c.gpt" "$F/model.safetensors"
check_eq "context 128" "$(cut -d' ' -f3 "$TMP/.out")" "128"
check "export it" gpt-convert export "$TMP/c.gpt" -o "$TMP/hfc"
check_grep "config.json carries context_length" '"num_layers": 2, "context_length": 128}' "$TMP/hfc/config.json"
check "import it" gpt-convert -q import "$TMP/hfc" -o "$TMP/c2.gpt"
check_files "the same checkpoint, context included" "$TMP/c.gpt" "$TMP/c2.gpt"
check "--context over context_length" gpt-convert -q import "$TMP/hfc" -o "$TMP/c3.gpt" --context 65536
check_files "is the default checkpoint" "$TMP/c3.gpt" "$TMP/a.gpt"
check_status 2 "--context 0" gpt-convert import "$F" -o "$TMP/c4.gpt" --context 0
check_status 2 "--context past 2^20" gpt-convert import "$F" -o "$TMP/c4.gpt" --context 1048577
check_status 2 "--context with export" gpt-convert export "$TMP/a.gpt" -o "$TMP/hfx" --context 64
check "nothing written" test ! -e "$TMP/c4.gpt" -a ! -e "$TMP/hfx"

# --tokenizer still wins; float16 is widened.
check "--tokenizer over bytes" gpt-convert -q import "$F" -o "$TMP/t.gpt" --tokenizer mine
check "its tensors" st ckpt "$TMP/t.gpt" "$F/model.safetensors"
check_eq "tokenizer mine" "$(cut -d' ' -f2 "$TMP/.out")" "mine"
mkdir -p "$TMP/h16"
cp "$F/config.json" "$TMP/h16/"
st f16 "$F/model.safetensors" "$TMP/h16/model.safetensors"
check "import float16" gpt-convert -q import "$TMP/h16" -o "$TMP/h16.gpt"
check "export it" gpt-convert export "$TMP/h16.gpt" -o "$TMP/h16-out"
st f16 "$TMP/h16-out/model.safetensors" "$TMP/h16-again.safetensors"
check "float16 widened exactly (narrowing again gives the input)" \
	st same "$TMP/h16-again.safetensors" "$TMP/h16/model.safetensors" F16

# Bad folders: status 1, one line naming the field or tensor, no checkpoint.
# bad DESC PATTERN: the folder $TMP/bad is refused so.
n_bad=0
bad() {
	n_bad=$((n_bad + 1))
	check_status 1 "$1" gpt-convert import "$TMP/bad" -o "$TMP/bad$n_bad.gpt"
	check_grep "$1: says so" "$2" "$TMP/.err"
	check_eq "$1: one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
	check "$1: no checkpoint" test ! -e "$TMP/bad$n_bad.gpt"
}
# cfg JSON: $TMP/bad holds config JSON and the fixture's weights.
cfg() {
	rm -rf "$TMP/bad"
	mkdir -p "$TMP/bad"
	printf '%s\n' "$1" >"$TMP/bad/config.json"
	cp "$F/model.safetensors" "$TMP/bad/"
}
K='"vocab_size": 257, "embedding_dim": 16, "hidden_size": 32'
cfg "{\"model_type\": \"char-rnn\", $K, \"num_layers\": 2}"
bad "wrong model_type" "^gpt-convert: unsupported model_type \"char-rnn\" \(gpt2 or char-lstm\)"
cfg "{\"model_type\": 7, $K, \"num_layers\": 2}"
bad "model_type not a string" "model_type is not a string"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 0}"
bad "num_layers 0" "'num_layers' is 0, out of range \(1-1024\)"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 5000}"
bad "num_layers 5000" "'num_layers' is 5000, out of range \(1-1024\)"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 1.5}"
bad "num_layers 1.5" "'num_layers' is not an integer"
cfg "{\"model_type\": \"char-lstm\", $K}"
bad "num_layers missing" "config has no 'num_layers'"
cfg '{"model_type": "char-lstm", "vocab_size": "257", "embedding_dim": 16, "hidden_size": 32, "num_layers": 2}'
bad "vocab_size a string" "'vocab_size' is not an integer"
cfg '{"model_type": "char-lstm", "vocab_size": 16777217, "embedding_dim": 16, "hidden_size": 32, "num_layers": 2}'
bad "vocab_size too large" "'vocab_size' is 16777217, out of range \(1-16777216\)"
cfg '{"model_type": "char-lstm", "vocab_size": 257, "embedding_dim": 0, "hidden_size": 32, "num_layers": 2}'
bad "embedding_dim 0" "'embedding_dim' is 0, out of range \(1-65536\)"
cfg '{"model_type": "char-lstm", "vocab_size": 257, "embedding_dim": 16, "hidden_size": 70000, "num_layers": 2}'
bad "hidden_size too large" "'hidden_size' is 70000, out of range \(1-65536\)"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 2, \"context_length\": 0}"
bad "context_length 0" "'context_length' is 0, out of range \(1-1048576\)"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 2, \"bidirectional\": true}"
bad "bidirectional" "unsupported: config 'bidirectional' must be false"
cfg '{"model_type": "char-lstm", "vocab_size": 65536, "embedding_dim": 65536, "hidden_size": 65536, "num_layers": 1024}'
bad "a model too large" "unsupported char-lstm configuration \(model too large\)"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 3}"
bad "more layers than the weights" "no tensor lstm.weight_ih_l2 in: '.*model.safetensors'"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 1}"
bad "fewer layers than the weights" "unexpected tensor lstm\.[a-z_]+_l1 \(a char-lstm of 1 layers has none\)"
cfg '{"model_type": "char-lstm", "vocab_size": 257, "embedding_dim": 17, "hidden_size": 32, "num_layers": 2}'
bad "config and weights disagree" "tensor embedding.weight has shape \[257, 16\], expected \[257, 17\]"
cfg '{"model_type": "char-lstm", "vocab_size": 256, "embedding_dim": 16, "hidden_size": 32, "num_layers": 2}'
bad "vocabulary one short" "tensor embedding.weight has shape \[257, 16\], expected \[256, 16\]"
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 2}"
st drop "$F/model.safetensors" "$TMP/bad/model.safetensors" lstm.bias_hh_l1
bad "missing tensor" "no tensor lstm.bias_hh_l1 in"
st shape "$F/model.safetensors" "$TMP/bad/model.safetensors" lstm.weight_hh_l0 64,64
bad "wrong shape" "tensor lstm.weight_hh_l0 has shape \[64, 64\], expected \[128, 32\]"
st shape "$F/model.safetensors" "$TMP/bad/model.safetensors" decoder.bias 1,257
bad "wrong rank" "tensor decoder.bias has shape \[1, 257\], expected \[257\]"
st dtype "$F/model.safetensors" "$TMP/bad/model.safetensors" decoder.weight I32
bad "wrong dtype" "tensor 'decoder.weight' has dtype I32"
st nan "$F/model.safetensors" "$TMP/bad/model.safetensors" lstm.weight_ih_l0
bad "a NaN" "non-finite"
st add "$F/model.safetensors" "$TMP/bad/model.safetensors" lstm.weight_hr_l0
bad "a projection tensor" "unexpected tensor lstm.weight_hr_l0"
head -c 60000 "$F/model.safetensors" >"$TMP/bad/model.safetensors"
bad "truncated safetensors" "outside the file"
head -c 100 "$F/model.safetensors" >"$TMP/bad/model.safetensors"
bad "truncated in the header" "header length"
rm "$TMP/bad/model.safetensors"
bad "no model.safetensors" "cannot open.*model.safetensors"

# The families do not mix: GPT-2 weights under a char-lstm config and
# char-lstm weights under a GPT-2 one are each named for what they are.
H=$ROOT/tests/fixtures/hf/random
cfg "{\"model_type\": \"char-lstm\", $K, \"num_layers\": 2}"
cp "$H/model.safetensors" "$TMP/bad/"
bad "GPT-2 weights given as a char-lstm" "GPT-2 weights \(wte.weight\), not a char-lstm's"
rm -rf "$TMP/bad"
mkdir -p "$TMP/bad"
cp "$H/config.json" "$F/model.safetensors" "$TMP/bad/"
bad "char-lstm weights given as GPT-2" "char-lstm weights \(lstm.weight_ih_l0\), not GPT-2's"
check_status 1 "--context with a GPT-2 folder" gpt-convert import "$H" -o "$TMP/g.gpt" --context 128
check_grep "names n_positions" "GPT-2 model's context is its n_positions" "$TMP/.err"
check "no checkpoint" test ! -e "$TMP/g.gpt"
# and a GPT-2 checkpoint still exports as GPT-2, the LSTM as a char-lstm
check "import GPT-2" gpt-convert -q import "$H" -o "$TMP/g.gpt" --tokenizer tiny
check "export GPT-2" gpt-convert export "$TMP/g.gpt" -o "$TMP/ghf"
check_grep "as gpt2" '"model_type": "gpt2"' "$TMP/ghf/config.json"
check_grep "the LSTM as char-lstm" '^\{"model_type": "char-lstm", ' "$TMP/hf/config.json"

# Export refuses a classifier-free non-checkpoint and existing files.
check_status 1 "export of a non-checkpoint" gpt-convert export "$F/config.json" -o "$TMP/nc"
check_status 1 "export over an existing folder's files" gpt-convert export "$TMP/a.gpt" -o "$TMP/hf"
check_grep "names the file" "already exists.*hf/(config.json|model.safetensors)" "$TMP/.err"

# PyTorch itself, when there: the man page's snippet writes a folder
# that imports, and our export loads into the module with strict names.
if "$PY" -c 'import torch, safetensors' 2>/dev/null; then
	awk '/^\.Bd/{blk = ""; inb = 1; next} /^\.Ed/{if (blk ~ /save_file/) printf "%s", blk; inb = 0}
	     inb && !/^gpt-convert /{blk = blk $0 "\n"}' "$ROOT/man/man1/gpt-convert.1" >"$TMP/snippet.py"
	check "the man page's snippet is there" grep -q "save_file(model.state_dict()" "$TMP/snippet.py"
	mkdir -p "$TMP/snip"
	check "the man page's snippet runs" sh -c 'cd "$1" && "$2" "$3"' sh "$TMP/snip" "$PY" "$TMP/snippet.py"
	check "its folder imports" gpt-convert -q import "$TMP/snip/charlstm" -o "$TMP/snip.gpt"
	check "and exports" gpt-convert export "$TMP/snip.gpt" -o "$TMP/snip-out"
	check "the same tensors" st same "$TMP/snip-out/model.safetensors" "$TMP/snip/charlstm/model.safetensors"
	cat >"$TMP/load.py" <<'PYEOF'
import json, sys, torch, torch.nn as nn
from safetensors.torch import load_file
d = sys.argv[1]
c = json.load(open(d + "/config.json"))
class CharLSTM(nn.Module):
    def __init__(self, V, E, H, L):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True)
        self.decoder = nn.Linear(H, V)
m = CharLSTM(c["vocab_size"], c["embedding_dim"], c["hidden_size"], c["num_layers"])
m.load_state_dict(load_file(d + "/model.safetensors"), strict=True)
PYEOF
	check "PyTorch loads our export, strict" "$PY" "$TMP/load.py" "$TMP/hf"
else
	echo "note: torch or safetensors not installed; PyTorch checks skipped"
fi
