# gpt-train's run folder under stress (issue 14): one process per run
# folder (RUN/lock), a run that failed before its first checkpoint starts
# over, a damaged latest names a checkpoint that verifies and a chosen one
# resumes, temporaries of a killed save go, --resume takes the command line
# that started the run, a finished run has nothing to do, a step-0
# validation loss, a stop signal acknowledged at once, and the option
# checks (--steps with --tokens, AdamW's ranges, -h, --help against the
# man page).  On the CPU engine.
. "$ROOT/tests/lib.sh"
tiny_shards   # the tiny language (tests/lib.sh): $TMP/ids.txt, TR, VA
DEV="--device cpu"
SMALL="--layers 1 --heads 2 --width 32 --context 32 --batch 4 --threads 1 $DEV"

# snap DIR [SKIP]: name, inode, size and checksum of every file in DIR but
# SKIP, to show that nothing changed.
snap() {
	for f in $(ls -A "$1"); do
		[ "$f" = "${2:-}" ] && continue
		printf '%s %s %s\n' "$f" "$(stat -c '%i %s' "$1/$f")" "$(cksum <"$1/$f")"
	done
}

# wait_for CMD...: up to 10 s until CMD succeeds
wait_for() {
	_n=0
	while [ $_n -lt 1000 ] && ! "$@"; do sleep 0.01; _n=$((_n + 1)); done
}

# -- one process per run folder -------------------------------------------
# A run in training is stopped (SIGSTOP) while a second process tries its
# folder, so that any change the second one made would show.
gpt-train -q -i "$TR" -o "$TMP/L" $SMALL --steps 1000000 --checkpoint-every 5 --keep 2 \
	2>"$TMP/L.err" &
lpid=$!
at_exit "kill -CONT $lpid 2>/dev/null; kill -KILL $lpid 2>/dev/null"
wait_for test -e "$TMP/L/latest"
kill -STOP $lpid
snap "$TMP/L" >"$TMP/L.before"
check_status 1 "-o on a run in training is refused" \
	timeout 20 gpt-train -q -i "$TR" -o "$TMP/L" $SMALL --steps 3
check_grep "naming the pid that holds it" "^gpt-train: run folder '.*/L' is in use by process $lpid" \
	"$TMP/.err"
check_eq "in one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
check_status 1 "--resume of a run in training is refused" timeout 20 gpt-train -q --resume "$TMP/L" $DEV
check_grep "naming the pid too" "in use by process $lpid" "$TMP/.err"
snap "$TMP/L" >"$TMP/L.after"
check_files "and neither touched the folder" "$TMP/L.before" "$TMP/L.after"
kill -CONT $lpid
kill -TERM $lpid
wait $lpid
check_eq "the run holding it goes on and stops cleanly" "$?" 0

gpt-train -q --resume "$TMP/L" $DEV 2>"$TMP/L2.err" &
rpid=$!
at_exit "kill -CONT $rpid 2>/dev/null; kill -KILL $rpid 2>/dev/null"
wait_for grep -qx "$rpid" "$TMP/L/lock"
kill -STOP $rpid
snap "$TMP/L" >"$TMP/L.before"
check_status 1 "a second --resume of a resumed run is refused" \
	timeout 20 gpt-train -q --resume "$TMP/L" $DEV
check_grep "naming the first one's pid" "in use by process $rpid" "$TMP/.err"
snap "$TMP/L" >"$TMP/L.after"
check_files "and touches nothing" "$TMP/L.before" "$TMP/L.after"
kill -CONT $rpid
kill -TERM $rpid
wait $rpid
check_eq "the first one goes on and stops cleanly" "$?" 0
check "the lock is the process's: a later --resume takes it" gpt-train -q --resume "$TMP/L" \
	--steps "$(($(readlink "$TMP/L/latest" | tr -dc 0-9 | sed 's/^0*//') + 1))" $DEV

# -- a run that failed before its first checkpoint --------------------------
check_status 1 "a run that blows up at step 2, before its first save" gpt-train -q -i "$TR" \
	-o "$TMP/f" $SMALL --steps 10 --lr 1e30 --warmup 0 --checkpoint-every 0
check_eq "leaves its config and log" "$(ls "$TMP/f" | grep -v '^lock$' | tr '\n' ' ')" \
	"config log.tsv "
check_status 1 "--resume of it is refused" gpt-train -q --resume "$TMP/f" $DEV
check_grep "saying there is no checkpoint, and to start over with -o" \
	"no checkpoint to resume.*start it over with -o" "$TMP/.err"
