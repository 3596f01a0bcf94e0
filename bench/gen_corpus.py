#!/usr/bin/env python3
"""gen_corpus.py - a deterministic Markdown corpus for `kbpipe run`: the load
benchmark (bench/load.sh) and the kill/concurrency tests
(tests/integration/run_kill.sh, run_e2e.sh).

    python3 bench/gen_corpus.py OUTDIR [--files N] [--sections S] [--words W]
                                [--rev TAG] [--seed SEED]

Writes N files OUTDIR/dNN/fNNNNN.md (100 per folder).  Each file is a
"# Title" and S sections "## Section j" of one prose paragraph of about W
words (+-20%), drawn from a fixed vocabulary with its own PRNG, so the same
arguments give the same bytes on every machine and Python version.  Every
paragraph ends with "Revision rev-TAG.": regenerating with another --rev
edits every paragraph of every file (and nothing else), and a test can tell
from any chunk which version it came from.  Paragraph text depends on
(seed, file, section) only, so no two chunks share a content hash.

With a markdown splitter and a chunk size of about 2W tokens (84 for the
default 40 words, 300 for 180: measured with the cl100k tokenizer), each
section becomes one chunk: N x S chunks.  Prints "files=N chunks~=N*S
bytes=B" on stdout.
"""
import argparse
import os

MASK = (1 << 64) - 1


class Rng:
    """xorshift64*: small, fast and fixed forever."""

    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15) & MASK or 1
        for _ in range(4):
            self.next()

    def next(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & MASK
        s ^= s >> 27
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & MASK

    def below(self, n):
        return self.next() % n


WORDS = ("the of and to in is was that for it with as on be at by had are but from not "
         "have this which they or an were all their there been one will would can each "
         "database token vector pipeline chunk embedding index query schema migration "
         "knowledge source document learning project cluster replica throughput latency "
         "because although however therefore meanwhile configuration connection batch "
         "transaction loader runner worker scheduler nightly import export release "
         "server client socket timeout retry backoff checksum manifest partition shard "
         "operator supervisor service port allocation secret template estimate factor "
         "epic issue task comment label milestone review merge branch commit deploy "
         "rollback snapshot backup restore vacuum analyze autovacuum checkpoint wal "
         "replication failover standby primary lag bloat tuple page buffer cache hit "
         "miss eviction memory disk network latency bandwidth queue consumer producer "
         "event stream offset cursor window aggregate join filter sort hash scan seek "
         "plan cost estimate statistics histogram sample bucket threshold similarity "
         "cosine distance neighbor graph layer entry level search recall precision").split()


def paragraph(rng, words):
    n = max(3, words - words // 5 + rng.below(2 * (words // 5) + 1))
    out = []
    sentence = 0
    for i in range(n):
        w = WORDS[rng.below(len(WORDS))]
        if sentence == 0:
            w = w.capitalize()
        sentence += 1
        if sentence >= 8 + rng.below(8) or i == n - 1:
            w += "."
            sentence = 0
        out.append(w)
    return " ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--sections", type=int, default=4)
    ap.add_argument("--words", type=int, default=40)
    ap.add_argument("--rev", default="A")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    total = 0
    for f in range(a.files):
        rng = Rng(a.seed * 1000003 + f)
        parts = ["# Document %d of the generated corpus\n" % f]
        for s in range(a.sections):
            parts.append("\n## Section %d.%d\n\n%s Revision rev-%s.\n"
                         % (f, s, paragraph(rng, a.words), a.rev))
        text = "".join(parts)
        d = os.path.join(a.outdir, "d%02d" % (f // 100))
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "f%05d.md" % f)
        data = text.encode("utf-8")
        total += len(data)
        with open(path, "wb") as fh:
            fh.write(data)
    print("files=%d chunks~=%d bytes=%d" % (a.files, a.files * a.sections, total))


if __name__ == "__main__":
    main()
