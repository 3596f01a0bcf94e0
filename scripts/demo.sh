#!/usr/bin/env bash
# demo.sh - the main job on the bundled samples, from an empty database:
# migrate, seed, run the sample pipelines (docs, the HTML site, the PDF
# manuals, issues, learnings with the dedup pass, and supervisor: the seeded
# issues, epics and tasks read by SQL), run one again (nothing to do), show a
# few loaded rows and the stats, then end with searches over the sample
# corpus, the last one over the schema's own issues.  Run through `make demo`, which installs,
# builds and starts the database first.
set -euo pipefail
cd "$(dirname "$0")/.."
kb=bin/kbpipe
step() { printf '\n==> %s\n' "$*"; }

step "kbpipe migrate up"
$kb migrate up
$kb migrate status

step "kbpipe seed"
$kb seed

for p in docs site manuals issues learnings supervisor; do
  step "kbpipe run pipelines/$p.yaml"
  $kb run "pipelines/$p.yaml"
done

step "kbpipe run pipelines/docs.yaml (again: unchanged sources are skipped, nothing is written)"
$kb run pipelines/docs.yaml

step "a few loaded rows"
psql -X -P pager=off -v ON_ERROR_STOP=1 -c "
  SELECT s.source_type, s.source_id, count(c.id) AS chunks, sum(c.token_count) AS tokens
    FROM knowledge_sources s JOIN projects p ON p.id = s.project_id
    LEFT JOIN knowledge_chunks c ON c.source_id = s.id
   WHERE p.name = 'supervisor-service' AND s.source_type <> 'csv'
   GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 8" -c "
  SELECT left(title, 50) AS learning, category, confidence_score AS confidence,
         metadata->>'duplicate_of' IS NOT NULL AS marked_duplicate
    FROM learnings ORDER BY (metadata ? 'duplicate_of') DESC, title LIMIT 5"

step "kbpipe stats --project supervisor-service"
$kb stats --project supervisor-service

step "kbpipe search --project supervisor-service -k 3 'how do I rotate a secret?'"
$kb search --project supervisor-service -k 3 "how do I rotate a secret?"

step "kbpipe search --project supervisor-service -k 3 --learnings 'HNSW index bulk load'"
$kb search --project supervisor-service -k 3 --learnings "HNSW index bulk load"

step "kbpipe search --project handbooks -k 3 'tasks stay pending'   (the HTML site and the PDF manuals)"
$kb search --project handbooks -k 3 "tasks stay pending"

step "kbpipe search --project supervisor-service -k 3 --source-type sql 'appeal deadlines'   (the seeded issues, epics and tasks)"
$kb search --project supervisor-service -k 3 --source-type sql "appeal deadlines"

echo
echo "demo: done.  The database is the local cluster (scripts/db.sh dir); 'make db-stop' stops it."
echo "demo: to use it from your shell:  eval \"\$(scripts/db.sh env)\"; bin/kbpipe stats"
