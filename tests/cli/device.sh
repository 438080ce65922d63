# --device in gpt-eval and gpt-sample on the fixture models
# (tests/gen_hf_fixtures.py).  Everywhere: cpu gives the CPU engine's
# output, bad values are usage errors.  Without a usable GPU (or in a
# build without nvcc): auto is the CPU, byte for byte, and cuda is a
# one-line error with status 1.  With one: cuda and auto agree with the
# CPU within bf16 rounding and find the bigram model's known answers.
. "$ROOT/tests/lib.sh"
fixture_models   # $TMP/r.gpt, $TMP/b.gpt; F, V (tests/lib.sh)
P="Every effort moves you"
E() { gpt-eval $V -q "$@"; }
S() { gpt-sample $V "$@"; }
"$PY" -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["text"]["text"])' \
	"$F/expected.json" >"$TMP/text"
BENCH="--hellaswag $F/hellaswag.jsonl --lambada $F/lambada.jsonl"

# Is there a GPU?  --device cuda either runs or says why not.
if S --device cuda -m 1 "$TMP/r.gpt" "$P" >/dev/null 2>"$TMP/probe"; then
	gpu=1
else
	gpu=0
	check_grep "without a gpu, --device cuda says why" \
		"no usable gpu|no CUDA engine in this build" "$TMP/probe"
fi

# A machine with no GPU at all (no NVIDIA device node, no NVIDIA display
# controller on the PCI bus) says "no GPU found", whatever the CUDA
# runtime answered: without a driver it says "CUDA driver version is
# insufficient", which sends one looking for a driver update.
no_gpu_here() {
	for d in /dev/nvidia[0-9]*; do [ -e "$d" ] && return 1; done
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor" 2>/dev/null)" = 0x10de ] || continue
		case $(cat "$d/class" 2>/dev/null) in 0x03*) return 1 ;; esac
	done
	return 0
}
if [ "$gpu" = 0 ] && no_gpu_here; then
	tiny_shards   # TR, VA (tests/lib.sh)
	for prog in gpt-train gpt-eval gpt-sample; do
		case $prog in
		gpt-train) args="-q -i $TR -o $TMP/nogpu-run --layers 1 --heads 1 --width 8 --context 8 --steps 1" ;;
		gpt-eval) args="$V -q --text $TMP/r.gpt" ;;
		gpt-sample) args="$V -m 1 $TMP/r.gpt hello" ;;
		esac
		check_status 1 "$prog --device cuda on a machine without a gpu fails" \
			sh -c "$prog --device cuda $args <'$TMP/text'"
		if grep -q "no CUDA engine in this build" "$TMP/.err"; then
			echo "note: no CUDA engine in this build: \"no GPU found\" not checked for $prog" >&2
			continue
		fi
		check_eq "$prog without a gpu: one line" "$(wc -l <"$TMP/.err")" 1
		check_grep "$prog without a gpu says \"no GPU found\"" "^$prog: .*no GPU found$" "$TMP/.err"
	done
fi

# --device cpu: the CPU engine, equal to PyTorch's greedy tokens.
want=$("$PY" -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["greedy"])))' \
	"$F/expected.json")
check_eq "gpt-sample --device cpu: greedy tokens equal transformers'" \
	"$(S --device cpu -t 0 -m 20 --tokens --no-echo "$TMP/r.gpt" "$P")" "$want"
E --device cpu --tsv $BENCH "$TMP/b.gpt" >"$TMP/cpu-bench.tsv"
check_eq "gpt-eval --device cpu: bigram hellaswag" "$(col "$TMP/cpu-bench.tsv" hellaswag)" "1.0000"
check_eq "gpt-eval --device cpu: bigram lambada" "$(col "$TMP/cpu-bench.tsv" lambada)" "0.6667"

# Bad values and a missing value are usage errors, on every machine.
for prog in gpt-eval gpt-sample; do
	[ $prog = gpt-eval ] && what=--text || what=hello
	check_status 2 "$prog --device gpu is a usage error" $prog $V --device gpu "$TMP/r.gpt" $what
	check_grep "$prog names the bad device" "unknown device 'gpu'" "$TMP/.err"
	check_status 2 "$prog --device without a value is a usage error" $prog $V --device
