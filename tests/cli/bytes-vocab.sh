# The built-in byte vocabulary, --vocab bytes: ids 0-255 are the bytes,
# 256 is <|endoftext|>.  gpt-tokenize encodes bytes to ids and back (every
# form, -z, any chunking), gpt-shard records tokenizer "bytes" with 257
# ids, and a model trained on such shards is sampled and evaluated with
# the byte vocabulary without --vocab (GPT_VOCAB, which run.sh sets to
# GPT-2's, does not take over), bits per byte being loss / ln 2.
. "$ROOT/tests/lib.sh"

S=$SHARED/data/text/tinyshakespeare.txt
head -c 4000 "$S" >"$TMP/small.txt"
printf '\303\251t\303\251 \377\0end' >>"$TMP/small.txt"   # UTF-8, a bad byte, NUL
"$PY" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 3)' >"$TMP/all.bin"

# -- encoding is the bytes ---------------------------------------------------
gpt-tokenize --vocab bytes "$TMP/small.txt" >"$TMP/small.ids"
od -An -v -tu1 "$TMP/small.txt" | tr -s ' \n' '\n\n' | sed '/^$/d' >"$TMP/want.col"
tr ' ' '\n' <"$TMP/small.ids" | sed '/^$/d' >"$TMP/got.col"
check_files "text ids are the bytes, as od prints them" "$TMP/got.col" "$TMP/want.col"
check_eq "one line of ids" "$(wc -l <"$TMP/small.ids" | tr -d ' ')" 1
for f in u16 u32; do
	gpt-tokenize --vocab bytes -f $f "$S" >"$TMP/s.$f"
	"$PY" -c 'import struct, sys
d = open(sys.argv[1], "rb").read()
sys.stdout.buffer.write(struct.pack("<%d%s" % (len(d), sys.argv[2]), *d))' "$S" \
		"$( [ $f = u16 ] && echo H || echo I)" >"$TMP/want.$f"
	check_files "-f $f ids of tinyshakespeare are its bytes (python)" "$TMP/s.$f" "$TMP/want.$f"
done
gpt-tokenize --vocab bytes -f u16 -j 4 --chunk 64 "$S" >"$TMP/s.j4"
check_files "the same ids on 4 threads in 64-byte chunks" "$TMP/s.j4" "$TMP/s.u16"
check_eq "-c counts the bytes" "$(gpt-tokenize --vocab bytes -c "$S")" "$(wc -c <"$S" | tr -d ' ')"
check_eq "--allow-special: the text <|endoftext|> is 256" \
	"$(printf 'a<|endoftext|>b' | gpt-tokenize --vocab bytes --allow-special)" "97 256 98"
check_eq "without it the text is its bytes" \
	"$(printf '<|e' | gpt-tokenize --vocab bytes)" "60 124 101"

# -- documents ---------------------------------------------------------------
check_eq "-z: each NUL is 256 and ends a line" \
	"$(printf 'ab\0\0c\0' | gpt-tokenize --vocab bytes -z)" "$(printf '97 98 256\n256\n99 256')"
check_eq "-z -c: bytes per document" \
	"$(printf 'ab\0\0c\0' | gpt-tokenize --vocab bytes -z -c)" "$(printf '2\n0\n1')"
printf 'ab\0\0c\0' | gpt-tokenize --vocab bytes -z -f u16 | od -An -tu2 | tr -s ' \n' ' ' >"$TMP/z.u16"
check_eq "-z -f u16" "$(cat "$TMP/z.u16")" " 97 98 256 256 99 256 "
tr '\n' '\0' <"$S" >"$TMP/docs"
gpt-tokenize --vocab bytes -z -f u16 "$TMP/docs" >"$TMP/docs.1"
gpt-tokenize --vocab bytes -z -f u16 -j 3 --chunk 100 "$TMP/docs" >"$TMP/docs.3"
check_files "-z: the same ids on 3 threads in small chunks" "$TMP/docs.3" "$TMP/docs.1"
check_eq "-z: one 256 per NUL" "$(od -An -v -tu2 "$TMP/docs.1" | tr -s ' ' '\n' | grep -cx 256)" \
	"$(wc -l <"$S" | tr -d ' ')"

