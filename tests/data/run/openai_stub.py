#!/usr/bin/env python3
"""openai_stub.py - an OpenAI-compatible POST /v1/embeddings server for the
run tests (tests/integration/run_openai.sh).  Each text gets a deterministic
1536-dim vector drawn from its SHA-256; every request is appended to LOG as
one line: the number of texts, the bearer token's length (never the token),
the number of requests being served when it arrived (itself included: each
is held 50 ms, so requests in flight overlap) and the texts' SHA-256s,
comma-separated.  Prints the port it listens on, then serves until killed.
An optional second argument holds each request that many seconds instead
(a slow server, for the progress line's requests in flight).

    python3 openai_stub.py LOG [SECONDS]
"""
import hashlib, http.server, json, random, sys, threading, time

LOG = sys.argv[1]
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
lock = threading.Lock()
active = 0


def vector(text):
    rnd = random.Random(hashlib.sha256(text.encode()).digest())
    return [rnd.uniform(-1, 1) for _ in range(1536)]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        auth = self.headers.get("Authorization", "")
        global active
        hashes = ",".join(hashlib.sha256(t.encode()).hexdigest() for t in texts)
        with lock:
            active += 1
            with open(LOG, "a") as f:
                f.write(f"{len(texts)} {len(auth)} {active} {hashes}\n")
        time.sleep(DELAY)
        with lock:
            active -= 1
        out = json.dumps({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": vector(t)}
                     for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
