# gpt-train on a tiny model: an interrupted and resumed run gives the same
# losses bit for bit as a straight one; checkpoints every N with --keep;
# corrupt and truncated checkpoints refused; --init; bad options; a loss
# that blows up stops naming the step; the loss goes down; --recompute.
# These run on the CPU engine (--device cpu, also where a GPU is);
# tests/cli/train-device.sh checks --device cuda.
. "$ROOT/tests/lib.sh"
tiny_shards   # the tiny language (tests/lib.sh): $TMP/ids.txt, TR, VA
DEV="--device cpu"
SHAPE="--layers 2 --heads 4 --width 64 --context 64 --batch 8 --threads 1 $DEV"

# -- straight vs interrupted + resumed -----------------------------------
check "straight 40-step run" gpt-train -q -i "$TR" --val "$VA" -o "$TMP/s" $SHAPE \
	--steps 40 --lr 3e-3 --val-every 10
check_eq "log has a header, the step-0 line and 40 lines" "$(wc -l <"$TMP/s/log.tsv" | tr -d ' ')" 42
check_eq "log header" "$(head -1 "$TMP/s/log.tsv")" \
	"$(printf 'step\ttokens\ttrain_loss\tval_loss\tlr\tgrad_norm\ttokens_per_s\telapsed_s')"
check_eq "latest names the last checkpoint" "$(readlink "$TMP/s/latest")" ckpt-00000040.gpt
check_grep "config holds the settings" '^lr 0.003' "$TMP/s/config"

gpt-train -q -i "$TR" --val "$VA" -o "$TMP/r" $SHAPE --steps 40 --lr 3e-3 --val-every 10 \
	2>"$TMP/r.err" &
pid=$!
n=0
# Wait for step 10 (the header, step 0 and ten lines), then stop it; steps
# take ~30 ms, so it stops mid-run, in a step without validation.
while [ $n -lt 3000 ] && kill -0 $pid 2>/dev/null &&
	[ "$(cat "$TMP/r/log.tsv" 2>/dev/null | wc -l)" -lt 12 ]; do
	sleep 0.01; n=$((n + 1))
done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
check_eq "SIGTERM: exit 0" "$rc" 0
check_grep "SIGTERM: says how to continue" 'stopped by signal at step [0-9]+; saved .*--resume' "$TMP/r.err"
stopped=$(($(wc -l <"$TMP/r/log.tsv") - 2))
if [ "$stopped" -ge 10 ] && [ "$stopped" -lt 40 ]; then pass "stopped mid-run (step $stopped)"; else
	fail "stopped mid-run (step $stopped)"; fi
check_eq "SIGTERM: checkpoint of the step it stopped at" "$(readlink "$TMP/r/latest")" \
	"$(printf 'ckpt-%08d.gpt' "$stopped")"
check "resume" gpt-train -q --resume "$TMP/r" $DEV
cut -f1,2,3,4,5,6 "$TMP/s/log.tsv" >"$TMP/s.cols"
cut -f1,2,3,4,5,6 "$TMP/r/log.tsv" >"$TMP/r.cols"
check_files "resumed losses equal the straight run's bit for bit" "$TMP/s.cols" "$TMP/r.cols"
check_files "and so do the final checkpoints" "$TMP/s/ckpt-00000040.gpt" "$TMP/r/ckpt-00000040.gpt"

# -- a crash after the last checkpoint: resume redoes the steps once ------
check "12 steps, checkpoint every 5" gpt-train -q -i "$TR" -o "$TMP/p" $SHAPE --steps 12 \
	--checkpoint-every 5 --keep 0
cp "$TMP/p/log.tsv" "$TMP/p.full"
rm "$TMP/p/ckpt-00000012.gpt"
ln -sf ckpt-00000010.gpt "$TMP/p/latest"
check "resume from step 10 with steps 11-12 already logged" gpt-train -q --resume "$TMP/p" $DEV
cut -f1-6 "$TMP/p.full" >"$TMP/p.a"
cut -f1-6 "$TMP/p/log.tsv" >"$TMP/p.b"
check_files "log lines past the checkpoint are replaced, not doubled" "$TMP/p.a" "$TMP/p.b"

