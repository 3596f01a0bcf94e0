#!/usr/bin/env python3
"""batch_output.py - what OpenAI's Batch API would return for a request file
of `kbpipe embed export`: one output line per request, in the Batch API's
output format, with a deterministic unit vector drawn from the input's
SHA-256 (tests/integration/run_export.sh, docs/embeddings.md).  Checks each
request first: POST /v1/embeddings, 1536 dimensions, one input whose SHA-256
is the custom_id.

    python3 batch_output.py REQUESTS.jsonl >OUTPUT.jsonl
"""
import hashlib, json, math, random, sys

for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    rq = json.loads(line)
    body = rq["body"]
    text = body["input"]
    assert rq["method"] == "POST" and rq["url"] == "/v1/embeddings", f"line {n}: {rq['url']}"
    assert body["dimensions"] == 1536 and isinstance(text, str), f"line {n}: body"
    assert hashlib.sha256(text.encode()).hexdigest() == rq["custom_id"], f"line {n}: custom_id"
    rnd = random.Random(hashlib.sha256(text.encode()).digest())
    v = [rnd.gauss(0, 1) for _ in range(1536)]
    norm = math.sqrt(sum(x * x for x in v))
    print(json.dumps({
        "id": f"batch_req_{n}", "custom_id": rq["custom_id"],
        "response": {"status_code": 200, "request_id": f"req_{n}", "body": {
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": 0,
                      "embedding": [round(x / norm, 7) for x in v]}],
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}},
        "error": None}, separators=(",", ":")))
