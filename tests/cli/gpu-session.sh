# tests/cuda/gpu-session.sh selftest: the GPU session prepared from the
# CPU emulator's build and run under env -i, as a lent GPU machine would
# run it, so a library the bundle lacks or a search that cannot find
# cuBLASLt shows here, before a GPU minute is spent; and a bundle with a
# carried library broken must stop at the smoke stage, quickly, with the
# diagnostics a rerun needs.
. "$ROOT/tests/lib.sh"

if [ ! -x "$O/sim/cuda-test" ] || [ ! -f "$O/sim/allbin/.done" ]; then
	echo "note: no nvcc in this build: the CUDA emulator is not built" >&2
	exit 0
fi

K=$TMP/st
GPU_SESSION_SELFTEST_KEEP=$K sh "$ROOT/tests/cuda/gpu-session.sh" selftest >"$TMP/st.out" 2>&1
rc=$?
sed 's/^/  /' "$TMP/st.out" >&2
check_eq "selftest exits 0" "$rc" 0
check_grep "selftest: every one of its checks passed" '^selftest: passed' "$TMP/st.out"
check "selftest: no check failed" sh -c "! grep -q '^selftest: FAILED' '$TMP/st.out'"
# The same facts from the logs, so the test does not rest on the
# script's word alone.
check_grep "prepare: the ldd audit passed" 'ldd audit: passed' "$K/prepare.log"
check_grep "prepare: the payload's size is printed, within 60 MiB" \
	'payload.tar.gz, [0-9] MiB|payload.tar.gz, [1-5][0-9] MiB' "$K/prepare.log"
check_grep "run: the stage limits and their sum are printed first" \
	'^gpu-session: stage limits.*: 400 in all' "$K/run.log"
check_eq "run: the limits are printed before any stage" "$(head -1 "$K/run.log" | cut -c1-26)" \
	"gpu-session: stage limits "
check_grep "run: cuBLASLt found in the fake python3's nvidia/cu13/lib" \
	"libcublasLt.so.13: found in $(cat "$K/cublaslt-dir") \\(python3\\)" "$K/run.log"
check_grep "run: every folder tried is logged" "^  tried $(cat "$K/cublaslt-dir") \\(python3\\)" "$K/out/env.log"
check_grep "run: the smoke stage passed" '^stage smoke: passed' "$K/run.log"
check_grep "run: the smoke stage ran one matmul and one attention check" '^pass test_attention' \
	"$K/out/smoke.log"
for s in cuda-test-batched cuda-test-flash bench-gpu; do
	check_grep "run: stage $s passed" "^stage $s: passed" "$K/run.log"
	check "run: $s.log in OUT" test -s "$K/out/$s.log"
done
check_grep "run: bench-gpu ran an engine row" '^cuda .* tok/s' "$K/out/bench-gpu.log"
check_eq "run: exit status 0" "$(cat "$K/run.status")" 0
check_grep "broken bundle: the smoke stage failed" '^stage smoke: failed' "$K/run-broken.log"
check_grep "broken bundle: no later stage ran" '^gpu-session: stopped after the smoke stage' \
	"$K/run-broken.log"
check "broken bundle: cuda-test was not run" sh -c "! grep -q '^stage cuda-test' '$K/run-broken.log'"
check_grep "broken bundle: the diagnostics name the library" 'libxxhash.so.0' \
	"$K/out-broken/diagnostics.log"
for sec in '== ldconfig -p' '== driver' '== library folders tried' '== ldd cuda-test'; do
	check_grep "broken bundle: diagnostics have '$sec'" "^$sec" "$K/out-broken/diagnostics.log"
done
check "broken bundle: a non-zero exit" test "$(cat "$K/run-broken.status")" -ne 0
set -- $(cat "$K/seconds")
check "broken bundle: stopped in ${2}s, within 30" test "$2" -le 30
check "the whole selftest within 120 s (run ${1}s, broken ${2}s)" test $(($1 + $2)) -le 120
