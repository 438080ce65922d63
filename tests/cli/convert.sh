# gpt-convert: Hugging Face GPT-2 folders in and out.  The fixtures come
# from tests/gen_hf_fixtures.py; when the virtualenv has transformers,
# exported folders are also loaded by transformers and their logits
# compared live; otherwise the round trip is checked against the
# committed expected values.
. "$ROOT/tests/lib.sh"
F=$ROOT/tests/fixtures/hf
V="--vocab $F/tiny.tiktoken"

check "import random (tied)" gpt-convert -q import "$F/random" -o "$TMP/r.gpt" --tokenizer tiny
check "import bigram (untied)" gpt-convert -q import "$F/bigram" -o "$TMP/b.gpt" --tokenizer tiny
check "export random" gpt-convert export "$TMP/r.gpt" -o "$TMP/r-hf"
check "export bigram" gpt-convert export "$TMP/b.gpt" -o "$TMP/b-hf"
check "exported files" test -s "$TMP/r-hf/config.json" -a -s "$TMP/r-hf/model.safetensors"
check "import the export again" gpt-convert -q import "$TMP/r-hf" -o "$TMP/r2.gpt" --tokenizer tiny
check_files "import, export, import: the same checkpoint" "$TMP/r.gpt" "$TMP/r2.gpt"
gpt-convert -q import "$TMP/b-hf" -o "$TMP/b2.gpt" --tokenizer tiny
check_files "untied round trip: the same checkpoint" "$TMP/b.gpt" "$TMP/b2.gpt"
check_grep "export writes tie_word_embeddings false when untied" '"tie_word_embeddings": false' \
	"$TMP/b-hf/config.json"

# The exported model's greedy tokens are transformers' (committed).
want=$("$PY" -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["greedy"])))' \
	"$F/expected.json")
got=$(gpt-sample $V -t 0 -m 20 --tokens --no-echo "$TMP/r2.gpt" "Every effort moves you")
check_eq "greedy tokens after a round trip" "$got" "$want"

if "$PY" -c 'import transformers, torch' 2>/dev/null; then
	cat >"$TMP/live.py" <<'PYEOF'
import json, sys, torch
from transformers import GPT2LMHeadModel
exp = json.load(open(sys.argv[1]))
ids = torch.tensor([exp["ids"]])
worst = 0.0
for ours, theirs in ((sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5])):
    a = GPT2LMHeadModel.from_pretrained(ours).eval()
    b = GPT2LMHeadModel.from_pretrained(theirs).eval()
    with torch.no_grad():
        worst = max(worst, (a(ids).logits - b(ids).logits).abs().max().item())
print(worst)
sys.exit(0 if worst < 1e-4 else 1)
PYEOF
	check "transformers loads our exports and reproduces the logits" \
		"$PY" "$TMP/live.py" "$F/expected.json" "$TMP/r-hf" "$F/random" "$TMP/b-hf" "$F/bigram"
else
	echo "note: transformers not installed; export checked through our own import only"
fi

# F16 weights convert on import (numpy writes the safetensors by hand).
if "$PY" -c 'import numpy' 2>/dev/null; then
	mkdir -p "$TMP/h16"
	cp "$F/random/config.json" "$TMP/h16/"
	cat >"$TMP/f16.py" <<'PYEOF'
import json, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
out, blobs, at = {}, [], 0
for k, v in hdr.items():
    if k == "__metadata__":
        continue
    b, e = v["data_offsets"]
    a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").astype("<f2").tobytes()
    out[k] = {"dtype": "F16", "shape": v["shape"], "data_offsets": [at, at + len(a)]}
    blobs.append(a)
    at += len(a)
