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
# Both expect ROOT set (the checkout) and may set PY.

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