: >"$TMP/f/.ckpt-00000005.gpt.tmp.AbC123"   # as a SIGKILL in the first save leaves
check "-o starts it over" gpt-train -i "$TR" -o "$TMP/f" $SMALL --steps 4
check_grep "and says so" "holds no checkpoint: starting it over" "$TMP/.err"
check_eq "with a log of its own" "$(cut -f1 "$TMP/f/log.tsv" | tr '\n' ' ')" "step 1 2 3 4 "
check_eq "the killed save's temporary removed" "$(ls -A "$TMP/f" | grep -c tmp)" 0
check_eq "and latest its last checkpoint" "$(readlink "$TMP/f/latest")" ckpt-00000004.gpt
check_status 1 "once it has a checkpoint, -o refuses it again" gpt-train -q -i "$TR" -o "$TMP/f" \
	$SMALL --steps 4
check_grep "saying to resume it" "already holds a run; use --resume" "$TMP/.err"

# -- a damaged latest, and a checkpoint chosen by name ----------------------
check "12 steps, a checkpoint every 4" gpt-train -q -i "$TR" -o "$TMP/d" $SMALL --steps 12 \
	--checkpoint-every 4 --keep 0
cp -r "$TMP/d" "$TMP/d0"
size=$(wc -c <"$TMP/d/ckpt-00000012.gpt")
printf 'X' | dd of="$TMP/d/ckpt-00000012.gpt" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
printf 'X' | dd of="$TMP/d/ckpt-00000008.gpt" bs=1 seek=100 conv=notrunc 2>/dev/null
check_status 1 "a corrupt latest is refused" gpt-train -q --resume "$TMP/d" --steps 16 $DEV
check_grep "naming it" "corrupt.*ckpt-00000012.gpt" "$TMP/.err"
check_grep "and the newest earlier checkpoint that verifies" \
	"newest earlier checkpoint that verifies is '.*/d/ckpt-00000004.gpt'" "$TMP/.err"
check_status 1 "so is one with nothing to do" gpt-train -q --resume "$TMP/d" $DEV
check_grep "naming the same one" "verifies is '.*/d/ckpt-00000004.gpt'" "$TMP/.err"
cp -r "$TMP/d0" "$TMP/m"
rm "$TMP/m/latest"
check_status 1 "a missing latest is refused" gpt-train -q --resume "$TMP/m" $DEV
check_grep "naming the newest checkpoint that verifies" "verifies is '.*/m/ckpt-00000012.gpt'" "$TMP/.err"
check "--resume RUN/ckpt-00000004.gpt resumes from that one" gpt-train -q \
	--resume "$TMP/d/ckpt-00000004.gpt" $DEV
cut -f1-6 "$TMP/d0/log.tsv" >"$TMP/d0.cols"
cut -f1-6 "$TMP/d/log.tsv" >"$TMP/d.cols"
check_files "its log is the straight run's, bit for bit" "$TMP/d0.cols" "$TMP/d.cols"
check_files "and so is its last checkpoint" "$TMP/d0/ckpt-00000012.gpt" "$TMP/d/ckpt-00000012.gpt"
check_eq "which latest names" "$(readlink "$TMP/d/latest")" ckpt-00000012.gpt
mkdir "$TMP/lone"
cp "$TMP/d0/ckpt-00000012.gpt" "$TMP/lone/x.gpt"
check_status 2 "--resume of a checkpoint outside a run folder is refused" gpt-train -q \
	--resume "$TMP/lone/x.gpt" $DEV
check_grep "saying it wants a run folder, or --init" "wants a run folder.*--init" "$TMP/.err"
check_eq "and writes nothing" "$(ls -A "$TMP/lone")" x.gpt

# -- temporaries of a killed save go when the run next starts ---------------
: >"$TMP/d0/.ckpt-00000016.gpt.tmp.Zx81Qa"
: >"$TMP/d0/.latest.tmp.4242"
: >"$TMP/d0/.log.tsv.tmp.k2Jd9e"
: >"$TMP/d0/.config.tmp.Qq0000"
: >"$TMP/d0/notes.tmp.1"
check "--resume of a run with temporaries of a killed save" gpt-train -q --resume "$TMP/d0" \
	--steps 13 $DEV
check_eq "removes them" "$(ls -A "$TMP/d0" | grep tmp)" notes.tmp.1

