#!/usr/bin/env python3
"""corpus.py - the torture test's corpus (tests/torture/torture.sh), one
version at a time:

    python3 tests/torture/corpus.py OUTDIR VERSION [DIVISOR]   # VERSION: A or B

writes OUTDIR/docs/*.md (Markdown files), OUTDIR/issues.json (a gh issue
export) and OUTDIR/learnings.csv (learnings, with near copies for the dedup
pass).  The same arguments give the same bytes.

  A  90 files of 3 sections, 40 issues, 150 learnings and 15 near copies
     (L-0151.. copy L-0001, L-0011, ... with one word changed)
  B  A edited: every 3rd file's 2nd section, every 4th issue body and every
     5th learning that is neither copied nor a copy are rewritten; files
     i % 10 == 0, issues i % 13 == 0 and learnings L-0149, L-0150 are gone;
     10 files, 4 issues and 2 learnings are new.  The near copies are the
     same in A and B, so the keeper of every pair is the same in any run
     order (the original is older, or sorts first).

DIVISOR (default 1) divides the counts of files, issues, learnings and
copies: 3 gives the short form of `make check`.

Words are made of random syllables, so unrelated texts share few words and
only the planted copies are near duplicates under the hash embedder.
"""
import csv
import hashlib
import json
import os
import sys

SYL = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fu", "gi",
       "ho", "ja", "ku", "le", "mo", "ni", "po", "ri", "se", "tu", "wa", "ze"]


def words(tag, n):
    """n pseudo-words drawn from sha256(tag, i): fixed forever."""
    out = []
    for i in range(n):
        h = hashlib.sha256(("%s/%d" % (tag, i)).encode()).digest()
        k = 2 + h[0] % 3
        out.append("".join(SYL[h[j + 1] % len(SYL)] for j in range(k)))
    return " ".join(out)


def para(tag, version, edited):
    text = words(tag, 36)
    return text + (" Edited in version %s." % version if edited else ".")


N_FILES, N_ISSUES, N_LEARN, N_COPIES = 90, 40, 150, 15


def write_docs(out, v):
    d = os.path.join(out, "docs")
    os.makedirs(d, exist_ok=True)
    ids = list(range(N_FILES))
    if v == "B":
        ids = [i for i in ids if i % 10 != 0] + list(range(200, 210))
    for i in ids:
        secs = []
        for j in range(3):
            edited = v == "B" and i % 3 == 0 and j == 1
            secs.append("## Section %d\n\n%s\n" % (j + 1, para("doc%d.%d" % (i, j), v, edited)))
        with open(os.path.join(d, "f%04d.md" % i), "w") as f:
            f.write("# Document %d\n\n%s" % (i, "\n".join(secs)))


def write_issues(out, v):
    nums = list(range(1, N_ISSUES + 1))
    if v == "B":
        nums = [n for n in nums if n % 13 != 0] + list(range(101, 105))
    issues = []
    for n in nums:
        edited = v == "B" and n % 4 == 0
        issues.append({
            "number": n, "title": "Issue %d %s" % (n, words("it%d" % n, 3)),
            "body": para("issue%d" % n, v, edited),
            "author": {"login": "dev%d" % (n % 5)}, "state": "OPEN",
            "labels": [{"name": "torture"}],
            "comments": [{"author": {"login": "rev"}, "body": words("ic%d" % n, 12),
                          "createdAt": "2024-01-02T00:00:00Z"}],
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-02T00:00:00Z",
            "url": "https://github.com/acme/torture/issues/%d" % n,
        })
    with open(os.path.join(out, "issues.json"), "w") as f:
        json.dump(issues, f, indent=1)


def write_learnings(out, v):
    originals = {1 + 10 * k for k in range(N_COPIES)}
    rows = []
    ids = list(range(1, N_LEARN + 1))
    if v == "B":
        ids = [i for i in ids if i not in (N_LEARN - 1, N_LEARN)] + [301, 302]
    for i in ids:
        edited = v == "B" and i % 5 == 0 and i not in originals
        rows.append(("L-%04d" % i, "Learning %d" % i, para("learn%d" % i, v, edited)))
    for k in range(N_COPIES):
        src = 1 + 10 * k
        text = para("learn%d" % src, v, False).split(" ")
        text[5] = "zuzuzu"   # one word changed: a near copy
        rows.append(("L-%04d" % (N_LEARN + 1 + k), "Learning %d" % src, " ".join(text)))
    with open(os.path.join(out, "learnings.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "content", "learning_type", "category"])
        for r in sorted(rows):
            w.writerow(list(r) + ["insight", "torture"])


def main():
    global N_FILES, N_ISSUES, N_LEARN, N_COPIES
    out, v = sys.argv[1], sys.argv[2]
    div = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    N_FILES, N_ISSUES, N_LEARN, N_COPIES = (n // div for n in
                                            (N_FILES, N_ISSUES, N_LEARN, N_COPIES))
    if v not in ("A", "B"):
        sys.exit("corpus.py: VERSION is A or B")
    if os.path.isdir(os.path.join(out, "docs")):
        for name in os.listdir(os.path.join(out, "docs")):
            os.remove(os.path.join(out, "docs", name))
    os.makedirs(out, exist_ok=True)
    write_docs(out, v)
    write_issues(out, v)
    write_learnings(out, v)


if __name__ == "__main__":
    main()
