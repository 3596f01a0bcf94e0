#!/usr/bin/env python3
"""gen_line.py PATH BYTES - one line of BYTES bytes (newline included) of
words from a small fixed vocabulary, deterministic: the max-size one-line
input of bench/perf.sh (5) and tests/integration/run_memory.sh."""
import random
import sys


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "vector", "index", "chunk", "token", "merge"]
    out, size = [], 0
    while size < n - 16:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    with open(path, "w") as f:
        f.write(" ".join(out)[: n - 1] + "\n")


if __name__ == "__main__":
    main()
