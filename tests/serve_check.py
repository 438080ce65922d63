#!/usr/bin/env python3
"""Checks of gpt-serve from real clients, for tests/cli/serve.sh.

    serve_check.py client URL        the openai package: models, chat,
                                     streamed chat, completions, n, seed,
                                     stop, errors
    serve_check.py load URL N        N concurrent requests: each answered
                                     200 or 429 (with Retry-After)
    serve_check.py disconnect URL    a streamed request whose client hangs
                                     up after its first chunk
    serve_check.py stream-done URL [KEY]  one streamed request read to its end
                                     (the drain test starts it, then
                                     signals the server)

Each exits 0 when every assertion holds, else 1 with the failing one on
stderr.  Only the standard library and openai (from PyPI, in .venv).
"""
import http.client
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def need(cond, what):
    if not cond:
        print("serve_check: " + what, file=sys.stderr)
        sys.exit(1)


def client(url):
    import openai

    c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    models = c.models.list().data
    need(len(models) == 1 and models[0].id, "models: %r" % models)
    name = models[0].id

    r = c.chat.completions.create(model=name, max_tokens=12, seed=5, temperature=0.8,
                                  messages=[{"role": "user", "content": "Say hello."}])
    ch = r.choices[0]
    need(r.object == "chat.completion" and ch.message.role == "assistant",
         "chat: %r" % r)
    need(ch.finish_reason in ("stop", "length"), "finish_reason %r" % ch.finish_reason)
    u = r.usage
    need(u.prompt_tokens > 0 and 0 < u.completion_tokens <= 12 and
         u.total_tokens == u.prompt_tokens + u.completion_tokens, "usage %r" % u)
    again = c.chat.completions.create(model=name, max_tokens=12, seed=5, temperature=0.8,
                                      messages=[{"role": "user", "content": "Say hello."}])
    need(again.choices[0].message.content == ch.message.content,
         "the same seed gave %r then %r" % (ch.message.content, again.choices[0].message.content))

    # streamed: several chunks, the first before the last, the text the
    # same as the same request unstreamed
    times, parts, finish, usage = [], [], None, None
    t0 = time.monotonic()
    s = c.chat.completions.create(model=name, max_tokens=40, seed=9, temperature=1.0,
                                  stream=True, stream_options={"include_usage": True},
                                  messages=[{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Tell me a story."}])
    for chunk in s:
        if chunk.usage:
            usage = chunk.usage
        for cc in chunk.choices:
            if cc.delta.content:
                parts.append(cc.delta.content)
                times.append(time.monotonic() - t0)
            if cc.finish_reason:
                finish = cc.finish_reason
    need(len(parts) >= 3, "streamed only %d chunks" % len(parts))
    need(times[0] < times[-1], "chunks all arrived at once: %r" % times)
    need(finish in ("stop", "length"), "stream finish %r" % finish)
    need(usage is not None and usage.completion_tokens >= len(parts) - 1,
         "stream usage %r for %d chunks" % (usage, len(parts)))
    flat = c.chat.completions.create(model=name, max_tokens=40, seed=9, temperature=1.0,
                                     messages=[{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "Tell me a story."}])
    need("".join(parts) == flat.choices[0].message.content,
         "stream %r vs whole %r" % ("".join(parts), flat.choices[0].message.content))

    # n, a raw completion, a stop string
    r = c.chat.completions.create(model=name, max_tokens=8, n=3,
                                  messages=[{"role": "user", "content": "Hi"}])
    need(len(r.choices) == 3 and [x.index for x in r.choices] == [0, 1, 2], "n=3: %r" % r)
    r = c.completions.create(model=name, prompt="The meaning of life is", max_tokens=10,
                             temperature=0)
    need(r.object == "text_completion" and r.choices[0].text and r.usage.prompt_tokens == 5,
         "completion %r" % r)
    base = r.choices[0].text
    stop = base.strip()[:1]
    r2 = c.completions.create(model=name, prompt="The meaning of life is", max_tokens=10,
                              temperature=0, stop=[stop])
    need(stop not in r2.choices[0].text and r2.choices[0].finish_reason == "stop" and
         base.startswith(r2.choices[0].text), "stop %r: %r of %r" % (stop, r2.choices[0].text,
                                                                      base))
    # errors the package raises as OpenAI's
    try:
        c.chat.completions.create(model=name, max_tokens=100000,
                                  messages=[{"role": "user", "content": "Hi"}])
        need(False, "max_tokens past the context was accepted")
    except openai.BadRequestError as e:
        need(e.body and e.body.get("param") == "max_tokens" and
             "context length" in e.body.get("message", ""), "context error %r" % e.body)
    try:
        c.chat.completions.create(model=name, messages=[{"role": "assistant", "content": "x"}])
        need(False, "a conversation ending with the assistant was accepted")
    except openai.BadRequestError as e:
        need(e.body.get("param") == "messages", "messages error %r" % e.body)


def post(url, body, timeout=120):
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def load(url, n):
    n = int(n)
    results = [None] * n

    def one(i):
        try:
            results[i] = post(url, {"messages": [{"role": "user", "content": "Hi %d" % i}],
                                    "max_tokens": 16, "temperature": 0})
        except Exception as e:  # a lost request
            results[i] = ("error", {}, repr(e).encode())

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = [r[0] for r in results]
    need(all(c in (200, 429) for c in codes), "answers %r" % codes)
    ok = [r for r in results if r[0] == 200]
    busy = [r for r in results if r[0] == 429]
    need(len(ok) >= 2, "only %d of %d answered 200" % (len(ok), n))
    for _, h, body in ok:
        j = json.loads(body)
        need(j["choices"][0]["message"]["role"] == "assistant", "answer %r" % j)
    for _, h, body in busy:
        j = json.loads(body)
        need(h.get("Retry-After") and j["error"]["type"] == "rate_limit_error",
             "429 %r %r" % (h, j))
    print("%d answered, %d told to retry" % (len(ok), len(busy)))


def raw_stream(url, body, key=None):
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    data = json.dumps(body).encode()
    auth = b"Authorization: Bearer %s\r\n" % key.encode() if key else b""
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\n" + auth + b"Content-Length: %d\r\n\r\n" % len(data) +
              data)
    return s


def disconnect(url):
    s = raw_stream(url, {"messages": [{"role": "user", "content": "Go on and on."}],
                         "max_tokens": 150, "stream": True,
                         "temperature": 1.0})
    got = b""
    while b"data: " not in got:
        need(not got.startswith(b"HTTP/1.1 ") or got.startswith(b"HTTP/1.1 200"),
             "the stream was refused: %r" % got[:300])
        b = s.recv(4096)
        need(b, "the stream ended before its first chunk")
        got += b
    s.close()  # hang up mid-stream
    time.sleep(0.3)
    st, _, body = post(url, {"messages": [{"role": "user", "content": "Still there?"}],
                             "max_tokens": 4})
    need(st == 200, "after a hang-up: %r %r" % (st, body))


def stream_done(url, key=None):
    s = raw_stream(url, {"messages": [{"role": "user", "content": "Go on."}],
                         "max_tokens": 150, "n": 6, "stream": True, "temperature": 1.0}, key)
    got = b""
    said = False
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
        if not said and b"data: " in got:
            print("first chunk", flush=True)
            said = True
        if b"data: [DONE]" in got:
            break
    need(b"data: [DONE]" in got, "the stream was cut: %r" % got[-200:])
    print("stream complete")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"client": client, "load": load, "disconnect": disconnect,
     "stream-done": stream_done}[cmd](*args)


if __name__ == "__main__":
    main()