# -- --resume with the command line that started the run --------------------
orig() {
	gpt-train -q -i "$TR" --val "$VA" -o "$TMP/c" $SMALL --checkpoint-every 4 --keep 0 \
		--lr 3e-3 --seed 5 --val-every 4 "$@"
}
check "a run of 8 steps" orig --steps 8
cp -r "$TMP/c" "$TMP/c8"
rm "$TMP/c/ckpt-00000008.gpt"
ln -sf ckpt-00000004.gpt "$TMP/c/latest"   # as after a crash
check "its command line with --resume added resumes it" orig --steps 8 --resume "$TMP/c"
cut -f1-6 "$TMP/c8/log.tsv" >"$TMP/c8.cols"
cut -f1-6 "$TMP/c/log.tsv" >"$TMP/c.cols"
check_files "bit for bit" "$TMP/c8.cols" "$TMP/c.cols"
check "also with -o naming the folder another way, --model, and a larger --steps" \
	orig --steps 10 --resume "$TMP/c/" --model d12
check_eq "trains on" "$(readlink "$TMP/c/latest")" ckpt-00000010.gpt
check_status 2 "--model 163m with the same sizes is another shape" gpt-train -q --resume "$TMP/c" \
	--model 163m --layers 1 --heads 2 --width 32 --context 32 $DEV
check_grep "and is refused, named" "^gpt-train: --model 163m differs from the run's model \(1 layers, 2 heads, width 32, context 32, vocabulary 64, tied head\)" "$TMP/.err"
check_status 2 "and so is --model d12 alone" gpt-train -q --resume "$TMP/c" --model d12 $DEV
check_status 2 "a shape change is refused" gpt-train -q --resume "$TMP/c" --width 128 $DEV
check_grep "naming the option, its value and the run's" \
	"^gpt-train: --width 128 differs from the run's 32" "$TMP/.err"
check_status 2 "so is another --seed" gpt-train -q --resume "$TMP/c" --seed 6 $DEV
check_grep "named too" "^gpt-train: --seed 6 differs from the run's 5" "$TMP/.err"
check_status 2 "and another -o" gpt-train -q --resume "$TMP/c" -o "$TMP/c8" $DEV
check_grep "saying --resume goes on in its own folder" "is not the run folder" "$TMP/.err"
check "a run started with --init" gpt-train -q -i "$TR" -o "$TMP/in" \
	--init "$TMP/c8/ckpt-00000004.gpt" --steps 2 --threads 1 $DEV
check "resumes with its --init given again" gpt-train -q -i "$TR" -o "$TMP/in" \
	--init "$TMP/c8/ckpt-00000004.gpt" --steps 3 --threads 1 $DEV --resume "$TMP/in"
check_status 2 "but not with another --init" gpt-train -q --resume "$TMP/in" \
	--init "$TMP/c8/ckpt-00000008.gpt" --steps 4 $DEV
check_grep "which is named" "^gpt-train: --init '.*ckpt-00000008.gpt' differs from the run's" "$TMP/.err"

# -- a finished run has nothing to do ---------------------------------------
snap "$TMP/c" lock >"$TMP/c.before"
check "--resume of a run at its --steps" gpt-train --resume "$TMP/c" $DEV
check_grep "says there is nothing to do" "^gpt-train: run '.*/c' is already at step 10 of 10: nothing to do" \
	"$TMP/.err"
check_eq "in one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
check "and past them" gpt-train -q --resume "$TMP/c" --steps 6 $DEV
check_grep "says so too" "is at step 10, past --steps 6: nothing to do" "$TMP/.err"
snap "$TMP/c" lock >"$TMP/c.after"
check_files "neither changes anything" "$TMP/c.before" "$TMP/c.after"

# -- the validation loss at step 0 ------------------------------------------
check "a run with validation" gpt-train -i "$TR" --val "$VA" -o "$TMP/v" $SMALL --steps 4 \
	--val-every 2 --checkpoint-every 2 --keep 0
check_grep "prints the validation loss before the first update" "^gpt-train: step 0 val loss [0-9.]+$" \
	"$TMP/.err"
check "and logs it first, the untrained model's (about ln 64)" awk -F'\t' \
	'NR == 2 { ok = $1 == "0" && $2 == "0" && $3 == "" && $4 > 3.5 && $4 < 5 && $5 == "" } END { exit !ok }' \
	"$TMP/v/log.tsv"
rm "$TMP/v/ckpt-00000004.gpt"
ln -sf ckpt-00000002.gpt "$TMP/v/latest"
check "a resumed run" gpt-train -q --resume "$TMP/v" --steps 6 $DEV
check_eq "keeps the step-0 line and does not log it again" "$(cut -f1 "$TMP/v/log.tsv" | tr '\n' ' ')" \
	"step 0 1 2 3 4 5 6 "
