// encode.js - the reference cl100k_base encoder: tiktoken (npm) under node.
//   node tests/ref/encode.js IN.txt OUT.ids     ids as little-endian uint32
//   node tests/ref/encode.js --bench IN.txt [OUT.ids]
//     prints "<bytes> <tokens> <seconds>" for encoding the text once, the
//     file read and the encoder load excluded; writes the ids when OUT given.
// The text is read as UTF-8 and encoded with encode_ordinary, so special
// tokens are plain text, as in kbpipe.  The package is found in
// .cache/ref/node_modules (scripts/fetch-tokenizer.sh) or by node's own lookup.
'use strict';
const fs = require('fs');
const path = require('path');

function loadTiktoken() {
  const local = path.join(__dirname, '../../.cache/ref/node_modules/tiktoken');
  try { return require(local); } catch (e) { return require('tiktoken'); }
}

const args = process.argv.slice(2);
const bench = args[0] === '--bench';
if (bench) args.shift();
if (args.length < (bench ? 1 : 2)) {
  process.stderr.write('usage: encode.js IN.txt OUT.ids | encode.js --bench IN.txt [OUT.ids]\n');
  process.exit(2);
}
const { get_encoding } = loadTiktoken();
const enc = get_encoding('cl100k_base');
const buf = fs.readFileSync(args[0]);
const text = buf.toString('utf8');
const t0 = process.hrtime.bigint();
const ids = enc.encode_ordinary(text);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
if (bench) process.stdout.write(`${buf.length} ${ids.length} ${secs.toFixed(6)}\n`);
if (args[1]) {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('big-endian host');
  fs.writeFileSync(args[1], Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength));
}
enc.free();
