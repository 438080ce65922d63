# The CUDA engine's size limits, on the emulator's memplan (weights
# mapped, not filled): a batch shape whose attention rows (batch x
# context x heads) pass 2^30 (its kernels count them in int) is refused
# with a message when planned, not computed wrong; the largest shape
# under the limit gets as far as allocating.
. "$ROOT/tests/lib.sh"

SIM=$O/sim
if [ ! -x "$SIM/memplan" ]; then
	echo "note: no nvcc in this build: the CUDA emulator is not built" >&2
	exit 0
fi

# d12: 12 heads, so 87381 x 1024 x 12 = 1073737728 rows fits, 87382 not
GSIM_LAZY=1 "$SIM/memplan" d12 87382 1024 >"$TMP/over.out" 2>"$TMP/over.err"
check_eq "d12 B=87382 T=1024 is refused" "$?" 1
check_grep "the refusal names the limit and the shape" \
	"gpu model: batch shape beyond 2\^30 rows of attention.*'87382x1024'" "$TMP/over.err"
GSIM_LAZY=1 "$SIM/memplan" d12 87381 1024 >"$TMP/under.out" 2>"$TMP/under.err"
check_grep "d12 B=87381 T=1024 passes the limit (and runs out of memory)" \
	"out of gpu memory" "$TMP/under.err"
