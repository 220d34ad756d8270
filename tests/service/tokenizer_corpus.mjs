// tokenizer_corpus.mjs - gemma-run's tokenizer against Hugging Face's on a
// generated corpus (run by tokenizer_corpus.test.sh; also used by
// bench/bench_tokenizer.mjs for its corpus).
//
// Generates N strings deterministically (seeded PRNG): English and code,
// JSON, numbers, whitespace runs, mixed scripts, emoji sequences, combining
// marks, random code points from every plane, control characters, literal
// U+2581, special-token text (well-formed, malformed, embedded), long
// strings. Encodes them with HF `tokenizers` (Rust, npm 0.23.2) and with
// `test_tokenizer --batch`, and compares ids, decodes (HF decode of HF ids
// vs ours of ours) and our streaming decode. Then decodes ~2000 random id
// sequences (broken byte runs, special and added tokens; skip_special off
// and on) both ways. Prints PASS/FAIL lines.
//
// usage: node tokenizer_corpus.mjs TEST_TOKENIZER_BIN TOKENIZER_JSON WORKDIR [N]
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export function makeRng(seed) {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which " +
  "but have an they you were her she there can all their has been if more when will would who so no " +
  "model token server Cloud Run Gemma GPU latency throughput request response stream batch kernel " +
  "Internationalization don't we'll I'm it's e.g. U.S.A. naïve café résumé coöperate").split(" ");
const CODE = [
  "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
  "const x = await fetch(`/v1/chat?x=${y}`);", "if __name__ == \"__main__\":\n    main()",
  "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }", "SELECT * FROM t WHERE a >= 10;",
  "  <div class=\"a\"><p>hi</p></div>", "x := map[string]int{\"a\": 1}", "fn main() -> Result<(), E> { Ok(()) }",
  "$ curl -sS -X POST http://127.0.0.1:8080/v1/completions -d '{\"prompt\":\"hi\"}'",
];
const SPECIAL = ["<start_of_turn>", "<end_of_turn>", "<eos>", "<bos>", "<pad>", "<unk>", "<mask>",
  "<unused0>", "<unused17>", "<unused98>", "<table>", "</table>", "<h1>", "</h1>", "<s>", "</s>", "<code>",
  "</code>", "<tr>", "<td>", "<br>", "<start_of_turn", "start_of_turn>", "<<eos>>", "</eos>", "<EOS>",
  "<unused99>", "<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n", "<0x41>", "<0xZZ>", "▁▁"];
const RANGES = [
  [0x20, 0x7e], [0xa0, 0xff], [0x100, 0x17f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff],
  [0x900, 0x97f], [0xe00, 0xe7f], [0x10a0, 0x10ff], [0x1100, 0x11ff], [0x3040, 0x30ff], [0x4e00, 0x9fff],
  [0xac00, 0xd7a3], [0x1f300, 0x1faff], [0x300, 0x36f], [0x2000, 0x206f], [0xfe00, 0xfe0f], [0xe000, 0xf8ff],
  [0x20000, 0x2a6df], [0x1d400, 0x1d7ff], [0x10000, 0x1007f], [0xf0000, 0xffffd], [0x100000, 0x10fffd],
  [0xe0000, 0xe007f], [0x0, 0x1f], [0xfff0, 0xffff], [0x2580, 0x259f],
];
const WS = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2581", " \n ", "\t\t", "\u200b",
  "\u2028", "\v", "\f", "\r"];
const EMOJI = ["👍🏽", "👨‍👩‍👧‍👦", "🇯🇵", "🏳️‍🌈", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "❤️", "😀", "🤖", "🧑🏿‍💻"];

function cp(c) {
  return String.fromCodePoint(c);
}

