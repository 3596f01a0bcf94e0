#!/usr/bin/env bash
# tests/docs/install.sh - `make install PREFIX=...` as docs/operations.md
# ("Installing") describes it: into a temporary PREFIX, with the bin/kbpipe
# make check built (default PREFIX, so its compiled-in KB_DATADIR is
# /usr/local/share/kbpipe), then from a directory outside the checkout:
#   * PREFIX/bin/kbpipe migrate status / up read PREFIX/share/kbpipe/migrations;
#   * PREFIX/bin/kbpipe seed reads PREFIX/share/kbpipe/seed;
#   * a run whose chunking counts tokens uses PREFIX/share/kbpipe/cl100k_base.json;
#   * a copy of the installed tree elsewhere still works (found via /proc/self/exe);
#   * man -M PREFIX/share/man kbpipe finds the page (when man is installed).
. "$(dirname "$0")/../integration/lib.sh"
unset MAKEFLAGS MAKELEVEL MFLAGS MAKEOVERRIDES KBPIPE_MIGRATIONS_DIR KBPIPE_TOKENIZER_FILE

prefix=$tmp/prefix
make --no-print-directory -o bin/kbpipe install PREFIX="$prefix" >"$tmp/install.out" 2>&1
check "make install PREFIX=$prefix" test $? = 0 || sed 's/^/#   /' "$tmp/install.out"
for f in bin/kbpipe share/kbpipe/cl100k_base.json share/man/man1/kbpipe.1 \
         $(cd migrations && printf 'share/kbpipe/migrations/%s ' *.sql) \
         $(cd samples/seed && printf 'share/kbpipe/seed/%s ' *.json); do
  check "installed $f" test -f "$prefix/$f"
done

work=$tmp/elsewhere; mkdir -p "$work/notes"
printf '# Notes\n\nRotate the master key every ninety days.\n' >"$work/notes/a.md"
cat >"$work/p.yaml" <<'YAML'
name: installed
project: installed-test
chunking: {splitter: markdown, unit: tokens, size: 64, overlap: 8}
embedding: {provider: hash}
sources:
  - name: notes
    type: files
    roots: [notes]
    include: ["*.md"]
YAML
db=$(psql -X -At -d postgres -c "SELECT 'kbpipe_it_inst_$$'")
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null

installed() {   # DIR ARGS...: the installed kbpipe, run in DIR; sets rc, $tmp/out, $tmp/err
  local dir=$1; shift
  rc=0
  (cd "$dir" && timeout -s KILL "$KB_TIMEOUT" "$@" >"$tmp/out" 2>"$tmp/err") || rc=$?
}
installed "$work" "$prefix/bin/kbpipe" --db "dbname=$db" migrate status
check_rc "installed kbpipe migrate status, outside the checkout" 0
check_eq "  ... lists every installed migration as pending" "$(ls migrations/*.sql | wc -l)" "$(grep -c pending "$tmp/out")"
installed "$work" "$prefix/bin/kbpipe" --db "dbname=$db" -q migrate up
check_rc "installed kbpipe migrate up" 0
installed "$work" "$prefix/bin/kbpipe" --db "dbname=$db" seed
check_rc "installed kbpipe seed, outside the checkout" 0
check "  ... reads the installed seed folder" grep -q "rows added from $prefix/bin/../share/kbpipe/seed" "$tmp/err"
check_eq "  ... and loads its projects" "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' samples/seed/projects.json)" \
  "$(sql "$db" "SELECT count(*) FROM projects")"
installed "$work" "$prefix/bin/kbpipe" --db "dbname=$db" -q run p.yaml --report r.json
check_rc "a run that counts tokens with the installed rank table" 0
# the chunk is the whole file: its count is the reference encoder's (tiktoken)
want=$(node tests/ref/encode.js --bench "$work/notes/a.md" 2>/dev/null | cut -d' ' -f2)
check_eq "  ... its chunk has the exact cl100k_base count" "${want:-reference encoder missing}" \
  "$(sql "$db" "SELECT sum(token_count) FROM knowledge_chunks")"

# the tree moved elsewhere: found next to the executable, not by PREFIX
cp -a "$prefix" "$tmp/moved"
installed "$work" "$tmp/moved/bin/kbpipe" --db "dbname=$db" migrate verify
check_rc "a copied install tree: migrate verify reads its own migrations" 0
rm -rf "$prefix/share/kbpipe"
installed "$work" "$tmp/moved/bin/kbpipe" --db "dbname=$db" migrate status
check_rc "  ... still, with the original PREFIX's data gone" 0
printf '\nAnd the old key thirty days later.\n' >>"$work/notes/a.md"
installed "$work" "$tmp/moved/bin/kbpipe" --db "dbname=$db" -q run p.yaml
check_rc "  ... and a run there counts tokens with the moved rank table" 0
[ ! -e /usr/local/share/kbpipe ] || note "/usr/local/share/kbpipe exists: KB_DATADIR could have served these too"

if command -v man >/dev/null 2>&1; then
  MANPAGER=cat MANWIDTH=80 man -M "$prefix/share/man" kbpipe >"$tmp/man.out" 2>"$tmp/man.err"
  check "man -M PREFIX/share/man kbpipe finds the page" grep -q 'keep a PostgreSQL' "$tmp/man.out"
else
  note "man is not installed: the page's lookup is not checked"
fi
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
finish
