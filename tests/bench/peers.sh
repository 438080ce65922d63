# Sourced by the benchmarks: the peers they compare with, installed when
# missing, and the state of the machine the figures were taken on.
#
#   bench_peers NAME PKG...  makes sure the bench virtualenv ($PY, by
#       default .venv/bin/python, created when absent) can import each PKG
#       (a PyPI name; the import name where it differs is given as
#       pypi=import, e.g. scikit-learn=sklearn), installing the missing
#       ones with pip, then prints "NAME: peers: PKG VERSION, ..." and
#       returns 0; 1 (saying why) when they cannot be had: no network, pip
#       failing, BENCH_NO_INSTALL=1 set.
#   bench_machine NAME  prints "NAME: machine: N CPUs, load average L"
#       (the 1-minute figure of /proc/loadavg): a figure taken on a busy
#       machine is worth less, and says so.
#   bench_corpus NAME  makes build/bench/tok-corpus.txt and tok-prose.txt
#       (tests/bench/tok_corpus.py: real text, none of it repeated),
#       installing Debian's python3-doc for its prose first when missing
#       and this is root; prints "NAME: corpus: ..." with the sizes.
# They expect ROOT set (the checkout) and may set PY; bench_corpus, SHARED.

bench_venv() {
	PY=${PY:-$ROOT/.venv/bin/python}
	if [ ! -x "$PY" ] && [ "$PY" = "$ROOT/.venv/bin/python" ]; then
		python3 -m venv "$ROOT/.venv" >/dev/null 2>&1 || return 1
	fi
	[ -x "$PY" ]
}

bench_peers() {
	_name=$1
	shift
	if ! bench_venv; then
		echo "$_name: no python virtualenv at $PY and python3 -m venv failed: no comparison"
		return 1
	fi
	_missing=
	for _p in "$@"; do
		_imp=${_p#*=}
		_pkg=${_p%%=*}
		"$PY" -c "import $_imp" 2>/dev/null || _missing="$_missing $_pkg"
	done
	if [ -n "$_missing" ]; then
		if [ "${BENCH_NO_INSTALL:-0}" = 1 ]; then
			echo "$_name:$_missing not installed in $PY (BENCH_NO_INSTALL=1): no comparison"
			return 1
		fi
		echo "$_name: installing$_missing into $PY" >&2
		# shellcheck disable=SC2086 # a list of package names
		if ! "$PY" -m pip install -q $_missing >&2; then
			echo "$_name: pip could not install$_missing: no comparison"
			return 1
		fi
	fi
	_v=
	for _p in "$@"; do
		_pkg=${_p%%=*}
		_ver=$("$PY" -c "import importlib.metadata as m; print(m.version('$_pkg'))" 2>/dev/null ||
			echo '?')
		_v="${_v:+$_v, }$_pkg $_ver"
	done
	echo "$_name: peers: $_v (python $("$PY" -c 'import platform; print(platform.python_version())'))"
	return 0
}

bench_machine() {
	echo "$1: machine: $(getconf _NPROCESSORS_ONLN) CPUs, load average $(cut -d' ' -f1 /proc/loadavg)"
}

bench_corpus() {
	_d=$ROOT/build/bench
	mkdir -p "$_d"
	if [ ! -s "$_d/tok-corpus.txt" ] || [ ! -s "$_d/tok-prose.txt" ]; then
		if ! ls -d /usr/share/doc/python3*/html/_sources >/dev/null 2>&1; then
			if [ "$(id -u)" = 0 ] && [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
				echo "$1: installing python3-doc for the corpus's prose" >&2
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-doc >/dev/null ||
					echo "$1: apt-get could not install python3-doc: the prose part is smaller" >&2
			else
				echo "$1: python3-doc not installed (not root): the prose part is smaller" >&2
			fi
		fi
		"${PY:-python3}" "$ROOT/tests/bench/tok_corpus.py" "$_d" || return 1
	fi
	echo "$1: corpus: $_d/tok-corpus.txt $(wc -c <"$_d/tok-corpus.txt") bytes," \
		"its English prose part $_d/tok-prose.txt $(wc -c <"$_d/tok-prose.txt") bytes"
}
