# gpt-eval on the fixture models (tests/gen_hf_fixtures.py): HellaSwag and
# LAMBADA on hand-made files whose answers the bigram model knows, and the
# same scoring done in PyTorch for the random model (committed numbers);
# loss and bits per byte of a text and of a shard against PyTorch; table
# formats; several checkpoints side by side; errors.
. "$ROOT/tests/lib.sh"
fixture_models   # $TMP/r.gpt, $TMP/b.gpt; F, V (tests/lib.sh)
E() { gpt-eval $V -q "$@"; }

# Known answers: the bigram model gets every HellaSwag item and 4 of 6
# LAMBADA words (the last two end with a word it does not predict).
E --tsv --hellaswag "$F/hellaswag.jsonl" --lambada "$F/lambada.jsonl" "$TMP/b.gpt" >"$TMP/b.tsv"
check_eq "bigram: hellaswag" "$(col "$TMP/b.tsv" hellaswag)" "1.0000"
check_eq "bigram: hellaswag_norm" "$(col "$TMP/b.tsv" hellaswag_norm)" "1.0000"
check_eq "bigram: hellaswag items" "$(col "$TMP/b.tsv" hellaswag_n)" "5"
check_eq "bigram: lambada" "$(col "$TMP/b.tsv" lambada)" "0.6667"
E --tsv --lambada "$F/lambada.jsonl" --limit 4 "$TMP/b.gpt" >"$TMP/b4.tsv"
check_eq "--limit 4: the four known words" "$(col "$TMP/b4.tsv" lambada)" "1.0000"

# Against PyTorch: per-example summed and mean losses, predictions, hits.
for m in random bigram; do
	short=$(echo $m | cut -c1)
	E --hellaswag "$F/hellaswag.jsonl" --lambada "$F/lambada.jsonl" --details "$TMP/$m.det" \
		--json "$TMP/$short.gpt" >"$TMP/$m.json"
	check "$m: scores equal PyTorch's" "$PY" - "$F/expected.json" "$m" "$TMP/$m.det" "$TMP/$m.json" <<'PYEOF'
import json, math, sys
exp = json.load(open(sys.argv[1]))[sys.argv[2]]
lines = [l.split() for l in open(sys.argv[3]) if not l.startswith("#")]
row = json.load(open(sys.argv[4]))[0]
hs, lb = exp["hellaswag"], exp["lambada"]
bad = []
for it, l in zip(hs["items"], lines[:hs["n"]]):
    k = len(it["sum"])
    if [int(l[2]), int(l[3])] != [it["pred"], it["pred_norm"]]:
        bad.append(("pred", l, it))
    for a, b in zip(map(float, l[4:4 + k]), it["sum"] + []):
        if abs(a - b) > 1e-3 * max(1, abs(b)):
            bad.append(("sum", a, b))
    for a, b in zip(map(float, l[4 + k:]), it["mean"]):
        if abs(a - b) > 1e-3 * max(1, abs(b)):
            bad.append(("mean", a, b))
for it, l in zip(lb["items"], lines[hs["n"]:]):
    if int(l[1]) != it["correct"] or abs(float(l[2]) - it["loss"]) > 1e-3 * max(1, it["loss"]):
        bad.append(("lambada", l, it))
if abs(row["hellaswag"] - hs["acc"]) > 1e-4 or abs(row["hellaswag_norm"] - hs["acc_norm"]) > 1e-4:
    bad.append(("acc", row, hs["acc"], hs["acc_norm"]))
if abs(row["lambada"] - lb["acc"]) > 1e-4 or abs(row["lambada_ppl"] / lb["ppl"] - 1) > 1e-3:
    bad.append(("lambada acc", row, lb["acc"], lb["ppl"]))
if bad:
    print(bad[:3]); sys.exit(1)
PYEOF
done

# Loss and bits per byte of a text, and of a shard of its first 129 tokens
# (two windows of 64), against PyTorch.
"$PY" -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["text"]["text"])' \
	"$F/expected.json" >"$TMP/text"
E --text --json "$TMP/r.gpt" <"$TMP/text" >"$TMP/text.json"
"$PY" -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["shard"]["ids"])))' \
	"$F/expected.json" >"$TMP/ids"
gpt-shard -q -o "$TMP/sh" --vocab-size 512 --tokenizer tiny --val-tokens 129 <"$TMP/ids" ||
	fail "gpt-shard"
