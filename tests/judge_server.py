#!/usr/bin/env python3
"""A judge that misbehaves on purpose, for tests/cli/judge.sh: an
OpenAI-compatible /v1/chat/completions on 127.0.0.1 whose answer to each
record follows a script keyed by a word in the prompt.

    judge_server.py --port-file F --log F [--key KEY]

Scripts (the first word of the record's instruction picks one; each
request for that record takes the next step, the last step repeats):
    alpha   429 (Retry-After: 1), then "85"
    bravo   500, then "70."
    charlie a body that is not JSON, then " 100 "
    delta   no answer for 5 s (past the client's timeout), then "0"
    echo    "I would say 50" (not a score)
    foxtrot 500 always
    other   "42"
With --key, a request without "Authorization: Bearer KEY" gets 401.
Every request is logged as one line "WORD STEP" to the log.
"""
import argparse
import http.server
import json
import threading
import time

SCRIPTS = {
    "alpha": [(429, "1", None), (200, None, "85")],
    "bravo": [(500, None, None), (200, None, "70.")],
    "charlie": [(200, None, "GARBAGE"), (200, None, " 100 ")],
    "delta": [("sleep", None, None), (200, None, "0")],
    "echo": [(200, None, "I would say 50")],
    "foxtrot": [(500, None, None)],
}
counts = {}
lock = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--key")
    a = ap.parse_args()
    log = open(a.log, "a", buffering=1)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, code, body, retry_after=None, ctype="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(n))
            if a.key and self.headers.get("Authorization") != "Bearer " + a.key:
                return self.send(401, json.dumps({"error": {"message": "bad key",
                                                            "type": "invalid_request_error"}}))
            if self.path != "/v1/chat/completions":
                return self.send(404, json.dumps({"error": {"message": "no such route"}}))
            prompt = body["messages"][0]["content"]
            word = "other"
            for w in SCRIPTS:
                if "### Instruction:\n" + w in prompt:
                    word = w
            with lock:
                k = counts.get(word, 0)
                counts[word] = k + 1
            log.write("%s %d\n" % (word, k))
            steps = SCRIPTS.get(word, [(200, None, "42")])
            code, retry, text = steps[min(k, len(steps) - 1)]
            if code == "sleep":
                time.sleep(5)
                return
            if code != 200:
                return self.send(code, json.dumps({"error": {"message": "scripted %d" % code}}),
                                 retry)
            if text == "GARBAGE":
                return self.send(200, "<html>not json", ctype="text/html")
            self.send(200, json.dumps({
                "id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}]}))

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    with open(a.port_file, "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
