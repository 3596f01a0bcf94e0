#!/usr/bin/env bash
# tests/docs/architecture.sh - the boundaries docs/architecture.md states,
# checked on the sources as they are (each check lists what breaks it):
#   * the floors: main > pipeline, search > ingest, chunk, embed, load > db
#     > util; no file includes a header of a folder above its own, and no
#     file includes another folder's _int.h;
#   * src/load includes no header of src/pipeline, src/ingest, src/chunk or
#     src/search;
#   * PGresult only in src/db, src/load, src/search; yaml_* calls only in
#     src/pipeline and src/ingest/frontmatter.c; jansson in no public header;
#   * no file of src/ over 700 lines;
#   * every row of main.c's command table names, in a comment, the file that
#     defines its handler;
#   * no function of src/ builds an argv to call a command;
#   * no JSON is printed by hand (a "key": or "%s": written into a buffer or
#     stream, a lone "{", '[' or "null", a "\u%04x" escaper): jansson
#     builds it.
# The checker itself is tested first on a made-up tree that breaks each rule.
. "$(dirname "$0")/../integration/lib.sh"

floor() {   # folder -> floor number (main 0 ... util 4); unknown folders: 9
  case "$1" in
    main.c) echo 0 ;; pipeline|search) echo 1 ;; ingest|chunk|embed|load) echo 2 ;;
    db) echo 3 ;; util) echo 4 ;; *) echo 9 ;;
  esac
}