# -- the loss goes down ---------------------------------------------------
first=$(awk -F'\t' 'NR > 1 && $1 == 1 { print $3 }' "$TMP/s/log.tsv")
last=$(awk -F'\t' 'NR > 1 && $1 == 40 { print $3 }' "$TMP/s/log.tsv")
val=$(awk -F'\t' 'NR > 1 && $1 == 40 { print $4 }' "$TMP/s/log.tsv")
check "loss falls below half ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }'
check "validation loss measured and low ($val)" awk -v v="$val" 'BEGIN { exit !(v != "" && v < 1.5) }'

# -- checkpoint every N and --keep ----------------------------------------
check "checkpoint every 3, keep 2" gpt-train -q -i "$TR" -o "$TMP/k" $SHAPE --steps 10 \
	--checkpoint-every 3 --keep 2
check_eq "kept the newest two" "$(cd "$TMP/k" && ls ckpt-*)" \
	"$(printf 'ckpt-00000009.gpt\nckpt-00000010.gpt')"
check_eq "no temporary files left" "$(ls -A "$TMP/k" | grep -c tmp)" 0

# -- corrupt and truncated checkpoints ------------------------------------
cp -r "$TMP/k" "$TMP/c"
size=$(wc -c <"$TMP/c/ckpt-00000010.gpt")
printf 'X' | dd of="$TMP/c/ckpt-00000010.gpt" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
check_status 1 "one flipped byte is refused" gpt-train -q --resume "$TMP/c"
check_grep "message says corrupt and names the file" \
	"corrupt.*ckpt-00000010.gpt|ckpt-00000010.gpt.*corrupt" "$TMP/.err"
cp "$TMP/k/ckpt-00000010.gpt" "$TMP/c/ckpt-00000010.gpt"
truncate -s $((size - 100)) "$TMP/c/ckpt-00000010.gpt"
check_status 1 "a truncated checkpoint is refused" gpt-train -q --resume "$TMP/c"
check_grep "message says truncated" "truncated.*ckpt-00000010.gpt" "$TMP/.err"
printf 'not a checkpoint' >"$TMP/c/ckpt-00000010.gpt"
check_status 1 "a file that is no checkpoint is refused" gpt-train -q --init "$TMP/c/latest" \
	-i "$TR" -o "$TMP/c2"
check_grep "message says bad magic" "magic" "$TMP/.err"

# -- --init from a checkpoint ---------------------------------------------
check "--init from a trained checkpoint" gpt-train -q -i "$TR" -o "$TMP/i" --init "$TMP/s/latest" \
	--threads 1 --batch 8 --steps 3 --lr 1e-4 $DEV
first_i=$(awk -F'\t' 'NR > 1 && $1 == 1 { print $3 }' "$TMP/i/log.tsv")
check "starts where the checkpoint was ($first_i < $first / 2)" \
	awk -v a="$first" -v b="$first_i" 'BEGIN { exit !(b < a / 2) }'
check_status 2 "--init fixes the shape" gpt-train -q -i "$TR" -o "$TMP/i2" --init "$TMP/s/latest" --layers 3

# -- a loss that blows up --------------------------------------------------
check_status 1 "absurd --lr stops" gpt-train -q -i "$TR" -o "$TMP/n" $SHAPE --steps 10 \
	--lr 1e30 --warmup 0 --checkpoint-every 1
check_grep "error names the step" "(nan|infinite|not finite).* at step [0-9]+" "$TMP/.err"
nstep=$(sed -n 's/.* at step \([0-9]*\).*/\1/p' "$TMP/.err")
check_eq "the previous checkpoint stays latest" "$(readlink "$TMP/n/latest")" \
	"$(printf 'ckpt-%08d.gpt' $((nstep - 1)))"
check_status 1 "and it still loads (fails again at the same step)" gpt-train -q --resume "$TMP/n" $DEV
check_grep "same step again" " at step $nstep" "$TMP/.err"

