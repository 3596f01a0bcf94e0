#!/usr/bin/env bash
# tests/integration/run_html_pdf.sh - HTML and PDF files through `kbpipe
# run` against the local PostgreSQL (issue 17; docs/pipelines.md, "HTML and
# PDF files"):
#   1. the sample site and manuals load: one source per page and per PDF,
#      titles from <title> and the PDF's info, heading paths from the HTML
#      headings, no tag, script or dropped chrome in any chunk; an
#      image-only PDF is rejected with its path ("no text layer") and the
#      run exits 3 (finished with rejected inputs)
#   2. PDF chunks name their page: "page" N, or "pages" [first, last] for a
#      chunk across a page break, and every page of the PDF has its chunk
#   3. a re-run over the unchanged files writes no row and embeds nothing
#   4. an edited page is re-read: its chunks change, no other source's rows
#   5. a PDF that turns bad (truncated) is rejected with its path and its
#      stored rows are kept; an HTML file that turns malformed loads with
#      a warning naming the file and line
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_html_pdf.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/site" "$tmp/pdf"
cp -r samples/site/. "$tmp/site/"
cp samples/pdf/*.pdf tests/data/ingest/bad/pdf-image-only.pdf "$tmp/pdf/"
P=$tmp/docs.yaml
cat >"$P" <<YAML
name: it-htmlpdf
project: it-htmlpdf
reject_file: $tmp/rejects.jsonl
chunking: {splitter: markdown, size: 96, overlap: 8}
embedding: {provider: hash}
sources:
  - name: site
    type: files
    roots: [$tmp/site]
    drop: [nav, header, footer, .sidebar]
    on_error: skip
  - name: manuals
    type: files
    roots: [$tmp/pdf]
    on_error: skip
YAML
q() { sql "$db" "$1"; }
# the chunks of one source: "SQL expression" of the rows, in chunk order
of_source() {
  q "SELECT $2 FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
     WHERE s.source_id = '$1' ORDER BY c.chunk_index"
}

##############################################################################
echo "# 1. the site and the manuals load"
db=$(new_db htmlpdf)
kb "$db" run "$P" --report "$tmp/r1.json"
check_rc "exit 3: finished, one input rejected" 3
check_eq "one source per page and per readable PDF" \
  "guide/allocating.html guide/troubleshooting.html index.html runbook.pdf search-notes.pdf" \
  "$(q "SELECT string_agg(source_id, ' ' ORDER BY source_id) FROM knowledge_sources")"
check_eq "titles: <title> for pages, the document info for PDFs" \
  "Allocating ports|Troubleshooting the allocator|Port Allocator Handbook|Supervisor Service On-Call Runbook|Field Notes on Vector Search" \
  "$(q "SELECT string_agg(title, '|' ORDER BY source_id) FROM knowledge_sources")"
check_eq "the image-only PDF is a reject with its path and the next step" 1 \
  "$(jq -s "[.[] | select(.origin == \"$tmp/pdf/pdf-image-only.pdf\" and
                          (.reason | contains(\"no text layer\") and contains(\"OCR it first\")))] | length" \
        "$tmp/rejects.jsonl")"
check "stderr names the rejected PDF" \
  grep -q "pdf-image-only.pdf: the PDF has 1 page but no text layer" "$tmp/err"
note "heading paths of allocating.html: $(of_source guide/allocating.html "c.metadata->>'heading_path'" | paste -sd';')"
check_eq "HTML headings are heading paths (h1 > h2)" "Allocating ports > Reserving a port by hand" \
  "$(of_source guide/allocating.html "CASE WHEN c.content LIKE '%unique_violation%'
                                     THEN c.metadata->>'heading_path' END" | grep -v '^$' | head -n 1)"
check_eq "no tag, script, style or dropped chrome in any chunk" 0 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE content ~ '<(/?[a-z]+)[ >]'
        OR content LIKE '%querySelectorAll%' OR content LIKE '%font-family%'
        OR content LIKE '%Maintained by%' OR content LIKE '%On this page%'
        OR content LIKE '%internal documentation%'")"
check_eq "<pre> is a fenced block with its language" 1 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE content LIKE E'%\`\`\`sql\nSELECT allocate_port%'")"
check_eq "the Latin-1 page is UTF-8 in the database" 1 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%Zürich and Montréal%'")"
check_eq "table rows as text" 1 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%| medium | 200 | up to 120 |%'")"
check_eq "every chunk has a token count within the chunk size" 0 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE token_count IS NULL OR token_count <= 0
        OR token_count > 96")"

##############################################################################
echo "# 2. PDF chunks name their pages"
check_eq "every PDF chunk has page or pages, never both" 0 \
  "$(q "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
        WHERE s.source_id LIKE '%.pdf' AND ((c.metadata ? 'page') = (c.metadata ? 'pages'))")"
check_eq "no HTML chunk has a page" 0 \
  "$(q "SELECT count(*) FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
        WHERE s.source_id LIKE '%.html' AND (c.metadata ? 'page' OR c.metadata ? 'pages')")"
check_eq "the runbook's chunks cover its pages 1, 2 and 3" "1 2 3" \
  "$(of_source runbook.pdf "coalesce(c.metadata->>'page', (c.metadata->'pages'->>0) || ' ' ||
                                    (c.metadata->'pages'->>1))" | tr ' ' '\n' | sort -u | xargs)"
check_eq "the text of page 2 is in a chunk of page 2" 2 \
  "$(of_source runbook.pdf "CASE WHEN c.content LIKE '%consumer that reads during the write%'
                            THEN coalesce(c.metadata->>'page', c.metadata->'pages'->>1) END" |
     grep -v '^$' | head -n 1)"
check "a chunk across a page break has pages (the overlap starts it on the page before)" \
  test "$(q "SELECT count(*) FROM knowledge_chunks WHERE metadata ? 'pages'")" -gt 0
check_eq "a pages range is [first, last] with first < last" 0 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE metadata ? 'pages'
        AND NOT ((metadata->'pages'->>0)::int < (metadata->'pages'->>1)::int)")"

##############################################################################
echo "# 3. a re-run over unchanged files writes nothing"
rows "$db" >"$tmp/rows1"
kb "$db" run "$P" --report "$tmp/r2.json"
check_rc "exit 3 again (the image-only PDF is still there)" 3
rows "$db" >"$tmp/rows2"
check_same "no row written" "$tmp/rows1" "$tmp/rows2"
check_eq "nothing embedded" 0 "$(computed "$tmp/r2.json")"

##############################################################################
echo "# 4. an edited page: its chunks change, no other source's rows"
state "$db" it-htmlpdf | grep -v '|guide/allocating.html|' >"$tmp/state1"
sed -i 's|picks the lowest|always picks the lowest|' "$tmp/site/guide/allocating.html"
kb "$db" run "$P"
check_rc "exit 3" 3
check_eq "the edit is stored" 1 \
  "$(q "SELECT count(*) FROM knowledge_chunks WHERE content LIKE '%always picks the lowest%'")"
state "$db" it-htmlpdf | grep -v '|guide/allocating.html|' >"$tmp/state2"
check_same "the other sources are as they were" "$tmp/state1" "$tmp/state2"

##############################################################################
echo "# 5. bad input loses nothing stored"
n_before=$(of_source search-notes.pdf "c.id" | wc -l)
head -c 3000 samples/pdf/search-notes.pdf >"$tmp/pdf/search-notes.pdf"
printf '<p>open <b>bold <i>italic</p>\n<h2>Still here</div>\n' >"$tmp/site/broken.html"
kb "$db" run "$P"
check_rc "exit 3" 3
check "the truncated PDF is rejected with its path" \
  grep -q "search-notes.pdf: poppler cannot read the PDF" "$tmp/err"
check_eq "its stored chunks are kept" "$n_before" "$(of_source search-notes.pdf "c.id" | wc -l)"
check "malformed HTML loads with a warning naming file and line" \
  grep -q "broken.html:1: malformed HTML" "$tmp/err"
check_eq "and its text is stored, the heading a Markdown heading" 1 \
  "$(of_source broken.html "c.content" | grep -c '^## Still here$')"

finish
