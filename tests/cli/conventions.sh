# What every program promises alike (README.md, "The programs"), checked
# for each tools/gpt-*.c at once, so that a new program or option cannot
# drift: -h and --help print usage on stdout with status 0; --version
# prints "NAME VERSION"; -q is --quiet wherever there is one; an unknown
# option is one line naming it, then the hint "Try 'NAME --help' ...",
# status 2; an error in the data is one line "NAME: what: 'subject'"
# (perhaps followed by ": " and the system's reason), status 1; and the options of --help and of the man page's OPTIONS
# (its .It Fl entries) are the same set.
. "$ROOT/tests/lib.sh"

# opts_help FILE: the options of a --help text, one a line, sorted: every
# -x or --long-name on the lines that list options (those starting with
# blanks then a dash), descriptions included.
opts_help() {
	"$PY" - "$1" <<'EOF'
import re, sys
found = set()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if re.match(r"\s+-", line):
        found.update(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][A-Za-z0-9-]*)", line))
print("\n".join(sorted(found)))
EOF
}

# opts_man FILE: the options of a man page's OPTIONS section, one a line,
# sorted: the words after Fl on its .It lines, each one more dash (mdoc's
# Fl prefixes every argument until the next macro).
opts_man() {
	"$PY" - "$1" <<'EOF'
import re, sys
found, inopts = set(), False
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if line.startswith(".Sh "):
        inopts = line.split()[1:2] == ["OPTIONS"]
        continue
    if not inopts or not line.startswith(".It "):
        continue
    fl = False
    for w in line.split()[1:]:
        if w == "Fl":
            fl = True
        elif re.fullmatch(r"[A-Z][a-z][a-z]?", w):
            fl = False
        elif fl and re.fullmatch(r"-?[A-Za-z0-9][A-Za-z0-9-]*", w):
            found.add("-" + w)
print("\n".join(sorted(found)))
EOF
}

# bad_input NAME: arguments with which NAME reads a file that does not
# exist, $TMP/none (an error in the data: status 1, one line).
bad_input() {
	case $1 in
	gpt-bpe) echo "-v 300 $TMP/none" ;;
	gpt-classify) echo "$TMP/none" ;;
	gpt-convert) echo "import $TMP/none -o $TMP/out.gpt" ;;
	gpt-eval) echo "--text $TMP/none" ;;
	gpt-fetch) echo "$TMP/none" ;;
	gpt-judge) echo "--url http://127.0.0.1:1/v1 --model judge $TMP/none" ;;
	gpt-sample) echo "$TMP/none hello" ;;
	gpt-serve) echo "$TMP/none" ;;
	gpt-shard) echo "-o $TMP/out $TMP/none" ;;
	gpt-tokenize) echo "$TMP/none" ;;
	gpt-train) echo "-i $TMP/none -o $TMP/run" ;;
	esac
}

n_progs=0
for src in "$ROOT"/tools/gpt-*.c; do
	n=$(basename "$src" .c)
	n_progs=$((n_progs + 1))

	# -h and --help: usage on stdout, nothing on stderr, status 0
	check "$n --help" $n --help
	cp "$TMP/.out" "$TMP/$n.help"
	check_grep "$n --help: usage on stdout" "^usage: $n" "$TMP/$n.help"
	check_eq "$n --help: nothing on stderr" "$(wc -c <"$TMP/.err")" 0
	check "$n -h" $n -h
	check_files "$n -h: the same usage as --help" "$TMP/.out" "$TMP/$n.help"
	check_eq "$n -h: nothing on stderr" "$(wc -c <"$TMP/.err")" 0

	# --version: one line, the name and a version
	check "$n --version" $n --version
	check_grep "$n --version: name and version" "^$n [0-9]" "$TMP/.out"
	check_eq "$n --version: one line" "$(wc -l <"$TMP/.out")" 1

	# -q wherever there is a --quiet, listed together
	if grep -q -- '--quiet' "$TMP/$n.help"; then
		check_grep "$n --help lists -q with --quiet" '^ +-q, --quiet' "$TMP/$n.help"
		check "$n -q is accepted" $n -q --help
		check_files "$n -q --help: the usage" "$TMP/.out" "$TMP/$n.help"
		check "$n --quiet is accepted" $n --quiet --help
	fi

	# An unknown option, long or short: one line naming it, the hint,
	# status 2, nothing on stdout.
	for bad in --no-such-option -Y; do
		check_status 2 "$n $bad: usage error" $n $bad
		check_eq "$n $bad: two lines on stderr" "$(wc -l <"$TMP/.err")" 2
		check_eq "$n $bad: the first names the option" "$(sed -n 1p "$TMP/.err")" \
			"$n: unknown option '$bad'"
		check_eq "$n $bad: the second is the hint" "$(sed -n 2p "$TMP/.err")" \
			"Try '$n --help' for more information."
		check_eq "$n $bad: nothing on stdout" "$(wc -c <"$TMP/.out")" 0
	done

	# An error in the data: one line "NAME: what: 'subject'", status 1.
	args=$(bad_input $n)
	if [ -n "$args" ]; then
		# shellcheck disable=SC2086
		check_status 1 "$n on a missing file fails" sh -c "$n $args </dev/null"
		check_eq "$n on a missing file: one line" "$(wc -l <"$TMP/.err")" 1
		check_grep "$n on a missing file: the line names the program and the file" \
			"^$n: [^ ].*'$TMP/none[^']*'" "$TMP/.err"
	else
		fail "$n: no bad_input case in tests/cli/conventions.sh"
	fi

	# --help and the man page list the same options.
	man=$ROOT/man/man1/$n.1
	if [ ! -f "$man" ]; then
		fail "$n: no man page $man"
		continue
	fi
	opts_help "$TMP/$n.help" >"$TMP/$n.hopts"
	opts_man "$man" >"$TMP/$n.mopts"
	check "$n: the man page documents options" test -s "$TMP/$n.mopts"
	check_eq "$n: every --help option is in $n(1)'s OPTIONS" \
		"$(LC_ALL=C comm -23 "$TMP/$n.hopts" "$TMP/$n.mopts" | tr '\n' ' ')" ""
	check_eq "$n: every option of $n(1)'s OPTIONS is in --help" \
		"$(LC_ALL=C comm -13 "$TMP/$n.hopts" "$TMP/$n.mopts" | tr '\n' ' ')" ""
done
check "every program was looked at" test "$n_progs" -ge 8
