# make gpu-model's counting (tests/cudasim/gpumodel.c on the emulator),
# checked against work that can be derived by hand for a small model
# (2 layers, 8 heads of 64, width 512, vocabulary 1000 padded to 1024)
# predicted at B=4, T=1024: GEMM FLOPs exactly, the bytes of the memset,
# LayerNorm and AdamW passes, the causal saving of flash attention; and
# bench-gpu phases (on the emulator: no clock) lists the same phases with
# the model's prediction beside each.
. "$ROOT/tests/lib.sh"

SIM=$O/sim
if [ ! -x "$SIM/gpumodel" ] || [ ! -x "$SIM/bench-gpu" ]; then
	echo "note: no nvcc in this build: the CUDA emulator is not built" >&2
	exit 0
fi
M=2/8/512/1000
check "gpumodel counts a step of $M at three shapes" "$SIM/gpumodel" -o "$TMP/m.tsv" "$M" 4
cp "$TMP/.out" "$TMP/m.out"
check_grep "gpumodel prints a predicted step for both attention paths" \
	"predicted: .* ms a step, .*k tokens/s, MFU" "$TMP/m.out"
check_eq "two tables, batched and flash" "$(grep -c '^ *predicted:' "$TMP/m.out")" 2

# sum of a column over phases (a regular expression) of one attention path
sum() { # att col phases
	awk -F'\t' -v a="$1" -v c="$2" -v p="$3" 'NR > 1 && $1 == a && $4 ~ ("^(" p ")$") { s += $c }
		END { printf "%.0f\n", s }' "$TMP/m.tsv"
}
within() { # what got want tolerance(fraction)
	if awk -v g="$2" -v w="$3" -v t="$4" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= t * w) }'
	then pass "$1"; else fail "$1 (got $2, wanted $3 within $4)"; fi
}
L=2 C=512 V=1024 B=4 T=1024 H=8 HS=64
BT=$((B * T))
N=$((2 * V * C + L * (12 * C * C + 13 * C) + 2 * C)) # wte, wpe (1024 rows), blocks, lnf
FWD=$((2 * BT * (12 * C * C * L + C * V)))          # the linear layers and the head
for att in batched flash; do
	check_eq "$att: zero grad writes 4 bytes a parameter" "$(sum $att 7 'zero grad')" $((4 * N))
	within "$att: AdamW reads 16 bytes a parameter (weight, gradient, m, v)" \
		"$(sum $att 6 adamw)" $((16 * N)) 0.005
	within "$att: AdamW writes 14 (weight, m, v, the bf16 copy)" "$(sum $att 7 adamw)" $((14 * N)) 0.005
	check_eq "$att: forward GEMM FLOPs are 2 BT (12 C^2 L + C V)" \
		"$(sum $att 8 'qkv|proj\+residual|fc|fc\+gelu|mlp proj\+residual|head')" $FWD
	check_eq "$att: backward GEMM FLOPs twice that" \
		"$(sum $att 8 'qkv bwd|proj bwd|fc bwd|mlp proj\+gelu bwd|head bwd')" $((2 * FWD))
	within "$att: LayerNorm reads its input once (BT C bf16 a layer)" \
		"$(sum $att 6 ln1)" $((L * BT * C * 2)) 0.01
done
FULL=$((4 * T * T * HS * B * H * L)) # Q K^T and P V over every score
check_eq "batched attention multiplies all T^2 scores" "$(sum batched 8 attention)" $FULL
fl=$(sum flash 8 attention)
if [ $((fl * 100)) -ge $((FULL * 50)) ] && [ $((fl * 100)) -le $((FULL * 56)) ]; then
	pass "flash attention skips the tiles above the diagonal ($fl of $FULL FLOPs)"
else fail "flash attention FLOPs $fl, wanted 50-56% of $FULL"; fi
bb=$(($(sum batched 6 attention) + $(sum batched 7 attention)))
fb=$(($(sum flash 6 attention) + $(sum flash 7 attention)))
check "flash attention moves under a tenth of the batched path's bytes ($fb vs $bb)" \
	test $((fb * 10)) -lt "$bb"

# bench-gpu phases beside the prediction, at a shape the emulator runs fast
check "gpumodel -t 64 predicts B=1, T=64" "$SIM/gpumodel" -t 64 -o "$TMP/s.tsv" "$M" 1
check "bench-gpu phases runs on the emulator" "$SIM/bench-gpu" phases "$M" 1 64 1 "$TMP/s.tsv"
cp "$TMP/.out" "$TMP/p.out"
check_grep "bench-gpu phases: a row per phase with the prediction" \
	"^  attention +2 +[0-9.]+ ms +[0-9.]+ ms" "$TMP/p.out"
awk -F'\t' 'NR > 1 && $1 == "flash" { print $4 }' "$TMP/s.tsv" | sort >"$TMP/want"
sed -n 's/^  \([a-z][a-z0-9 +]*[a-z0-9+]\) \{1,\}[0-9]\{1,\} \{1,\}[0-9.]\{1,\} ms.*/\1/p' "$TMP/p.out" | sort >"$TMP/got"
check_files "bench-gpu phases times exactly the phases gpumodel predicts" "$TMP/got" "$TMP/want"
check_status 2 "bench-gpu phases: an unknown model is a usage error" "$SIM/bench-gpu" phases 9/9 1 64 1
