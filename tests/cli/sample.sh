# gpt-sample on the fixture model (tests/gen_hf_fixtures.py): greedy tokens
# equal transformers', top-k 1 is greedy, same seed same text, valid UTF-8
# only, stop strings, several samples, the chat transcript, long runs that
# slide the context window, and errors.
. "$ROOT/tests/lib.sh"
fixture_models   # $TMP/r.gpt, $TMP/b.gpt; F, V (tests/lib.sh)
P="Every effort moves you"
S() { gpt-sample $V "$@"; }

want=$("$PY" -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["greedy"])))' \
	"$F/expected.json")
check_eq "greedy tokens equal transformers'" \
	"$(S -t 0 -m 20 --tokens --no-echo "$TMP/r.gpt" "$P")" "$want"
check_eq "top-k 1 equals greedy" \
	"$(S -k 1 -t 1.5 -s 7 -m 20 --tokens --no-echo "$TMP/r.gpt" "$P")" "$want"
check_eq "prompt on stdin equals prompt in argv" \
	"$(printf %s "$P" | S -t 0 -m 20 --tokens --no-echo "$TMP/r.gpt")" "$want"

S -s 5 -m 60 "$TMP/r.gpt" "$P" >"$TMP/a" 2>/dev/null
S -s 5 -m 60 "$TMP/r.gpt" "$P" >"$TMP/b" 2>/dev/null
S -s 6 -m 60 "$TMP/r.gpt" "$P" >"$TMP/c" 2>/dev/null
check_files "same seed, same text" "$TMP/a" "$TMP/b"
check "another seed, another text" sh -c "! cmp -s '$TMP/a' '$TMP/c'"
check_eq "the text starts with the prompt" "$(head -c ${#P} "$TMP/a")" "$P"

# This model emits lone bytes of multi-byte characters all the time: the
# output must still be valid UTF-8 (held back, or U+FFFD when impossible).
S -s 3 -k 0 -m 300 --ignore-eot "$TMP/r.gpt" "$P" >"$TMP/u" 2>/dev/null
S -s 3 -k 0 -m 300 --ignore-eot --tokens "$TMP/r.gpt" "$P" >"$TMP/ut" 2>/dev/null
check "sampled text is valid UTF-8" "$PY" -c \
	'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$TMP/u"
check "the raw bytes of those tokens are not (so the test means something)" "$PY" -c '
import base64, sys
ranks = {}
for line in open(sys.argv[1], "rb"):
    t, r = line.split(); ranks[int(r)] = base64.b64decode(t)
ids = [int(x) for x in open(sys.argv[2]).read().split()]
raw = b"".join(ranks.get(i, b"") for i in ids)
try:
    raw.decode("utf-8"); sys.exit(1)
except UnicodeDecodeError:
    sys.exit(0)' "$F/tiny.tiktoken" "$TMP/ut"
n=$(wc -w <"$TMP/ut")
p=$(printf %s "$P" | gpt-tokenize $V | wc -w)
check_eq "--tokens: prompt and 300 generated ids" "$n" "$((p + 300))"

# --stop: the text ends where the stop string would begin.
S -t 0 -m 20 "$TMP/r.gpt" "$P" >"$TMP/full"
S -t 0 -m 20 --stop "igh" "$TMP/r.gpt" "$P" >"$TMP/stopped"
check "stopped output is a prefix of the full one" "$PY" -c '
import sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read().rstrip(b"\n")
i = a.index(b"igh")
sys.exit(0 if b == a[:i] else 1)' "$TMP/full" "$TMP/stopped"

# Several samples, separated; all differ.
S -n 3 -s 1 -m 30 --no-echo "$TMP/r.gpt" "$P" >"$TMP/n3"
check_eq "-n 3: three samples" "$(grep -c '^----$' "$TMP/n3")" 2
check "-n 3: samples differ" "$PY" -c '
import sys
parts = open(sys.argv[1], "rb").read().split(b"----\n")
sys.exit(0 if len(set(parts)) == 3 else 1)' "$TMP/n3"

# The bigram model knows its sentences: greedy continues them.
check_eq "bigram model continues a sentence" \
	"$(S -t 0 -m 4 --no-echo --stop ' you' "$TMP/b.gpt" " we will")" " go out for all"

