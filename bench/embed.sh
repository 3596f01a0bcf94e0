#!/usr/bin/env bash
# bench/embed.sh - src/embed's figures (issue 6), printed, never asserted:
#   1. kbpipe-hash-v1 throughput: chunks/s and MB/s on one core over a
#      generated Markdown corpus (bench/gen_markdown.py; chunked first,
#      markdown 512/64 tokens, not timed), best of 3;
#   2. embed_normalize_rows() cost per 1536-dim vector (CBLAS), best of 3;
#   3. similarity per label of tests/data/embed/pairs.tsv;
#   4. retrieval quality on tests/data/embed/questions.tsv over samples/docs:
#      recall@1, recall@5 and MRR of the hash embedder next to PostgreSQL
#      full-text ranking (ts_rank_cd over to_tsvector('english') of the same
#      chunks; the query ANDed (plainto_tsquery) and ORed).  The database
#      part needs psql and the local cluster (`make bench` starts it).
#   KBPIPE_BENCH_EMBED_MB=20   corpus size
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${KBPIPE_BENCH_OUT:-$root/bench/out/embed}
mb=${KBPIPE_BENCH_EMBED_MB:-20}
mkdir -p "$out"

bin=$out/embed_bench
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -DKB_DATADIR='"/usr/local/share/kbpipe"' \
   -o "$bin" bench/embed_bench.c src/embed/hash.c src/embed/normalize.c src/embed/blas.c \
   src/chunk/*.c src/util/*.c $(pkg-config --cflags --libs jansson libsodium) -ldl -lm
# (src/embed/blas.c opens OpenBLAS with dlopen at its first use, as kbpipe does)

corpus=$out/corpus-${mb}mb.md
[ -f "$corpus" ] || python3 bench/gen_markdown.py "$corpus" "$mb"

read -r chunks bytes hash_s n_vec norm_s <<<"$("$bin" throughput "$corpus" 3)"
awk -v c="$chunks" -v b="$bytes" -v s="$hash_s" -v n="$n_vec" -v ns="$norm_s" 'BEGIN {
  printf "embed: kbpipe-hash-v1 over %d chunks (%.1f MB of chunk text, markdown 512/64 tokens):\n", c, b / 1e6
  printf "  %.0f chunks/s, %.1f MB/s, %.1f us per chunk (one core)\n", c / s, b / 1e6 / s, s / c * 1e6
  printf "embed: normalization (cblas_dsdot + cblas_sscal, 1536 dims): %.2f us per vector (%d vectors)\n", ns / n * 1e6, n
}'

echo "embed: kbpipe-hash-v1 cosine similarity on tests/data/embed/pairs.tsv:"
"$bin" pairs tests/data/embed/pairs.tsv | sed 's/^/  /'

read -r h1 h5 hmrr nq nchunks <<<"$("$bin" retrieval tests/data/embed/questions.tsv samples/docs "$out/chunks.tsv")"
echo "embed: retrieval, $nq questions over samples/docs ($nchunks chunks), document = its best chunk:"
printf '  %-34s recall@1 %s  recall@5 %s  MRR %s\n' "kbpipe-hash-v1 (cosine)" "$h1" "$h5" "$hmrr"
grep -v '^#' tests/data/embed/questions.tsv > "$out/questions.tsv"
# the local cluster (scripts/db.sh), as bench/lib.sh finds it: temporary tables only
export PGHOST=${PGHOST:-$(scripts/db.sh dir)} PGUSER=${PGUSER:-$(scripts/db.sh user)}
if command -v psql >/dev/null && psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
  psql -X -q -d postgres -A -t -F ' ' -v ON_ERROR_STOP=1 <<SQL | while read -r v r1 r5 mrr n; do
CREATE TEMP TABLE c (doc text, body text);
\copy c FROM '$out/chunks.tsv'
CREATE TEMP TABLE q (qn serial, question text, doc text);
\copy q (question, doc) FROM '$out/questions.tsv'
WITH variants AS (
  SELECT 'and' AS v, qn, doc AS want, plainto_tsquery('english', question) AS tq FROM q
  UNION ALL
  SELECT 'or', qn, doc, replace(plainto_tsquery('english', question)::text, '&', '|')::tsquery
  FROM q
), scores AS (
  SELECT v.v, v.qn, v.want, c.doc, max(ts_rank_cd(to_tsvector('english', c.body), v.tq)) AS s
  FROM variants v CROSS JOIN c GROUP BY 1, 2, 3, 4
), ranks AS (
  SELECT t.v, t.qn,
         CASE WHEN t.s > 0 THEN 1 + (SELECT count(*) FROM scores o
                                     WHERE o.v = t.v AND o.qn = t.qn AND o.s > t.s) END AS rank
  FROM scores t WHERE t.doc = t.want
)
SELECT v, round(avg(coalesce((rank = 1)::int, 0)), 3), round(avg(coalesce((rank <= 5)::int, 0)), 3),
       round(avg(coalesce(1.0 / rank, 0)), 3), count(*)
FROM ranks GROUP BY v ORDER BY v;
SQL
    label="ts_rank_cd, plainto_tsquery (AND)"
    [ "$v" = or ] && label="ts_rank_cd, terms ORed"
    printf '  %-34s recall@1 %s  recall@5 %s  MRR %s\n' "$label" "$r1" "$r5" "$mrr"
  done
else
  echo "  ts_rank_cd: skipped (no database at $PGHOST; \`make db\` starts it)"
fi
