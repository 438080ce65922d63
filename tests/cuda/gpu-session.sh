#!/bin/sh
# gpu-session.sh: the CUDA checks for a session that is lent a GPU
# machine, prepared here and run there in one call.  That machine can
# install nothing and has no Debian libraries beyond the base system, and
# ../shared does not travel with the working tree, so
#
#   sh tests/cuda/gpu-session.sh prepare    (here, after make)
#
# packs into .gpu/payload.tar.gz (ignored by git) the stripped programs
# and test binaries, every shared library they load but the base system's
# (checked by ldd with the bundle's folder as the only library path), the
# headers of those libraries (for a rebuild there), and the test data.
# Then one device call:
#
#   run(command="sh tests/cuda/gpu-session.sh run", carry=[".gpu"], timeout_s=450)
#
# unpacks it in /tmp/gpu, finds cuBLASLt (and cuDNN, NCCL) where such a
# machine keeps them, and runs stages, each under its own time limit
# (printed first, 400 s at most in all), each logged to $OUT: a smoke
# stage (the binaries start, device query, one matmul and one attention
# check); a rebuild with the machine's nvcc only if a carried binary
# cannot start; cuda-test with batched and with flash attention;
# compute-sanitizer on the first failing test where the machine has it;
# bench-gpu (one PyTorch row).  A failed smoke stage dumps what explains
# it and stops, so a fixed rerun still fits.  Exit status: 0 when every
# stage that ran passed.
#
#   sh tests/cuda/gpu-session.sh selftest
#
# runs all of it here on the CPU emulator's build (build/sim), under
# env -i, and once more with a carried library removed, so a missing
# library or path shows before a GPU minute is spent (tests/cli/gpu-session.sh).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF=$ROOT/tests/cuda/gpu-session.sh
O=${O:-$ROOT/build}
BIN=${BIN:-$ROOT/bin}
SHARED=${SHARED:-$ROOT/../shared}
G=${GPU_SESSION_DIR:-$ROOT/.gpu}
PACK=$G/payload.tar.gz
W=${GPU_SESSION_WORK:-/tmp/gpu}
# every program: between them they link every library the Makefile names,
# which a rebuild there needs too
PROGS="gpt-train gpt-eval gpt-sample gpt-tokenize gpt-shard gpt-convert gpt-fetch gpt-bpe"
TESTS="cuda-test bench-gpu"
# what the stages run (cuda-test runs the two programs): only these, when
# they cannot start, call for a rebuild
NEEDED="cuda-test bench-gpu gpt-tokenize gpt-eval"
# What any Linux image has, so not carried: the C library's own parts
# (libresolv too: it calls the C library's private symbols, so a carried
# one would break against another glibc), the C++ runtime and the loader.
SYSLIBS='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s)\.so'
# The libraries the Makefile links (-l names) and their headers, for a
# rebuild on the GPU machine.
DEVLIBS="zstd xxhash curl archive snappy z brotlidec lz4 openblas"
DEVHDRS="xxhash.h zstd.h zlib.h cblas.h snappy-c.h lz4.h curl/curl.h archive.h archive_entry.h brotli/decode.h"
CUDALIBS="libcublasLt.so.13 libcublas.so.13 libcudnn.so.9 libnccl.so.2"
# Stage limits, seconds.  Their sum, with the rebuild and the second
# smoke that follows it, is what a session must allow (400).
L_SMOKE=30 L_REBUILD=80 L_BATCHED=60 L_FLASH=60 L_SAN=30 L_BENCH=100 L_DIAG=10
SMOKE_TESTS=${GPU_SESSION_SMOKE_TESTS:-test_matmul test_attention}

die() { echo "gpu-session: $*" >&2; exit 1; }

# ldd_libs FILE: "NAME PATH" for each library FILE loads (PATH "not" when
# not found), under the library path already in the environment.
ldd_libs() {
	ldd "$1" 2>&1 | awk '/=>/ { print $1, $3; next } /^[ \t]*\// { n = $1; sub(/.*\//, "", n); print n, $1 }'
}

