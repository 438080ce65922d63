# Man pages: every tool has a man1 page, every page is clean under
# `mandoc -Tlint`, and every example command in an EXAMPLES section runs.
#
# Convention for runnable examples: inside EXAMPLES, a line in a literal
# display (.Bd -literal) that starts with "$ " is a command.  The commands
# of one page run in order, in one scratch folder that holds corpus.txt (a
# short English text), with GPT_VOCAB set and no network.  A command that
# must not run here (network, GPU) is written without the "$ " prefix.
. "$ROOT/tests/lib.sh"

for src in "$ROOT"/tools/gpt-*.c; do
	[ -e "$src" ] || continue
	n=$(basename "$src" .c)
	if [ -f "$ROOT/man/man1/$n.1" ]; then pass "$n has a man page"; else fail "$n has no man/man1/$n.1"; fi
done

for page in "$ROOT"/man/man*/*.[157]; do
	[ -e "$page" ] || continue
	pn=$(basename "$page")
	lint=$(mandoc -Tlint -Wwarning "$page" 2>&1)
	check_eq "mandoc -Tlint $pn" "$lint" ""
	awk '/^\.Sh /{ex = ($2 == "EXAMPLES")} ex && /^\.Bd/{lit=1; next} ex && /^\.Ed/{lit=0} ex && lit && /^\$ /{print substr($0, 3)}' \
		"$page" | sed 's/\\e/\\/g; s/\\(aq/'"'"'/g; s/\\-/-/g; s/\\&//g' >"$TMP/ex.$pn"
	[ -s "$TMP/ex.$pn" ] || continue
	d=$TMP/run.$pn
	mkdir -p "$d"
	cp "$SHARED/data/text/the-verdict.txt" "$d/corpus.txt"
	i=0
	while IFS= read -r cmd; do
		i=$((i + 1))
		if (cd "$d" && GPT_OFFLINE=1 timeout 120 bash -o pipefail -c "$cmd") \
			>"$d/.out" 2>"$d/.err" </dev/null; then
			pass "$pn example $i"
		else
			fail "$pn example $i: $cmd ($(head -c 300 "$d/.err"))"
		fi
	done <"$TMP/ex.$pn"
done
