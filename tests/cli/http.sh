# Downloads (libcommon/http.c) against tests/httpd.py on 127.0.0.1: normal
# fetches, the cache, offline use, resume after a dropped connection,
# retries, servers that ignore Range or lie about lengths, checksums and
# hf:// URLs.  The result must be the right file or a clear error, and
# never a corrupt cache entry.
. "$ROOT/tests/lib.sh"

D=$O/tests/test_http
unset GPT_OFFLINE HF_HUB_OFFLINE HF_TOKEN HF_ENDPOINT HTTPD_FAULTS
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
no_proxy='*' NO_PROXY='*' GPT_HTTP_BACKOFF_MS=1
export no_proxy NO_PROXY GPT_HTTP_BACKOFF_MS

W=$TMP/www
mkdir -p "$W/hub/datasets/o/n/resolve/main/data" "$W/hub/datasets/o/n/resolve/v1/data"
printf 'hello, cache\n' >"$W/small.txt"
head -c 300000 /dev/urandom >"$W/big.bin"
for f in a b c d e f g h; do cp "$W/small.txt" "$W/s$f.txt"; done
head -c 5000 /dev/urandom >"$W/hub/datasets/o/n/resolve/main/data/x.parquet"
head -c 7000 /dev/urandom >"$W/hub/datasets/o/n/resolve/v1/data/x.parquet"

httpd_start "$W"   # requests logged to $TMP/log
PORT=$HTTPD_PORT
U=$HTTPD_URL
C=$TMP/cache

# entries DIR: how many cache entries (visible files) exist under DIR
entries() { find "$1" -type f ! -name '.*' 2>/dev/null | wc -l | tr -d ' '; }
# requests PATTERN: how many logged requests match an extended regex
requests() { grep -Ec -- "$1" "$TMP/log"; }

# Normal download, then reuse after a HEAD, then offline reuse.
check "plain download" "$D" fetch -q -c "$C" "$U/small.txt"
P=$(cat "$TMP/.out")
check_eq "cache path is readable" "$P" "$C/http/127.0.0.1_$PORT/small.txt"
check_files "downloaded bytes" "$P" "$W/small.txt"
check "second fetch" "$D" fetch -q -c "$C" "$U/small.txt"
check_eq "second fetch: same path" "$(cat "$TMP/.out")" "$P"
check_eq "second fetch: one GET in all" "$(requests '^GET /small.txt ')" 1
check_eq "second fetch: checked with HEAD" "$(requests '^HEAD /small.txt ')" 1
n=$(wc -l <"$TMP/log")
check "offline with the file cached" "$D" fetch -O -c "$C" "$U/small.txt"
check_eq "offline: same path" "$(cat "$TMP/.out")" "$P"
check_eq "offline: no request" "$(wc -l <"$TMP/log")" "$n"
check_status 1 "offline without the file" "$D" fetch -O -c "$C" "$U/sa.txt"
check_grep "offline: says why" "not in the cache" "$TMP/.err"
check_status 1 "GPT_OFFLINE=1 counts as offline" env GPT_OFFLINE=1 "$D" fetch -c "$C" "$U/sa.txt"
check_eq "offline: still no request" "$(wc -l <"$TMP/log")" "$n"

# Changed upstream (same size, new content): the ETag says so.
printf 'HELLO, CACHE\n' >"$W/small.txt"
check "changed upstream" "$D" fetch -q -c "$C" "$U/small.txt"
check_files "changed upstream: new bytes" "$P" "$W/small.txt"

# An empty file, and a body without Content-Length.
: >"$W/empty.txt"
check "empty file" "$D" fetch -q -c "$C" "$U/empty.txt"
check_files "empty file: empty" "$(cat "$TMP/.out")" "$W/empty.txt"
check "no Content-Length" "$D" fetch -q -c "$C" "$U/big.bin?nolength=1&noetag=1"
check_files "no Content-Length: whole file" "$(cat "$TMP/.out")" "$W/big.bin"

# A dropped connection resumes with Range and If-Range.
check "drop mid-file" "$D" fetch -q -c "$C" "$U/big.bin?drop=100000"
check_files "drop: whole file" "$(cat "$TMP/.out")" "$W/big.bin"
check_grep "drop: the first GET was cut" '^GET /big.bin\?drop=100000 status=200-cut-at-100000 ' "$TMP/log"
check_grep "drop: resumed with Range" '^GET /big.bin\?drop=100000 status=206 range=bytes=100000- if-range="' "$TMP/log"

# A server that ignores Range: restart from zero, never append.
check "drop, Range ignored" "$D" fetch -q -c "$C" "$U/big.bin?drop=50000&norange=1"
check_files "Range ignored: whole file, not appended" "$(cat "$TMP/.out")" "$W/big.bin"
check_grep "Range ignored: the retry asked for a range and got 200" \
	'^GET /big.bin\?drop=50000&norange=1 status=200 range=bytes=50000-' "$TMP/log"