# include_violations ROOT: "FILE: #include X" for an include upward or of another _int.h
include_violations() {
  local root=$1 f dir inc target
  while IFS= read -r f; do
    dir=${f#"$root"/}; dir=${dir%%/*}
    while IFS= read -r inc; do
      target=${inc%%/*}
      [ "$target" = "$inc" ] && continue            # "chunk_int.h": its own folder
      if [ "$(floor "$target")" -lt "$(floor "$dir")" ] ||
         { [ "$target" != "$dir" ] && [[ "$inc" == *_int.h ]]; }; then
        echo "${f#"$root"/}: #include \"$inc\""
      fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done < <(find "$root" -name '*.[ch]' | sort)
}

# grep_outside ROOT PATTERN ALLOWED-REGEX: files matching PATTERN not under ALLOWED
grep_outside() {
  grep -rlE "$2" "$1" --include='*.[ch]' | sed "s|^$1/||" | grep -vE "$3" | sort
}

long_files() {   # ROOT: files over 700 lines
  find "$1" -name '*.[ch]' -exec wc -l {} + |
    awk -v root="$1/" '$2 != "total" && $1 > 700 { sub("^" root, "", $2); print $2 ": " $1 }'
}

# table_violations ROOT: command rows whose comment does not name the file defining the handler
table_violations() {
  local root=$1 fn file
  while read -r fn file; do
    if [ -z "$file" ] || ! grep -q "^enum kb_code $fn(" "$root/${file#src/}" 2>/dev/null; then
      echo "main.c: $fn: ${file:-no file named}"
    fi
  done < <(sed -n '/^static const struct command commands\[\]/,/^};/p' "$root/main.c" |
           sed -n 's/^ *{ *"[a-z]*", *\(cmd_[a-z_]*\), *\(\/\* *\(src\/[^ ;*]*\.c\)\)\{0,1\}.*/\1 \3/p')
}

public_jansson() {   # ROOT: public headers that include jansson or name its types
  find "$1" -name '*.h' ! -name '*_int.h' -exec grep -lE 'jansson\.h|\bjson_t\b' {} + |
    sed "s|^$1/||"
}

argv_builders() {   # ROOT: arrays of strings named like an argv, filled in code
  grep -rnE 'char \*[a-z_]*argv[a-z_]*\[[^]]*\] *= *\{' "$1" --include='*.c' | sed "s|^$1/||"
}

# hand_json ROOT: calls that print JSON by hand into a buffer or a stream:
#   a key written literally ("\"repo\":") or through a format ("\"%s\":"),
#   a JSON opening bracket or literal written alone (fputs("{"),
#   fputc('['), fputs("null")), or a string escaper's "\u%04x"
hand_json() {
  local print='(kb_buf_(puts|printf|append|putc)|[fs]?n?printf|fput[sc]|putc|putchar)\('
  grep -rnE "$print"'.*\\"([A-Za-z_]+|%[-0-9.*]*s)\\":' "$1" --include='*.c' | sed "s|^$1/||"
  grep -rnE "$print"'("[[{]"|'"'[[{]'"'|"(null|true|false)")' "$1" --include='*.c' | sed "s|^$1/||"
  grep -rnE "$print"'.*\\\\u%04[xX]' "$1" --include='*.c' | grep -v '^[^:]*util/term\.c:' |
    sed "s|^$1/||"
}

check_tree() {   # ROOT: every rule, one line of violations each
  local root=$1
  include_violations "$root"
  grep -rnE '#include "(pipeline|ingest|chunk|search)/' "$root/load" 2>/dev/null | sed "s|^$root/||"
  grep_outside "$root" 'PGresult' '^(db|load|search)/'
  grep_outside "$root" '\byaml_[a-z_]+\(' '^(pipeline/|ingest/frontmatter\.c$)'
  public_jansson "$root"
  long_files "$root"
  table_violations "$root"
  argv_builders "$root"
  hand_json "$root"
}

# the checker finds each kind of break in a made-up tree --------------------
bad=$tmp/bad
mkdir -p "$bad"/{util,db,load,pipeline,search,ingest}
cat > "$bad/main.c" <<'EOF'
static const struct command commands[] = {
    { "run",    cmd_run,    /* src/pipeline/cmd_run.c */
      "run" },
    { "search", cmd_search, /* src/load/cmd_search.c */
      "search" },
    { "stats",  cmd_stats,
      "stats" },
};
EOF
printf 'enum kb_code cmd_run(int argc, char **argv, struct kb_err *err)\n{\n}\n' > "$bad/pipeline/cmd_run.c"
printf '#include "pipeline/pipeline.h"\n#include "ingest/ingest.h"\n' > "$bad/load/load.h"
printf '#include "load/load_int.h"\nPGresult *r;\n' > "$bad/pipeline/x.c"
printf '#include "db/db.h"\nyaml_parser_t p; int f(void) { return yaml_parser_parse(&p, 0); }\n' \
  > "$bad/ingest/csv.c"
printf '#include <jansson.h>\n' > "$bad/search/search.h"
printf '#include "search/search.h"\n' > "$bad/db/conn.c"
seq 701 | sed 's/.*/int x;/' > "$bad/util/big.c"
printf 'int f(void) { char *run_argv[] = { "run", "x.yaml", NULL }; return 0; }\n' \
  > "$bad/search/export.c"
printf '%s\n' 'void g(struct kb_buf *b) { kb_buf_puts(b, "{\"repo\":\""); }' \
  'void h(struct kb_buf *b) { kb_buf_printf(b, "%s\"content_hash\":\"%s\"", a, c); }' \
  > "$bad/load/meta.c"
printf '%s\n' 'void s(int i) { printf("%s\"%s\":", i ? "," : "", key); }' \
  'void t(FILE *o) { fputs("{", stdout); fputc(ch, o); }' \
  "void u(FILE *o) { fputc('[', o); }" \
  'void v(FILE *o) { fputs("null", o); }' \
  'void w(FILE *o, int ch) { fprintf(o, "\\u%04x", ch); }' \
  "void x(FILE *o) { fputc('\"', o); fputs(\"[none]\\n\", o); fputc('\\n', o); }" \
  > "$bad/db/print.c"
got=$(check_tree "$bad")
for want in 'load/load.h: #include "pipeline/pipeline.h"' 'load/load.h:2:#include "ingest/ingest.h"' \
            'pipeline/x.c: #include "load/load_int.h"' 'db/conn.c: #include "search/search.h"' \
            '^pipeline/x.c$' '^ingest/csv.c$' '^search/search.h$' '^util/big.c: 701$' \
            'main.c: cmd_search: src/load/cmd_search.c' 'main.c: cmd_stats: no file named' \
            'search/export.c:1:' 'load/meta.c:1:' 'load/meta.c:2:' 'db/print.c:1:' \
            'db/print.c:2:' 'db/print.c:3:' 'db/print.c:4:' 'db/print.c:5:'; do
  if grep -qE -- "$want" <<<"$got"; then ok "the checker finds: $want"
  else fail "the checker finds: $want"; printf '#   got:\n%s\n' "$got" | sed 's/^/#   /'; fi
done
check_eq "the checker passes main.c's correct row (cmd_run)" "" "$(grep 'cmd_run' <<<"$got")"
check_eq "the checker passes a table's text ([none], a quote, a newline)" "" \
  "$(grep 'db/print.c:6:' <<<"$got")"

# the real tree -----------------------------------------------------------
check_eq "no include upward or of another folder's _int.h" "" "$(include_violations src)"
check_eq "src/load includes nothing of pipeline, ingest, chunk, search" "" \
  "$(grep -rnE '#include "(pipeline|ingest|chunk|search)/' src/load | sed 's|^src/||')"
check_eq "PGresult only in src/db, src/load, src/search" "" \
  "$(grep_outside src 'PGresult' '^(db|load|search)/')"
check_eq "yaml_* only in src/pipeline and the front-matter reader" "" \
  "$(grep_outside src '\byaml_[a-z_]+\(' '^(pipeline/|ingest/frontmatter\.c$)')"
check_eq "jansson in no public header" "" \
  "$(public_jansson src)"
check_eq "no file of src/ over 700 lines" "" "$(long_files src)"
check_eq "every command row names the file defining its handler" "" "$(table_violations src)"
check "main.c's table has every command (at least 9 rows read)" \
  test "$(sed -n '/^static const struct command commands\[\]/,/^};/p' src/main.c | grep -c '/\* src/')" -ge 9
check_eq "no function builds an argv to call a command" "" "$(argv_builders src)"
check_eq "no JSON printed by hand (jansson builds it)" "" "$(hand_json src)"
check "src/pipeline and src/search have one public header and a private one" \
  test -f src/pipeline/pipeline.h -a -f src/pipeline/pipeline_int.h -a -f src/search/search.h \
       -a -f src/search/search_int.h
check_eq "src/load holds no run, plan, search or export code" "" \
  "$(ls src/load | grep -E '^(cmd_run|cmd_plan|cmd_search|export_batch|report)\.c$')"
finish
