# gpt-serve's chat page (issue 18) in a real browser: headless Chromium
# (Debian's chromium and chromium-driver) driven by Selenium (PyPI) loads
# /, sends a message, sees the reply stream into the page with its
# tokens/s, and goes on with a second message.  The screenshot is kept as
# $O/test-output/chat-page.png.
. "$ROOT/tests/lib.sh"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] ||
	! "$PY" -c 'import selenium' 2>/dev/null; then
	fail "chromium, chromium-driver or selenium missing (tests/install-deps.sh test installs them)"
	exit 0
fi
verdict_shards
# wide enough that a reply takes a moment: the page must show it growing
check "a model" gpt-train -q -i "$VTR" -o "$TMP/painter" --layers 4 --heads 4 \
	--width 256 --context 512 --steps 3 --threads 1 --device cpu
gpt-serve -p 0 --device cpu -j 1 "$TMP/painter" 2>"$TMP/serve.log" &
PID=$!
at_exit "kill $PID 2>/dev/null"
i=0
while ! grep -q 'on http://' "$TMP/serve.log" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
URL=$(sed -n 's|.* on \(http://127.0.0.1:[0-9]*\)/$|\1|p' "$TMP/serve.log")
mkdir -p "$O/test-output"
check "headless Chromium: the page streams a reply, shows tokens/s, keeps the conversation" \
	"$PY" "$ROOT/tests/chat_page_check.py" "$URL" "$O/test-output/chat-page.png"
check "  a screenshot kept" test -s "$O/test-output/chat-page.png"
check_eq "  the server answered both turns" "$(grep -c 'chatcmpl-.* tokens in' "$TMP/serve.log")" 2
