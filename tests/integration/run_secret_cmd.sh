#!/usr/bin/env bash
# tests/integration/run_secret_cmd.sh - `kbpipe secret` against the real
# server, with the session logging every statement (log_statement = all):
#   1. values round-trip byte for byte through set (stdin) and get (stdout):
#      multi-line, UTF-8, quotes, backslashes, $1, blanks, empty, 20 kB;
#      the passphrase from KBPIPE_MASTER_KEY or KBPIPE_MASTER_KEY_FILE
#   2. a missing, doubled or wrong passphrase, an unknown name or project, a
#      NUL or a non-UTF-8 byte in the value: a message and exit 2 or 1, no
#      value on stdout; each failed read leaves a log row naming --as
#   3. list and audit (--name, --since, --limit) show names, never values
#   4. rotate: a new data key; with KBPIPE_NEW_MASTER_KEY the old passphrase
#      stops working; with a wrong passphrase it changes nothing
#   5. neither a value nor a passphrase in any stderr, list/audit output or
#      the server log (scripts/db.sh dir/server.log, what this test added)
#   KBPIPE_BIN=bin/kbpipe bash tests/integration/run_secret_cmd.sh
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

db=$(new_db secret)
sql "$db" "INSERT INTO projects (name) VALUES ('it-sec')" >/dev/null
serverlog=$(scripts/db.sh dir)/server.log
log_start=$(stat -c %s "$serverlog" 2>/dev/null || echo 0)
export PGOPTIONS="-c client_min_messages=warning -c log_statement=all"
unset KBPIPE_MASTER_KEY KBPIPE_MASTER_KEY_FILE KBPIPE_NEW_MASTER_KEY KBPIPE_NEW_MASTER_KEY_FILE
pass1=PassPhraseAlpha7f2
pass2=PassPhraseBravo9c4
# every value holds "ValMark"; none may show outside a `get`'s stdout
n=0
# sec NAME ARGS...: kbpipe secret ARGS; outputs $tmp/NAME.out/.err; sets $rc
sec() {
  local name=$1; shift
  rc=0
  timeout -s KILL "$KB_TIMEOUT" "$bin" --db "dbname=$db" secret "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
}
# roundtrip LABEL VALUE: set the value (from stdin, with a newline), get it back
roundtrip() {
  n=$((n + 1))
  printf '%s\n' "$2" >"$tmp/v$n.in"
  rc=0
  "$bin" --db "dbname=$db" secret set it-sec "S$n" <"$tmp/v$n.in" >"$tmp/set$n.out" 2>"$tmp/set$n.err" || rc=$?
  check_rc "$1: set exits 0" 0
  sec "get$n" get it-sec "S$n"
  check_rc "$1: get exits 0" 0
  check_same "$1: the value comes back byte for byte" "$tmp/v$n.in" "$tmp/get$n.out"
}

echo "# 1. round trips"
export KBPIPE_MASTER_KEY=$pass1
roundtrip "multi-line UTF-8 with quotes" $'ValMark line one\nligne deux: é ü 日本 "q" \'s\' \\ $1 %s\n\tlast'
roundtrip "blanks kept" $'  ValMark with spaces and a tab\t  '
roundtrip "empty value" ''
roundtrip "20 kB value" "ValMark$(head -c 15000 /dev/urandom | base64 -w 0)"
unset KBPIPE_MASTER_KEY
printf '%s\n' "$pass1" >"$tmp/master.key"
export KBPIPE_MASTER_KEY_FILE=$tmp/master.key
sec getf get it-sec S1
check_rc "the passphrase from KBPIPE_MASTER_KEY_FILE reads it" 0
check_same "... the same value" "$tmp/v1.in" "$tmp/getf.out"
printf 'ValMark shared\n' | "$bin" --db "dbname=$db" secret set --shared SHARED 2>"$tmp/shs.err"
sec shg get --shared SHARED
check_eq "a shared secret (--shared) round-trips" "ValMark shared" "$(cat "$tmp/shg.out")"