prepare() { # [sim]
	kind=${1:-gpu}
	if [ "$kind" = sim ]; then # the emulator's build: tests/cudasim
		progs=$O/sim/allbin tests=$O/sim
		[ -f "$O/sim/allbin/.done" ] || die "$O/sim/allbin missing: make with nvcc builds the emulator"
	else
		progs=$BIN tests=$O/tests
	fi
	for p in $PROGS; do [ -x "$progs/$p" ] || die "build first (make): no $progs/$p"; done
	for t in $TESTS; do [ -x "$tests/$t" ] || die "$tests/$t missing: a build with nvcc is needed"; done
	[ -f "$SHARED/data/text/tinyshakespeare.txt" ] || die "no $SHARED/data"
	mkdir -p "$G" || exit 1
	st=$(mktemp -d "$G/stage.XXXXXX") || exit 1
	mkdir -p "$st/real" "$st/lib" "$st/dev/include" "$st/shared/data/text" "$st/shared/data/gpt2" \
		"$st/shared/data/eval"
	for p in $PROGS; do cp "$progs/$p" "$st/real/"; done
	for t in $TESTS; do cp "$tests/$t" "$st/real/"; done
	strip "$st"/real/*
	audit=$st/real/*
	if [ "$kind" = sim ]; then
		# The emulator's binaries name build/sim twice, as their rpath and
		# as the folder they dlopen the stand-in cuBLASLt from: overwritten
		# (same length) with a folder that does not exist, so that only the
		# session's search can find the stand-in.
		old=$(cd "$O/sim" && pwd)
		new=$(printf '%s' "$old" | sed 's/./_/g; s/^_/\//')
		for f in "$st"/real/*; do OLD=$old NEW=$new perl -0777 -pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/g' "$f"; done
		! grep -l -F "$old" "$st"/real/* || die "the emulator's binaries still name $old"
		audit="$audit $O/sim/libcublasLt.so.13"
	fi
	# shellcheck disable=SC2086 # $audit is a list of paths without spaces
	for f in $audit; do ldd_libs "$f"; done | sort -u | while read -r n p; do
		echo "$n" | grep -q -E "$SYSLIBS" && continue
		[ "$p" != not ] || die "$n, which the binaries need, is not found here"
		cp -L "$p" "$st/lib/$n"
	done || { rm -rf "$st"; exit 1; }
	# The audit: with the bundle's folder as the only library path, what
	# each binary loads is from the bundle or from SYSLIBS.
	bad=$(for f in $audit; do
		LD_LIBRARY_PATH=$st/lib ldd_libs "$f" | while read -r n p; do
			case $p in "$st"/lib/*) continue ;; esac
			echo "$n" | grep -q -E "$SYSLIBS" || echo "$(basename "$f"): $n ($p)"
		done
	done)
	[ -z "$bad" ] || { rm -rf "$st"; die "ldd audit: not carried and not the base system's: $bad"; }
	echo "gpu-session: ldd audit: passed (each binary loads only the bundle's libraries and the base system's)"
	# Headers of the linked libraries, as the compiler finds them here, for
	# a rebuild where no -dev package is installed (CPATH).
	printf '#include <%s>\n' $DEVHDRS | cc -D_GNU_SOURCE -M -x c - -o - 2>/dev/null | tr ' \\' '\n\n' |
		grep -E '/(xxhash|zstd|zlib|zconf|cblas|openblas|snappy|lz4|curl/|archive|brotli/)' | sort -u |
		while read -r h; do
			rel=$(echo "$h" | sed 's|^/usr/include/||; s|^x86_64-linux-gnu/||')
			mkdir -p "$st/dev/include/$(dirname "$rel")" && cp -L "$h" "$st/dev/include/$rel"
		done
	for h in $DEVHDRS; do [ -f "$st/dev/include/$h" ] || echo "gpu-session: note: no $h to carry (a rebuild there will lack it)" >&2; done
	cp "$SHARED/data/text/tinyshakespeare.txt" "$st/shared/data/text/"
	cp "$SHARED/data/gpt2/encoder.json" "$SHARED/data/gpt2/vocab.bpe" "$SHARED/data/gpt2/gpt2.tiktoken" \
		"$st/shared/data/gpt2/"
	cp "$SHARED/data/eval/lambada_test.jsonl" "$st/shared/data/eval/"
	# What a failure there needs to be explained: the newest C library and
	# C++ runtime versions the bundle asks of the machine.
	{
		echo "bundle: $kind, prepared $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)"
		echo "built with: $(nvcc --version 2>/dev/null | grep -i release || echo 'nvcc not on PATH')"
		echo "needs at most: $(cat "$st"/real/* "$st"/lib/* | grep -a -o -E 'GLIBC_2\.[0-9]+' | sort -t. -k2 -n -u | tail -1)," \
			"$(cat "$st"/real/* "$st"/lib/* | grep -a -o -E 'GLIBCXX_3\.4(\.[0-9]+)?' | sort -t. -k3 -n -u | tail -1)" \
			"(here: glibc $(ldd --version | head -1 | awk '{print $NF}'))"
		# per file, as an older C library would refuse them
		for f in "$st"/real/* "$st"/lib/*; do
			echo "$(grep -a -o -E 'GLIBC_2\.[0-9]+' "$f" | sort -t. -k2 -n -u | tail -1) $(basename "$f")"
		done | sort -t. -k2 -n | awk '{ v[$1] = v[$1] " " $2 } END { for (k in v) print "  " k ":" v[k] }' | sort -t. -k2 -n | tail -3
		echo "carried libraries: $(cd "$st/lib" && echo *)"
	} >"$st/manifest"
	cat "$st/manifest"
	grep -qx '/.gpu/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >>"$ROOT/.git/info/exclude"
	tar -C "$st" -czf "$PACK.tmp" . && mv "$PACK.tmp" "$PACK" || { rm -rf "$st" "$PACK.tmp"; exit 1; }
	rm -rf "$st"
	size=$(wc -c <"$PACK")
	echo "gpu-session: $PACK, $((size / 1048576)) MiB (the call may carry 64 MiB)"
	[ "$size" -lt $((60 * 1048576)) ] || die "payload over 60 MiB"
	[ "$kind" = sim ] ||
		echo 'next: run(command="sh tests/cuda/gpu-session.sh run", carry=[".gpu"], timeout_s=450)'
}

# python3's package folders (site-packages, dist-packages), asked of the
# python3 on the PATH without importing any nvidia package.
py_sites() {
	python3 -c 'import site, sys
s = []
try: s += site.getsitepackages()
except Exception: pass
try: s.append(site.getusersitepackages())
except Exception: pass
s += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
print("\n".join(dict.fromkeys(s)))' 2>/dev/null
}

# Folders a CUDA library may be in, "WHERE FOLDER" a line, in the order
# searched: the machine's LD_LIBRARY_PATH, the toolkits, python3's nvidia
# packages.  The loader cache (ldconfig -p) is asked after them: a folder
# found goes on the path, ahead of the cache as the loader reads them,
# and python3's cuBLASLt is the one PyTorch loads.
cand_dirs() {
	echo "${LD_LIBRARY_PATH:-}" | tr ':' '\n' | sed '/^$/d; s/^/LD_LIBRARY_PATH /'
	for r in ${GPU_SESSION_CUDA_ROOTS:-/usr/local/cuda /usr/local/cuda-*}; do
		for s in lib64 targets/x86_64-linux/lib lib; do [ -d "$r/$s" ] && echo "toolkit $r/$s"; done
	done
	py_sites | while read -r sp; do
		for d in "$sp/nvidia/cu13/lib" "$sp"/nvidia/*/lib; do [ -d "$d" ] && echo "python3 $d"; done
	done | awk '!seen[$2]++'
}

