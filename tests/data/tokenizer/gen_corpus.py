#!/usr/bin/env python3
"""gen_corpus.py - the tokenizer's test and benchmark corpus, made the same
byte for byte on every run from a fixed seed (its own PRNG, so Python's
random module changing cannot change it).

    python3 tests/data/tokenizer/gen_corpus.py OUT.txt [MEGABYTES [SECTION,...]]

Without MEGABYTES: the test corpus, ~4.6 MB: rounds of every section below
until 2 MB, then the sweep of code points.  With MEGABYTES: rounds of the
named sections (default all but the sweep) until that size, for
bench/tokenizer.sh.

Sections, each aimed at a part of the pre-split or the merge:
  prose       English, contractions in every case ('s 'S 'Ll 'RE), quotes
  code        C, Python, shell: tabs, indentation, trailing spaces, CRLF lines
  markdown    headings, lists, tables, links, fences, HTML, "<|endoftext|>"
  cjk         Han, kana, Hangul, CJK punctuation, full-width digits, mixed Latin
  emoji       skin tones, ZWJ families, flags, keycaps, variation selectors
  spaces      runs of ' ' \\t \\r\\n \\r \\v \\f U+00A0 U+0085 U+2028 U+3000 between words
  digits      long runs, decimals, phone numbers, other scripts' digits, 2, 1/2
  repaired    random bytes decoded as UTF-8 with U+FFFD for each invalid sequence
  fuzz        random characters from a palette of the classes' edges
  long_runs   words, punctuation, digit and space runs of 256-3000 chars
  sweep       every code point of planes 0-1 (some of 2, 3, 14) in "1{c}2345 a{c}b"
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

    def chance(self, percent):
        return self.below(100) < percent


WORDS = ("the of and to in is was that for it with as his on be at by had are but from "
         "not have this which she they or an were her all their there been one will would "
         "database token vector pipeline chunk embedding index query schema migration "
         "knowledge source document learning project cluster replica throughput latency "
         "because although however therefore meanwhile nevertheless "
         "naïve café résumé façade coöperate Zürich São Paulo Kraków Ångström").split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve",
                "'M", "'LL", "'lL", "'D", "'x", "'", "''", "'ſ", "’s", "'em", "'99"]
PUNCT = list(".,;:!?") + ["...", " -- ", " - ", "(", ")", "\"", "“", "”", "«", "»", "—"]


def prose(r):
    out = []
    for _ in range(40 + r.below(40)):
        sent = []
        for k in range(3 + r.below(15)):
            w = r.pick(WORDS)
            if k == 0 or r.chance(5):
                w = w.capitalize()
            if r.chance(3):
                w = w.upper()
            if r.chance(10):
                w += r.pick(CONTRACTIONS)
            if r.chance(8):
                w += r.pick(PUNCT)
            sent.append(w)
        out.append(" ".join(sent) + r.pick([".", "!", "?", ".\"", "...", ""]))
        if r.chance(15):
            out.append("\n\n" if r.chance(70) else "\n")
    return " ".join(out)


CODE = [
    "#include <stdio.h>\n\nint main(int argc, char **argv)\n{\n\tfor (int i = 0; i < argc; i++)\n"
    "\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n\treturn 0;   \n}\n",
    "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n"
    "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nprint(fib(100))  # 354224848179261915075\n",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in \"$@\"; do\n  [ -f \"$f\" ] || continue\n"
    "  sha256sum -- \"$f\" | cut -d' ' -f1\ndone\n",
    "SELECT s.id, count(*) AS n_chunks\n  FROM knowledge_sources s\n  JOIN knowledge_chunks c ON c.source_id = s.id\n"
    " WHERE s.project_id = $1 AND c.embedding <=> $2::vector < 0.25\n GROUP BY 1 ORDER BY 2 DESC;\n",
    "const x = {a: 1, 'b': [2, 3], \"c\": `t${y}`};\nif (x?.a !== undefined && x.b.length >= 2) {\n"
    "  console.log(x['b'][0] ** 2 >>> 1, /[a-z]+\\d{2,}/gi.test(s));\n}\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|i| i * i).collect();\n    println!(\"{:?}\", v);\n}\n",
]


def code(r):
    out = []
    for _ in range(6 + r.below(6)):
        block = r.pick(CODE)
        if r.chance(30):
            block = block.replace("\n", "\r\n")
        if r.chance(20):
            block = block.replace("    ", "\t")
        if r.chance(20):
            block = block.replace("\n", "  \n")
        out.append(block)
    return "\n".join(out)


def markdown(r):
    out = []
    for i in range(4 + r.below(4)):
        out.append("#" * (1 + r.below(4)) + " " + prose(r)[:60].strip() + "\n\n")
        out.append(prose(r)[:400] + "\n\n")
        out.append("- item one\n- **bold** and _italic_ and `code`\n  * nested [link](https://example.com/a_b?c=1&d=2#x)\n\n")
        out.append("| col | n |\n|-----|---:|\n| a | 1 |\n| b | 22 |\n\n")
        out.append("```python\n" + CODE[1] + "```\n\n")
        out.append("> quote with <|endoftext|> and <|fim_prefix|> inside\n>\n> <br/> &amp; &#8212;\n\n")
        out.append("1. one\n2. two\n10. ten\n\n---\n\n***\n\n")
    return "".join(out)


def rand_range(r, lo, hi):
    return chr(lo + r.below(hi - lo + 1))


def cjk(r):
    out = []
    for _ in range(300 + r.below(200)):
        k = r.below(10)
        if k < 4:
            out.append("".join(rand_range(r, 0x4E00, 0x9FFF) for _ in range(1 + r.below(8))))
        elif k == 4:
            out.append("".join(rand_range(r, 0x3041, 0x3096) for _ in range(1 + r.below(6))))
        elif k == 5:
            out.append("".join(rand_range(r, 0x30A1, 0x30FA) for _ in range(1 + r.below(6))))
        elif k == 6:
            out.append("".join(rand_range(r, 0xAC00, 0xD7A3) for _ in range(1 + r.below(5))))
        elif k == 7:
            out.append(r.pick(["。", "、", "「", "」", "！", "？", "（", "）", "・", "ー", "　", "～"]))
        elif k == 8:
            out.append("".join(rand_range(r, 0xFF10, 0xFF19) for _ in range(1 + r.below(5))))
        else:
            out.append(r.pick([" Tokyo ", "PostgreSQL", " 2024年", "第3章", "v1.2", " OK "]))
        if r.chance(5):
            out.append("\n")
    return "".join(out)


EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "#️⃣",
         "❤️", "✨", "🔥", "🚀", "🧑🏿‍🚀", "☕", "⌛", "🫠", "🙇‍♀️", "©️", "™"]


def emoji(r):
    out = []
    for _ in range(300 + r.below(200)):
        out.append(r.pick(EMOJI) * (1 + r.below(3)))
        if r.chance(40):
            out.append(r.pick([" ", "", "  ", " ok ", "!", "\n", "wow", " 100 "]))
    return "".join(out)


SPACES = [" ", "  ", "   ", "\t", "\t\t", " \t ", "\n", "\r\n", "\r", "\n\n", "\r\n\r\n",
          " \n", "  \r\n  ", "\x0b", "\x0c", "\u00a0", "\u0085", "\u2028", "\u2029", "\u3000",
          "\u2003", "\u202f", "\u200b", "\ufeff", " \u00a0 "]


def spaces(r):
    out = []
    for _ in range(600 + r.below(300)):
        out.append(r.pick(SPACES) * (1 + r.below(3)))
        out.append(r.pick(WORDS + ["!", "(x)", "12", "'s", "-", "é", "世界", "ok."]))
    out.append("   ")   # trailing spaces before the next section
    return "".join(out)


def digits(r):
    out = []
    for _ in range(400 + r.below(200)):
        k = r.below(9)
        if k == 0:
            out.append("".join(str(r.below(10)) for _ in range(1 + r.below(40))))
        elif k == 1:
            out.append("%d.%d" % (r.below(100000), r.below(1000)))
        elif k == 2:
            out.append("+1 (%03d) %03d-%04d" % (r.below(1000), r.below(1000), r.below(10000)))
        elif k == 3:
            out.append("".join(rand_range(r, 0x660, 0x669) for _ in range(1 + r.below(7))))
        elif k == 4:
            out.append("".join(rand_range(r, 0x966, 0x96F) for _ in range(1 + r.below(7))))
        elif k == 5:
            out.append(r.pick(["x²", "½", "¾", "Ⅻ", "ⅷ", "①②③", "𝟙𝟚𝟛", "〇", "五"]))
        elif k == 6:
            out.append("2024-%02d-%02dT%02d:%02d:%02dZ" % (1 + r.below(12), 1 + r.below(28),
                                                          r.below(24), r.below(60), r.below(60)))
        elif k == 7:
            out.append("0x%x" % r.next())
        else:
            out.append("%de%d" % (r.below(1000), r.below(30)))
        out.append(r.pick([" ", ", ", "\n", "", "a", "%", " - "]))
    return "".join(out)


def repaired(r):
    out = []
    for _ in range(300):
        raw = bytes(r.below(256) if r.chance(50) else r.pick(b"abc \n\xc3\xa9\xe4\xb8\x80\xf0\x9f\x98\x80")
                    for _ in range(1 + r.below(30)))
        out.append(raw.decode("utf-8", errors="replace"))
        out.append(r.pick([" ", "\n", "", " word "]))
    return "".join(out).replace("\x00", "\ufffd")


PALETTE = (list(" \t\n\r'!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~0123456789aAsStTrReEvVmMlLdDzZ")
           + ["é", "ß", "ſ", "ı", "İ", "µ", "ª", "º", "Ω", "ж", "Ж", "ع", "א", "ก", "क", "ि",
              "\u0301", "\u0308", "\u200d", "\ufe0f", "\u00a0", "\u3000", "\u2028", "\u0085",
              "\u00ad", "\u2019", "—", "€", "¥", "©", "١", "٣", "²", "½", "Ⅷ", "〇", "世", "界",
              "ｈ", "１", "😀", "🏽", "\U0001d400", "\U00020000", "\U0001e4f0", "\U00011f50",
              "\U00010d40", "\U00011de0", "\U000e0001", "\U000f0000", "\ufffd", "\x7f",
              "\x01", "\x1f"])


def fuzz(r):
    return "".join(r.pick(PALETTE) for _ in range(20000 + r.below(10000)))


def long_runs(r):
    out = []
    for _ in range(8):
        n = 256 + r.below(2800)
        k = r.below(6)
        if k == 0:
            out.append("".join(r.pick("etaoinshrdlu") for _ in range(n)))
        elif k == 1:
            out.append(r.pick("=-*#~_.") * n)
        elif k == 2:
            out.append("".join(str(r.below(10)) for _ in range(n)))
        elif k == 3:
            out.append(" " * n + "x")
        elif k == 4:
            out.append("".join(rand_range(r, 0x4E00, 0x4E20) for _ in range(n // 3)))
        else:
            out.append("ab" * (n // 2))
        out.append(r.pick(["\n", " ", "!", ""]))
    return "".join(out)


SECTIONS = [prose, code, markdown, cjk, emoji, spaces, digits, repaired, fuzz, long_runs]


def sweep():
    planes = list(range(0, 0x20000))
    planes += list(range(0x20000, 0x40000, 61)) + list(range(0xE0000, 0xE0200))
    out = []
    for cp in planes:
        if 0xD800 <= cp <= 0xDFFF or cp == 0:
            continue
        c = chr(cp)
        out.append("1%s2345 a%sb%s\n" % (c, c, c))
    return "".join(out)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: gen_corpus.py OUT.txt [MEGABYTES]\n")
        return 2
    target = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 2_000_000
    sections = SECTIONS
    if len(sys.argv) > 3:
        by_name = {f.__name__: f for f in SECTIONS}
        sections = [by_name[name] for name in sys.argv[3].split(",")]
    r = Rng(0x6B627069706521)
    parts, size = [], 0
    while size < target:
        for section in sections:
            s = section(r)
            parts.append(s)
            size += len(s.encode("utf-8"))
    if len(sys.argv) <= 2:
        parts.append(sweep())
    with open(sys.argv[1], "w", encoding="utf-8", newline="") as f:
        f.write("".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
