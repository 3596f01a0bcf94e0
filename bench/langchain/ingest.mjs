// bench/langchain/ingest.mjs - the LangChain.js side of bench/langchain.sh:
// read every *.md file under DIR, split it with RecursiveCharacterTextSplitter,
// embed with kbpipe-hash-v1 (ported below: the same offline embedder as
// kbpipe's provider: hash, src/embed/hash.c) and store through
// PGVectorStore.addVectors into a table with no vector index.
//   node ingest.mjs DIR TABLE CHUNK_CHARS
// Connection from the PG* variables.  The phases run one after the other
// (one thread) and each is timed apart, summed over the files:
//   init   PGVectorStore.initialize (connect, CREATE EXTENSION/TABLE);
//   split  reading each file and splitter.createDocuments;
//   embed  embeddings.embedDocuments of the file's chunks;
//   store  store.addVectors of them (what addDocuments does after embedding),
//          then store.end.
// Prints one line: "chunks=N chars=C seconds=S init=I split=R embed=E store=W
// cpu=U embed_cpu=V" (chars: the input's characters, JS string length; S:
// the whole, first statement to the end; U, V: this process's CPU-seconds,
// user + system, over S and over the embed phase).
//   node ingest.mjs --golden tests/data/embed/hash_golden.tsv
// checks the port against kbpipe's golden values (sum of v[i] * (i + 1) and
// the argmax, as tests/unit/test_embed.c does) and prints "golden=M/N".
import fs from "node:fs";
import path from "node:path";
import sodium from "libsodium-wrappers";
import { RecursiveCharacterTextSplitter } from "@langchain/textsplitters";
import { PGVectorStore } from "@langchain/community/vectorstores/pgvector";
import { Embeddings } from "@langchain/core/embeddings";

const DIM = 1536;
const W_UNI = 1.0, W_BI = Math.fround(0.6), W_TRI = 0.25;   // C floats
const STOP = new Set(("a about above after again against all am an and any are as at be because " +
  "been before being below between both but by can could did do does doing down during each few " +
  "for from further had has have having he her here hers herself him himself his how i if in into " +
  "is it its itself just me more most my myself no nor not now of off on once only or other our " +
  "ours ourselves out over own same she should so some such than that the their theirs them " +
  "themselves then there these they this those through to too under until up very was we were " +
  "what when where which while who whom why will with would you your yours").split(" "));