E --json "$TMP/r.gpt" "$TMP/sh-val-*" >"$TMP/shard.json"
E --json --val "$TMP/sh-val-*" "$TMP/r.gpt" >"$TMP/shard2.json"
check_files "shards by --val or as an argument" "$TMP/shard.json" "$TMP/shard2.json"
check "text and shard loss and bpb equal PyTorch's" "$PY" - "$F/expected.json" "$TMP/text.json" \
	"$TMP/shard.json" <<'PYEOF'
import json, math, sys
exp = json.load(open(sys.argv[1]))
bad = []
for key, path in (("text", sys.argv[2]), ("shard", sys.argv[3])):
    row, want = json.load(open(path))[0], exp[key]
    if row["tokens"] != want["tokens"]:
        bad.append((key, "tokens", row["tokens"], want["tokens"]))
    for f in ("loss", "bpb"):
        if abs(row[f] - want[f]) > 2e-4:
            bad.append((key, f, row[f], want[f]))
    if abs(row["ppl"] / math.exp(want["loss"]) - 1) > 1e-3:
        bad.append((key, "ppl", row["ppl"]))
if bad:
    print(bad); sys.exit(1)
PYEOF
E --tsv -w 1 "$TMP/r.gpt" "$TMP/sh-val-*" >"$TMP/w1.tsv"
check_eq "--windows 1 scores one window" "$(col "$TMP/w1.tsv" tokens)" 64
E --tsv -T 16 "$TMP/r.gpt" "$TMP/sh-val-*" >"$TMP/t16.tsv"
check_eq "--context 16: eight windows of 16" "$(col "$TMP/t16.tsv" tokens)" 128

# Several checkpoints side by side, in every format.
E --text "$TMP/r.gpt" "$TMP/b.gpt" <"$TMP/text" >"$TMP/table"
check_eq "table: a header and two rows" "$(wc -l <"$TMP/table")" 3
check_grep "table names both checkpoints" "b\.gpt" "$TMP/table"
E --text --tsv "$TMP/r.gpt" "$TMP/b.gpt" <"$TMP/text" >"$TMP/t.tsv"
check_eq "tsv: header columns" "$(head -1 "$TMP/t.tsv" | tr '\t' ' ')" \
	"checkpoint params context tokens loss ppl bpb"
E --text --json "$TMP/r.gpt" "$TMP/b.gpt" <"$TMP/text" >"$TMP/t.json"
check "json: an array of two objects" "$PY" -c \
	'import json,sys; d = json.load(open(sys.argv[1])); sys.exit(len(d) != 2)' "$TMP/t.json"
mkdir -p "$TMP/run"
cp "$TMP/r.gpt" "$TMP/run/ckpt-00000010.gpt"
ln -s ckpt-00000010.gpt "$TMP/run/latest"
E --text --tsv "$TMP/run" <"$TMP/text" >"$TMP/run.tsv"
check_eq "a run folder means its latest checkpoint" "$(col "$TMP/run.tsv" loss)" \
	"$(head -2 "$TMP/t.tsv" >"$TMP/t1.tsv"; col "$TMP/t1.tsv" loss)"

# Errors.
printf '{"ctx": "a", "endings": ["b"], "label": 3}\n' >"$TMP/badlabel.jsonl"
check_status 1 "label outside the endings" gpt-eval $V --hellaswag "$TMP/badlabel.jsonl" "$TMP/r.gpt"
printf '{"ctx": "a", "endings": ["b", "c"], "label": 0}\n{"ctx": \n' >"$TMP/badjson.jsonl"
check_status 1 "broken JSON line" gpt-eval $V --hellaswag "$TMP/badjson.jsonl" "$TMP/r.gpt"
check_grep "broken JSON: line number named" "line 2" "$TMP/.err"
printf '{"text": "oneword"}\n' >"$TMP/noword.jsonl"
check_status 1 "LAMBADA text without a last word" gpt-eval $V --lambada "$TMP/noword.jsonl" "$TMP/r.gpt"
check_status 2 "nothing to evaluate" gpt-eval $V "$TMP/r.gpt"
check_status 2 "no checkpoint" gpt-eval $V --text
check_status 2 "--json with --tsv" gpt-eval $V --json --tsv --text "$TMP/r.gpt"
check_status 1 "shard glob matching nothing" gpt-eval $V "$TMP/r.gpt" "$TMP/none-*"
check "help" gpt-eval --help

