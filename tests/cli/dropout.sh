# gpt-train --dropout (issue 17): a run with dropout logs other losses
# than one without, from the same step-0 validation loss (evaluation does
# not drop); it is saved in the run's settings; a stopped and resumed run
# logs the straight one bit for bit, in pretraining and in fine-tuning;
# the masks follow a window's place in the step, so micro-batches of 4 or
# 8 and two ranks give the same losses to rounding; bad probabilities are
# refused.  On the CPU engine; on the GPU emulator when it is built.
. "$ROOT/tests/lib.sh"
tiny_shards
# a constant rate: a run of 10 steps then resumed to 20 takes the steps
# of a run of 20 (a cosine's rate depends on the number of steps)
S="--layers 2 --heads 4 --width 64 --context 64 --total-batch 512 --threads 1 --device cpu"
S="$S --lr 3e-3 --schedule constant --warmup 2"
D="-i $TR --val $VA"

# apart A B: every step after the first differs by more than 1e-4 relative
apart() {
	losses "$1" "$2" | awk '{ n++; d = ($1 - $2) / $1; if (d < 0) d = -d;
		if (d < 1e-4) k++ } END { if (n == 0 || k > 0) { print k " of " n " alike"; exit 1 } }'
}

check "20 steps without dropout" gpt-train -q $D -o "$TMP/p0" $S -b 8 --steps 20 --val-every 10
check "20 steps with --dropout 0.1" gpt-train $D -o "$TMP/p1" $S -b 8 --steps 20 --val-every 10 \
	--dropout 0.1 --checkpoint-every 10
cp "$TMP/.err" "$TMP/p1.err"
check_grep "the summary says where it drops" \
	'dropout 0.1 on the embeddings, the attention weights and the residual branches' "$TMP/p1.err"
check_grep "the setting is saved with the run" '^dropout 0\.1' "$TMP/p1/config"
check_eq "step 0's validation loss is the same (evaluation does not drop)" \
	"$(awk -F'\t' 'NR == 2 { print $4 }' "$TMP/p1/log.tsv")" \
	"$(awk -F'\t' 'NR == 2 { print $4 }' "$TMP/p0/log.tsv")"
check "every step's training loss differs from the run without dropout" apart \
	"$TMP/p0/log.tsv" "$TMP/p1/log.tsv"
check "--dropout 0: the run without it, bit for bit" gpt-train -q $D -o "$TMP/pz" $S -b 8 \
	--steps 20 --val-every 10 --dropout 0
cut -f1-6 "$TMP/p0/log.tsv" >"$TMP/p0.cut"
cut -f1-6 "$TMP/pz/log.tsv" >"$TMP/pz.cut"
check_files "  the same log" "$TMP/p0.cut" "$TMP/pz.cut"

# -- resume ------------------------------------------------------------------
check "10 steps with dropout, then" gpt-train -q $D -o "$TMP/r" $S -b 8 --steps 10 --val-every 10 \
	--dropout 0.1
check "resumed to 20 (the dropout comes from the run's settings)" gpt-train -q --resume "$TMP/r" \
	--steps 20
cut -f1-6 "$TMP/p1/log.tsv" >"$TMP/p1.cut"
cut -f1-6 "$TMP/r/log.tsv" >"$TMP/r.cut"
check_files "a resumed run with dropout logs the straight one bit for bit" "$TMP/p1.cut" "$TMP/r.cut"

# -- the masks follow the step, not the micro-batch ----------------------------
check "the same run in micro-batches of 4" gpt-train -q $D -o "$TMP/b4" $S -b 4 --steps 20 \
	--val-every 10 --dropout 0.1
check "  losses within 1e-5 of micro-batches of 8" within "$TMP/p1/log.tsv" "$TMP/b4/log.tsv" 1e-5
if command -v mpirun >/dev/null 2>&1 && gpt-train --help 2>&1 | grep -q -- '--zero'; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
	check "2 ranks with dropout" mpirun -np 2 gpt-train -q $D -o "$TMP/m2" $S -b 8 --steps 20 \
		--val-every 10 --dropout 0.1
	check "  losses within 1e-5 of one process" within "$TMP/p1/log.tsv" "$TMP/m2/log.tsv" 1e-5
fi

# -- fine-tuning with dropout --------------------------------------------------
I=$SHARED/data/instruct/instruction-data.json
verdict_shards
check "a base model" gpt-train -q -i "$VTR" -o "$TMP/base" --layers 2 --heads 2 \
	--width 64 --context 128 --steps 3 --threads 1 --device cpu
F="--sft $I --val-frac 0.05 --init $TMP/base/latest -b 4 --threads 1 --device cpu --lr 1e-3 --dropout 0.1"
check "fine-tune 12 steps with dropout" gpt-train -q $F -o "$TMP/f" --steps 12 --val-every 6
check "6 steps, then" gpt-train -q $F -o "$TMP/g" --steps 6 --val-every 6
check "resumed to 12" gpt-train -q --resume "$TMP/g" --steps 12
cut -f1-6 "$TMP/f/log.tsv" >"$TMP/f.cut"
cut -f1-6 "$TMP/g/log.tsv" >"$TMP/g.cut"
check_files "a resumed fine-tuning run with dropout logs the straight one bit for bit" \
	"$TMP/f.cut" "$TMP/g.cut"

# -- on the GPU emulator, the CPU's masks --------------------------------------
G=$O/sim/allbin/gpt-train
if [ -x "$G" ]; then
	check "the emulated GPU, 3 steps with dropout" "$G" -q $D -o "$TMP/gpu" \
		$(echo "$S" | sed 's/--device cpu/--device cuda/') -b 8 --steps 3 --val-every 0 \
		--dropout 0.1
	head -5 "$TMP/p1/log.tsv" | sed 1d >"$TMP/cpu3"
	check "  its losses within 2e-2 of the CPU engine's" awk -F'\t' '
		NR == FNR { a[$1] = $3; next } $1 in a { d = ($3 - a[$1]) / a[$1]; if (d < 0) d = -d;
		if (d > 2e-2) bad = 1; n++ } END { exit bad || n < 3 }' "$TMP/cpu3" "$TMP/gpu/log.tsv"
fi

# -- bad usage -----------------------------------------------------------------
check_status 2 "--dropout 1 is refused" gpt-train $D -o "$TMP/x" $S --dropout 1
check_grep "  saying the range" "dropout" "$TMP/.err"
check_status 2 "--dropout -0.1 is refused" gpt-train $D -o "$TMP/x" $S --dropout -0.1
check_status 2 "--dropout abc is refused" gpt-train $D -o "$TMP/x" $S --dropout abc
check "nothing was written for them" test ! -e "$TMP/x"
