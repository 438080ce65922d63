# Sourced by every CLI test script.  Each check prints one line,
# "pass NAME: what" or "fail NAME: what", which tests/run.sh counts.
#   check DESC CMD...            CMD must exit 0
#   check_status N DESC CMD...   CMD must exit N (a signal death never passes)
#   check_eq DESC GOT WANT       strings equal
#   check_files DESC A B         files identical
#   check_grep DESC PATTERN FILE file contains an extended regex
# check and check_status run CMD with its standard output in $TMP/.out and
# its standard error in $TMP/.err, both overwritten by the next check or
# check_status: a test reads them right after the check, e.g.
#   check_status 1 "refused" gpt-train ...; check_grep "says why" 'bad' "$TMP/.err"
# (check_eq, check_files and check_grep leave them alone).
#
# What several scripts need is set up here, once:
#   at_exit CMD        run the shell command CMD when the script exits
#   tiny_shards        the tiny 64-id language, sharded; sets TR and VA
#   fixture_models     tests/fixtures/hf imported; sets F and V
#   verdict_shards     the-verdict.txt in GPT-2 tokens, sharded; sets VTR
#   losses, within     compare the training losses of two logs
#   httpd_start DIR    tests/httpd.py serving DIR; sets HTTPD_URL
#   col FILE NAME      a column of a TSV file's last row
set -u
: "${BIN:?BIN must be set; run through make test}"
: "${ROOT:?}" "${SHARED:?}" "${PY:=python3}"
PATH=$BIN:$PATH
export PATH
T_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpt-test.XXXXXX")

# at_exit CMD: CMD runs when the script exits, the last added first, and
# then $TMP is removed.  Scripts add their cleanups here instead of setting
# a trap of their own, which would replace the others.
_at_exit=
at_exit() {
	_at_exit="$1
$_at_exit"
}
trap 'eval "$_at_exit"; rm -rf "$TMP"' EXIT

pass() { echo "pass $T_NAME: $*"; }
fail() { echo "fail $T_NAME: $*"; }

check() {
	_d=$1; shift
	if "$@" >"$TMP/.out" 2>"$TMP/.err"; then pass "$_d"; else
		fail "$_d (status $?: $(head -c 300 "$TMP/.err"))"; fi
}

check_status() {
	_want=$1 _d=$2; shift 2
	"$@" >"$TMP/.out" 2>"$TMP/.err"
	_rc=$?
	if [ "$_rc" -eq "$_want" ]; then pass "$_d"; else
		fail "$_d (status $_rc, wanted $_want: $(head -c 300 "$TMP/.err"))"; fi
}

check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else
		fail "$1 (got '$(printf %s "$2" | head -c 200)', wanted '$(printf %s "$3" | head -c 200)')"; fi
}

check_files() {
	if cmp -s "$2" "$3"; then pass "$1"; else fail "$1 ($2 and $3 differ: $(cmp "$2" "$3" 2>&1 | head -1))"; fi
}

check_grep() {
	if grep -Eq -- "$2" "$3"; then pass "$1"; else
		fail "$1 (no '$2' in: $(head -c 300 "$3"))"; fi
}

have_tiktoken() { "$PY" -c 'import tiktoken' 2>/dev/null; }

# col FILE NAME: the value of column NAME in the last row of a TSV file
col() { awk -F'\t' -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i } END { print $c }' "$1"; }

# tiny_shards: a tiny language of 64 ids in $TMP/ids.txt (text, one
# sentence a line): five-token sentences, the third token a function of the
# first, the fourth random, 63 ends each (an LCG keeps it the same
# everywhere), 23,000 tokens.  Sharded with tokenizer "tiny", eot 63 and
# 3,000 validation tokens as $TMP/data/tiny-*; TR and VA are the training
# and validation shards' patterns.
tiny_shards() {
	awk 'BEGIN { x = 1; n = 0; while (n < 23000) {
		x = (x * 75 + 74) % 65537; a = x % 8; x = (x * 75 + 74) % 65537; b = x % 4;
		print a, 8 + a, 16 + (a * 3) % 8, 24 + b, 63; n += 5 } }' >"$TMP/ids.txt"
	mkdir -p "$TMP/data"
	gpt-shard -q -f text -o "$TMP/data/tiny" --val-tokens 3000 --vocab-size 64 \
		--tokenizer tiny --eot 63 --frame-tokens 1024 <"$TMP/ids.txt"
	TR="$TMP/data/tiny-train-*"
	VA="$TMP/data/tiny-val-*"
}

# verdict_shards: the-verdict.txt in GPT-2 tokens (GPT_VOCAB set to the
# shared vocabulary, offline), sharded with 1,000 validation tokens as
# $TMP/data/v-*; VTR is the training shards' pattern.  For small
# GPT-2-vocabulary models (fine-tuning, serving, judging).
verdict_shards() {
	GPT_VOCAB="$SHARED/data/gpt2" GPT_OFFLINE=1
	export GPT_VOCAB GPT_OFFLINE
	gpt-tokenize -f u16 "$SHARED/data/text/the-verdict.txt" |
		gpt-shard -q -f u16 -o "$TMP/data/v" --val-tokens 1000
	VTR="$TMP/data/v-train-*"
}

# losses A B: the train_loss columns of two log.tsv files, step by step
losses() { paste "$1" "$2" | awk -F'\t' 'NR > 2 { print $3, $11 }'; }
# within A B TOL: every step's training loss in log B is within TOL
# (relative) of log A's
within() {
	losses "$1" "$2" | awk -v tol="$3" '{ n++; d = ($1 - $2) / $1; if (d < 0) d = -d;
		if (d > m) m = d } END { if (n == 0 || m > tol) { print "max " m " over " n; exit 1 } }'
}

# fixture_models: the Hugging Face fixture models (tests/gen_hf_fixtures.py)
# imported with tokenizer "tiny": $TMP/r.gpt the random one (tied head),
# $TMP/b.gpt the bigram one (untied).  F is the fixture folder, V the
# --vocab option of its 512-token vocabulary.
fixture_models() {
	F=$ROOT/tests/fixtures/hf
	V="--vocab $F/tiny.tiktoken"
	gpt-convert -q import "$F/random" -o "$TMP/r.gpt" --tokenizer tiny || fail "import"
	gpt-convert -q import "$F/bigram" -o "$TMP/b.gpt" --tokenizer tiny || fail "import"
}

# httpd_start DIR [SECONDS]: tests/httpd.py serves the files under DIR on
# 127.0.0.1 for at most SECONDS (60), one line per request logged to
# $TMP/log; returns once it listens.  Sets HTTPD_PID, HTTPD_PORT and
# HTTPD_URL (http://127.0.0.1:PORT).  The server is stopped at exit, or
# sooner by httpd_stop.
httpd_start() {
	rm -f "$TMP/port"
	"$PY" "$ROOT/tests/httpd.py" --root "$1" --port-file "$TMP/port" \
		--log "$TMP/log" --timeout "${2:-60}" &
	HTTPD_PID=$!
	at_exit "kill $HTTPD_PID 2>/dev/null"
	_i=0
	while [ ! -s "$TMP/port" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	[ -s "$TMP/port" ] || fail "tests/httpd.py did not start"
	HTTPD_PORT=$(cat "$TMP/port")
	HTTPD_URL=http://127.0.0.1:$HTTPD_PORT
}

httpd_stop() { kill "$HTTPD_PID" 2>/dev/null; }