# An interrupted run leaves a partial file that the next run resumes.
check_status 1 "drop with no retries fails" "$D" fetch -q -r -1 -c "$C/r" "$U/big.bin?drop=70000&k=2"
check_eq "failed run: no cache entry" "$(entries "$C/r")" 0
check_eq "failed run: a partial file" "$(find "$C/r" -name '*~part' -size 70000c | wc -l | tr -d ' ')" 1
check "next run resumes" "$D" fetch -q -c "$C/r" "$U/big.bin?drop=70000&k=2"
check_files "next run: whole file" "$(cat "$TMP/.out")" "$W/big.bin"
check_grep "next run: used Range" '^GET /big.bin\?drop=70000&k=2 status=206 range=bytes=70000-' "$TMP/log"
check_grep "next run: recorded sha256 covers the resumed prefix" \
	"^sha256 $(sha256sum "$W/big.bin" | cut -d' ' -f1)\$" "$(find "$C/r" -name '*~meta')"

# Retries: 503 with Retry-After, 429, and a server that never recovers.
check "503 twice then 200" "$D" fetch -q -c "$C" "$U/sb.txt?status=503&times=2&retry_after=7"
check_files "503: right bytes" "$(cat "$TMP/.out")" "$W/sb.txt"
check_eq "503: two refused requests" "$(requests '^GET /sb.txt.* status=503 ')" 2
check_grep "503: Retry-After honoured (7 units of 1 ms)" 'HTTP 503, retry 1 of 6 in 0.007 s' "$TMP/.err"
check "429 then 200" "$D" fetch -q -c "$C" "$U/sc.txt?status=429"
check_files "429: right bytes" "$(cat "$TMP/.out")" "$W/sc.txt"
check_status 1 "500 for ever" "$D" fetch -q -r 2 -c "$C/e" "$U/sd.txt?status=500&times=99"
check_grep "500: says it gave up" "cannot download after 3 attempts \(HTTP 500\)" "$TMP/.err"
check_eq "500: no cache entry" "$(entries "$C/e")" 0
check_status 1 "404" "$D" fetch -q -c "$C/e" "$U/nothing.txt"
check_grep "404: says so" "HTTP 404" "$TMP/.err"

# Lies about the length: a clear error and nothing cached.
check_status 1 "short body" "$D" fetch -q -r 3 -c "$C/e" "$U/se.txt?short=10"
check_grep "short body: says why" "incomplete|HTTP 416" "$TMP/.err"
check_eq "short body: no cache entry" "$(entries "$C/e")" 0
check_status 1 "wrong X-Linked-Size" "$D" fetch -q -c "$C/f" "$U/sf.txt?linked_size=5"
check_grep "wrong X-Linked-Size: says why" "size mismatch: got 13 bytes, the hub says 5" "$TMP/.err"
check_eq "wrong X-Linked-Size: no cache entry" "$(entries "$C/f")" 0
check_eq "wrong X-Linked-Size: no partial file" "$(find "$C/f" -name '*~part*' | wc -l | tr -d ' ')" 0

# Expected checksums.
SUM=$("$D" sha256 "$W/sg.txt")
check_eq "sha256 of a file" "$SUM" "$(sha256sum "$W/sg.txt" | cut -d' ' -f1)"
REF=$(sha256sum "$W/big.bin" | cut -d' ' -f1)
check_eq "sha256 of random bytes" "$("$D" sha256 "$W/big.bin")" "$REF"
check_eq "sha256 of random bytes, portable code" "$(GPT_NO_SHANI=1 "$D" sha256 "$W/big.bin")" "$REF"
check "sha256 vectors, portable code" env GPT_NO_SHANI=1 "$D"
check "expected sha256 matches" "$D" fetch -q -s "$SUM" -c "$C" "$U/sg.txt"
BAD=0000000000000000000000000000000000000000000000000000000000000000
check_status 1 "expected sha256 differs" "$D" fetch -q -s $BAD -c "$C/s" "$U/sh.txt"
check_grep "sha256 mismatch: says why" "sha256 mismatch: got $SUM, expected $BAD" "$TMP/.err"
check_eq "sha256 mismatch: no cache entry" "$(entries "$C/s")" 0
check_eq "sha256 mismatch: no partial file" "$(find "$C/s" -name '*~part*' | wc -l | tr -d ' ')" 0
check_status 1 "offline, cached file with another sha256" "$D" fetch -O -s $BAD -c "$C" "$U/sg.txt"
check_status 1 "malformed sha256" "$D" fetch -q -s 123 -c "$C" "$U/sg.txt"