echo "# 2. failures"
export KBPIPE_MASTER_KEY=$pass1
sec both get it-sec S1
check_rc "both KBPIPE_MASTER_KEY and _FILE set: exit 2" 2
check "... says to unset one" grep -q "both KBPIPE_MASTER_KEY and KBPIPE_MASTER_KEY_FILE are set" "$tmp/both.err"
unset KBPIPE_MASTER_KEY KBPIPE_MASTER_KEY_FILE
sec none get it-sec S1
check_rc "no passphrase: exit 2" 2
check "... names the variables" grep -q "set KBPIPE_MASTER_KEY, or KBPIPE_MASTER_KEY_FILE" "$tmp/none.err"
sec arg get it-sec S1 "$pass1"
check_rc "a passphrase as an argument is refused: exit 2" 2
export KBPIPE_MASTER_KEY=$pass2
before=$(sql "$db" "SELECT count(*) FROM secret_access_log WHERE NOT success AND accessed_by = 'it-tester'")
sec wrong get it-sec S1 --as it-tester
check_rc "a wrong passphrase: exit 1" 1
check "... says why" grep -q "secret 'S1' was not read: Wrong key or corrupt data" "$tmp/wrong.err"
check_eq "... prints nothing on stdout" 0 "$(wc -c <"$tmp/wrong.out")"
check_eq "... and is logged as a failed read by --as" $((before + 1)) \
  "$(sql "$db" "SELECT count(*) FROM secret_access_log WHERE NOT success AND accessed_by = 'it-tester'")"
export KBPIPE_MASTER_KEY=$pass1
sec unknown get it-sec NOPE
check_rc "an unknown name: exit 1" 1
check "... says so" grep -q "no secret named NOPE" "$tmp/unknown.err"
sec noproj get no-such-project S1
check_rc "an unknown project: exit 1" 1
check "... names it" grep -q "no project named 'no-such-project'" "$tmp/noproj.err"
rc=0; printf 'ab\0cd' | "$bin" --db "dbname=$db" secret set it-sec NUL >/dev/null 2>"$tmp/nul.err" || rc=$?
check_rc "a NUL byte in the value: exit 1" 1
check "... located" grep -q "standard input: byte 2 is a NUL" "$tmp/nul.err"
rc=0; printf 'ab\xffcd' | "$bin" --db "dbname=$db" secret set it-sec BAD >/dev/null 2>"$tmp/utf.err" || rc=$?
check_rc "a non-UTF-8 value: exit 1" 1
check "... located" grep -q "standard input: byte 2 is not UTF-8" "$tmp/utf.err"
check_eq "neither was stored" 0 "$(sql "$db" "SELECT count(*) FROM secrets WHERE key_name IN ('NUL', 'BAD')")"

echo "# 3. list and audit"
sec list list it-sec
check_rc "list exits 0" 0
check_eq "list shows the four names" "S1 S2 S3 S4" "$(awk 'NR > 2 {print $1}' "$tmp/list.out" | xargs)"
sec listj list it-sec --json
check_eq "list --json: one JSON document on one line, ending in a newline" "1 0a" \
  "$(wc -l <"$tmp/listj.out") $(tail -c 1 "$tmp/listj.out" | od -An -tx1 | tr -d ' ')"
check_eq "list --json: reads of S1 (the two good gets; a failed one does not count)" 2 \
  "$(jq -r '.[] | select(.name == "S1") | .reads' "$tmp/listj.out")"
sec audit audit it-sec --name S1 --json
check_eq "audit --name S1: its write, two good reads, one failed, oldest first" \
  "write:true read:true read:true read:false" \
  "$(jq -r 'reverse | map(.access + ":" + (.ok | tostring)) | join(" ")' "$tmp/audit.out")"
