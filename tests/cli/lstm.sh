# gpt-train --arch lstm on tinyshakespeare's bytes: stopped by SIGTERM and
# resumed it gives the straight run's losses and checkpoint bit for bit
# (the carried state, the dropout masks and the streams' restart at each
# epoch included); a short run learns (validation below 3 bits per byte)
# and its samples look like a play; gpt-eval scores one stream whatever
# -T; the shape, recipe and refusals of the options.
. "$ROOT/tests/lib.sh"
TXT="$SHARED/data/text/tinyshakespeare.txt"
DEV="--device cpu --threads 1"

# -- the byte shards --------------------------------------------------------
head -c 400000 "$TXT" | gpt-tokenize --vocab bytes -f u32 |
	gpt-shard -q -f u32 --vocab bytes --val-tokens 40000 -o "$TMP/ts"
TR="$TMP/ts-train-*"
VA="$TMP/ts-val-*"
# a small one, so 40 steps cross the streams' end twice
head -c 6000 "$TXT" | gpt-tokenize --vocab bytes -f u32 |
	gpt-shard -q -f u32 --vocab bytes --val-tokens 1200 -o "$TMP/small"
STR="$TMP/small-train-*"
SVA="$TMP/small-val-*"
SHAPE="--arch lstm --layers 2 --width 24 --embed 8 --context 32 --batch 8 $DEV"

# -- straight vs interrupted + resumed ---------------------------------------
check "straight 40 steps (dropout 0.5, the recipe's)" gpt-train -q -i "$STR" --val "$SVA" \
	-o "$TMP/s" $SHAPE --steps 40 --lr 3e-3 --val-every 10 --checkpoint-every 7 --keep 0
check_grep "the run records its architecture" '^arch lstm$' "$TMP/s/config"
check_grep "and the recipe's dropout" '^dropout 0.5$' "$TMP/s/config"
cp "$TMP/s/log.tsv" "$TMP/s.log0"
gpt-train -i "$STR" --val "$SVA" -o "$TMP/ss" $SHAPE --steps 1 --val-every 0 2>"$TMP/ss.err"
check_grep "18 windows a stream: 40 steps pass the end twice" '8 streams of 599 tokens, 18 windows' \
	"$TMP/ss.err"

gpt-train -q -i "$STR" --val "$SVA" -o "$TMP/r" $SHAPE --steps 40 --lr 3e-3 --val-every 10 \
	--checkpoint-every 7 --keep 0 2>"$TMP/r.err" &
pid=$!
n=0
while [ $n -lt 3000 ] && kill -0 $pid 2>/dev/null &&
	[ "$(cat "$TMP/r/log.tsv" 2>/dev/null | wc -l)" -lt 24 ]; do
	sleep 0.01; n=$((n + 1))
done
kill -TERM $pid 2>/dev/null
wait $pid
check_eq "SIGTERM: exit 0" "$?" 0
stopped=$(($(wc -l <"$TMP/r/log.tsv") - 2))
if [ "$stopped" -ge 20 ] && [ "$stopped" -lt 40 ]; then pass "stopped past the first epoch (step $stopped)"; else
	fail "stopped past the first epoch (step $stopped)"; fi
check "resume" gpt-train -q --resume "$TMP/r" --device cpu
# the validation loss (column 4) is left out here: a signal that lands in
# a validation pass cuts it short (nothing logged) so that the step is
# saved at once; the resume from step 14 below compares it too
cut -f1-3,5,6 "$TMP/s/log.tsv" >"$TMP/s.cols"
cut -f1-3,5,6 "$TMP/r/log.tsv" >"$TMP/r.cols"
check_files "resumed losses equal the straight run's bit for bit" "$TMP/s.cols" "$TMP/r.cols"
check_files "and so do the final checkpoints" "$TMP/s/ckpt-00000040.gpt" "$TMP/r/ckpt-00000040.gpt"
# the carried state is in the checkpoint: a resume from step 14 (mid
# stream) without it would restart the streams from zero
check "resume the straight run from step 14" sh -c "rm -f '$TMP/s/ckpt-00000040.gpt' '$TMP/s/ckpt-00000035.gpt' '$TMP/s/ckpt-00000028.gpt' '$TMP/s/ckpt-00000021.gpt' && ln -sf ckpt-00000014.gpt '$TMP/s/latest' && gpt-train -q --resume '$TMP/s' --device cpu"
cut -f1-6 "$TMP/s/log.tsv" >"$TMP/s2.cols"
check "from mid-stream too, the validation losses included" sh -c "cut -f1-6 '$TMP/s.log0' | cmp - '$TMP/s2.cols'"

