# gpt-judge (issue 18): responses scored through the OpenAI-compatible
# API.  Against a scripted judge (tests/judge_server.py): a 429 waits its
# Retry-After and is retried, a 500 and a body that is not JSON are
# retried, a request past --timeout is retried, a reply that is not a
# number is unscored (never guessed at), a judge that always fails leaves
# its record unscored with the reason; the summary counts and averages
# only the scored; a rerun sends only what was not scored; the key and
# URL come from OPENAI_API_KEY / OPENAI_BASE_URL; an unreachable judge is
# one clear error.  Then end to end against gpt-serve with a tiny model,
# whose "scores" are mostly not numbers.
. "$ROOT/tests/lib.sh"
I=$SHARED/data/instruct/instruction-data.json

# seven records, the first word of each instruction picking its script
"$PY" -c '
import json, sys
words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
for w in words:
    print(json.dumps({"instruction": w + " says something", "input": "" if w != "bravo" else "x",
                      "output": "the reference", "response": "the answer of " + w}))
' >"$TMP/resp.jsonl"

"$PY" "$ROOT/tests/judge_server.py" --port-file "$TMP/jport" --log "$TMP/jlog" --key sk-test &
JPID=$!
at_exit "kill $JPID 2>/dev/null"
i=0
while [ ! -s "$TMP/jport" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
JURL=http://127.0.0.1:$(cat "$TMP/jport")/v1

t0=$(date +%s)
check "the scripted judge, through OPENAI_BASE_URL and OPENAI_API_KEY" env \
	OPENAI_BASE_URL="$JURL" OPENAI_API_KEY=sk-test gpt-judge -q --model judge -j 3 --timeout 2 \
	--retries 2 -o "$TMP/scored.jsonl" "$TMP/resp.jsonl"
t1=$(date +%s)
cp "$TMP/.err" "$TMP/sum1"
check "  one line a record, in input order, scores as the script says" "$PY" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
got = [(r["instruction"].split()[0], r["score"]) for r in recs]
want = [("alpha", 85), ("bravo", 70), ("charlie", 100), ("delta", 0), ("echo", None),
        ("foxtrot", None), ("golf", 42)]
assert got == want, got
assert recs[0]["response"] == "the answer of alpha" and recs[0]["output"] == "the reference"
assert "not a score" in recs[4]["judge_error"] and "I would say 50" in recs[4]["judge_error"]
assert recs[5]["judge_error"].startswith("http 500"), recs[5]
assert "judge_error" not in recs[0]
' "$TMP/scored.jsonl"
check_grep "  the summary: 5 scored, 2 unscored with reasons, mean and median" \
	'7 records, 5 scored, 2 unscored \((1 http 500, 1 not a score|1 not a score, 1 http 500)\); mean 59.40, median 70' "$TMP/sum1"
check "  the 429's Retry-After (1 s) and the timeout (2 s) were waited for" test $((t1 - t0)) -ge 2
check_eq "  foxtrot was tried 3 times (--retries 2), alpha twice, golf once" \
	"$(grep -c '^foxtrot' "$TMP/jlog") $(grep -c '^alpha' "$TMP/jlog") $(grep -c '^other' "$TMP/jlog")" "3 2 1"

# -- resume: only the unscored go out again --------------------------------------
: >"$TMP/jlog"
check "a rerun on the same output" gpt-judge -q --url "$JURL" --api-key sk-test --model judge \
	--retries 0 --json -o "$TMP/scored.jsonl" "$TMP/resp.jsonl"
cp "$TMP/.err" "$TMP/sumj"
check_eq "  sends only echo and foxtrot" "$(cut -d' ' -f1 "$TMP/jlog" | sort | tr '\n' ' ')" "echo foxtrot "
check "  the --json summary" "$PY" -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert s["records"] == 7 and s["scored"] == 5 and s["unscored"] == 2 and s["resumed"] == 5, s
assert abs(s["mean"] - 59.4) < 1e-9 and s["median"] == 70 and s["judge"] == "judge", s
' "$TMP/sumj"
check_eq "  the output still one line a record" "$(wc -l <"$TMP/scored.jsonl" | tr -d ' ')" 7

# a run cut short leaves a journal: its scored lines count on the rerun
head -2 "$TMP/scored.jsonl" >"$TMP/cut.jsonl"
printf '{"instruction": "charlie says' >>"$TMP/cut.jsonl"
: >"$TMP/jlog"
check "a rerun over a cut-short output (a partial last line)" gpt-judge -q --url "$JURL" \
	--api-key sk-test --model judge --retries 0 -o "$TMP/cut.jsonl" "$TMP/resp.jsonl"
check_eq "  alpha and bravo not sent again" "$(grep -c '^alpha\|^bravo' "$TMP/jlog")" 0
check_eq "  seven lines" "$(wc -l <"$TMP/cut.jsonl" | tr -d ' ')" 7

# -- refusals ----------------------------------------------------------------------
check_status 1 "a wrong key is one clear error" gpt-judge -q --url "$JURL" --api-key sk-bad \
	--model judge "$TMP/resp.jsonl"
check_grep "  naming the judge and its answer" "judge at 'http://127.0.0.1:[0-9]+/v1/chat/completions' answered 401: bad key" "$TMP/.err"
check_status 1 "an unreachable judge is one clear error" gpt-judge -q --url http://127.0.0.1:1/v1 \
	--model judge --retries 0 "$TMP/resp.jsonl"
check_grep "  naming the URL" "cannot reach the judge at 'http://127.0.0.1:1/v1/chat/completions'" "$TMP/.err"
printf '{"instruction": "a", "output": "b"}\n' >"$TMP/noresp.jsonl"
check_status 1 "a record without a response is refused before anything is sent" gpt-judge \
	--url "$JURL" --model judge "$TMP/noresp.jsonl"
check_grep "  naming its line" 'noresp.jsonl: line 1: no "response"' "$TMP/.err"
check_status 2 "no --model" gpt-judge --url "$JURL" "$TMP/resp.jsonl"
check_status 2 "no URL anywhere" env -u OPENAI_BASE_URL gpt-judge --model judge "$TMP/resp.jsonl"
printf 'Rate {output}.\n' >"$TMP/p.txt"
check_status 1 "a prompt file without {response}" gpt-judge --url "$JURL" --model judge \
	--prompt "$TMP/p.txt" "$TMP/resp.jsonl"

# -- end to end: gpt-sample's responses judged by gpt-serve ---------------------------
verdict_shards
check "a tiny model" gpt-train -q -i "$VTR" -o "$TMP/m" --layers 2 --heads 2 \
	--width 64 --context 512 --steps 5 --threads 1 --device cpu
"$PY" -c '
import json, sys
for r in json.load(open(sys.argv[1]))[:8]:
    print(json.dumps(r))
' "$I" >"$TMP/eight.jsonl"
check "its responses to eight records" sh -c "gpt-sample -q --template alpaca --jsonl \
	'$TMP/eight.jsonl' -m 8 --device cpu '$TMP/m' >'$TMP/answers.jsonl'"
gpt-serve -p 0 --device cpu -j 1 --max-tokens 8 "$TMP/m" 2>"$TMP/serve.log" &
SPID=$!
at_exit "kill $SPID 2>/dev/null"
i=0
while ! grep -q 'on http://' "$TMP/serve.log" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
SURL=$(sed -n 's|.* on \(http://127.0.0.1:[0-9]*\)/$|\1|p' "$TMP/serve.log")/v1
check "gpt-judge with gpt-serve as the judge" gpt-judge -q --url "$SURL" --model m -j 2 \
	-o "$TMP/judged.jsonl" "$TMP/answers.jsonl"
cp "$TMP/.err" "$TMP/sum2"
check "  every record back with a score or a reason, no number invented" "$PY" -c '
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 8, len(recs)
for r in recs:
    assert "response" in r and "score" in r, r
    if r["score"] is None:
        assert r["judge_error"], r
    else:
        assert 0 <= r["score"] <= 100
' "$TMP/judged.jsonl"
check_grep "  the summary counts the unscored" '8 records, [0-9] scored, [0-9] unscored' "$TMP/sum2"
