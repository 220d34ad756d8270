// bench_tokenizer.mjs - encode throughput and load time of gemma-run's
// tokenizer (bench/tok_speed.c) against Hugging Face `tokenizers` (Rust via
// its Node binding, 0.23.2) and `@lenml/tokenizers` (JavaScript,
// transformers.js port) on the same corpus, in the same run.
//
// Validates first: gemma-run's ids over the whole corpus (count and
// checksum) must equal HF's. Then prints MB/s for each and the ratios.
//
// usage: node bench/bench_tokenizer.mjs TOK_SPEED_BIN TOKENIZER_JSON WORKDIR
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { genCorpus } from "../tests/service/tokenizer_corpus.mjs";

const require = createRequire(import.meta.url);
const [bin, tokPath, work] = process.argv.slice(2);
const SECS = Number(process.env.TOK_BENCH_SECONDS || 3);
const { Tokenizer } = require(path.resolve("tools/node/node_modules/tokenizers"));
const { TokenizerLoader } = require(path.resolve("tools/node/node_modules/@lenml/tokenizers"));
const cfgPath = path.join(path.dirname(tokPath), "tokenizer_config.json");

function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}
function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

// corpus: the test corpus plus long single-stretch inputs
const corpus = genCorpus(4000, 777).filter((s) => s.length);
corpus.push("a".repeat(100000), "ab ".repeat(30000), "日本語のテキスト".repeat(5000), "😀".repeat(20000));
const bytes = corpus.reduce((n, s) => n + Buffer.byteLength(s, "utf8"), 0);
writeFileSync(path.join(work, "bench.hex"), corpus.map((s) => Buffer.from(s, "utf8").toString("hex")).join("\n") + "\n");

// gemma-run
const ours = JSON.parse(execFileSync(bin, [tokPath, path.join(work, "bench.hex"), String(SECS)], { encoding: "utf8" }));

// HF tokenizers: load, validate, time (sequential awaits: one string at a time)
const hfLoads = [];
let hf;
for (let i = 0; i < 3; i++) {
  const t0 = now();
  hf = Tokenizer.fromFile(tokPath);
  hfLoads.push((now() - t0) * 1e3);
}
let nIds = 0, h = 2166136261;
for (const s of corpus) {
  const ids = (await hf.encode(s, null, { addSpecialTokens: false })).getIds();
  nIds += ids.length;
  for (const id of ids) h = Math.imul((h ^ id) >>> 0, 16777619) >>> 0;
}
if (nIds !== ours.ids || h !== ours.checksum) {
  console.log(`FAIL validate: gemma-run gave ${ours.ids} ids (checksum ${ours.checksum}), HF ${nIds} (${h})`);
  process.exit(1);
}
// MB per wall second and per CPU second of this process (all its threads)
async function timeIt(fn) {
  let passes = 0;
  const t0 = now(), c0 = process.cpuUsage();
  let el;
  do {
    await fn();
    passes++;
    el = now() - t0;
  } while (el < SECS);
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  return { wall: (bytes * passes) / el / 1e6, cpu: (bytes * passes) / cpu / 1e6 };
}
const hfSeq = await timeIt(async () => {
  for (const s of corpus) await hf.encode(s, null, { addSpecialTokens: false });
});
const hfBatch = await timeIt(async () => {
  await hf.encodeBatch(corpus, { addSpecialTokens: false });
});

// @lenml/tokenizers
const lenLoads = [];
let len;
for (let i = 0; i < 3; i++) {
  const t0 = now();
  len = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(readFileSync(tokPath, "utf8")),
    tokenizerConfig: JSON.parse(readFileSync(cfgPath, "utf8")),
  });
  lenLoads.push((now() - t0) * 1e3);
}
const lenMbs = await timeIt(() => {
  for (const s of corpus) len.encode(s, { add_special_tokens: false });
});

const f = (x) => x.toFixed(2);
const oursR = { wall: ours.encode_mb_s, cpu: ours.encode_mb_cpu_s };
console.log(`corpus: ${corpus.length} strings, ${(bytes / 1e6).toFixed(2)} MB, ${ours.ids} ids; gemma-run ids validated against HF`);
for (const k of ["cpu", "wall"]) {
  const per = k === "cpu" ? "MB per CPU second" : "MB per wall second";
  console.log(`encode ${per}: gemma-run ${f(oursR[k])} | HF tokenizers ${f(hfSeq[k])} (one string at a time), ` +
    `${f(hfBatch[k])} (encodeBatch) | @lenml/tokenizers ${f(lenMbs[k])}`);
  console.log(`encode ratio (${k}): gemma-run / HF ${f(oursR[k] / hfSeq[k])}x (one at a time), ` +
    `${f(oursR[k] / hfBatch[k])}x (encodeBatch); gemma-run / @lenml ${f(oursR[k] / lenMbs[k])}x`);
}
console.log(`load ms: gemma-run ${f(ours.load_ms_median)} (median of 7, min ${f(ours.load_ms_min)}, ` +
  `CPU ${f(ours.load_cpu_ms_median)}) | ` +
  `HF ${f(median(hfLoads))} (median of 3) | @lenml ${f(median(lenLoads))} (median of 3, incl. JSON.parse)`);
console.log(`load ratio: HF / gemma-run ${f(median(hfLoads) / ours.load_ms_median)}x, @lenml / gemma-run ` +
  `${f(median(lenLoads) / ours.load_ms_median)}x; target gemma-run < 300 ms: ${ours.load_ms_median < 300 ? "met" : "NOT met"}`);