# --chat, not interactive: a reply, ended before any next user turn.
check "chat reply" sh -c "echo ' we will go' | gpt-sample $V --chat -t 0 -m 40 '$TMP/b.gpt' >'$TMP/chat'"
check "chat reply has no User: turn" sh -c "! grep -q 'User:' '$TMP/chat'"
check "chat reply is one line" test "$(wc -l <"$TMP/chat")" -eq 1

# --chat on a terminal (script(1) gives it one): a reply per line typed,
# until the end of input.
if command -v script >/dev/null 2>&1; then
	printf ' we will go\n they can\n' | timeout 60 script -qec \
		"gpt-sample $V --chat -t 0 -m 8 '$TMP/b.gpt'" /dev/null >"$TMP/tty" 2>&1
	check_eq "interactive chat: two replies" "$(grep -o 'Bot:' "$TMP/tty" | wc -l)" 2
fi

# Long generations slide the context (64 tokens here) and go on.
S -s 2 -m 200 --ignore-eot --tokens --no-echo "$TMP/r.gpt" "$P" >"$TMP/long"
check_eq "200 tokens beyond a context of 64" "$(wc -w <"$TMP/long")" 200
head -c 2000 "$SHARED/data/text/the-verdict.txt" >"$TMP/longprompt"
check "a prompt longer than the context" sh -c "gpt-sample $V -m 5 '$TMP/r.gpt' <'$TMP/longprompt' >/dev/null"
check "empty prompt starts after <|endoftext|>" sh -c "gpt-sample $V -m 5 '$TMP/r.gpt' </dev/null >/dev/null"
check_eq "--max-tokens 0 prints the prompt" "$(S -m 0 "$TMP/r.gpt" "$P")" "$P"
check "--stats reports a rate" sh -c "gpt-sample $V -m 10 --stats '$TMP/r.gpt' hi 2>&1 >/dev/null | grep -q 'tokens/s'"

# -q, --quiet: no warnings; --stats still reports.  (The tiny vocabulary
# under another name, on a model of tokenizer "tiny", is warned about.)
cp "$F/tiny.tiktoken" "$TMP/other.tiktoken"
O="--vocab $TMP/other.tiktoken"
check "another vocabulary than the checkpoint's" gpt-sample $O -m 3 "$TMP/r.gpt" hi
check_grep "is warned about" "^gpt-sample: .*tokenizer 'tiny'" "$TMP/.err"
for q in -q --quiet; do
	check "$q: another vocabulary" gpt-sample $q $O -m 3 "$TMP/r.gpt" hi
	check_eq "$q: no warning" "$(wc -c <"$TMP/.err")" 0
done
check "-q --stats" gpt-sample -q --stats $O -m 3 "$TMP/r.gpt" hi
check_grep "-q --stats: still the rate, alone" "^gpt-sample: .*tokens/s" "$TMP/.err"
check_eq "-q --stats: one line" "$(wc -l <"$TMP/.err")" 1

# Errors.
check_status 1 "missing checkpoint" gpt-sample $V "$TMP/none.gpt" hi
check_status 1 "not a checkpoint" gpt-sample $V "$F/tiny.tiktoken" hi
check_status 2 "bad --top-p" gpt-sample $V --top-p 0 "$TMP/r.gpt" hi
check_status 2 "bad --temperature" gpt-sample $V --temperature -1 "$TMP/r.gpt" hi
check_status 2 "no checkpoint" gpt-sample
check_status 2 "--chat with --tokens" gpt-sample $V --chat --tokens "$TMP/r.gpt" hi
check "help" gpt-sample --help
check "closed pipe ends quietly" sh -c "gpt-sample $V -m 2000 --ignore-eot '$TMP/r.gpt' hi | head -c 10 >/dev/null"
# (some 200 kB of samples: more than a pipe holds, so the write fails)
{ gpt-sample $V -n 50 -m 2000 --ignore-eot "$TMP/r.gpt" hi 2>"$TMP/pipe.err"; echo $? >"$TMP/pipe.rc"; } |
	head -c 10 >/dev/null
check_eq "closed pipe: gpt-sample's own status is 0" "$(cat "$TMP/pipe.rc")" 0
check_eq "closed pipe: nothing on stderr" "$(wc -c <"$TMP/pipe.err")" 0