# -- it learns -------------------------------------------------------------
check "a 300-step run" gpt-train -q -i "$TR" --val "$VA" -o "$TMP/l" --arch lstm --layers 1 \
	--width 128 --embed 32 --batch 32 --context 64 --steps 300 --lr 8e-3 --dropout 0 \
	--val-every 0 $DEV
check "gpt-eval scores the validation shards" gpt-eval --tsv --device cpu "$TMP/l" --val "$VA"
bpb=$(col "$TMP/.out" bpb)
loss=$(col "$TMP/.out" loss)
if awk -v b="$bpb" 'BEGIN { exit !(b > 0 && b < 3.0) }'; then pass "validation $bpb bits per byte (< 3.0; random 8, bigrams 3.3)"; else
	fail "validation $bpb bits per byte (want < 3.0)"; fi
if awk -v b="$bpb" -v l="$loss" 'BEGIN { d = l / log(2) - b; exit !(d < 0.0002 && d > -0.0002) }'; then
	pass "bits per byte are the loss in bits"; else fail "bpb $bpb vs loss $loss"; fi
check "a sample" gpt-sample -q --device cpu -m 600 -s 3 -t 0.8 "$TMP/l" "ROMEO:"
cp "$TMP/.out" "$TMP/sample.txt"
if [ "$(wc -l <"$TMP/sample.txt")" -ge 4 ]; then pass "the sample has line breaks"; else
	fail "the sample has line breaks"; fi
check_grep "and capitalised speaker names" '^[A-Z][A-Za-z]+( [A-Z][A-Za-z]+)?:$' "$TMP/sample.txt"
check "the same seed, the same sample" gpt-sample -q --device cpu -m 600 -s 3 -t 0.8 "$TMP/l" "ROMEO:"
check_files "byte for byte" "$TMP/sample.txt" "$TMP/.out"

# -- one stream, whatever -T -----------------------------------------------
head -c 3000 "$TXT" >"$TMP/t3k"
check "gpt-eval --text -T 64" gpt-eval --tsv --device cpu -T 64 "$TMP/l" --text <"$TMP/t3k"
a=$(col "$TMP/.out" loss)
check "gpt-eval --text -T 7" gpt-eval --tsv --device cpu -T 7 "$TMP/l" --text <"$TMP/t3k"
b=$(col "$TMP/.out" loss)
check_eq "the same loss: the state carried across windows" "$a" "$b"
check_eq "every byte but the first scored" "$(col "$TMP/.out" tokens)" 2999

# -- options ------------------------------------------------------------------
check_status 2 "--heads with an lstm" gpt-train -i "$STR" -o "$TMP/x1" $SHAPE --heads 2
check_grep "says why" 'an lstm has none' "$TMP/.err"
check_status 2 "--model d12 with --arch lstm" gpt-train -i "$STR" -o "$TMP/x2" --arch lstm --model d12
check_status 2 "an unknown --arch" gpt-train -i "$STR" -o "$TMP/x3" --arch rnn
check_grep "names the choices" 'gpt2, lstm' "$TMP/.err"
check_status 2 "--embed without --arch lstm" gpt-train -i "$STR" -o "$TMP/x4" --embed 8
check_status 2 "accumulation" gpt-train -i "$STR" -o "$TMP/x5" $SHAPE --total-batch 512
check_status 1 "an lstm on shards too short for its streams" gpt-train -i "$STR" -o "$TMP/x6" \
	$SHAPE --batch 200
check_grep "says so" "one window for each of the lstm's streams" "$TMP/.err"
gpt-train -i "$STR" -o "$TMP/cr" --model char-rnn --steps 1 --val-every 0 $DEV \
	--batch 2 2>"$TMP/cr.err" >/dev/null
check_grep "--model char-rnn: 3 layers of 512, windows of 100" \
	'model lstm, 3 layers, width 512, embedding 512, windows of 100, vocabulary 257' "$TMP/cr.err"
