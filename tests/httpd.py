#!/usr/bin/env python3
"""httpd.py: a local HTTP/1.1 server for the download tests, with faults.

Serves the files under --root on 127.0.0.1 at a port the OS picks, writes
that port to --port-file (atomically, so a waiting script never reads half
of it), logs one line per request to --log, and exits by itself after
--timeout seconds.  Python standard library only.

Faults are chosen per request by query parameters, by a leading path part
"/_f/k=v,k=v/" (so a whole hf:// endpoint can be faulty), or for every
request by $HTTPD_FAULTS ("k=v,k=v").  Counted faults count per request
target (path and query), so each test uses its own target.
  status=CODE times=N retry_after=S  answer CODE (with Retry-After: S when
                                     given) to the first N requests, then
                                     serve normally (N defaults to 1)
  drop=BYTES drops=N      the first N GETs (default 1) send the headers and
                          BYTES bytes of the body, then cut the connection
  norange=1               ignore Range and If-Range: always 200, whole file
  short=K                 announce K bytes more than the file has, send the
                          file, close the connection
  noetag=1                no ETag header
  nolength=1              no Content-Length: the body ends when the
                          connection closes
  redirect=1              answer 302 to the same file under "/_cdn", with
                          the hub's X-Linked-Size and X-Linked-Etag
                          (the file's sha256) on the redirect
  linked_size=N linked_etag=E  override those two headers
Every response carries a strong ETag (a hash of the file) unless noetag;
If-Range with another ETag gets the whole file, as RFC 9110 says.
A log line: METHOD TARGET status=S range=R if-range=I auth=A
"""
import argparse
import hashlib
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {}
LOCK = threading.Lock()
ARGS = None


def bump(key):
    """Returns how many times key was seen before this call."""
    with LOCK:
        n = COUNTS.get(key, 0)
        COUNTS[key] = n + 1
        return n


def parse_faults(text):
    out = {}
    for item in text.replace("&", ",").split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k] = v
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gpt-test-httpd"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status):
        line = "%s %s status=%s range=%s if-range=%s auth=%s\n" % (
            self.command, self.path, status,
            self.headers.get("Range", "-"), self.headers.get("If-Range", "-"),
            self.headers.get("Authorization", "-"))
        with LOCK:
            with open(ARGS.log, "a") as f:
                f.write(line)

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def reply(self, status, headers, body=b"", head=False):
        self.log_line(status)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def serve(self, head):
        target = self.path
        url = urllib.parse.urlsplit(target)
        faults = parse_faults(os.environ.get("HTTPD_FAULTS", ""))
        faults.update(parse_faults(url.query))
        path = urllib.parse.unquote(url.path)
        if path.startswith("/_f/"):
            spec, _, rest = path[4:].partition("/")
            faults.update(parse_faults(spec))
            path = "/" + rest
        cdn = path.startswith("/_cdn/")
        if cdn:
            path = path[5:]
            faults.pop("redirect", None)
        n = bump((self.command == "GET", target))
        n_any = bump(("any", target))

        if "status" in faults and n_any < int(faults.get("times", "1")):
            hdrs = []
            if "retry_after" in faults:
                hdrs.append(("Retry-After", faults["retry_after"]))
            self.reply(int(faults["status"]), hdrs, b"fault\n", head)
            return

        full = os.path.realpath(os.path.join(ARGS.root, path.lstrip("/")))
        root = os.path.realpath(ARGS.root)
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            self.reply(404, [], b"not found\n", head)
            return
        with open(full, "rb") as f:
            data = f.read()
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:20]

        if faults.get("redirect") == "1":
            loc = "/_cdn" + urllib.parse.quote(path)
            q = [kv for kv in url.query.split("&") if kv and not kv.startswith("redirect=")]
            if q:
                loc += "?" + "&".join(q)
            hdrs = [("Location", loc),
                    ("X-Linked-Size", faults.get("linked_size", str(len(data)))),
                    ("X-Linked-Etag", faults.get(
                        "linked_etag", '"%s"' % hashlib.sha256(data).hexdigest()))]
            self.reply(302, hdrs, b"", head)
            return

        hdrs = [("Accept-Ranges", "bytes")]
        if faults.get("noetag") != "1":
            hdrs.append(("ETag", etag))
        if "linked_size" in faults and not cdn:
            hdrs.append(("X-Linked-Size", faults["linked_size"]))
        if "linked_etag" in faults and not cdn:
            hdrs.append(("X-Linked-Etag", faults["linked_etag"]))

        start, status = 0, 200
        rng = self.headers.get("Range")
        ifr = self.headers.get("If-Range")
        if rng and faults.get("norange") != "1" and (ifr is None or ifr == etag):
            spec = rng.strip()
            if spec.startswith("bytes=") and spec[6:].endswith("-") and spec[6:-1].isdigit():
                start = int(spec[6:-1])
                if start >= len(data):
                    self.reply(416, hdrs + [("Content-Range", "bytes */%d" % len(data))],
                               b"", head)
                    return
                status = 206
                hdrs.append(("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data))))
        body = data[start:]
        announced = len(body)
        cut = None
        if "short" in faults:
            announced += int(faults["short"])
            cut = len(body)
        if "drop" in faults and not head and n < int(faults.get("drops", "1")):
            cut = min(int(faults["drop"]), len(body))
        if faults.get("nolength") == "1":
            cut = len(body) if cut is None else cut
        else:
            hdrs.append(("Content-Length", str(announced)))
        if cut is None:
            self.reply(status, hdrs, body, head)
            return
        self.log_line("%d-cut-at-%d" % (status, cut))
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body[:cut])
            self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    global ARGS
    ap = argparse.ArgumentParser(description="local HTTP server with faults, for tests")
    ap.add_argument("--root", required=True, help="folder to serve")
    ap.add_argument("--port-file", required=True, help="where to write the port")
    ap.add_argument("--log", default=os.devnull, help="request log")
    ap.add_argument("--timeout", type=float, default=60, help="seconds before exiting")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.port_file)

    def stop():
        time.sleep(ARGS.timeout)
        os._exit(0)
    threading.Thread(target=stop, daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