check "a run without validation" gpt-train -q -i "$TR" -o "$TMP/nv" $SMALL --steps 2
check_eq "has no step-0 line" "$(cut -f1 "$TMP/nv/log.tsv" | tr '\n' ' ')" "step 1 2 "

# -- a stop signal is acknowledged at once, also during validation ----------
# Validation of 39 micro-batches every step dominates the run; the signal
# comes once the config is written, as the step-0 validation starts.
gpt-train -i "$TR" --val "$TR" -o "$TMP/g" --layers 2 --heads 4 --width 128 --context 64 \
	--batch 8 --threads 1 $DEV --steps 50 --val-every 1 --val-batches 1000 2>"$TMP/g.err" &
gpid=$!
at_exit "kill -KILL $gpid 2>/dev/null"
wait_for test -e "$TMP/g/config"
kill -INT $gpid
wait_for grep -q "stopping after this step" "$TMP/g.err"
check_grep "the first SIGINT is acknowledged at once" \
	"^gpt-train: stopping after this step, then saving \(a second signal stops at once" "$TMP/g.err"
wait $gpid
check_eq "the run still saves and exits 0" "$?" 0
check_eq "the acknowledgement comes before the closing message" \
	"$(grep -oE '^gpt-train: (stopping after|stopped by signal)' "$TMP/g.err" | tr '\n' ,)" \
	"gpt-train: stopping after,gpt-train: stopped by signal,"
check "the validation under way was cut short: no loss logged for its step" awk -F'\t' \
	'NR > 1 { last = $4 } END { exit last != "" }' "$TMP/g/log.tsv"
cp "$TMP/g.err" "$TMP/g.err.keep"
check "and the run resumes from the checkpoint" gpt-train -q --resume "$TMP/g" --steps 1 --val-batches 1 \
	--val-every 1 $DEV

# -- option checks ------------------------------------------------------------
check_status 2 "--steps with --tokens is a usage error" gpt-train -q -i "$TR" -o "$TMP/u1" $SMALL \
	--steps 1 --tokens 128
check_grep "saying they exclude each other" "--steps and --tokens exclude each other" "$TMP/.err"
check_status 2 "--beta1 1 is a usage error" gpt-train -q -i "$TR" -o "$TMP/u2" $SMALL --steps 3 --beta1 1
check_grep "naming the range" "--beta1 must be at least 0 and less than 1: '1'" "$TMP/.err"
check_status 2 "--beta2 1 too" gpt-train -q -i "$TR" -o "$TMP/u3" $SMALL --steps 3 --beta2 1
check_status 2 "and --beta2 1.5" gpt-train -q -i "$TR" -o "$TMP/u3" $SMALL --steps 3 --beta2 1.5
check_status 2 "--eps 0" gpt-train -q -i "$TR" -o "$TMP/u4" $SMALL --steps 3 --eps 0
check_grep "naming its range" "--eps must be greater than 0 and at most 1: '0'" "$TMP/.err"
check_status 2 "--eps -1e-8" gpt-train -q -i "$TR" -o "$TMP/u4" $SMALL --steps 3 --eps -1e-8
check_eq "none of them made a folder" "$(ls -d "$TMP"/u* 2>/dev/null)" ""
check "--beta1 0 --beta2 0.999 --eps 1e-6 are fine" gpt-train -q -i "$TR" -o "$TMP/u5" $SMALL \
	--steps 2 --beta1 0 --beta2 0.999 --eps 1e-6

# -- -h, and --help against the man page --------------------------------------
check "-h" gpt-train -h
check_grep "prints the usage on stdout" "^usage: gpt-train " "$TMP/.out"
gpt-train --help >"$TMP/help.txt"
check_files "-h and --help say the same" "$TMP/.out" "$TMP/help.txt"
opts() { grep -oE -- '(^|[^a-zA-Z0-9-])--?[a-zA-Z][a-zA-Z0-9-]*' | sed 's/^[^-]*//' | sort -u; }
opts <"$TMP/help.txt" >"$TMP/help.opts"
mandoc -Tascii -Owidth=200 "$ROOT/man/man1/gpt-train.1" | sed 's/.\x08//g' |
	awk '/^EXAMPLES/ { ex = 1 } /^SEE ALSO/ { ex = 0 } !ex' | opts >"$TMP/man.opts"
check "gpt-train(1) documents options" test "$(wc -l <"$TMP/man.opts")" -gt 40
check_files "--help lists every option gpt-train(1) documents, and no other" \
	"$TMP/man.opts" "$TMP/help.opts"
