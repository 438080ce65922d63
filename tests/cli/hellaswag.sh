# gpt-eval --hellaswag val and URLs: the validation split downloaded from a
# local stand-in for its GitHub location ($GPT_HELLASWAG_URL) into the
# cache, checked by size and SHA-256 (overridden here, as the recorded ones
# belong to the real file), refused and not cached when a check fails, and
# read from the cache offline; offline without a cached copy it fails.
. "$ROOT/tests/lib.sh"
fixture_models   # $TMP/r.gpt, $TMP/b.gpt; F, V (tests/lib.sh)
unset GPT_OFFLINE HF_HUB_OFFLINE GPT_HELLASWAG_SHA256 GPT_HELLASWAG_SIZE
no_proxy='*' NO_PROXY='*' GPT_HTTP_BACKOFF_MS=1 XDG_CACHE_HOME=$TMP/cache
export no_proxy NO_PROXY GPT_HTTP_BACKOFF_MS XDG_CACHE_HOME
mkdir -p "$TMP/www/rowanz/hellaswag/master/data"
cp "$F/hellaswag.jsonl" "$TMP/www/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
httpd_start "$TMP/www"
GPT_HELLASWAG_URL=$HTTPD_URL/rowanz/hellaswag/master/data/hellaswag_val.jsonl
export GPT_HELLASWAG_URL
sum=$(sha256sum "$F/hellaswag.jsonl" | cut -d' ' -f1)
size=$(wc -c <"$F/hellaswag.jsonl" | tr -d ' ')
cached=$TMP/cache/gpt/http/127.0.0.1_$HTTPD_PORT/rowanz/hellaswag/master/data/hellaswag_val.jsonl
E() { gpt-eval $V -q --tsv "$@"; }

E --hellaswag "$F/hellaswag.jsonl" "$TMP/b.gpt" >"$TMP/local.tsv"

# a wrong digest: refused, and nothing is left in the cache
check_status 1 "a wrong sha256 is refused" env GPT_HELLASWAG_SHA256=$(printf '%064d' 0) \
	gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says the digest did not match" '^gpt-eval: sha256 mismatch: got '"$sum"', expected 0{64}' "$TMP/.err"
check_eq "the refused file is not cached" "$(find "$TMP/cache" -type f ! -name '.*lock' | wc -l)" 0
check_status 1 "a wrong size is refused" env GPT_HELLASWAG_SHA256=$sum GPT_HELLASWAG_SIZE=$((size + 1)) \
	gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says the size did not match" "size mismatch: got $size bytes, expected $((size + 1))" "$TMP/.err"
check_eq "the file of the wrong size is not cached" "$(find "$TMP/cache" -type f ! -name '.*lock' | wc -l)" 0

# offline before any download: a clear failure
check_status 1 "offline without a cached copy fails" env GPT_OFFLINE=1 GPT_HELLASWAG_SHA256=$sum \
	gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says it is not in the cache" 'not in the cache, and offline' "$TMP/.err"

# the right digest and size: downloaded, cached, scored as the local file
gets=$(grep -c '^GET ' "$TMP/log")
check "val downloads the checked file" env GPT_HELLASWAG_SHA256=$sum GPT_HELLASWAG_SIZE=$size \
	sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag val "$1" >"$2"' sh "$TMP/b.gpt" "$TMP/val.tsv"
check_files "val scores as the local file" "$TMP/val.tsv" "$TMP/local.tsv"
check_files "the download is in the cache" "$cached" "$F/hellaswag.jsonl"
check_eq "one GET" "$(grep -c '^GET ' "$TMP/log")" $((gets + 1))

# offline with the cached copy: no request, the same scores
httpd_stop
gets=$(grep -c '^GET \|^HEAD ' "$TMP/log")
check "offline with a cached copy" env GPT_OFFLINE=1 GPT_HELLASWAG_SHA256=$sum GPT_HELLASWAG_SIZE=$size \
	sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag val "$1" >"$2"' sh "$TMP/b.gpt" "$TMP/off.tsv"
check_files "offline: the same scores" "$TMP/off.tsv" "$TMP/local.tsv"
check "--offline with a cached copy" env GPT_HELLASWAG_SHA256=$sum \
	sh -c 'gpt-eval '"$V"' -q --tsv --offline --hellaswag val "$1" >"$2"' sh "$TMP/b.gpt" "$TMP/off2.tsv"
check_files "--offline: the same scores" "$TMP/off2.tsv" "$TMP/local.tsv"
check_eq "offline: nothing requested" "$(grep -c '^GET \|^HEAD ' "$TMP/log")" "$gets"
check_status 1 "offline: a cached copy that fails the digest is refused" \
	env GPT_OFFLINE=1 GPT_HELLASWAG_SHA256=$(printf '%064d' 1) gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says the cached file does not match" 'cached file does not match the expected sha256' "$TMP/.err"

# no recorded digest (none given here): accepted with a warning naming it
check "without a recorded digest" env GPT_OFFLINE=1 \
	sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag val "$1" >/dev/null' sh "$TMP/b.gpt"
check_grep "warns that it is unchecked, with its digest" "unchecked: got sha256 $sum" "$TMP/.err"

# any URL: fetched into the cache and scored
httpd_start "$TMP/www"
check "a URL" sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag "$1" "$2" >"$3"' sh \
	"$HTTPD_URL/rowanz/hellaswag/master/data/hellaswag_val.jsonl" "$TMP/b.gpt" "$TMP/url.tsv"
check_files "a URL scores as the local file" "$TMP/url.tsv" "$TMP/local.tsv"
check_status 1 "a missing URL fails" gpt-eval $V -q --hellaswag "$HTTPD_URL/nosuch.jsonl" "$TMP/b.gpt"
check_eq "a missing URL: one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
