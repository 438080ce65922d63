#!/bin/sh
# Installs what building and testing need, only when it is missing:
#   install-deps.sh build   Debian packages for the C build
#   install-deps.sh test    the same, plus headless Chromium (for gpt-serve's
#                           chat page) and a Python virtualenv (.venv) with
#                           the reference implementations the tests compare
#                           against (tiktoken, numpy, pyarrow) and the real
#                           clients they drive (openai, selenium)
# Quiet when everything is present; safe to run again.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-build}
PKGS="make gcc pkg-config mandoc zstd libzstd-dev libxxhash-dev libopenblas-dev
libcurl4-openssl-dev libarchive-dev libsnappy-dev zlib1g-dev libbrotli-dev
liblz4-dev liblzma-dev libbz2-dev python3 python3-venv gnuplot-nox openmpi-bin
libopenmpi-dev libmicrohttpd-dev libjansson-dev curl"
[ "$mode" = test ] && PKGS="$PKGS chromium chromium-driver"

missing=
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing Debian packages:$missing" >&2
	if [ "$(id -u)" -eq 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else
		echo "install-deps: not root and no sudo; install these packages:$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null &&
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		{ echo "install-deps: apt-get failed" >&2; exit 1; }
fi

[ "$mode" = test ] || exit 0
VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/python" ]; then
	python3 -m venv "$VENV" || { echo "install-deps: cannot create $VENV" >&2; exit 1; }
fi
if ! "$VENV/bin/python" -c 'import tiktoken, numpy, pyarrow, openai, selenium' 2>/dev/null; then
	echo "install-deps: installing Python references and clients into .venv" >&2
	"$VENV/bin/pip" install -q tiktoken numpy pyarrow openai selenium >&2 ||
		echo "install-deps: pip failed; reference checks fall back to committed golden files" >&2
fi
exit 0
