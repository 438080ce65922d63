# Sourced by every CLI test script.  Each check prints one line,
# "pass NAME: what" or "fail NAME: what", which tests/run.sh counts.
#   check DESC CMD...            CMD must exit 0
#   check_status N DESC CMD...   CMD must exit N (a signal death never passes)
#   check_eq DESC GOT WANT       strings equal
#   check_files DESC A B         files identical
#   check_grep DESC PATTERN FILE file contains an extended regex
set -u
: "${BIN:?BIN must be set; run through make test}"
: "${ROOT:?}" "${SHARED:?}" "${PY:=python3}"
PATH=$BIN:$PATH
export PATH
T_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpt-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

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