# -- bad usage -------------------------------------------------------------
check_status 2 "no -i" gpt-train -o "$TMP/u"
check_status 2 "no -o" gpt-train -i "$TR"
check_status 2 "unknown option" gpt-train -i "$TR" -o "$TMP/u" --frobnicate
check_status 2 "bad --lr" gpt-train -i "$TR" -o "$TMP/u" --lr fast
check_status 2 "negative --steps" gpt-train -i "$TR" -o "$TMP/u" --steps -5
check_status 2 "unknown schedule" gpt-train -i "$TR" -o "$TMP/u" --schedule zigzag
check_status 2 "unknown model" gpt-train -i "$TR" -o "$TMP/u" --model d13
check_status 2 "heads not dividing width" gpt-train -i "$TR" -o "$TMP/u" --layers 1 --heads 3 --width 64 --context 16
check_status 2 "total batch not a multiple" gpt-train -i "$TR" -o "$TMP/u" $SHAPE --total-batch 1000
check_status 2 "shape change on resume" gpt-train --resume "$TMP/s" --width 128
check_status 2 "unknown device" gpt-train -i "$TR" -o "$TMP/u" --device tpu
check_status 1 "a run folder is not overwritten" gpt-train -q -i "$TR" -o "$TMP/s" $SHAPE --steps 1
check_grep "says to resume" "already holds a run" "$TMP/.err"
check "--help" gpt-train --help
check_grep "--help lists --resume" "--resume" "$TMP/.out"
check_grep "and --recompute" "--recompute " "$TMP/.out"

# -- --skip-outliers and a tokenizer mismatch -------------------------------
check "--skip-outliers with a tiny threshold skips updates" gpt-train -q -i "$TR" -o "$TMP/o" \
	$SHAPE --steps 30 --lr 1e-7 --skip-outliers 0.01 --checkpoint-every 0
check_grep "and says which" "step [0-9]+ skipped: loss" "$TMP/.err"
gpt-shard -q -f text -o "$TMP/data/other" --val-tokens 0 --vocab-size 64 \
	--tokenizer other --eot 63 --frame-tokens 1024 <"$TMP/ids.txt"
check_status 1 "--init on shards of another tokenizer is refused" gpt-train -q \
	-i "$TMP/data/other-train-*" -o "$TMP/t" --init "$TMP/s/latest"
check_grep "naming both tokenizers" "tokenizer 'tiny' but the shards hold 'other'" "$TMP/.err"

# -- --sample-every: samples through the engine's decoder, on past a full
# context (the window slides: the cache is refilled with the last T - 1)
SMP="--layers 2 --heads 4 --width 64 --context 16 --batch 8 --threads 1 $DEV --steps 4
	--sample-every 2 --sample-tokens 40 --keep 0"
check "--sample-every 2, 40 tokens, context 16" gpt-train -i "$TR" -o "$TMP/smp" $SMP
grep 'sample:' "$TMP/.err" >"$TMP/smp.1"
check_eq "a sample at steps 2 and 4" "$(sed 's/^gpt-train: step \([0-9]*\) sample:.*/\1/' "$TMP/smp.1" | tr '\n' ' ')" "2 4 "
check_eq "each 40 token ids of the vocabulary" \
	"$(awk '{ n = 0; for (i = 5; i <= NF; i++) if ($i ~ /^[0-9]+$/ && $i < 64) n++; print n }' "$TMP/smp.1" | sort -u)" 40
check "the same run samples the same" gpt-train -i "$TR" -o "$TMP/smp2" $SMP
grep 'sample:' "$TMP/.err" >"$TMP/smp.2"
check_files "(the trainer's seeded generator)" "$TMP/smp.1" "$TMP/smp.2"

# -- --recompute: a GPU memory saving; the CPU engine says so and ignores it -
check "--recompute on the cpu" gpt-train -q -i "$TR" -o "$TMP/rc" $SHAPE --steps 12 \
	--checkpoint-every 5 --keep 0 --recompute
check_grep "says once that it has no effect there" "recompute has no effect on the cpu" "$TMP/.err"
check_eq "only once" "$(grep -c recompute "$TMP/.err")" 1
cut -f1-6 "$TMP/rc/log.tsv" >"$TMP/rc.cols"
check_files "same losses as without it, bit for bit" "$TMP/p.a" "$TMP/rc.cols"
check_files "and the same checkpoint" "$TMP/p/ckpt-00000010.gpt" "$TMP/rc/ckpt-00000010.gpt"

# -- a run resumed on a machine with fewer processors than its threads ------
more=$(($(nproc) + 1))
check "a run with $more threads" gpt-train -q -i "$TR" -o "$TMP/th" --layers 1 --heads 2 \
	--width 32 --context 32 --steps 2 --threads "$more" $DEV
check "resumes with one thread per processor" gpt-train -q --resume "$TMP/th" --steps 3 $DEV
check_grep "and says so" "used $more threads but this machine has $(nproc) processors: using $(nproc)" \
	"$TMP/.err"
check_grep "which the run keeps" "^threads $(nproc)\$" "$TMP/th/config"