check_grep "and the recipe: Adam 3e-4, no decay, clip 5" \
	'lr 0.0003, constant schedule, warmup 0, floor 0.1, weight decay 0, betas 0.9 0.95, eps 1e-08, clip 5' \
	"$TMP/cr.err"
check_grep "dropout 0.5 between layers" 'dropout 0.5 between the lstm layers' "$TMP/cr.err"

# -- pipelines/char-rnn.sh, shortened -----------------------------------------
head -c 60000 "$TXT" >"$TMP/cr.txt"
crp() {
	env WORK="$TMP/crw" DATA="$TMP/cr.txt" LAYERS=1 WIDTH=32 EMBED=16 CONTEXT=32 BATCH=8 \
		STEPS="$1" LR=1e-2 VAL_EVERY=10 VAL_BATCHES=2 SAMPLE_BYTES=80 THREADS=1 DEVICE=cpu \
		sh "$ROOT/pipelines/char-rnn.sh"
}
check "char-rnn pipeline runs" crp 20
cp "$TMP/.out" "$TMP/cr1.out"
check_grep "holds out 5% as char-rnn does" '^char-rnn: shard: 57000 training and 3000 validation bytes' \
	"$TMP/cr1.out"
check_grep "ends with bits per byte" '^char-rnn: validation [0-9.]+ bits per byte' "$TMP/cr1.out"
check_grep "prints the sample" '^ROMEO:' "$TMP/cr1.out"
check "char-rnn pipeline: second run" crp 20
check_eq "skips all five stages" "$(grep -c 'done before' "$TMP/.out")" 5
check "char-rnn pipeline: more steps" crp 30
check_grep "resumes the run" '^char-rnn: train: resuming .* from step 20' "$TMP/.out"
check_grep "to the new end" '^char-rnn: train: step 30,' "$TMP/.out"

# -- --device cuda: the GPU's LSTM (cuda/lstm.cu) -----------------------------
# With a GPU, or on the CUDA emulator (tests/cudasim: gpt-train built on it)
# where there is none: the same losses as the CPU's to float32 rounding,
# a checkpoint the CPU resumes, and a stop and resume on the GPU bit for bit.
SIMBIN=${O:-}/sim/bin
if gpt-train -i "$STR" -o "$TMP/probe" $SHAPE --steps 1 --val-every 0 -q --device cuda \
	>/dev/null 2>&1; then
	GT=gpt-train
elif [ -x "$SIMBIN/gpt-train" ]; then
	GT=$SIMBIN/gpt-train
else
	GT=
	echo "note: no GPU and no CUDA emulator here: the GPU's LSTM is not run" >&2
fi
if [ -n "$GT" ]; then
	G="-i $STR --val $SVA $SHAPE --steps 12 --lr 3e-3 --val-every 4 --checkpoint-every 4 --keep 0"
	check "cuda: 12 steps" "$GT" -q -o "$TMP/gc" $G --device cuda
	check "cpu: the same 12 steps" gpt-train -q -o "$TMP/gp" $G --device cpu
	if [ -s "$TMP/gc/log.tsv" ] && [ -s "$TMP/gp/log.tsv" ] &&
		paste "$TMP/gc/log.tsv" "$TMP/gp/log.tsv" | awk -F'\t' 'NR > 1 { d = $3 - $11;
		if (d < 0) d = -d; n++; if (d > 1e-4 * $11) bad = 1 } END { exit bad || n < 12 }'; then
		pass "cuda: training losses within 1e-4 of the cpu's"; else
		fail "cuda: training losses within 1e-4 of the cpu's"; fi
	check "the cpu resumes the gpu's checkpoint" gpt-train -q --resume "$TMP/gc" --steps 14 \
		--device cpu
	rm -f "$TMP/gc/ckpt-00000014.gpt" "$TMP/gc/ckpt-00000012.gpt"
	ln -sf ckpt-00000008.gpt "$TMP/gc/latest"
	check "the gpu resumes at step 8" "$GT" -q --resume "$TMP/gc" --steps 12 --device cuda
	check "a straight gpu run" "$GT" -q -o "$TMP/gs" $G --device cuda
	cut -f1-6 "$TMP/gs/log.tsv" >"$TMP/gs.cols"
	cut -f1-6 "$TMP/gc/log.tsv" >"$TMP/gc.cols"
	check_files "cuda: resumed losses equal the straight run's bit for bit" "$TMP/gs.cols" "$TMP/gc.cols"
fi