done

if [ "$gpu" = 0 ]; then
	# auto and no flag are the CPU, byte for byte.
	for d in "" "--device auto" "--device cpu"; do
		E $d --json --text "$TMP/r.gpt" <"$TMP/text" >"$TMP/text$d.json"
		E $d --json --details "$TMP/det$d" $BENCH "$TMP/r.gpt" >"$TMP/bench$d.json"
		S $d -s 5 -m 40 "$TMP/r.gpt" "$P" >"$TMP/sample$d" 2>/dev/null
		S $d -t 0 -m 20 --tokens "$TMP/b.gpt" " we will" >"$TMP/greedy$d"
	done
	for d in "--device auto" "--device cpu"; do
		check_files "gpt-eval $d --text: as without the flag" "$TMP/text.json" "$TMP/text$d.json"
		check_files "gpt-eval $d benchmarks: as without the flag" "$TMP/bench.json" \
			"$TMP/bench$d.json"
		check_files "gpt-eval $d details: as without the flag" "$TMP/det" "$TMP/det$d"
		check_files "gpt-sample $d: as without the flag" "$TMP/sample" "$TMP/sample$d"
		check_files "gpt-sample $d greedy: as without the flag" "$TMP/greedy" "$TMP/greedy$d"
	done
	# cuda: status 1, one line on stderr naming the program, nothing on stdout.
	for prog in gpt-eval gpt-sample; do
		if [ $prog = gpt-eval ]; then
			args="--text $TMP/r.gpt"
		else
			args="-m 5 $TMP/r.gpt $P"
		fi
		check_status 1 "$prog --device cuda without a gpu fails" \
			sh -c "$prog $V --device cuda $args <'$TMP/text'"
		check_eq "$prog --device cuda: one line on stderr" "$(wc -l <"$TMP/.err")" "1"
		check_grep "$prog --device cuda: the line names the program and why" \
			"^$prog: no (CUDA engine for --device cuda: no usable gpu: .+|CUDA engine in this build)" \
			"$TMP/.err"
		check_eq "$prog --device cuda: nothing on stdout" "$(wc -c <"$TMP/.out")" "0"
	done
else
	# A GPU: cuda and auto are the GPU engine, within bf16 of the CPU.
	for d in cuda auto; do
		E --device $d --json --text "$TMP/r.gpt" <"$TMP/text" >"$TMP/text-$d.json"
		E --device cpu --json --text "$TMP/r.gpt" <"$TMP/text" >"$TMP/text-cpu.json"
		check "gpt-eval --device $d --text: loss and bpb within 1% of the cpu's" "$PY" -c '
import json, sys
a, b = (json.load(open(p))[0] for p in sys.argv[1:3])
ok = a["tokens"] == b["tokens"] and all(abs(a[k] - b[k]) <= 0.01 * abs(b[k]) for k in ("loss", "bpb"))
sys.exit(0 if ok else 1)' "$TMP/text-$d.json" "$TMP/text-cpu.json"
		E --device $d --tsv $BENCH "$TMP/b.gpt" >"$TMP/gpu-bench.tsv"
		check_eq "gpt-eval --device $d: bigram hellaswag" "$(col "$TMP/gpu-bench.tsv" hellaswag)" \
			"1.0000"
		check_eq "gpt-eval --device $d: bigram lambada" "$(col "$TMP/gpu-bench.tsv" lambada)" \
			"0.6667"
		check_eq "gpt-sample --device $d: the bigram model's greedy words" \
			"$(S --device $d -t 0 -m 20 --tokens "$TMP/b.gpt" " we will")" \
			"$(S --device cpu -t 0 -m 20 --tokens "$TMP/b.gpt" " we will")"
		n=$(S --device $d -s 3 -m 100 --ignore-eot --tokens --no-echo "$TMP/r.gpt" "$P" | wc -w)
		check_eq "gpt-sample --device $d: 100 tokens, past the 64-token context" "$n" "100"
	done
fi