# -- decoding ----------------------------------------------------------------
gpt-tokenize --vocab bytes -d -f u16 "$TMP/s.u16" >"$TMP/back.txt"
check_files "tinyshakespeare round-trips (u16)" "$TMP/back.txt" "$S"
gpt-tokenize --vocab bytes -d "$TMP/small.ids" >"$TMP/back.small"
check_files "text, UTF-8, a bad byte and NUL round-trip (text ids)" "$TMP/back.small" "$TMP/small.txt"
gpt-tokenize --vocab bytes -f u32 "$TMP/all.bin" | gpt-tokenize --vocab bytes -d -f u32 >"$TMP/all.back"
check_files "bytes 0-255 round-trip (u32)" "$TMP/all.back" "$TMP/all.bin"
gpt-tokenize --vocab bytes -z "$TMP/all.bin" | gpt-tokenize --vocab bytes -d -z >"$TMP/all.z"
check_files "bytes 0-255 round-trip through -z" "$TMP/all.z" "$TMP/all.bin"
check_eq "256 decodes to the text <|endoftext|>" "$(echo 72 105 256 33 | gpt-tokenize --vocab bytes -d)" \
	"Hi<|endoftext|>!"
check_eq "and to NUL with -z" "$(echo 72 256 105 | gpt-tokenize --vocab bytes -d -z | od -An -c | tr -s ' ')" \
	" H \\0 i"
check_status 1 "id 257 is refused" sh -c 'echo 65 257 | gpt-tokenize --vocab bytes -d'
check_grep "naming the id, its place and the size" '^gpt-tokenize: token id 257 at position 1 is not in the vocabulary \(257 ids\)$' "$TMP/.err"
check_eq "in one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
check_status 1 "u16 id 300 is refused" sh -c 'printf "\054\001" | gpt-tokenize --vocab bytes -d -f u16'
check_grep "naming it" 'token id 300 ' "$TMP/.err"

# -- a file called bytes is a path away ----------------------------------------
mkdir -p "$TMP/cwd"
ln -s "$SHARED/data/gpt2/gpt2.tiktoken" "$TMP/cwd/bytes"
check_eq "--vocab ./bytes reads the file (GPT-2 ids)" \
	"$(cd "$TMP/cwd" && printf 'Hello world' | gpt-tokenize --vocab ./bytes)" "15496 995"
check_eq "--vocab bytes is still the built-in one there" \
	"$(cd "$TMP/cwd" && printf 'Hi' | gpt-tokenize --vocab bytes)" "72 105"

# -- shards --------------------------------------------------------------------
mkdir -p "$TMP/data"
head -c 60000 "$S" >"$TMP/train.txt"
gpt-tokenize --vocab bytes -f u16 "$TMP/train.txt" >"$TMP/train.u16"
check "gpt-shard --vocab bytes" gpt-shard -q -f u16 --vocab bytes --val-tokens 8000 \
	-o "$TMP/data/c" "$TMP/train.u16"
gpt-shard info --json "$TMP/data/c-train-000000.tok.zst" >"$TMP/info.json"
check_grep "the header names tokenizer bytes" '"tokenizer": ?"bytes"' "$TMP/info.json"
check_grep "with 257 ids" '"vocab_size": ?257[,}]' "$TMP/info.json"
check_grep "and end of text 256" '"eot": ?256[,}]' "$TMP/info.json"
check_grep "in 2-byte tokens" '"token_bytes": ?2[,}]' "$TMP/info.json"
gpt-shard cat -f u16 "$TMP/data/c-val-000000.tok.zst" "$TMP/data/c-train-000000.tok.zst" >"$TMP/cat.u16"
check_files "gpt-shard cat gives the ids back" "$TMP/cat.u16" "$TMP/train.u16"
check "gpt-shard --tokenizer bytes" gpt-shard -q -f u16 --tokenizer bytes --val-tokens 0 \
	-o "$TMP/data/t" "$TMP/train.u16"
gpt-shard info --json "$TMP/data/t-train-000000.tok.zst" >"$TMP/info2.json"
check_grep "--tokenizer bytes records 257 ids too" '"vocab_size": ?257[,}]' "$TMP/info2.json"
check_grep "and end of text 256" '"eot": ?256[,}]' "$TMP/info2.json"
check_status 1 "an id over 256 in a bytes shard is refused" \
	sh -c "echo 65 300 | gpt-shard -q --vocab bytes -o '$TMP/data/bad'"
