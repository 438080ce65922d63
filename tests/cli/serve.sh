# gpt-serve (issue 18): a small GPT-2-vocabulary checkpoint behind the
# OpenAI-compatible API.  The openai package (in .venv) lists the model,
# chats, streams (chunks before the end, the same text as unstreamed),
# completes raw prompts, honours n, seed and stop, and gets OpenAI's
# errors; curl sends malformed JSON, an oversized body, a wrong key, an
# unknown route and a max_tokens past the context; a client that hangs up
# mid-stream stops its generation and the server goes on; 50 concurrent
# requests against a queue of 8 are each answered 200 or 429, the server
# alive after and its memory flat; SIGTERM lets a stream in progress end
# and exits 0.
. "$ROOT/tests/lib.sh"
if ! "$PY" -c 'import openai' 2>/dev/null; then
	fail "the openai package is not in .venv (tests/install-deps.sh test installs it)"
	exit 0
fi
verdict_shards
check "a small model" gpt-train -q -i "$VTR" -o "$TMP/m" --layers 2 --heads 2 \
	--width 64 --context 256 --steps 10 --threads 1 --device cpu

# serve NAME ARGS...: gpt-serve on a free port in the background; sets
# URL and PID, its stderr in $TMP/NAME.log
serve() {
	_n=$1; shift
	gpt-serve -p 0 --device cpu -j 1 "$@" 2>"$TMP/$_n.log" &
	PID=$!
	at_exit "kill $PID 2>/dev/null"
	_i=0
	while ! grep -q 'on http://' "$TMP/$_n.log" && [ $_i -lt 200 ] && kill -0 $PID 2>/dev/null; do
		sleep 0.05; _i=$((_i + 1))
	done
	URL=$(sed -n 's|.* on \(http://127.0.0.1:[0-9]*\)/$|\1|p' "$TMP/$_n.log")
}
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

serve main "$TMP/m" --queue 8
check_grep "says where it listens, on 127.0.0.1 by default" 'serving .m. \(context 256, template transcript\) on the cpu on http://127\.0\.0\.1:[0-9]+/' "$TMP/main.log"
check "GET /health" curl -sf "$URL/health"
check_eq "  answers ok" "$(cat "$TMP/.out")" '{"status":"ok"}'
check "the openai package: models, chat, stream, completions, n, seed, stop, errors" \
	"$PY" "$ROOT/tests/serve_check.py" client "$URL"

# -- curl: what a client gets wrong ------------------------------------------
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
check_eq "malformed JSON: 400" "$(code -d '{"messages": [' "$URL/v1/chat/completions")" 400
check "  an OpenAI error object" "$PY" -c '
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert e["type"] == "invalid_request_error" and "JSON" in e["message"] and "param" in e, e
' "$TMP/body"
head -c 1100000 /dev/zero | tr '\0' a >"$TMP/big"
check_eq "a body over 1 MiB: 413" \
	"$(code -H 'Content-Type: application/json' --data-binary @"$TMP/big" "$URL/v1/chat/completions")" 413
check_eq "an unknown route: 404" "$(code "$URL/v1/nothing")" 404
check_grep "  named in the error" 'unknown URL: GET /v1/nothing' "$TMP/body"
check_eq "GET on a POST route: 405" "$(code "$URL/v1/chat/completions")" 405
check_eq "max_tokens past the context: 400" "$(code -d \
	'{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5000}' "$URL/v1/chat/completions")" 400
check_grep "  says the context length and names max_tokens" '"message":"this model.s maximum context length is 256 tokens.*"param":"max_tokens"' "$TMP/body"
check_eq "a temperature of 7: 400" "$(code -d \
	'{"messages": [{"role": "user", "content": "Hi"}], "temperature": 7}' "$URL/v1/chat/completions")" 400
check_eq "the chat page at /" "$(code "$URL/")" 200
check_grep "  a page of its own (no external assets)" '<title>gpt-serve</title>' "$TMP/body"
check "  no external assets" sh -c "! grep -Eq '(src|href)=\"?(https?:)?//' '$TMP/body'"

# -- a hang-up mid-stream ------------------------------------------------------
check "a client hangs up after its first chunk; the next request is answered" \
	"$PY" "$ROOT/tests/serve_check.py" disconnect "$URL"
check_grep "  the generation stopped when it went" '\(client gone\)' "$TMP/main.log"

# -- load ----------------------------------------------------------------------
check "50 concurrent requests, a queue of 8: each answered 200 or 429 with Retry-After" \
	"$PY" "$ROOT/tests/serve_check.py" load "$URL" 50
cp "$TMP/.out" "$TMP/load1"
check_grep "  some told to retry (the queue is bounded)" '[0-9]+ answered, [1-9][0-9]* told to retry' "$TMP/load1"
r1=$(rss $PID)
for k in 2 3 4; do "$PY" "$ROOT/tests/serve_check.py" load "$URL" 50 >/dev/null 2>&1; done
r2=$(rss $PID)
check "  memory flat over three more rounds (RSS $r1 -> $r2 KiB)" test $((r2 - r1)) -lt 8192
check "  alive after" curl -sf "$URL/health"

# -- an API key ----------------------------------------------------------------
kill $PID
wait $PID 2>/dev/null
serve key "$TMP/m" --api-key sk-test
check_eq "no key: 401" "$(code "$URL/v1/models")" 401
check_grep "  the error says so" 'invalid_api_key' "$TMP/body"
check_eq "a wrong key: 401" "$(code -H 'Authorization: Bearer sk-nope' "$URL/v1/models")" 401
check_eq "the right key: 200" "$(code -H 'Authorization: Bearer sk-test' "$URL/v1/models")" 200
check "the openai package with the key" "$PY" -c '
import openai, sys
c = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-test", max_retries=0)
assert c.models.list().data[0].id == "m"
try:
    openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-bad", max_retries=0).models.list()
    sys.exit("a bad key was let in")
except openai.AuthenticationError:
    pass
' "$URL"

# -- SIGTERM drains --------------------------------------------------------------
"$PY" "$ROOT/tests/serve_check.py" stream-done "$URL" sk-test >"$TMP/drain.out" 2>&1 &
cpid=$!
i=0
while ! grep -q 'first chunk' "$TMP/drain.out" && [ $i -lt 400 ]; do sleep 0.01; i=$((i + 1)); done
kill -TERM $PID
wait $cpid
check_eq "SIGTERM: the stream in progress still ends with [DONE]" "$?" 0
wait $PID
check_eq "  then the server exits 0" "$?" 0
check_grep "  saying it finished what it had" 'finishing the requests in hand' "$TMP/key.log"
check "  the stream's generation ended after the signal" awk '
	/finishing the requests in hand/ { sig = NR } /chatcmpl-.* tokens in/ { last = NR }
	END { exit !(sig && last > sig) }' "$TMP/key.log"

check_status 2 "--host must be an address" gpt-serve --host nowhere "$TMP/m"
check_status 1 "a checkpoint that is not there" gpt-serve "$TMP/none"
