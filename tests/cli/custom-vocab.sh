# A vocabulary of one's own, carried through every stage: gpt-bpe learns
# it, gpt-tokenize encodes with it, gpt-shard records its name, size and
# end-of-text id, gpt-train keeps the name in the checkpoint, and
# gpt-sample decodes with it into readable text without a mismatch warning.
. "$ROOT/tests/lib.sh"

V=$TMP/shake.tiktoken
head -c 300000 "$SHARED/data/text/tinyshakespeare.txt" >"$TMP/corpus.txt"
check "gpt-bpe learns 512 tokens" gpt-bpe -q -v 512 -o "$V" --name shake "$TMP/corpus.txt"
check_grep "the .meta names the end-of-text id" '^special <\|endoftext\|> 511$' "$V.meta"
gpt-tokenize --vocab "$V" -f u16 "$TMP/corpus.txt" >"$TMP/ids.u16"
check_files "the custom vocabulary round-trips the corpus" "$TMP/corpus.txt" \
	"$(gpt-tokenize --vocab "$V" -d -f u16 "$TMP/ids.u16" >"$TMP/back"; echo "$TMP/back")"
mkdir -p "$TMP/data"
check "gpt-shard takes name and size from --vocab" \
	gpt-shard -q -f u16 --vocab "$V" --val-tokens 5000 -o "$TMP/data/s" "$TMP/ids.u16"
gpt-shard info "$TMP/data/s-train-000000"* >"$TMP/info"
check_grep "the shard header names the tokenizer" 'tokenizer +shake' "$TMP/info"
check_grep "and its size" 'vocabulary +512 ids' "$TMP/info"
check "a tiny model trains on it" gpt-train -q -i "$TMP/data/s-train-*" --val "$TMP/data/s-val-*" \
	-o "$TMP/run" --layers 1 --heads 2 --width 32 --context 32 --batch 4 --steps 30 \
	--lr 3e-3 --threads 1 --vocab "$V"
check "gpt-sample decodes with the same vocabulary" \
	gpt-sample --vocab "$V" -m 40 -s 7 "$TMP/run" "ROMEO:"
check_eq "no tokenizer mismatch warning" "$(grep -c 'tokenizer' "$TMP/.err")" "0"
check_grep "the sample is text that starts with the prompt" '^ROMEO:' "$TMP/.out"
gpt-sample -m 5 "$TMP/run" "ROMEO:" >/dev/null 2>"$TMP/warn" || true
check_grep "decoding with GPT-2's vocabulary instead is flagged" "trained with tokenizer 'shake'" "$TMP/warn"