check_grep "naming it" '300' "$TMP/.err"
check_eq "in one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
check_eq "and no shard is left" "$(ls "$TMP/data" | grep -c '^bad')" 0

# -- a model on bytes --------------------------------------------------------
check "a tiny model trains on bytes shards" gpt-train -q -i "$TMP/data/c-train-*" \
	--val "$TMP/data/c-val-*" -o "$TMP/run" --layers 1 --heads 2 --width 32 --context 32 \
	--batch 4 --steps 20 --lr 3e-3 --threads 1 --device cpu
check "gpt-sample samples it without --vocab" gpt-sample -m 40 -s 7 --device cpu "$TMP/run" "ROMEO:"
check_eq "with no tokenizer warning" "$(grep -c 'tokenizer' "$TMP/.err")" 0
check_grep "and the prompt echoed as text" '^ROMEO:' "$TMP/.out"
check "gpt-sample --tokens" gpt-sample --tokens -m 40 -s 7 --device cpu "$TMP/run" "Hi"
check_eq "the prompt's ids are its bytes" "$(tr -s ' \n' '\n\n' <"$TMP/.out" | sed '/^$/d' | head -2 | tr '\n' ' ')" "72 105 "
check_eq "and every id is a byte or 256" \
	"$(tr -s ' \n' '\n\n' <"$TMP/.out" | sed '/^$/d' | awk '$1 > 256 || $1 !~ /^[0-9]+$/' | wc -l | tr -d ' ')" 0

head -c 3000 "$S" | tail -c 2000 >"$TMP/eval.txt"   # no NUL: no end of text
check "gpt-eval --text on the byte model" sh -c \
	"gpt-eval -q --tsv --device cpu --text '$TMP/run' <'$TMP/eval.txt' >'$TMP/e.tsv'"
check_eq "no tokenizer warning" "$(grep -c 'tokenizer' "$TMP/.err")" 0
check_eq "--text: one predicted token per byte after the first" "$(col "$TMP/e.tsv" tokens)" 1999
check "bits per byte is loss / ln 2" awk -v l="$(col "$TMP/e.tsv" loss)" -v b="$(col "$TMP/e.tsv" bpb)" \
	'BEGIN { d = l / log(2) - b; if (d < 0) d = -d; exit !(l > 0 && d < 1.3e-4) }'
check "gpt-eval on the bytes shards" sh -c \
	"gpt-eval -q --tsv --device cpu '$TMP/run' '$TMP/data/c-val-*' >'$TMP/s.tsv'"
check_eq "no tokenizer warning" "$(grep -c 'tokenizer' "$TMP/.err")" 0
check "bits per byte is loss / ln 2 there too (no end of text)" awk -v l="$(col "$TMP/s.tsv" loss)" \
	-v b="$(col "$TMP/s.tsv" bpb)" 'BEGIN { d = l / log(2) - b; if (d < 0) d = -d; exit !(l > 0 && d < 1.3e-4) }'

gpt-tokenize -f u16 "$TMP/train.txt" | gpt-shard -q -f u16 --val-tokens 0 -o "$TMP/data/g"
check_status 1 "gpt-eval refuses GPT-2 shards for the byte model" \
	gpt-eval -q --device cpu "$TMP/run" "$TMP/data/g-train-*"
check_grep "saying which tokenizers" "^gpt-eval: checkpoint was trained on tokenizer 'bytes' but the shards hold 'gpt2'" "$TMP/.err"
check_eq "in one line" "$(wc -l <"$TMP/.err" | tr -d ' ')" 1
check_status 1 "gpt-eval --vocab GPT-2 --text on the byte model is refused" sh -c \
	"gpt-eval -q --device cpu --vocab '$SHARED/data/gpt2' --text '$TMP/run' <'$TMP/eval.txt'"
check_grep "warning of the other tokenizer" "trained with tokenizer 'bytes', scoring with 'gpt2'" "$TMP/.err"
check_grep "and saying why" "^gpt-eval: vocabulary 'gpt2' has 50257 ids, the model only 257: " "$TMP/.err"
