# gpt-train --device cuda.  Where no GPU is usable (or the build has no
# nvcc) it is refused in one line before anything is written; with one, a
# GPU run writes the CPU's checkpoint format and each device resumes the
# other's checkpoints.  tests/cli/cudasim.sh runs this script again with
# gpt-train built on the CUDA emulator, so the GPU half runs in every
# build with nvcc, GPU or not.
. "$ROOT/tests/lib.sh"
tiny_shards   # the tiny language (tests/lib.sh): $TMP/ids.txt, TR, VA

# -- --device cuda ----------------------------------------------------------
# Whether a usable GPU is here, the program itself says: without one (or in
# a build without nvcc) --device cuda is refused with "no CUDA engine".
G="--layers 2 --heads 4 --width 64 --context 64 --batch 8 --threads 1 --steps 10 --lr 3e-3
	--checkpoint-every 5 --keep 0"
gpt-train -i "$TR" -o "$TMP/g" $G --device cuda >"$TMP/g.out" 2>"$TMP/g.err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "no CUDA engine" "$TMP/g.err"; then
	check_eq "no usable gpu: --device cuda is refused in one line" \
		"$(wc -l <"$TMP/g.err" | tr -d ' ')" 1
	check_grep "naming why" "^gpt-train: no CUDA engine (in this build|for --device cuda: no usable gpu: .)" \
		"$TMP/g.err"
	check "before it writes anything" test ! -e "$TMP/g"
	gpt-train -q -i "$TR" -o "$TMP/s" $G --steps 2 --device cpu
	check_status 1 "resuming with --device cuda is refused too" gpt-train -q --resume "$TMP/s" \
		--device cuda
	check "--device auto trains on the cpu" gpt-train -i "$TR" -o "$TMP/auto" --layers 1 --heads 2 \
		--width 32 --context 32 --steps 1 --threads 1
	check_grep "and says so" "^gpt-train: training on the cpu" "$TMP/.err"
else
	# A GPU: its run writes the CPU's format with the same counters, data
	# position and settings, weights and AdamW moments alike (bf16 keeps
	# them from being equal), and each device resumes the other's
	# checkpoint of step 5 to reach the other's step 10.
	cat >"$TMP/ck.py" <<'PY'
import array, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    return b, [struct.unpack_from("<QQQ", b, 280 + 24 * i) for i in range(6)]
(a, sa), (b, sb) = load(sys.argv[2]), load(sys.argv[3])
bad = []
if sys.argv[1] == "same":
    # header fields (steps, tokens, AdamW step, random state, schedule),
    # section sizes, tensor table, trainer state and settings
    if a[:280] != b[:280] or [s[:2] for s in sa] != [s[:2] for s in sb]:
        bad.append("header")
    for i in (0, 4, 5):
        if a[sa[i][0]:sa[i][0] + sa[i][1]] != b[sb[i][0]:sb[i][0] + sb[i][1]]:
            bad.append("section %d" % i)
else:
    for i, what, mincos in ((1, "weights", 0.99), (2, "adamw m", 0.9), (3, "adamw v", 0.9)):
        x, y = array.array("f"), array.array("f")
        x.frombytes(a[sa[i][0]:sa[i][0] + sa[i][1]])
        y.frombytes(b[sb[i][0]:sb[i][0] + sb[i][1]])
        xx, yy = math.fsum(v * v for v in x), math.fsum(v * v for v in y)
        xy = math.fsum(u * v for u, v in zip(x, y))
        cos = xy / math.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
        ratio = math.sqrt(xx / yy) if yy > 0 else 0.0
        if len(x) != len(y) or cos < mincos or not 0.8 <= ratio <= 1.25:
            bad.append("%s: cosine %.4f, norm ratio %.4f" % (what, cos, ratio))