ldconfig_p() {
	for l in "$(command -v ldconfig)" /sbin/ldconfig /usr/sbin/ldconfig; do
		[ -x "$l" ] && { "$l" -p; return; }
	done
}

# find_cuda_libs: sets EXTRA, the folders to add to the library path, and
# logs every folder tried and what it holds.
find_cuda_libs() {
	EXTRA=
	say "library search (python3: $(command -v python3 || echo none)):"
	cand_dirs >"$W/cand"
	while read -r where d; do
		has=$(for l in $CUDALIBS libcublasLt.so.12; do [ -e "$d/$l" ] && printf ' %s' "$l"; done)
		say "  tried $d ($where):${has:- none of $CUDALIBS}"
	done <"$W/cand"
	cache=$(ldconfig_p | grep -E 'cublas|cudnn|nccl')
	say "  tried the loader cache (ldconfig -p):$(echo "$cache" | awk 'NF {printf " %s", $1}')"
	[ -n "$cache" ] || say "    none of them"
	for l in $CUDALIBS; do
		d=$(while read -r where dir; do [ -e "$dir/$l" ] && { echo "$dir ($where)"; break; }; done <"$W/cand")
		if [ -n "$d" ]; then
			say "$l: found in $d"
			dir=${d% (*}
			case ":$EXTRA:${LD_LIBRARY_PATH:-}:" in *":$dir:"*) ;; *) EXTRA=$EXTRA:$dir ;; esac
		elif echo "$cache" | grep -q "^[[:space:]]*$l "; then
			say "$l: found in the loader cache"
		else
			say "$l: not found"
		fi
	done
}