// kbpipe-hash-v1 over the UTF-8 bytes of text: see src/embed/hash.c for the rules
class HashEmbeddings extends Embeddings {
  constructor() { super({}); this.key = Buffer.from("kbpipe-hash-v1\0\0"); this.enc = new TextEncoder(); }
  hash(bytes) {
    const o = sodium.crypto_shorthash(bytes, this.key);
    return Buffer.from(o).readBigUInt64LE(0);
  }
  words(lower) {
    const out = [];
    let i = 0, start = -1;
    while (i < lower.length) {
      const c = lower[i];
      let n = 1, sep;
      if (c < 0x80) {
        sep = !((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f);
      } else {
        n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        const cp = n === 2 ? ((c & 0x1f) << 6) | (lower[i + 1] & 0x3f)
          : n === 3 ? ((c & 0x0f) << 12) | ((lower[i + 1] & 0x3f) << 6) | (lower[i + 2] & 0x3f)
          : n === 4 ? 0x10000 : -1;
        sep = (cp >= 0x80 && cp <= 0xbf) || (cp >= 0x2000 && cp <= 0x206f) ||
              (cp >= 0x3000 && cp <= 0x303f) || cp === 0xfeff;
      }
      if (!sep && start < 0) start = i;
      else if (sep && start >= 0) { out.push(lower.subarray(start, i)); start = -1; }
      i += n;
    }
    if (start >= 0) out.push(lower.subarray(start));
    return out;
  }
  embedOne(text) {
    const bytes = this.enc.encode(text);
    const lower = Uint8Array.from(bytes, (c) => (c >= 0x41 && c <= 0x5a ? c + 32 : c));
    const all = this.words(lower);
    let words = [];
    for (let w of all) {
      if (w.length === 1 && w[0] >= 0x61 && w[0] <= 0x7a) continue;
      if (w.length < 16 && STOP.has(Buffer.from(w).toString("latin1"))) continue;
      if (w.length >= 4) {
        const L = w.length;
        if (w[L - 3] === 0x69 && w[L - 2] === 0x65 && w[L - 1] === 0x73) {
          w = Uint8Array.from([...w.subarray(0, L - 3), 0x79]);
        } else if (w[L - 1] === 0x73 && ![0x73, 0x75, 0x69].includes(w[L - 2])) {
          w = w.subarray(0, L - 1);
        }
      }
      words.push(w);
    }
    if (words.length === 0) words = this.words(lower);
    const feats = [];
    const add = (tag, a, b, wt) => {
      a = a.subarray(0, 255);
      const parts = [Uint8Array.of(tag.charCodeAt(0)), a];
      if (b) parts.push(Uint8Array.of(0x20), b.subarray(0, 255));
      feats.push([this.hash(Buffer.concat(parts)), wt]);
    };
    for (let i = 0; i < words.length; i++) {
      add("u", words[i], null, W_UNI);
      if (i + 1 < words.length) add("b", words[i], words[i + 1], W_BI);
      const w = words[i].subarray(0, 256);
      const pad = Buffer.concat([Uint8Array.of(0x3c), w, Uint8Array.of(0x3e)]);
      for (let k = 0; k + 3 <= pad.length; k++) add("c", pad.subarray(k, k + 3), null, W_TRI);
    }
    if (feats.length === 0) feats.push([this.hash(bytes), W_UNI]);
    feats.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const v = new Float32Array(DIM);
    for (let i = 0; i < feats.length;) {
      let j = i;
      while (j < feats.length && feats[j][0] === feats[i][0]) j++;
      const h = feats[i][0];
      const weight = Math.fround(feats[i][1] * Math.fround(1 + Math.log(j - i)));
      const dim = Number((h & 0xffffffffn) % BigInt(DIM));
      v[dim] = Math.fround(v[dim] + ((h >> 63n) ? -weight : weight));
      i = j;
    }
    let norm = 0;
    for (const x of v) norm += x * x;
    const scale = Math.fround(1 / Math.sqrt(norm));
    return Array.from(v, (x) => Math.fround(x * scale));
  }
  async embedDocuments(texts) { return texts.map((t) => this.embedOne(t)); }
  async embedQuery(text) { return this.embedOne(text); }
}

const [dir, table, chunkChars] = process.argv.slice(2);
await sodium.ready;
if (dir === "--golden") {
  const e = new HashEmbeddings();
  let ok = 0, n = 0;
  for (const line of fs.readFileSync(table, "utf8").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [text, sum, top] = line.split("\t");
    const v = e.embedOne(text);
    let s = 0, arg = 0;
    v.forEach((x, i) => { s += x * (i + 1); if (Math.abs(x) > Math.abs(v[arg])) arg = i; });
    n++;
    if (Math.abs(s - Number(sum)) < 1e-3 * Math.max(1, Math.abs(Number(sum))) && arg === Number(top)) ok++;
    else console.error(`golden mismatch: ${JSON.stringify(text)}: ${s.toFixed(6)} ${arg} vs ${sum} ${top}`);
  }
  console.log(`golden=${ok}/${n}`);
  process.exit(0);
}
const files = [];
(function walk(d) {
  for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith(".md")) files.push(p);
  }
})(dir);

const now = () => Number(process.hrtime.bigint()) / 1e9;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const t0 = now(), c0 = cpu();
const embeddings = new HashEmbeddings();
const store = await PGVectorStore.initialize(embeddings, {
  postgresConnectionOptions: {},   // PGHOST, PGUSER, PGDATABASE from the environment
  tableName: table,
  columns: { idColumnName: "id", vectorColumnName: "embedding", contentColumnName: "content",
             metadataColumnName: "metadata" },
  dimensions: DIM,
});
const splitter = RecursiveCharacterTextSplitter.fromLanguage("markdown",
  { chunkSize: Number(chunkChars), chunkOverlap: 0 });
const tInit = now() - t0;
let chunks = 0, chars = 0, tSplit = 0, tEmbed = 0, tStore = 0, cEmbed = 0;
for (const f of files) {
  let t = now();
  const text = fs.readFileSync(f, "utf8");
  chars += text.length;
  const docs = await splitter.createDocuments([text], [{ source: path.relative(dir, f) }]);
  let u = now(); tSplit += u - t; t = u;
  const c = cpu();
  const vectors = await embeddings.embedDocuments(docs.map((d) => d.pageContent));
  cEmbed += cpu() - c;
  u = now(); tEmbed += u - t; t = u;
  await store.addVectors(vectors, docs);
  u = now(); tStore += u - t;
  chunks += docs.length;
}
let t = now();
await store.end();
tStore += now() - t;
const secs = now() - t0, cAll = cpu() - c0;
const f3 = (x) => x.toFixed(3);
console.log(`chunks=${chunks} chars=${chars} seconds=${f3(secs)} init=${f3(tInit)} ` +
            `split=${f3(tSplit)} embed=${f3(tEmbed)} store=${f3(tStore)} ` +
            `cpu=${f3(cAll)} embed_cpu=${f3(cEmbed)}`);
