#!/usr/bin/env python3
"""gen_markdown.py - the chunk benchmark's Markdown corpus, the same bytes on
every run (its own PRNG, so a change to Python's random module cannot change
it).

    python3 bench/gen_markdown.py OUT.md [MEGABYTES]     (default 200)

Documents are separated by one byte 0x1E (ASCII record separator), which the
text never holds; bench/chunk_bench.c splits on it.  A document is 1-64 KB
(every 500th one 1 MB): a title, then sections of ## and ### headings with
prose paragraphs, bullet and numbered lists, fenced code (Python, C, shell),
pipe tables, block quotes, links and inline code, a CJK paragraph now and
then and some emoji.  Blocks are drawn from a pool of 20,000 made first, so
the generator runs at disk speed; 7 MB of distinct text is enough for a
throughput figure (the tokenizer keeps no cache of pieces).
"""
import sys

MASK = (1 << 64) - 1


class Rng:
    """xorshift64*: small, fast, and fixed forever."""

    def __init__(self, seed):
        self.s = seed & MASK or 1

    def next(self):
        s = self.s
        s ^= (s >> 12)
        s ^= (s << 25) & MASK
        s ^= (s >> 27)
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & MASK

    def below(self, n):
        return self.next() % n

    def pick(self, seq):
        return seq[self.below(len(seq))]


WORDS = ("the of and to in is was that for it with as on be at by had are but from not "
         "have this which they or an were all their there been one will would can each "
         "database token vector pipeline chunk embedding index query schema migration "
         "knowledge source document learning project cluster replica throughput latency "
         "because although however therefore meanwhile configuration connection batch "
         "transaction loader runner worker scheduler nightly import export release "
         "naïve café résumé Zürich").split()
CJK = ("数据库连接配置需要在启动前完成", "向量索引在批量导入后重建", "知识库的文档按标题切分",
       "データベースの移行は順番に実行されます", "検索結果は類似度で並べ替えられる",
       "청크는 토큰 수로 제한됩니다", "임베딩 모델이 바뀌면 다시 계산합니다")
EMOJI = ("🚀", "✅", "⚠️", "👍🏽", "🎉", "📦", "🔧")
CODE = (
    ("python", ["def load(path):", "    with open(path, encoding=\"utf-8\") as f:",
                "        for line in f:", "            yield line.rstrip(\"\\n\")", "",
                "class Batch:", "    def __init__(self, rows=1000):", "        self.rows = rows",
                "        self.items = []", "    def add(self, item):",
                "        self.items.append(item)", "        return len(self.items) >= self.rows"]),
    ("c", ["static int add(struct batch *b, const char *s, size_t n)", "{",
           "    if (b->n == b->cap) {", "        b->cap = b->cap ? b->cap * 2 : 64;",
           "        b->rows = realloc(b->rows, b->cap * sizeof *b->rows);", "    }",
           "    b->rows[b->n++] = strndup(s, n);", "    return b->n >= b->limit;", "}"]),
    ("bash", ["set -euo pipefail", "export DATABASE_URL=\"postgres://localhost/kb\"",
              "kbpipe migrate up", "kbpipe run pipelines/docs.yaml --report run.json",
              "jq '.sources[] | select(.rejected > 0)' run.json",
              "for f in docs/*.md; do wc -c \"$f\"; done"]),
)


def sentence(r):
    n = 6 + r.below(18)
    words = [r.pick(WORDS) for _ in range(n)]
    if r.below(6) == 0:
        words[r.below(n)] = "`%s_%d`" % (r.pick(WORDS), r.below(100))
    if r.below(8) == 0:
        words[r.below(n)] = "[%s](https://example.com/%s)" % (r.pick(WORDS), r.pick(WORDS))
    if r.below(10) == 0:
        words[r.below(n)] = "**%s**" % r.pick(WORDS)
    s = " ".join(words)
    return s[0].upper() + s[1:] + r.pick((".", ".", ".", "?", "!", ":"))


def paragraph(r):
    return " ".join(sentence(r) for _ in range(1 + r.below(7)))


def block(r):
    k = r.below(100)
    if k < 55:
        p = paragraph(r)
        if r.below(12) == 0:
            p += " " + r.pick(EMOJI)
        return p
    if k < 67:
        mark = r.pick(("-", "*", "1."))
        return "\n".join("%s %s" % (mark, sentence(r)) for _ in range(2 + r.below(6)))
    if k < 77:
        lang, lines = r.pick(CODE)
        start = r.below(len(lines) // 2)
        body = lines[start:start + 3 + r.below(len(lines))]
        return "```%s\n%s\n```" % (lang, "\n".join(body))
    if k < 84:
        cols = 2 + r.below(3)
        head = "| " + " | ".join(r.pick(WORDS).title() for _ in range(cols)) + " |"
        rule = "|" + "|".join("---" for _ in range(cols)) + "|"
        rows = ["| " + " | ".join(r.pick(WORDS) for _ in range(cols)) + " |"
                for _ in range(2 + r.below(8))]
        return "\n".join([head, rule] + rows)
    if k < 90:
        return "> " + sentence(r) + "\n> " + sentence(r)
    if k < 95:
        return "。".join(r.pick(CJK) for _ in range(2 + r.below(5))) + "。"
    return "%s %s" % (sentence(r), r.pick(EMOJI))


def document(r, pool, size):
    out = ["# " + " ".join(r.pick(WORDS).title() for _ in range(2 + r.below(4)))]
    n = 0
    while n < size:
        if r.below(6) == 0:
            h = "#" * (2 + r.below(2)) + " " + " ".join(r.pick(WORDS).title()
                                                         for _ in range(1 + r.below(4)))
            out.append(h)
        b = pool[r.below(len(pool))]
        out.append(b)
        n += len(b) + 2
    return "\n\n".join(out) + "\n"


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: gen_markdown.py OUT.md [MEGABYTES]")
    limit = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 200 * 10**6
    r = Rng(0x6B627069706521)
    pool = [block(r) for _ in range(20000)]
    written = 0
    i = 0
    with open(sys.argv[1], "wb") as f:
        while written < limit:
            i += 1
            size = 10**6 if i % 500 == 0 else 1000 + r.below(r.pick((4000, 16000, 64000)))
            data = document(r, pool, size).encode("utf-8")
            if written:
                f.write(b"\x1e")
            f.write(data)
            written += len(data) + 1


if __name__ == "__main__":
    main()
