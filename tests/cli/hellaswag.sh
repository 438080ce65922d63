# gpt-eval --hellaswag val and URLs: the validation split downloaded from a
# local stand-in for its GitHub location ($GPT_HELLASWAG_URL) into the
# cache, checked by its git blob id (the stand-in's own, from git
# hash-object, in $GPT_HELLASWAG_BLOB, as the recorded one names the real
# file), refused and not cached when the id differs, and read from the
# cache offline; offline without a cached copy it fails.
. "$ROOT/tests/lib.sh"
fixture_models   # $TMP/r.gpt, $TMP/b.gpt; F, V (tests/lib.sh)
unset GPT_OFFLINE HF_HUB_OFFLINE GPT_HELLASWAG_BLOB
no_proxy='*' NO_PROXY='*' GPT_HTTP_BACKOFF_MS=1 XDG_CACHE_HOME=$TMP/cache
export no_proxy NO_PROXY GPT_HTTP_BACKOFF_MS XDG_CACHE_HOME
mkdir -p "$TMP/www/rowanz/hellaswag/master/data"
cp "$F/hellaswag.jsonl" "$TMP/www/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
httpd_start "$TMP/www"
GPT_HELLASWAG_URL=$HTTPD_URL/rowanz/hellaswag/master/data/hellaswag_val.jsonl
export GPT_HELLASWAG_URL
blob=$(git hash-object "$F/hellaswag.jsonl")
wrong=$(printf '%040d' 0)
cached=$TMP/cache/gpt/http/127.0.0.1_$HTTPD_PORT/rowanz/hellaswag/master/data/hellaswag_val.jsonl
E() { gpt-eval $V -q --tsv "$@"; }

E --hellaswag "$F/hellaswag.jsonl" "$TMP/b.gpt" >"$TMP/local.tsv"

# the recorded id (the real file's) refuses the stand-in: one line, exit 1,
# nothing cached
check_status 1 "the recorded blob id refuses another file" gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says the id did not match" \
	"^gpt-eval: git blob id mismatch: got $blob, expected 0f5ee25d72216f12317d5d8a7b92deafa423d81e: '$GPT_HELLASWAG_URL'\$" "$TMP/.err"
check_eq "a mismatch: one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
check_eq "the refused file is not cached" "$(find "$TMP/cache" -type f ! -name '.*lock' | wc -l)" 0
check_status 1 "a wrong blob id is refused" env GPT_HELLASWAG_BLOB=$wrong \
	gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "names both ids" "git blob id mismatch: got $blob, expected $wrong" "$TMP/.err"
check_eq "still nothing cached" "$(find "$TMP/cache" -type f ! -name '.*lock' | wc -l)" 0
check_status 1 "a malformed blob id is refused" env GPT_HELLASWAG_BLOB=xyz \
	gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says it is not an id" "not a git blob id .40 hex digits.: 'xyz'" "$TMP/.err"

# offline before any download: a clear failure
check_status 1 "offline without a cached copy fails" env GPT_OFFLINE=1 GPT_HELLASWAG_BLOB=$blob \
	gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says it is not in the cache" 'not in the cache, and offline' "$TMP/.err"

# the right id: downloaded, cached, scored as the local file, no warning
gets=$(grep -c '^GET ' "$TMP/log")
check "val downloads the checked file" env GPT_HELLASWAG_BLOB=$blob \
	sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag val "$1" >"$2"' sh "$TMP/b.gpt" "$TMP/val.tsv"
check_eq "a checked download: nothing on stderr" "$(wc -c <"$TMP/.err" | tr -d ' ')" 0
check_files "val scores as the local file" "$TMP/val.tsv" "$TMP/local.tsv"
check_files "the download is in the cache" "$cached" "$F/hellaswag.jsonl"
check_eq "one GET" "$(grep -c '^GET ' "$TMP/log")" $((gets + 1))
check "the cached copy is reused online" env GPT_HELLASWAG_BLOB=$blob \
	sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag val "$1" >/dev/null' sh "$TMP/b.gpt"
check_eq "reused: no second GET" "$(grep -c '^GET ' "$TMP/log")" $((gets + 1))

# offline with the cached copy: no request, the same scores
httpd_stop
gets=$(grep -c '^GET \|^HEAD ' "$TMP/log")
check "offline with a cached copy" env GPT_OFFLINE=1 GPT_HELLASWAG_BLOB=$blob \
	sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag val "$1" >"$2"' sh "$TMP/b.gpt" "$TMP/off.tsv"
check_files "offline: the same scores" "$TMP/off.tsv" "$TMP/local.tsv"
check "--offline with a cached copy" env GPT_HELLASWAG_BLOB=$blob \
	sh -c 'gpt-eval '"$V"' -q --tsv --offline --hellaswag val "$1" >"$2"' sh "$TMP/b.gpt" "$TMP/off2.tsv"
check_files "--offline: the same scores" "$TMP/off2.tsv" "$TMP/local.tsv"
check_eq "offline: nothing requested" "$(grep -c '^GET \|^HEAD ' "$TMP/log")" "$gets"
check_status 1 "offline: a cached copy with another blob id is refused" \
	env GPT_OFFLINE=1 GPT_HELLASWAG_BLOB=$wrong gpt-eval $V -q --hellaswag val "$TMP/b.gpt"
check_grep "says the cached file does not match" 'cached file does not have the expected git blob id' "$TMP/.err"
check_status 1 "offline: the recorded id refuses the cached stand-in too" \
	env GPT_OFFLINE=1 gpt-eval $V -q --hellaswag val "$TMP/b.gpt"

# any URL: fetched into the cache and scored
httpd_start "$TMP/www"
check "a URL" sh -c 'gpt-eval '"$V"' -q --tsv --hellaswag "$1" "$2" >"$3"' sh \
	"$HTTPD_URL/rowanz/hellaswag/master/data/hellaswag_val.jsonl" "$TMP/b.gpt" "$TMP/url.tsv"
check_files "a URL scores as the local file" "$TMP/url.tsv" "$TMP/local.tsv"
check_status 1 "a missing URL fails" gpt-eval $V -q --hellaswag "$HTTPD_URL/nosuch.jsonl" "$TMP/b.gpt"
check_eq "a missing URL: one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
