#!/bin/sh
# plot-loss.sh RUN|LOG... > loss.png: train loss (lines), validation loss
# (points) and the learning rate (thin, right axis) of one or more
# gpt-train runs on one chart, drawn with gnuplot as a PNG on stdout.
# Environment: X=tokens|step (x axis, default tokens), SIZE=W,H (pixels,
# default 1000,600), TITLE=text, BASELINE_LOSSES="NAME=LOSS ..." (other
# models' test losses, drawn as horizontal lines, as the RTX 3090
# experiment's charts draw GPT-2 small and medium).
set -eu
usage() { echo "usage: plot-loss.sh RUN|LOG.tsv... > loss.png" >&2; exit 2; }
[ $# -gt 0 ] || usage
case $1 in -h|--help) echo "usage: plot-loss.sh RUN|LOG.tsv... > loss.png"; exit 0;; -*) usage;; esac
if [ -t 1 ]; then
	echo "plot-loss: refusing to write a PNG to a terminal; redirect stdout" >&2
	exit 2
fi
command -v gnuplot >/dev/null 2>&1 ||
	{ echo "plot-loss: gnuplot not found (Debian: apt-get install gnuplot-nox)" >&2; exit 1; }
X=${X:-tokens} SIZE=${SIZE:-1000,600} TITLE=${TITLE:-gpt-train loss}
case $X in tokens) xc=2;; step) xc=1;; *) echo "plot-loss: X must be tokens or step: '$X'" >&2; exit 2;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plot-loss.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
plot=
i=0
for a in "$@"; do
	log=$a
	[ -d "$a" ] && log=$a/log.tsv
	[ -r "$log" ] || { echo "plot-loss: cannot read '$log'" >&2; exit 1; }
	head -n 1 "$log" | grep -q '^step	tokens	train_loss	val_loss	lr' ||
		{ echo "plot-loss: not a gpt-train log: '$log'" >&2; exit 1; }
	i=$((i + 1))
	name=$(basename "$(dirname "$log")")
	[ "$name" = . ] && name=$log
	name=$(printf '%s' "$name" | tr -d '"\\')
	# The columns by name, so that added columns do not matter; validation
	# only on the steps that measured it.
	awk -F'\t' -v xc=$xc 'NR>1 && $3!="" {print $xc, $3, $5}' "$log" >"$tmp/t$i"
	awk -F'\t' -v xc=$xc 'NR>1 && $4!="" {print $xc, $4}' "$log" >"$tmp/v$i"
	[ -s "$tmp/t$i" ] || { echo "plot-loss: no steps in '$log'" >&2; exit 1; }
	plot="$plot${plot:+, }'$tmp/t$i' using 1:2 with lines lw 2 lc $i title '$name train'"
	[ -s "$tmp/v$i" ] && plot="$plot, '$tmp/v$i' using 1:2 with linespoints pt 7 ps 0.8 lc $i dt 2 title '$name val'"
	plot="$plot, '$tmp/t$i' using 1:3 axes x1y2 with lines lw 1 lc $i dt 3 notitle"
done

for b in ${BASELINE_LOSSES:-}; do
	bn=$(printf '%s' "${b%%=*}" | tr -cd 'A-Za-z0-9._+-') bl=${b#*=}
	case $bl in '' | *[!0-9.]* | *.*.*)
		echo "plot-loss: BASELINE_LOSSES wants NAME=LOSS: '$b'" >&2; exit 2;; esac
	i=$((i + 1))
	plot="$plot, $bl with lines lw 2 lc $i dt 4 title '$bn test loss $bl'"
done

term=png
gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo && term=pngcairo
gnuplot <<EOF
set terminal $term size $SIZE
set title "$(printf '%s' "$TITLE" | tr -d '"\\')"
set xlabel "$X"
set ylabel "loss (nats per token)"
set y2label "learning rate (dotted)"
set y2tics
set ytics nomirror
set grid
set key top right
set format x "%.1s%c"
plot $plot
EOF
