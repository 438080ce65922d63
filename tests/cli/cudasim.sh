# The CUDA engine on the CPU emulator (tests/cudasim): the emulator's own
# checks, then cuda-test's kernel, tiny-model and decoder comparisons against the
# CPU engine, with the block's threads scheduled forwards and in reverse
# (a missing barrier reads stale data in one order or the other).  The
# 100-step training comparison is left to `make cuda-sim-test` (minutes).
. "$ROOT/tests/lib.sh"

SIM=$O/sim
if [ ! -x "$SIM/cuda-test" ]; then
	echo "note: no nvcc in this build: the CUDA emulator is not built" >&2
	exit 0
fi

check "emulator: shuffles, barriers, limits, stale reads" "$SIM/selftest"
check_status 3 "emulator: a warp split between barriers is a deadlock" "$SIM/selftest" deadlock
check_grep "emulator: the deadlock is named" "deadlock in block" "$TMP/.err"
"$SIM/selftest" oob >"$TMP/oob" 2>&1
if grep -q AddressSanitizer "$TMP/oob"; then # make asan's emulator
	check_grep "emulator under asan: a kernel writing past its allocation is caught" \
		"heap-buffer-overflow" "$TMP/oob"
fi

QUICK="test_layernorm test_gelu test_matmul test_attention test_attention_flash test_xent
test_embedding test_model_tied test_model_untied_nobias test_model_flash test_decoder
test_engine test_dropout test_classify test_lstm"
for order in fwd rev; do   # TEST_ONLY: tests/unit/test.h's RUN runs these alone
	GSIM_ORDER=$order TEST_ONLY=$(echo $QUICK) CUDA_TEST_SEED=${CUDA_TEST_SEED:-7} \
		"$SIM/cuda-test" >"$TMP/ct.$order" 2>&1
	rc=$?
	check_eq "cuda-test on the emulator ($order order) exits 0" "$rc" 0
	check_grep "cuda-test ($order): every kernel and model passed" "^cuda-test: all passed" "$TMP/ct.$order"
	[ "$rc" -eq 0 ] || grep -E "MISMATCH|^fail" "$TMP/ct.$order" | head -5 >&2
done
check_eq "cuda-test ran all fifteen quick tests" "$(grep -c '^pass test_' "$TMP/ct.fwd")" 15
# The fused cuBLASLt epilogues (GELU, DGELU, BGRADB) are used where the
# library offers them: the fused GELU's gradients differ from the kernel's
# by rounding.  A library refusing them (GSIM_LT_PLAIN=1, the stand-in
# saying NOT_SUPPORTED) leaves the engine's kernels, the same to the bit.
check_grep "the fused GELU epilogues are used" "fused GELU against the kernel's +rel [1-9]" "$TMP/ct.fwd"
GSIM_LT_PLAIN=1 TEST_ONLY="test_matmul test_model_tied test_engine" CUDA_TEST_SEED=7 \
	"$SIM/cuda-test" >"$TMP/ct.plain" 2>&1
check_grep "without the epilogues, cuda-test passes on the kernels" "^cuda-test: all passed" "$TMP/ct.plain"
check_grep "which give the kernel GELU's gradients exactly" \
	"fused GELU against the kernel's +rel 0.00e\+00" "$TMP/ct.plain"

# Memory, as the engine's own allocator counts it (tests/cudasim/memplan,
# weights mapped, not filled): the RTX 3090 experiment's model, GPT-2
# small with an untied head at T=1024, must train at micro-batch 16 within
# 24 GB; 22 GiB leaves room for the CUDA context and cuBLASLt's buffers.
# So must d12 at micro-batch 32 (llm.c's and the benchmark's largest).
for att in batched flash; do
	for mb in "163m 16" "d12 32"; do
		GSIM_LAZY=1 GPT_CUDA_ATTENTION=$att "$SIM/memplan" $mb 1024 >"$TMP/mem.$att"
		gib=$(sed -n 's/.*: \([0-9.]*\) GiB .*/\1/p' "$TMP/mem.$att")
		cat "$TMP/mem.$att" >&2
		check "$(echo $mb | sed 's/ / B=/') T=1024 ($att attention) plans $gib GiB, within 22" \
			awk -v g="$gib" 'BEGIN { exit !(g > 2 && g < 22) }'
	done
done
GSIM_LAZY=1 GPT_CUDA_ATTENTION=flash "$SIM/memplan" 163m 16 1024 >"$TMP/mem.flash"
GSIM_LAZY=1 "$SIM/memplan" 163m 16 1024 recompute >"$TMP/mem.rc"
gib_rc=$(sed -n 's/.*: \([0-9.]*\) GiB .*/\1/p' "$TMP/mem.rc")
check "--recompute plans less ($gib_rc GiB) than the default (flash)" \
	awk -v a="$gib_rc" -v b="$(sed -n 's/.*: \([0-9.]*\) GiB .*/\1/p' "$TMP/mem.flash")" \
	'BEGIN { exit !(a > 0 && a < b) }'

# The programs' own --device cuda tests, with gpt-train, gpt-eval and
# gpt-sample built on the emulator: the GPU halves of those scripts run.
for t in "train-device:a tiny --device cuda run works" \
	"device:gpt-eval --device cuda: bigram lambada"; do
	name=${t%%:*} want=${t#*:}
	BIN=$SIM/allbin sh "$ROOT/tests/cli/$name.sh" >"$TMP/$name.out" 2>&1
	rc=$?
	sed -n "s/^\(pass\|fail\) $name: /\1 $name on the emulated gpu: /p" "$TMP/$name.out"
	check_eq "$name.sh on the emulated gpu exits 0" "$rc" 0
	check "$name.sh took its gpu branch" grep -qF "pass $name: $want" "$TMP/$name.out"
done
