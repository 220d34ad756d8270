// bench/llama/run.mjs - the llama.cpp side of bench/bench_cpu_llama.sh:
// node-llama-cpp (pinned in package.json, its prebuilt CPU build) on a GGUF
// file, the same three measurements as build/bench/cpu_side on our side:
//   prefill: one sequence evaluates PREFILL prompt tokens (one batch);
//   decode1: after an untimed 8-token prompt, DECODE single-token steps;
//   conc4:   4 sequences of one context, each prefilled untimed, then DECODE
//            steps each at once (llama.cpp batches them into one eval).
// Greedy (temperature 0). Prints one line "llama <name> <median> <unit>" per
// figure, medians of REPS. Usage: node run.mjs MODEL.gguf THREADS [REPS]
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, threadsArg, repsArg] = process.argv.slice(2);
const threads = Number(threadsArg || 2), reps = Number(repsArg || 3);
const PREFILL = Number(process.env.BENCH_PREFILL || 256), DECODE = Number(process.env.BENCH_DECODE || 64);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// the same pseudo-random prompt ids as cpu_side.c: bos, then ids in [3, 1003)
function prompt(n, seed) {
	const p = [2];
	let s = seed >>> 0;
	for (let i = 1; i < n; i++) {
		s = (Math.imul(s, 1103515245) + 12345) >>> 0;
		p.push(3 + ((s >>> 8) % 1000));
	}
	return p;
}

async function decode(seq, first, n) {
	let got = 0;
	const it = seq.evaluate([first], { temperature: 0 });
	for await (const _ of it) {
		if (++got >= n)
			break;
	}
	return got;
}

const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads,
	logLevel: LlamaLogLevel.warn });
const t0 = now();
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
console.log(`llama load_s ${(now() - t0).toFixed(2)} s`);
const ctx = await model.createContext({ contextSize: 4 * (PREFILL + DECODE + 16), sequences: 4,
	batchSize: PREFILL * 2, threads: { ideal: threads, min: threads } });

const pre = [], d1 = [], c4 = [];
for (let r = 0; r < reps; r++) {
	const seq = ctx.getSequence();
	let t = now();
	await seq.evaluateWithoutGeneratingNewTokens(prompt(PREFILL, 7 + r));
	pre.push(now() - t);
	await seq.clearHistory();

	const p = prompt(8, 100 + r);
	await seq.evaluateWithoutGeneratingNewTokens(p.slice(0, 7));
	t = now();
	const got = await decode(seq, p[7], DECODE);
	d1.push(got / (now() - t));
	if (got !== DECODE)
		throw new Error(`decode stopped after ${got} tokens`);
	seq.dispose();

	const seqs = [0, 1, 2, 3].map(() => ctx.getSequence());
	const ps = seqs.map((_, i) => prompt(8, 200 + 10 * r + i));
	await Promise.all(seqs.map((s, i) => s.evaluateWithoutGeneratingNewTokens(ps[i].slice(0, 7))));
	t = now();
	const n = await Promise.all(seqs.map((s, i) => decode(s, ps[i][7], DECODE)));
	c4.push(n.reduce((a, b) => a + b, 0) / (now() - t));
	seqs.forEach((s) => s.dispose());
}
console.log(`llama prefill_s ${median(pre).toFixed(3)} s`);
console.log(`llama decode1_tps ${median(d1).toFixed(2)} tok/s`);
console.log(`llama conc4_tps ${median(c4).toFixed(2)} tok/s`);
console.log(`llama version ${JSON.parse((await import("fs")).readFileSync(
	new URL("./node_modules/node-llama-cpp/package.json", import.meta.url))).version}`);
await ctx.dispose();
await model.dispose();
