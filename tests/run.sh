#!/bin/sh
# The test runner: runs every C unit test in $O/tests and every CLI test
# script in tests/cli, collects their "pass NAME" / "fail NAME: why"
# lines, counts a crash or a silent non-zero exit as a failure, and ends
# with the single line "N passed, N failed" (non-zero exit on failure).
# An argument keeps only the tests whose file name contains it;
# TEST_ONLY="name ..." in the environment keeps only the C test functions
# named (tests/unit/test.h).  The CLI scripts' helpers are tests/lib.sh.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${BIN:=$ROOT/bin}" "${O:=$ROOT/build}"
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
if [ -z "${PY:-}" ]; then
	if [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi
fi
export BIN O ROOT SHARED PY
export GPT_VOCAB="$SHARED/data/gpt2" GPT_OFFLINE=1
filter=${1:-}
mkdir -p "$O"
logdir=$(mktemp -d "$O/test-logs.XXXXXX")   # one per run: runs may overlap
passed=0 failed=0

run_one() { # name command...
	name=$1; shift
	log=$logdir/$name.log
	start=$(date +%s)
	timeout 900 "$@" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^pass ' "$log")
	f=$(grep -c '^fail ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "fail $name: exited with status $rc" >>"$log"
		f=1
	fi
	passed=$((passed + p)); failed=$((failed + f))
	el=$(( $(date +%s) - start ))
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name ($p passed, $f failed, ${el}s)"
		grep '^fail ' "$log" | head -20 | sed 's/^/    /'
		echo "    log: $log"
	else
		echo "ok   $name ($p passed, ${el}s)"
	fi
}

for t in "$O"/tests/test_*; do
	[ -x "$t" ] || continue
	case $t in *.o|*.d) continue;; esac
	n=$(basename "$t")
	case $n in *"$filter"*) ;; *) continue;; esac
	run_one "$n" "$t"
done
for t in "$ROOT"/tests/cli/*.sh; do
	[ -f "$t" ] || continue
	n=$(basename "$t" .sh)
	case $n in *"$filter"*) ;; *) continue;; esac
	run_one "$n" sh "$t"
done
[ "$failed" -eq 0 ] && rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