# hf:// through $HF_ENDPOINT, with $HF_TOKEN sent to the hub only.
X=$W/hub/datasets/o/n/resolve
check "hf:// download" env HF_ENDPOINT="$U/hub" HF_TOKEN=sekrit \
	"$D" fetch -q -c "$C" hf://datasets/o/n/data/x.parquet
check_files "hf://: right bytes" "$(cat "$TMP/.out")" "$X/main/data/x.parquet"
check_grep "hf://: token sent to the hub" '^GET /hub/datasets/o/n/resolve/main/data/x.parquet .*auth=Bearer sekrit$' "$TMP/log"
check "token not sent elsewhere" env HF_ENDPOINT="$U/hub" HF_TOKEN=sekrit \
	"$D" fetch -q -c "$C" "$U/sa.txt"
check_grep "plain URL: no token" '^GET /sa.txt .*auth=-$' "$TMP/log"
check "hf:// revision, via a redirect with X-Linked-*" env HF_ENDPOINT="$U/_f/redirect=1/hub" \
	"$D" fetch -q -c "$C" hf://datasets/o/n@v1/data/x.parquet
check_files "hf:// revision: right bytes" "$(cat "$TMP/.out")" "$X/v1/data/x.parquet"
check_grep "hf:// revision: redirected" '^GET /_cdn/hub/datasets/o/n/resolve/v1/data/x.parquet ' "$TMP/log"
check "hf:// revision again" env HF_ENDPOINT="$U/_f/redirect=1/hub" \
	"$D" fetch -q -c "$C" hf://datasets/o/n@v1/data/x.parquet
check_eq "hf:// again: reused after HEAD (X-Linked-* agree)" \
	"$(requests '^GET /_cdn/hub/datasets/o/n/resolve/v1/') $(requests '^HEAD /_cdn/hub/datasets/o/n/resolve/v1/')" "1 1"
check_status 1 "hub sha256 (X-Linked-Etag) differs" env HF_ENDPOINT="$U/_f/redirect=1,linked_etag=$BAD/hub" \
	"$D" fetch -q -c "$C/e" hf://datasets/o/n/data/x.parquet
check_grep "hub sha256: says why" "sha256 mismatch: .* the hub says $BAD" "$TMP/.err"
check_eq "hub sha256: no cache entry" "$(entries "$C/e")" 0
check_status 1 "malformed hf:// URL" "$D" fetch -q -c "$C" hf://datasets/o
check_grep "malformed hf://: says why" "malformed hub URL" "$TMP/.err"

# A server that cannot be reached: the cached file is used with a
# warning; without one, a clear error.  Nothing listens on port 1.
mkdir -p "$C/n/http/127.0.0.1_1"
cp "$W/sa.txt" "$C/n/http/127.0.0.1_1/x.txt"
check "unreachable, cached" "$D" fetch -q -c "$C/n" http://127.0.0.1:1/x.txt
check_eq "unreachable, cached: the cached path" "$(cat "$TMP/.out")" "$C/n/http/127.0.0.1_1/x.txt"
check_grep "unreachable, cached: warns" "cannot check for a newer version" "$TMP/.err"
check_status 1 "unreachable, not cached" "$D" fetch -q -r 1 -c "$C/n" http://127.0.0.1:1/y.txt
check_grep "unreachable: says why" "cannot download after 2 attempts .*connect" "$TMP/.err"

# Two processes fetching one URL at once: one downloads, the other waits
# for it, and both get the whole file.
"$D" fetch -q -c "$C/p" "$U/big.bin?drop=150000&k=3" >"$TMP/p1" 2>"$TMP/e1" &
P1=$!
"$D" fetch -q -c "$C/p" "$U/big.bin?drop=150000&k=3" >"$TMP/p2" 2>"$TMP/e2"
r2=$?
wait $P1
r1=$?
check_eq "concurrent fetches succeed" "$r1 $r2" "0 0"
check_files "concurrent fetches: whole file" "$(cat "$TMP/p1")" "$W/big.bin"
check_eq "concurrent fetches: same path" "$(cat "$TMP/p1")" "$(cat "$TMP/p2")"

# Threads (gpt-fetch -j): several downloads at once in one process, each
# with a fault, each right.
cp "$W/big.bin" "$W/big2.bin"
cp "$W/big.bin" "$W/big3.bin"
check "threads" "$D" fetchall -q -c "$C/t" "$U/big.bin?drop=1000&k=4" \
	"$U/big2.bin?status=503&times=2" "$U/big3.bin?drop=200000&norange=1" \
	"$U/empty.txt"
i=0
for f in big.bin big2.bin big3.bin empty.txt; do
	i=$((i + 1))
	check_files "threads: $f" "$(sed -n ${i}p "$TMP/.out")" "$W/$f"
done