export function genCorpus(n, seed = 12345) {
  const r = makeRng(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const randChar = () => {
    for (;;) {
      const [lo, hi] = pick(RANGES);
      const c = int(lo, hi);
      if (c >= 0xd800 && c < 0xe000) continue;
      return cp(c);
    }
  };
  const anyChar = () => {
    for (;;) {
      const c = r() < 0.5 ? int(0, 0xffff) : int(0x10000, 0x10ffff);
      if (c >= 0xd800 && c < 0xe000) continue;
      return cp(c);
    }
  };
  const gens = [
    () => Array.from({ length: int(1, 30) }, () => pick(WORDS)).join(pick([" ", " ", "  ", "\n", ", "])),
    () => pick(CODE) + (r() < 0.5 ? pick(CODE) : ""),
    () => JSON.stringify({ a: int(0, 1e6), b: [r(), "x y", null, true], "ключ": "値" }, null, r() < 0.5 ? 2 : 0),
    () => Array.from({ length: int(1, 12) }, () => String(int(0, 10 ** int(1, 9)) * (r() < 0.2 ? -1 : 1)) +
      pick(["", ".5", "e10", ",", " ", "%"])).join(pick([" ", "", "+", "\n"])),
    () => Array.from({ length: int(1, 20) }, () => (r() < 0.5 ? pick(WS).repeat(int(1, 40)) : pick(WORDS))).join(""),
    () => Array.from({ length: int(1, 60) }, randChar).join(""),
    () => Array.from({ length: int(1, 40) }, anyChar).join(""),
    () => Array.from({ length: int(1, 8) }, () => pick(EMOJI) + (r() < 0.5 ? pick(WORDS) : "")).join(pick(["", " "])),
    () => Array.from({ length: int(1, 10) }, () => (r() < 0.5 ? pick(SPECIAL) : pick(WORDS) + pick(WS))).join(""),
    () => "e" + "\u0301".repeat(int(1, 5)) + " a\u0308o\u0308 " + "\u1100\u1161\u11a8" + randChar(),
    () => pick(WS).repeat(int(1, 300)),
    () => pick(["a", "ab", "\u2581", "<", "x ", "日本", "😀", "\n"]).repeat(int(10, 800)),
    () => Array.from({ length: int(50, 400) }, () => (r() < 0.8 ? pick(WORDS) : randChar())).join(" "),
    () => Array.from({ length: int(1, 50) }, () => pick([randChar, anyChar, () => pick(SPECIAL), () => pick(WS),
      () => pick(WORDS), () => pick(EMOJI)])()).join(""),
  ];
  const out = [""];
  for (let i = 1; i < n; i++) out.push(gens[i % gens.length]());
  return out;
}

function hex(s) {
  return Buffer.from(s, "utf8").toString("hex");
}

async function main() {
  const [bin, tokPath, work, nArg] = process.argv.slice(2);
  const n = Number(nArg || 4000);
  const require = createRequire(import.meta.url);
  const { Tokenizer } = require(path.resolve("tools/node/node_modules/tokenizers"));
  const hf = Tokenizer.fromFile(tokPath);
  const corpus = genCorpus(n);
  const inFile = path.join(work, "corpus.hex");
  const outFile = path.join(work, "ours.tsv");
  writeFileSync(inFile, corpus.map(hex).join("\n") + "\n");
  // empty lines are dropped by the batch reader: keep the empty string out of the file's line count
  const res = spawnSync(bin, ["--batch", inFile, outFile], { stdio: ["ignore", "inherit", "inherit"] });
  if (res.status !== 0) {
    console.log(`FAIL corpus_batch: ${bin} --batch exited with ${res.status}`);
    process.exit(1);
  }
  const ours = readFileSync(outFile, "utf8").split("\n").filter((l) => l.length);
  const nonEmpty = corpus.filter((s) => s.length);
  if (ours.length !== nonEmpty.length) {
    console.log(`FAIL corpus_batch: ${ours.length} results for ${nonEmpty.length} strings`);
    process.exit(1);
  }
  let idBad = 0, decBad = 0, streamBad = 0, chars = 0;
  const firstId = [], firstDec = [], firstStream = [];
  for (let i = 0; i < nonEmpty.length; i++) {
    const s = nonEmpty[i];
    chars += s.length;
    const [idsStr, decHex, streamOk] = ours[i].split("\t");
    const enc = await hf.encode(s, null, { addSpecialTokens: false });
    const want = Array.from(enc.getIds());
    const got = idsStr === "" ? [] : idsStr === "error" ? null : idsStr.split(",").map(Number);
    if (!got || got.length !== want.length || got.some((v, k) => v !== want[k])) {
      idBad++;
      if (firstId.length < 3) firstId.push(`#${i} ${JSON.stringify(s).slice(0, 80)}\n    hf   ${want.slice(0, 30)}\n    ours ${(got || ["error"]).slice(0, 30)}`);
    }
    const hfDec = await hf.decode(want, false);
    const ourDec = Buffer.from(decHex, "hex").toString("utf8");
    if (hfDec !== ourDec) {
      decBad++;
      if (firstDec.length < 3) firstDec.push(`#${i} hf ${JSON.stringify(hfDec).slice(0, 80)} ours ${JSON.stringify(ourDec).slice(0, 80)}`);
    }
    if (streamOk !== "1") {
      streamBad++;
      if (firstStream.length < 3) firstStream.push(`#${i} ${JSON.stringify(s).slice(0, 80)}`);
    }
  }
  const line = (name, bad, first) => {
    if (bad === 0) console.log(`PASS ${name}: ${nonEmpty.length} strings (${chars} chars) agree with HF tokenizers`);
    else console.log(`FAIL ${name}: ${bad} of ${nonEmpty.length} strings differ; first:\n  ${first.join("\n  ")}`);
  };
  line("corpus_ids", idBad, firstId);
  line("corpus_decode", decBad, firstDec);
  if (streamBad === 0) console.log(`PASS corpus_stream: streaming decode equals full decode for ${nonEmpty.length} strings`);
  else console.log(`FAIL corpus_stream: ${streamBad} differ; first:\n  ${firstStream.join("\n  ")}`);

  // decoding arbitrary id sequences: byte tokens (valid and broken UTF-8),
  // special and added tokens, U+2581 pieces, anything
  const r = makeRng(999);
  const seqs = [];
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(r() * 40);
    const ids = [];
    for (let k = 0; k < len; k++) {
      const x = r();
      if (x < 0.35) ids.push(217 + Math.floor(r() * 256));
      else if (x < 0.5) ids.push(0x80 + 217 + Math.floor(r() * 64));
      else if (x < 0.6) ids.push(Math.floor(r() * 217));
      else ids.push(Math.floor(r() * 256000));
    }
    seqs.push(ids);
  }
  const idsIn = path.join(work, "ids.txt"), idsOut = path.join(work, "ids_out.tsv");
  // an empty sequence would be an empty line, which the reader skips: keep those out
  const nonEmptySeqs = seqs.filter((s) => s.length);
  writeFileSync(idsIn, nonEmptySeqs.map((s) => s.join(",")).join("\n") + "\n");
  const res2 = spawnSync(bin, ["--batch-ids", idsIn, idsOut], { stdio: ["ignore", "inherit", "inherit"] });
  const rows = res2.status === 0 ? readFileSync(idsOut, "utf8").split("\n").filter((l) => l.length) : [];
  let idDecBad = 0, idStreamBad = 0;
  const firstIdDec = [];
  for (let i = 0; i < nonEmptySeqs.length; i++) {
    const [h0, h1, ok] = (rows[i] || "").split("\t");
    for (const [skip, h] of [[false, h0], [true, h1]]) {
      const want = await hf.decode(nonEmptySeqs[i], skip);
      const got = h === undefined ? null : Buffer.from(h, "hex").toString("utf8");
      if (got !== want) {
        idDecBad++;
        if (firstIdDec.length < 3) firstIdDec.push(`[${nonEmptySeqs[i].slice(0, 12)}] skip=${skip} hf ${JSON.stringify(want).slice(0, 60)} ours ${JSON.stringify(got).slice(0, 60)}`);
      }
    }
    if (ok !== "1") idStreamBad++;
  }
  const nSeq = nonEmptySeqs.length;
  if (idDecBad === 0) console.log(`PASS decode_random_ids: ${nSeq} id sequences x 2 (skip_special off/on) agree with HF tokenizers`);
  else console.log(`FAIL decode_random_ids: ${idDecBad} of ${2 * nSeq} decodes differ; first:\n  ${firstIdDec.join("\n  ")}`);
  if (idStreamBad === 0) console.log(`PASS stream_random_ids: streaming equals full decode for ${nSeq} sequences`);
  else console.log(`FAIL stream_random_ids: ${idStreamBad} of ${nSeq} differ`);
  process.exit(idBad || decBad || streamBad || idDecBad || idStreamBad ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