# Shards of another tokenizer than the checkpoint's are refused in one
# line naming both tokenizers and the checkpoint, as gpt-train refuses them.
gpt-shard -q -o "$TMP/other" --vocab-size 512 --tokenizer other --val-tokens 129 <"$TMP/ids" ||
	fail "gpt-shard"
check_status 1 "shards of another tokenizer are refused" E "$TMP/r.gpt" "$TMP/other-val-*"
check_eq "another tokenizer: one line" "$(wc -l <"$TMP/.err")" 1
check_grep "another tokenizer: both named, and the checkpoint" \
	"^gpt-eval: .*tokenizer 'tiny'.*'other'.*r\.gpt" "$TMP/.err"
check_eq "another tokenizer: nothing on stdout" "$(wc -c <"$TMP/.out")" 0
check_status 1 "also by --val, also for a second checkpoint" \
	E --val "$TMP/other-val-*" "$TMP/r.gpt" "$TMP/b.gpt"
gpt-shard -q -o "$TMP/wide" --vocab-size 1024 --tokenizer tiny --val-tokens 129 <"$TMP/ids" ||
	fail "gpt-shard"
check_status 1 "shards of a larger vocabulary are refused" E "$TMP/r.gpt" "$TMP/wide-val-*"
check_grep "larger vocabulary: the sizes named" "1023.*512" "$TMP/.err"

# A file that is not a checkpoint is named as such, not taken for a glob.
printf 'not a checkpoint\n' >"$TMP/bad.gpt"
check_status 1 "a bad checkpoint before a glob" E "$TMP/bad.gpt" "$TMP/sh-val-*"
check_eq "bad checkpoint: one line" "$(wc -l <"$TMP/.err")" 1
check_grep "bad checkpoint: named" "^gpt-eval: not a gpt checkpoint.*bad\.gpt" "$TMP/.err"
check_status 1 "a bad checkpoint after a good one" E "$TMP/r.gpt" "$TMP/bad.gpt" "$TMP/sh-val-*"
check_grep "the bad one is named" "bad\.gpt" "$TMP/.err"
check_eq "and nothing is scored" "$(wc -c <"$TMP/.out")" 0
check_status 1 "a missing checkpoint before a glob" E "$TMP/none.gpt" "$TMP/sh-val-*"
check_grep "missing checkpoint: named" "none\.gpt" "$TMP/.err"
check_status 1 "a bad checkpoint with --text" sh -c "gpt-eval $V -q --text '$TMP/bad.gpt' <'$TMP/text'"
check_grep "bad checkpoint with --text: named" "bad\.gpt" "$TMP/.err"
check "a shard file named without a wildcard is a glob" E "$TMP/r.gpt" "$(echo "$TMP"/sh-val-*)"
check_status 2 "two globs: usage error" E "$TMP/r.gpt" "$TMP/sh-val-*" "$TMP/other-val-*"
check_grep "two globs: the second named" "other-val" "$TMP/.err"

# An empty benchmark file has no accuracy: exit 1, "no examples".
: >"$TMP/empty.jsonl"
printf '\n  \n' >"$TMP/blank.jsonl"
for b in hellaswag lambada; do
	for f in empty blank; do
		check_status 1 "--$b on the $f file fails" E --$b "$TMP/$f.jsonl" "$TMP/r.gpt"
		check_grep "--$b on the $f file: no examples" "^gpt-eval: no examples.*$f\.jsonl" \
			"$TMP/.err"
		check_eq "--$b on the $f file: nothing on stdout" "$(wc -c <"$TMP/.out")" 0
	done
done

# --details is written under a temporary name until the end (README.md:
# files are written atomically): an error on the way leaves no file.
check_status 1 "--details, then a broken benchmark line" \
	E --hellaswag "$TMP/badjson.jsonl" --details "$TMP/part.det" "$TMP/r.gpt"
check "--details: no partial file" test ! -e "$TMP/part.det"
check_eq "--details: no temporary file left" "$(ls -a "$TMP" | grep -c 'part\.det')" 0
check "--details: a good run writes it" \
	E --hellaswag "$F/hellaswag.jsonl" --details "$TMP/part.det" "$TMP/r.gpt"
check_eq "--details: one line per example, and the header" "$(wc -l <"$TMP/part.det")" 6