print("; ".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
	if [ "$rc" -eq 0 ]; then pass "a tiny --device cuda run works"; else
		fail "a tiny --device cuda run works (status $rc: $(tail -c 300 "$TMP/g.err"))"; fi
	check_grep "says it trains on the gpu" "training on the gpu: " "$TMP/g.err"
	check_grep "and its peak gpu memory" "peak gpu memory [0-9.]+ GiB" "$TMP/g.err"
	check "the same run on the cpu" gpt-train -q -i "$TR" -o "$TMP/gc" $G --device cpu
	for n in 5 10; do
		f=$(printf 'ckpt-%08d.gpt' $n)
		check "gpu and cpu checkpoints of step $n: one format, the same counters" \
			"$PY" "$TMP/ck.py" same "$TMP/g/$f" "$TMP/gc/$f"
		check "and weights and moments alike" "$PY" "$TMP/ck.py" close "$TMP/g/$f" "$TMP/gc/$f"
	done
	check "the gpu's losses follow the cpu's within 5%" awk -F'\t' '
		NR == FNR { l[FNR] = $3; next }
		FNR > 1 { d = ($3 - l[FNR]) / l[FNR]; if ($3 !~ /^[0-9.]+(e[-+]?[0-9]+)?$/ || !(d <= 0.05 && d >= -0.05)) exit 1 }
		END { if (FNR != 11) exit 1 }' "$TMP/gc/log.tsv" "$TMP/g/log.tsv"
	for way in "g cpu" "gc cuda"; do
		set -- $way
		cp -r "$TMP/$1" "$TMP/$1x"
		rm "$TMP/$1x/ckpt-00000010.gpt"
		ln -sf ckpt-00000005.gpt "$TMP/$1x/latest"
		check "--device $2 resumes the other device's step 5" gpt-train -q --resume "$TMP/$1x" \
			--device "$2"
		check "to step 10 with the same counters" \
			"$PY" "$TMP/ck.py" same "$TMP/$1/ckpt-00000010.gpt" "$TMP/$1x/ckpt-00000010.gpt"
		check "and the moments carried over" \
			"$PY" "$TMP/ck.py" close "$TMP/$1/ckpt-00000010.gpt" "$TMP/$1x/ckpt-00000010.gpt"
	done
	# --recompute keeps the GELU in the engine's kernels: GPT_CUDA_GELU=kernel's
	# arithmetic; the default fuses it into cuBLASLt's epilogues
	check "--recompute on the gpu" gpt-train -q -i "$TR" -o "$TMP/gr" $G --device cuda --recompute
	check "GPT_CUDA_GELU=kernel on the gpu" env GPT_CUDA_GELU=kernel gpt-train -q -i "$TR" \
		-o "$TMP/gk" $G --device cuda
	same_losses() { # tolerance a b
		awk -F'\t' -v t="$1" '
		NR == FNR { l[FNR] = $3; next }
		FNR > 1 { d = ($3 - l[FNR]) / l[FNR]; if ($3 !~ /^[0-9.]+(e[-+]?[0-9]+)?$/ || !(d <= t && d >= -t)) exit 1 }
		END { if (FNR != 11) exit 1 }' "$2" "$3"
	}
	check "--recompute gives the kernel GELU's losses (within 1e-6)" \
		same_losses 1e-6 "$TMP/gk/log.tsv" "$TMP/gr/log.tsv"
	check "and the fused GELU's to rounding (within 1e-2)" \
		same_losses 1e-2 "$TMP/g/log.tsv" "$TMP/gr/log.tsv"
	check_status 1 "GPT_CUDA_GELU=other is refused" env GPT_CUDA_GELU=other gpt-train -q -i "$TR" \
		-o "$TMP/gbad" $G --device cuda
	check_grep "in one line" "^gpt-train: GPT_CUDA_GELU must be fused or kernel: 'other'$" "$TMP/.err"
	check "before it writes anything" test ! -e "$TMP/gbad"
	check "samples through the gpu decoder, past a 16-token context" gpt-train -i "$TR" \
		-o "$TMP/gs" --layers 2 --heads 4 --width 64 --context 16 --batch 8 --steps 2 \
		--sample-every 2 --sample-tokens 40 --keep 0 --device cuda
	check_eq "40 token ids" "$(grep 'sample:' "$TMP/.err" | awk '{ n = 0; for (i = 5; i <= NF; i++)
		if ($i ~ /^[0-9]+$/ && $i < 64) n++; print n }')" 40
fi