h = json.dumps(out).encode()
open(dst, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PYEOF
	"$PY" "$TMP/f16.py" "$F/random/model.safetensors" "$TMP/h16/model.safetensors"
	check "import F16 weights" gpt-convert -q import "$TMP/h16" -o "$TMP/h16.gpt" --tokenizer tiny
	gpt-eval $V --text -q "$TMP/r.gpt" --tsv <"$F/lambada.jsonl" | cut -f5 | tail -1 >"$TMP/l32"
	gpt-eval $V --text -q "$TMP/h16.gpt" --tsv <"$F/lambada.jsonl" | cut -f5 | tail -1 >"$TMP/l16"
	check "F16 model scores close to the F32 one" "$PY" -c \
		'import sys; a, b = (float(open(p).read()) for p in sys.argv[1:]); sys.exit(abs(a - b) > 0.05)' \
		"$TMP/l32" "$TMP/l16"
fi

# Downloads: an hf:// model folder from a local hub.
mkdir -p "$TMP/w/hub/o/tiny/resolve/main"
cp "$F/random/config.json" "$F/random/model.safetensors" "$TMP/w/hub/o/tiny/resolve/main/"
httpd_start "$TMP/w"
check "import from hf://" env -u GPT_OFFLINE HF_ENDPOINT="$HTTPD_URL/hub" \
	XDG_CACHE_HOME="$TMP/cache" gpt-convert -q import hf://o/tiny -o "$TMP/u.gpt" --tokenizer tiny
check_files "downloaded import equals the local one" "$TMP/u.gpt" "$TMP/r.gpt"
httpd_stop

# Errors.
check_status 1 "missing folder" gpt-convert import "$TMP/nothing" -o "$TMP/x.gpt"
check_grep "missing folder named" "nothing" "$TMP/.err"
mkdir -p "$TMP/cut"
cp "$F/random/config.json" "$TMP/cut/"
head -c 5000 "$F/random/model.safetensors" >"$TMP/cut/model.safetensors"
check_status 1 "truncated safetensors" gpt-convert import "$TMP/cut" -o "$TMP/x.gpt"
check_grep "truncated safetensors: one line naming the problem" "outside the file|header" "$TMP/.err"
check "no partial checkpoint left" test ! -e "$TMP/x.gpt"
mkdir -p "$TMP/badcfg"
cp "$F/random/model.safetensors" "$TMP/badcfg/"
sed 's/"n_embd": 32/"n_embd": 48/' "$F/random/config.json" >"$TMP/badcfg/config.json"
check_status 1 "config and weights disagree" gpt-convert import "$TMP/badcfg" -o "$TMP/x.gpt"
check_grep "shape mismatch named" "shape" "$TMP/.err"
check_status 1 "export of a non-checkpoint" gpt-convert export "$F/tiny.tiktoken" -o "$TMP/y"
check_status 2 "unknown command" gpt-convert frobnicate "$F/random" -o "$TMP/x.gpt"
check_status 2 "no -o" gpt-convert import "$F/random"
check "help" gpt-convert --help

# --tokenizer takes the names gpt-shard takes, no others.
check_status 2 "--tokenizer with a space" gpt-convert import "$F/random" -o "$TMP/t1.gpt" --tokenizer "a b"
check_grep "says what a name may hold" "printable characters without spaces" "$TMP/.err"
check_status 2 "--tokenizer empty" gpt-convert import "$F/random" -o "$TMP/t1.gpt" --tokenizer ""
check_status 2 "--tokenizer of 40 characters (a shard holds 39)" gpt-convert import "$F/random" \
	-o "$TMP/t1.gpt" --tokenizer 0123456789012345678901234567890123456789
check_status 2 "--tokenizer with a control character" gpt-convert import "$F/random" \
	-o "$TMP/t1.gpt" --tokenizer "$(printf 'a\001b')"
check_status 2 "--tokenizer not ASCII" gpt-convert import "$F/random" -o "$TMP/t1.gpt" --tokenizer "café"
check "no checkpoint from a refused name" test ! -e "$TMP/t1.gpt"
check "a 39-character name" gpt-convert -q import "$F/random" -o "$TMP/t1.gpt" \
	--tokenizer 012345678901234567890123456789012345678

# An existing output is kept unless --force.
cp "$TMP/b.gpt" "$TMP/keep.gpt"
check_status 1 "import over an existing checkpoint" gpt-convert -q import "$F/random" -o "$TMP/keep.gpt" --tokenizer tiny
check_grep "says so, naming it" "already exists.*--force.*keep.gpt" "$TMP/.err"
check_files "the checkpoint is untouched" "$TMP/keep.gpt" "$TMP/b.gpt"
check "import --force" gpt-convert -q import "$F/random" -o "$TMP/keep.gpt" --tokenizer tiny --force
check_files "overwrites it" "$TMP/keep.gpt" "$TMP/r.gpt"
cp "$TMP/b-hf/model.safetensors" "$TMP/keep.st"
check_status 1 "export over an existing folder's files" gpt-convert export "$TMP/r.gpt" -o "$TMP/b-hf"
check_grep "names the file" "already exists.*b-hf/(config.json|model.safetensors)" "$TMP/.err"
check_files "the folder is untouched" "$TMP/b-hf/model.safetensors" "$TMP/keep.st"
check "export --force" gpt-convert export "$TMP/r.gpt" -o "$TMP/b-hf" --force
check_files "overwrites it" "$TMP/b-hf/model.safetensors" "$TMP/r-hf/model.safetensors"
mkdir "$TMP/emptyhf"
check "export into an empty folder" gpt-convert export "$TMP/r.gpt" -o "$TMP/emptyhf"

# -h is --help; --help and gpt-convert(1) name the same options; -q is quiet.
help_opts() { grep -oE -- '(^|[][ ,|(])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[][ ,|(]*//' | sort -u | tr '\n' ' '; }
man_opts() { awk '/^\.Sh /{o = ($2 == "OPTIONS")} o && /^\.It /{for (i = 1; i < NF; i++) if ($i == "Fl") print "-" $(i + 1)}' "$1" | sort -u | tr '\n' ' '; }
check "-h" gpt-convert -h
check_eq "-h prints --help" "$(cat "$TMP/.out")" "$(gpt-convert --help)"
check_eq "--help lists what gpt-convert(1) documents, and only that" \
	"$(gpt-convert --help | help_opts)" "$(man_opts "$ROOT/man/man1/gpt-convert.1")"
check "-q" gpt-convert -q import "$F/random" -o "$TMP/q.gpt" --tokenizer tiny
check_eq "-q: nothing on stderr" "$(cat "$TMP/.err")" ""