say() { echo "$*"; echo "$*" >>"$OUT/env.log"; }

# stage NAME LIMIT LOG COMMAND...: COMMAND under its limit, its output in
# $OUT/LOG; prints one line and returns COMMAND's status.
stage() {
	_n=$1 _l=$2 _log=$OUT/$3
	shift 3
	_t0=$(date +%s)
	timeout -k 5 "$_l" "$@" >"$_log" 2>&1
	_r=$?
	_dt=$(($(date +%s) - _t0))
	case $_r in
	0) echo "stage $_n: passed (${_dt} s of $_l)" ;;
	124 | 137) echo "stage $_n: timed out after $_l s" ;;
	*) echo "stage $_n: failed, status $_r (${_dt} s of $_l)" ;;
	esac
	echo "$_n $_r ${_dt}s" >>"$OUT/summary.log"
	return $_r
}

run() {
	sum=$((L_SMOKE + L_REBUILD + L_SMOKE + L_BATCHED + L_FLASH + L_SAN + L_BENCH + L_DIAG))
	echo "gpu-session: stage limits (s): smoke $L_SMOKE, rebuild $L_REBUILD and smoke again $L_SMOKE" \
		"(only if a carried binary cannot start), cuda-test batched $L_BATCHED, flash $L_FLASH," \
		"compute-sanitizer $L_SAN (only on a failure), bench-gpu $L_BENCH, diagnostics $L_DIAG" \
		"(only on a failure): $sum in all"
	[ -f "$PACK" ] || die "no $PACK: run prepare first and carry .gpu"
	OUT=${OUT:-$W/out}
	rm -rf "$W" && mkdir -p "$W/bin" "$W/build/tests" "$OUT" && tar -C "$W" -xzf "$PACK" ||
		die "cannot unpack $PACK in $W"
	: >"$OUT/summary.log"
	cat "$W/manifest" >"$OUT/env.log"
	echo "LD_LIBRARY_PATH on arrival: ${LD_LIBRARY_PATH:-(unset)}" >>"$OUT/env.log"
	find_cuda_libs
	# The wrappers put the bundle's libraries, then the CUDA folders found,
	# ahead of the machine's own LD_LIBRARY_PATH (kept, read when they
	# run); nothing else sees the bundle's libraries, so python3 and
	# PyTorch load the machine's.
	LP=$W/lib$EXTRA
	say "the carried binaries run with LD_LIBRARY_PATH=$LP\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
	wrappers
	export GPU_SESSION_WORK=$W OUT LP SHARED=$W/shared BIN=$W/bin O=$W/build
	stage smoke "$L_SMOKE" smoke.log sh "$SELF" _smoke
	r=$?
	cat "$OUT/smoke.log"
	if [ $r -eq 3 ]; then
		if [ "${GPU_SESSION_REBUILD:-1}" = 0 ]; then
			echo "gpu-session: a carried binary cannot start; no rebuild (GPU_SESSION_REBUILD=0)"
		else
			stage rebuild "$L_REBUILD" rebuild.log sh "$SELF" _rebuild
			r=$?
			tail -20 "$OUT/rebuild.log"
			if [ $r -eq 0 ]; then
				stage smoke-again "$L_SMOKE" smoke-again.log sh "$SELF" _smoke
				r=$?
				cat "$OUT/smoke-again.log"
			fi
		fi
		[ $r -eq 0 ] || r=1
	fi
	if [ $r -ne 0 ]; then
		stage diagnostics "$L_DIAG" diagnostics.log sh "$SELF" _diag
		cat "$OUT/diagnostics.log"
		echo "gpu-session: stopped after the smoke stage; logs in $OUT"
		exit 1
	fi
	rc=0
	for att in batched flash; do
		if [ $att = flash ]; then l=$L_FLASH a=flash; else l=$L_BATCHED a=matmul; fi
		stage "cuda-test-$att" "$l" "cuda-test-$att.log" env GPT_CUDA_ATTENTION=$a CUDA_TEST_SEED=1 \
			TEST_ONLY="${GPU_SESSION_TESTS:-}" "$O/tests/cuda-test" || rc=1
		grep -E '^(pass|fail) |MISMATCH|^cuda-test:|^device ' "$OUT/cuda-test-$att.log"
	done
	first=$(sed -n 's/^fail \(test_[a-z_0-9]*\).*/\1/p' "$OUT/cuda-test-batched.log" | head -1) fatt=matmul
	[ -n "$first" ] ||
		first=$(sed -n 's/^fail \(test_[a-z_0-9]*\).*/\1/p' "$OUT/cuda-test-flash.log" | head -1) fatt=flash
	if [ -n "$first" ]; then
		san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
		if [ -n "$san" ]; then
			# through the wrapper: the sanitizer follows it into cuda-test
			stage compute-sanitizer "$L_SAN" sanitizer.log env GPT_CUDA_ATTENTION=$fatt CUDA_TEST_SEED=1 \
				TEST_ONLY="$first" GPT_CUDA_DEBUG=1 "$san" --target-processes all --print-limit 20 \
				"$O/tests/cuda-test"
			tail -30 "$OUT/sanitizer.log"
		else
			echo "stage compute-sanitizer: not on this machine (first failure: $first, $fatt attention)" |
				tee "$OUT/sanitizer.log"
		fi
	fi
	# One PyTorch row (B=16, one torch.compile) and the engine's at B=16.
	stage bench-gpu "$L_BENCH" bench-gpu.log env PY="${PY:-python3}" BENCH_GPU_B="${BENCH_GPU_B:-16}" \
		BENCH_GPU_TORCH_B="${BENCH_GPU_TORCH_B-16}" BENCH_GPU_STEPS="${BENCH_GPU_STEPS:-10}" \
		BENCH_GPU_RECOMPUTE_B="${BENCH_GPU_RECOMPUTE_B-}" BENCH_GPU_PHASES_B="${BENCH_GPU_PHASES_B-16}" \
		sh "$ROOT/tests/bench/bench-gpu.sh" || rc=1
	cat "$OUT/bench-gpu.log"
	echo "gpu-session: $([ $rc -eq 0 ] && echo 'every stage passed' || echo 'a stage failed'); logs in $OUT:" \
		"$(cd "$OUT" && echo *)"
	exit $rc
}