sec auditl audit it-sec --limit 2 --json
check_eq "audit --limit 2" 2 "$(jq length "$tmp/auditl.out")"
sec audits audit it-sec --since tomorrow --json
check_eq "audit --since tomorrow: nothing" 0 "$(jq length "$tmp/audits.out")"
check_eq "the failed read names its accessor" "it-tester" \
  "$(jq -r '.[] | select(.ok == false and .name == "S1") | .who' "$tmp/audit.out")"

echo "# 4. rotate"
sec rot rotate --key-name it-k2
check_rc "rotate under the same passphrase exits 0" 0
sec rotg get it-sec S1
check_same "... the value still reads" "$tmp/v1.in" "$tmp/rotg.out"
KBPIPE_MASTER_KEY=$pass2 KBPIPE_NEW_MASTER_KEY=PassPhraseCharlie sec rotw rotate
check_rc "rotate with a wrong passphrase: exit 1" 1
check "... rolled back" grep -q "the rotation was rolled back, nothing changed" "$tmp/rotw.err"
sec rotg2 get it-sec S1
check_rc "... the old passphrase still works" 0
KBPIPE_NEW_MASTER_KEY=$pass2 sec rotm rotate
check_rc "rotate to a new master passphrase exits 0" 0
sec old get it-sec S2
check_rc "the old passphrase no longer reads" 1
KBPIPE_MASTER_KEY=$pass2 sec new get it-sec S2
check_same "the new one does" "$tmp/v2.in" "$tmp/new.out"
check_eq "every secret is under the newest data key" 1 \
  "$(sql "$db" "SELECT count(DISTINCT encryption_key_id) FROM secrets")"

echo "# 5. nothing leaked"
tail -c +"$((log_start + 1))" "$serverlog" >"$tmp/server.log" 2>/dev/null
check "the server logged this test's statements (log_statement = all)" \
  grep -q "set_config('kbpipe.master_key'" "$tmp/server.log"
leaked=$(grep -l -e ValMark -e "$pass1" -e "$pass2" -e PassPhraseCharlie \
  "$tmp"/*.err "$tmp/list.out" "$tmp/listj.out" "$tmp"/audit*.out "$tmp/server.log" 2>/dev/null)
check_eq "no value or passphrase in stderr, list, audit or the server log" "" "$leaked"

echo "# 6. a plain role: reads through get_secret; warned about the server log"
role=kbpipe_it_secrole_$$
_extra_cleanup="psql -X -q -d postgres -c 'DROP ROLE IF EXISTS $role' >/dev/null 2>&1"
psql -X -q -d postgres -c "CREATE ROLE $role LOGIN" >/dev/null
sql "$db" "ALTER ROLE $role IN DATABASE $db SET log_statement = 'all'" >/dev/null
rc=0
PGOPTIONS="-c client_min_messages=warning" KBPIPE_MASTER_KEY=$pass2 "$bin" \
  --db "dbname=$db user=$role" secret get --shared SHARED --as plain >"$tmp/role.out" 2>"$tmp/role.err" || rc=$?
check_rc "a role that owns nothing reads a shared secret through get_secret" 0
check_eq "... the value" "ValMark shared" "$(cat "$tmp/role.out")"
check "... and is warned that the server may log the passphrase" \
  grep -q "this role may not SET log_parameter_max_length = 0" "$tmp/role.err"
check_eq "... the read is logged under --as" 1 \
  "$(sql "$db" "SELECT count(*) FROM secret_access_log WHERE accessed_by = 'plain' AND success")"
rc=0
PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -d "$db" -U "$role" \
  -c "SELECT count(*) FROM secrets" >/dev/null 2>"$tmp/role_direct.err" || rc=$?
check "... while its direct SELECT on secrets is denied" grep -q "permission denied" "$tmp/role_direct.err"
sql "$db" "ALTER ROLE $role IN DATABASE $db RESET log_statement" >/dev/null
psql -X -q -d "$db" -c "DROP OWNED BY $role" >/dev/null 2>&1

finish
