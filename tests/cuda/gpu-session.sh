#!/bin/sh
# gpu-session.sh: the CUDA checks for a session that is lent a GPU
# machine, prepared here and run there in one call.  The machine can
# install nothing, and ../shared does not travel with the working tree, so
#
#   sh tests/cuda/gpu-session.sh prepare    (here, after make)
#
# packs into .gpu/payload.tar.gz (ignored by git) the stripped programs
# and test binaries built here, the shared libraries they load other than
# the C library's own, and the test data cuda-test reads.  Then one device
# call, with about ten minutes of limit:
#
#   run(command="sh tests/cuda/gpu-session.sh run", carry=[".gpu"], timeout_s=560)
#
# unpacks it in /tmp/gpu and runs, each under its own time limit, writing
# a log of each to $OUT: nvidia-smi; make cuda-test's binary (kernels,
# tiny models, 100 tinyshakespeare steps against the CPU engine); the same
# with GPT_CUDA_ATTENTION=flash; compute-sanitizer on the first failing
# test if any failed; and bench-gpu against PyTorch (the machine's own
# python3, which has torch).  The programs see the carried libraries
# through wrappers, so python3 keeps its own.  Exit status: 0 when
# cuda-test passed both ways and bench-gpu ran.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-$ROOT/build}
SHARED=${SHARED:-$ROOT/../shared}
PACK=$ROOT/.gpu/payload.tar.gz
PROGS="gpt-train gpt-eval gpt-sample gpt-tokenize gpt-shard gpt-convert"
TESTS="cuda-test bench-gpu"

prepare() {
	for p in $PROGS; do [ -x "$ROOT/bin/$p" ] || { echo "gpu-session: build first (make): no bin/$p" >&2; exit 1; }; done
	for t in $TESTS; do
		[ -x "$O/tests/$t" ] || { echo "gpu-session: $O/tests/$t missing: a build with nvcc is needed" >&2; exit 1; }
	done
	[ -f "$SHARED/data/text/tinyshakespeare.txt" ] || { echo "gpu-session: no $SHARED/data" >&2; exit 1; }
	st=$(mktemp -d)
	mkdir -p "$st/real" "$st/lib" "$st/shared/data/text" "$st/shared/data/gpt2" "$st/shared/data/eval"
	for p in $PROGS; do cp "$ROOT/bin/$p" "$st/real/"; done
	for t in $TESTS; do cp "$O/tests/$t" "$st/real/"; done
	strip "$st"/real/*
	# every library they load, but the C library's own (the machine's
	# are newer and must stay in charge of the process)
	for f in "$st"/real/*; do ldd "$f"; done | awk '/=> \// {print $3}' | sort -u |
		grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
		while read -r l; do cp -L "$l" "$st/lib/"; done
	cp "$SHARED/data/text/tinyshakespeare.txt" "$st/shared/data/text/"
	cp "$SHARED/data/gpt2/encoder.json" "$SHARED/data/gpt2/vocab.bpe" "$SHARED/data/gpt2/gpt2.tiktoken" \
		"$st/shared/data/gpt2/"
	cp "$SHARED/data/eval/lambada_test.jsonl" "$st/shared/data/eval/"
	mkdir -p "$ROOT/.gpu"
	grep -qx '/.gpu/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >>"$ROOT/.git/info/exclude"
	tar -C "$st" -czf "$PACK" . && rm -rf "$st"
	size=$(wc -c <"$PACK")
	echo "gpu-session: $PACK, $((size / 1048576)) MiB (the call may carry 64 MiB)"
	[ "$size" -lt $((60 * 1048576)) ] || { echo "gpu-session: payload too large" >&2; exit 1; }
	echo 'next: run(command="sh tests/cuda/gpu-session.sh run", carry=[".gpu"], timeout_s=560)'
}

# cuBLASLt from the machine's CUDA toolkit or its PyTorch wheels
find_cublaslt() {
	for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu \
		$(python3 -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' 2>/dev/null); do
		if ls "$d"/libcublasLt.so.1[3-9]* >/dev/null 2>&1 || ls "$d"/libcublasLt.so.12* >/dev/null 2>&1; then
			echo "$d"
			return
		fi
	done
}

run() {
	W=/tmp/gpu
	OUT=${OUT:-$W/out}
	rm -rf "$W" && mkdir -p "$W/bin" "$W/build/tests" "$OUT" && tar -C "$W" -xzf "$PACK" || exit 1
	LT=$(find_cublaslt)
	echo "cublasLt from: ${LT:-not found}" | tee "$OUT/env.log"
	for f in "$W"/real/*; do
		n=$(basename "$f")
		case " $TESTS " in *" $n "*) w=$W/build/tests/$n ;; *) w=$W/bin/$n ;; esac
		printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/lib%s exec %s "$@"\n' "$W" "${LT:+:$LT}" "$f" >"$w"
		chmod +x "$w"
	done
	nvidia-smi >>"$OUT/env.log" 2>&1
	export SHARED=$W/shared BIN=$W/bin O=$W/build
	rc=0
	for att in batched flash; do
		log=$OUT/cuda-test-$att.log
		if [ $att = flash ]; then export GPT_CUDA_ATTENTION=flash; else unset GPT_CUDA_ATTENTION; fi
		CUDA_TEST_SEED=1 timeout 150 "$O/tests/cuda-test" >"$log" 2>&1
		r=$?
		echo "cuda-test ($att attention): status $r"
		grep -E '^(pass|fail) |MISMATCH|cuda-test:' "$log"
		if [ $r -ne 0 ]; then
			rc=1
			first=$(sed -n 's/^fail \([a-z_0-9]*\).*/\1/p' "$log" | head -1)
			if [ -n "$first" ] && command -v compute-sanitizer >/dev/null; then
				echo "compute-sanitizer on $first ($att):"
				CUDA_TEST_SEED=1 CUDA_TEST_ONLY=$first GPT_CUDA_DEBUG=1 timeout 90 \
					compute-sanitizer --print-limit 20 "$W/real/cuda-test" >"$OUT/sanitizer-$att.log" 2>&1
				tail -30 "$OUT/sanitizer-$att.log"
			fi
		fi
	done
	unset GPT_CUDA_ATTENTION
	PY=python3 BENCH_GPU_STEPS=${BENCH_GPU_STEPS:-10} timeout 240 sh "$ROOT/tests/bench/bench-gpu.sh" \
		>"$OUT/bench-gpu.log" 2>&1
	r=$?
	echo "bench-gpu: status $r"
	cat "$OUT/bench-gpu.log"
	[ $r -eq 0 ] || rc=1
	exit $rc
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
*) echo "usage: gpu-session.sh prepare|run" >&2; exit 2 ;;
esac