wrappers() {
	for f in "$W"/real/*; do
		n=$(basename "$f")
		case " $TESTS " in *" $n "*) w=$W/build/tests/$n ;; *) w=$W/bin/$n ;; esac
		printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
			"$LP" "$f" >"$w" && chmod +x "$w"
	done
}

# _smoke (a stage): status 3 when a carried binary cannot start (the
# loader: a library or a symbol version missing), 1 on another failure.
smoke() {
	loader=0
	for f in "$W"/real/*; do
		n=$(basename "$f")
		nf=$(LD_LIBRARY_PATH=$LP ldd "$f" 2>&1) && ! echo "$nf" | grep -q -E 'not found|error while loading' &&
			continue
		nf=$(echo "$nf" | grep -E 'not found|error while loading')
		case " $NEEDED " in
		*" $n "*) echo "smoke: $n cannot start: $(echo $nf)"; loader=1 ;;
		*) echo "smoke: warning: $n cannot start here, and no stage needs it: $(echo $nf)" ;;
		esac
	done
	for p in gpt-tokenize gpt-eval; do
		out=$("$BIN/$p" --version 2>&1)
		r=$?
		if [ $r -eq 127 ] || echo "$out" | grep -q 'error while loading'; then
			echo "smoke: $p --version: status $r: $out"
			loader=1
		fi
	done
	out=$(TEST_ONLY=gpu_session_start "$O/tests/cuda-test" 2>&1)
	r=$?
	if [ $r -eq 127 ] || echo "$out" | grep -q 'error while loading'; then
		echo "smoke: cuda-test cannot start: $out"
		loader=1
	fi
	[ $loader -eq 0 ] || exit 3
	echo "smoke: every carried binary starts"
	if command -v nvidia-smi >/dev/null; then
		timeout 8 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader ||
			echo "smoke: nvidia-smi failed"
	else
		echo "smoke: no nvidia-smi on the PATH"
	fi
	probe=$("$O/tests/bench-gpu" probe 2>&1) || { echo "smoke: bench-gpu probe: $probe"; exit 1; }
	echo "smoke: engine's device: $(echo "$probe" | head -1)"
	# one matmul and one attention check against the CPU engine
	TEST_ONLY=$SMOKE_TESTS CUDA_TEST_SEED=1 "$O/tests/cuda-test" >"$OUT/smoke-cuda-test.log" 2>&1
	r=$?
	grep -E '^(pass|fail) |^cuda-test:' "$OUT/smoke-cuda-test.log"
	[ $r -eq 0 ] && [ "$(grep -c '^pass test_' "$OUT/smoke-cuda-test.log")" -eq "$(echo $SMOKE_TESTS | wc -w)" ] ||
		{ echo "smoke: cuda-test $SMOKE_TESTS: status $r"; tail -5 "$OUT/smoke-cuda-test.log"; exit 1; }
	echo "smoke: passed"
}

# _diag (a stage): what explains a failed start, into the log.
diag() {
	echo "== diagnostics"
	echo "== the bundle"; cat "$W/manifest"
	echo "== the machine: $(uname -sr); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME");" \
		"glibc $(ldd --version 2>/dev/null | head -1 | awk '{print $NF}'); $(python3 --version 2>&1)"
	echo "== driver"
	cat /proc/driver/nvidia/version 2>&1
	if command -v nvidia-smi >/dev/null; then timeout 5 nvidia-smi 2>&1; else echo "no nvidia-smi on the PATH"; fi
	echo "== runtime: static cudart built in (see 'built with' above); cuBLASLt as found below"
	echo "== library folders tried"; sed -n '/^LD_LIBRARY_PATH on arrival/,$p' "$OUT/env.log"
	echo "== ldconfig -p | grep -E 'cublas|cudnn|nccl'"; ldconfig_p | grep -E 'cublas|cudnn|nccl' || echo "(none)"
	for f in "$W"/real/*; do
		echo "== ldd $(basename "$f") (LD_LIBRARY_PATH=$LP)"
		LD_LIBRARY_PATH=$LP ldd "$f" 2>&1
	done
	for d in $(echo "$LP" | tr ':' ' '); do
		[ -e "$d/libcublasLt.so.13" ] && { echo "== ldd $d/libcublasLt.so.13"; LD_LIBRARY_PATH=$LP ldd "$d/libcublasLt.so.13" 2>&1; }
	done
	return 0
}

# first FILE...: the first that exists, in the order given (ls would sort)
first() { for _f; do [ -e "$_f" ] && { echo "$_f"; return; }; done; }

# _rebuild (a stage): the programs and tests built here with the
# machine's nvcc and the bundle's libraries and headers, or exactly what
# is missing for it.
rebuild() {
	sps=$(py_sites)
	nv=$(command -v nvcc)
	for d in /usr/local/cuda*/bin $(for sp in $sps; do echo "$sp/nvidia/cu13/bin $sp/nvidia/cuda_nvcc/bin"; done); do
		[ -n "$nv" ] && break
		[ -x "$d/nvcc" ] && nv=$d/nvcc
	done
	missing=
	miss() { missing="$missing
  $*"; }
	[ -n "$nv" ] || miss "nvcc (looked on the PATH, in /usr/local/cuda*/bin and python3's nvidia/cu13/bin, nvidia/cuda_nvcc/bin)"
	ch=${nv:+$(cd "$(dirname "$nv")/.." && pwd)}
	echo "rebuild: nvcc ${nv:-not found}, CUDA_HOME ${ch:-none}"
	incs=
	for h in cuda_runtime.h cuda_bf16.h mma.h cublasLt.h; do
		f=$(first "$ch/include/$h" "$ch/targets/x86_64-linux/include/$h" $(for sp in $sps; do echo "$sp/nvidia/cu13/include/$h $sp/nvidia/cublas/include/$h"; done))
		[ -n "$f" ] || { miss "$h (in $ch/include, or python3's nvidia/cu13/include)"; continue; }
		incs="$incs:$(dirname "$f")"
	done
	cudalib=$(first "$ch/lib64/libcudart_static.a" "$ch/targets/x86_64-linux/lib/libcudart_static.a" "$ch/lib/libcudart_static.a")
	[ -n "$cudalib" ] || miss "libcudart_static.a (in $ch/lib64, targets/x86_64-linux/lib or lib)"
	for c in cc g++ make; do command -v $c >/dev/null || miss "$c (the host compiler nvcc and the Makefile use)"; done
	for h in $DEVHDRS; do [ -f "$W/dev/include/$h" ] || [ -f "/usr/include/$h" ] || miss "$h (not carried, not in /usr/include)"; done
	mkdir -p "$W/devlib"
	for l in $DEVLIBS; do
		f=$(first "$W"/lib/lib$l.so.*)
		if [ -n "$f" ]; then ln -sf "$f" "$W/devlib/lib$l.so"
		elif ! ls /usr/lib/x86_64-linux-gnu/lib$l.so /usr/lib64/lib$l.so >/dev/null 2>&1; then miss "lib$l.so (-l$l)"; fi
	done
	if command -v cc >/dev/null && ! echo 'int main(void) { return 0; }' | cc -fopenmp -x c - -o "$W/omp" 2>/dev/null; then
		miss "cc -fopenmp (gcc's libgomp)"
	fi
	[ -z "$missing" ] || { echo "rebuild: cannot build here; missing:$missing"; exit 1; }
	R=$W/rebuild
	# only what the stages run: quicker, and gpt-fetch's libarchive may ask
	# more of the C library than the machine's has
	targets="$R/bin/gpt-tokenize $R/bin/gpt-eval $R/tests/cuda-test $R/tests/bench-gpu"
	echo "rebuild: make NVCC=$nv CUDA_HOME=$ch CUDA_LIBDIR=$(dirname "$cudalib") (the bundle's headers and libraries)"
	# C_INCLUDE_PATH, not CPATH: system headers, which -Werror's warnings
	# (brotli's -Wvla) leave alone, as they do /usr/include's
	# shellcheck disable=SC2086 # $targets: paths without spaces
	C_INCLUDE_PATH=$W/dev/include$incs${C_INCLUDE_PATH:+:$C_INCLUDE_PATH} \
		CPLUS_INCLUDE_PATH=$W/dev/include$incs${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH} \
		LIBRARY_PATH=$W/devlib${LIBRARY_PATH:+:$LIBRARY_PATH} \
		make -C "$ROOT" -j"$(nproc)" NVCC="$nv" CUDA_HOME="$ch" CUDA_LIBDIR="$(dirname "$cudalib")" \
		CC="cc -Wl,-rpath-link,$W/lib" O="$R" BIN="$R/bin" $targets || { echo "rebuild: make failed"; exit 1; }
	cp -f "$R/bin/gpt-tokenize" "$R/bin/gpt-eval" "$R/tests/cuda-test" "$R/tests/bench-gpu" "$W/real/"
	echo "rebuild: built; the carried binaries replaced"
}

# selftest: prepare from the emulator's build, then run under env -i
# with a fake python3 whose nvidia/cu13/lib holds the stand-in cuBLASLt,
# then again with a carried library removed.  GPU_SESSION_SELFTEST_KEEP
# names a folder for the logs (tests/cli/gpu-session.sh reads them).
selftest() {
	[ -x "$O/sim/cuda-test" ] && [ -f "$O/sim/allbin/.done" ] && [ -f "$O/sim/libcublasLt.so.13" ] ||
		die "the emulator is not built ($O/sim): make with nvcc builds it"
	K=${GPU_SESSION_SELFTEST_KEEP:-}
	t=$(mktemp -d "${TMPDIR:-/tmp}/gpu-selftest.XXXXXX") || exit 1
	if [ -z "$K" ]; then K=$(mktemp -d "${TMPDIR:-/tmp}/gpu-selftest-logs.XXXXXX") || exit 1; fi
	mkdir -p "$K" || exit 1
	t0=$(date +%s)
	GPU_SESSION_DIR=$t/gpu O=$O sh "$SELF" prepare sim >"$K/prepare.log" 2>&1 ||
		{ cat "$K/prepare.log"; rm -rf "$t"; die "selftest: prepare failed"; }
	cat "$K/prepare.log"
	# python3 with a site-packages of its own: a venv of the system's
	/usr/bin/python3 -m venv --without-pip "$t/py" || die "selftest: no venv for a fake python3"
	sp=$("$t/py/bin/python3" -c 'import site; print(site.getsitepackages()[0])')
	mkdir -p "$sp/nvidia/cu13/lib" "$t/machine-lib"
	cp "$O/sim/libcublasLt.so.13" "$sp/nvidia/cu13/lib/"
	echo "$sp/nvidia/cu13/lib" >"$K/cublaslt-dir"
	# the emulator is ~100x slower than a GPU: quick tests, a tiny bench
	set -- GPU_SESSION_REBUILD=0 GPU_SESSION_CUDA_ROOTS="$t/no-cuda" \
		GPU_SESSION_TESTS="test_layernorm test_gelu test_xent test_embedding test_adamw" \
		BENCH_GPU_MODEL=1/2/64/256 BENCH_GPU_T=32 BENCH_GPU_B=1 BENCH_GPU_TORCH_B= BENCH_GPU_STEPS=1 \
		BENCH_GPU_PHASES_B=1 BENCH_GPU_NO_TORCH=1
	env -i PATH="$t/py/bin:/usr/bin:/bin" HOME="${HOME:-/}" LD_LIBRARY_PATH="$t/machine-lib" \
		GPU_SESSION_DIR="$t/gpu" GPU_SESSION_WORK="$t/w" OUT="$K/out" "$@" \
		sh "$SELF" run >"$K/run.log" 2>&1
	echo "$?" >"$K/run.status"
	t1=$(date +%s)
	# A bundle with a carried library cuda-test needs broken: emptied, not
	# removed, since here the loader would find Debian's copy instead,
	# which the GPU machine lacks.
	mkdir -p "$t/broken" && tar -C "$t/broken" -xzf "$t/gpu/payload.tar.gz" &&
		: >"$t/broken/lib/libxxhash.so.0" && mkdir -p "$t/gpu2" &&
		tar -C "$t/broken" -czf "$t/gpu2/payload.tar.gz" . || die "selftest: cannot break the bundle"
	env -i PATH="$t/py/bin:/usr/bin:/bin" HOME="${HOME:-/}" \
		GPU_SESSION_DIR="$t/gpu2" GPU_SESSION_WORK="$t/w2" OUT="$K/out-broken" "$@" \
		sh "$SELF" run >"$K/run-broken.log" 2>&1
	echo "$?" >"$K/run-broken.status"
	t2=$(date +%s)
	echo "$((t1 - t0)) $((t2 - t1))" >"$K/seconds"
	rm -rf "$t/w" "$t/w2" "$t/broken"
	ok=1
	chk() { if eval "$2"; then echo "selftest: ok: $1"; else echo "selftest: FAILED: $1"; ok=0; fi; }
	chk "prepare's ldd audit passed" "grep -q 'ldd audit: passed' '$K/prepare.log'"
	chk "the run found cuBLASLt by its search ($sp/nvidia/cu13/lib)" \
		"grep -qF 'libcublasLt.so.13: found in $sp/nvidia/cu13/lib (python3)' '$K/run.log'"
	chk "the machine's LD_LIBRARY_PATH kept behind the bundle's" \
		"grep -qF 'LD_LIBRARY_PATH on arrival: $t/machine-lib' '$K/out/env.log'"
	chk "the smoke stage passed" "grep -q '^stage smoke: passed' '$K/run.log'"
	for s in cuda-test-batched cuda-test-flash bench-gpu; do
		chk "stage $s passed" "grep -q '^stage $s: passed' '$K/run.log'"
	done
	for l in env smoke cuda-test-batched cuda-test-flash bench-gpu summary; do
		chk "$l.log in OUT" "[ -s '$K/out/$l.log' ]"
	done
	chk "the run exited 0 ($(cat "$K/run.status"))" "[ \"\$(cat '$K/run.status')\" = 0 ]"
	chk "the broken bundle: smoke failed" "grep -q '^stage smoke: failed' '$K/run-broken.log'"
	chk "the broken bundle: the missing library named" "grep -q -E 'libxxhash.so.0(: file too short| => not found)' '$K/out-broken/diagnostics.log'"
	chk "the broken bundle: the loader cache and driver dumped" \
		"grep -q '^== ldconfig -p' '$K/out-broken/diagnostics.log' && grep -q '^== driver' '$K/out-broken/diagnostics.log'"
	chk "the broken bundle: non-zero exit ($(cat "$K/run-broken.status"))" "[ \"\$(cat '$K/run-broken.status')\" != 0 ]"
	chk "the broken bundle stopped within 30 s ($((t2 - t1)) s)" "[ $((t2 - t1)) -le 30 ]"
	rm -rf "$t"
	echo "selftest: run $((t1 - t0)) s, broken run $((t2 - t1)) s; logs in $K"
	[ $ok -eq 1 ] && echo "selftest: passed" || { echo "selftest: failed" >&2; exit 1; }
}

case "${1:-}" in
prepare) prepare "${2:-}" ;;
run) run ;;
selftest) selftest ;;
_smoke) smoke ;;
_diag) diag ;;
_rebuild) rebuild ;;
*) echo "usage: gpu-session.sh prepare|run|selftest" >&2; exit 2 ;;
esac
