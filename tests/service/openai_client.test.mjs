// tests/service/openai_client.test.mjs - the official `openai` npm client
// against `gemma-run serve` on 127.0.0.1 (CPU, tiny mkmodel model):
// completions, chat, streaming with include_usage, errors surfaced as the
// client's exception classes, and 64 concurrent greedy streams that each
// equal the same prompt run alone.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const require = createRequire(path.join(root, 'tools/node/package.json'));
const OpenAI = require('openai').default ?? require('openai');
const BUILD = process.env.BUILD || 'build';
const BIN = path.join(root, BUILD, 'gemma-run');

let failed = 0;
const pass = (n) => console.log(`PASS ${n}`);
const fail = (n, why) => { failed++; console.log(`FAIL ${n}: ${why}`); };
async function test(name, fn) {
	try { await fn(); pass(name); } catch (e) { fail(name, (e && e.stack) ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e)); }
}
function assert(c, msg) { if (!c) throw new Error(msg); }

function freePort() {
	return new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}
function modelDir() {
	const d = path.join(root, BUILD, 'test-models/tiny');
	if (!fs.existsSync(path.join(d, 'tokenizer.json'))) {
		const tmp = `${d}.tmp.${process.pid}`;
		fs.mkdirSync(path.dirname(d), { recursive: true });
		execFileSync(path.join(root, BUILD, 'mkmodel'), ['--preset', 'tiny', '--out', tmp], { stdio: 'ignore' });
		try { fs.renameSync(tmp, d); } catch { fs.rmSync(tmp, { recursive: true, force: true }); }
	}
	return d;
}

if (!fs.existsSync(BIN)) { console.log(`FAIL openai_setup: ${BIN} not built`); process.exit(1); }
const port = await freePort();
const logf = path.join(os.tmpdir(), `openai-test-${process.pid}.log`);
const log = fs.openSync(logf, 'w');
const srv = spawn(BIN, ['serve', '--model', modelDir(), '--host', '127.0.0.1', '--port', String(port), '--backend', process.env.GR_TEST_BACKEND || 'cpu',
	'--threads', '2', '--served-model-name', 'gemma-tiny', '--api-key', 'sk-test', '--max-num-seqs', '64',
	'--log-format', 'text'], { stdio: ['ignore', log, log] });
const cleanup = () => { try { srv.kill('SIGKILL'); } catch {} try { fs.unlinkSync(logf); } catch {} };
process.on('exit', cleanup);
const base = `http://127.0.0.1:${port}`;
let ready = false;
for (let i = 0; i < 1200 && !ready; i++) {
	try { ready = (await fetch(`${base}/health`)).status === 200; } catch {}
	if (!ready) await new Promise((r) => setTimeout(r, 50));
}
if (!ready) { console.log('FAIL openai_setup: server not ready'); console.log(fs.readFileSync(logf, 'utf8').slice(-2000)); process.exit(1); }

const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${base}/v1`, maxRetries: 0, timeout: 120000 });
const M = 'gemma-tiny';

await test('openai_models_list', async () => {
	const l = await client.models.list();
	assert(l.data.length === 1 && l.data[0].id === M, JSON.stringify(l.data));
});

let greedy = '';
await test('openai_completion', async () => {
	const r = await client.completions.create({ model: M, prompt: 'The capital of France is', max_tokens: 8, temperature: 0 });
	assert(r.object === 'text_completion' && r.choices.length === 1, JSON.stringify(r));
	assert(typeof r.choices[0].text === 'string' && r.choices[0].finish_reason === 'length', JSON.stringify(r.choices[0]));
	assert(r.usage.completion_tokens === 8 && r.usage.total_tokens === r.usage.prompt_tokens + 8, JSON.stringify(r.usage));
	greedy = r.choices[0].text;
});

await test('openai_completion_stream_include_usage', async () => {
	const s = await client.completions.create({ model: M, prompt: 'The capital of France is', max_tokens: 8, temperature: 0,
		stream: true, stream_options: { include_usage: true } });
	let text = '', usage = null, finish = null;
	for await (const c of s) {
		if (c.usage) usage = c.usage;
		for (const ch of c.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
	}
	assert(text === greedy, `stream ${JSON.stringify(text)} != ${JSON.stringify(greedy)}`);
	assert(finish === 'length', `finish ${finish}`);
	assert(usage && usage.completion_tokens === 8, JSON.stringify(usage));
});

let chatText = '';
await test('openai_chat', async () => {
	const r = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 6, temperature: 0, seed: 1 });
	assert(r.object === 'chat.completion' && r.choices[0].message.role === 'assistant', JSON.stringify(r));
	assert(['stop', 'length'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
	assert(r.usage.prompt_tokens > 0, JSON.stringify(r.usage));
	chatText = r.choices[0].message.content;
});

await test('openai_chat_stream', async () => {
	const s = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 6,
		temperature: 0, seed: 1, stream: true, stream_options: { include_usage: true } });
	let text = '', role = null, usage = null;
	for await (const c of s) {
		if (c.usage) usage = c.usage;
		for (const ch of c.choices) { if (ch.delta.role) role = ch.delta.role; text += ch.delta.content ?? ''; }
	}
	assert(role === 'assistant', `role ${role}`);
	assert(text === chatText, `${JSON.stringify(text)} != ${JSON.stringify(chatText)}`);
	assert(usage && usage.completion_tokens >= 1, JSON.stringify(usage));
});

await test('openai_chat_n_logprobs', async () => {
	const r = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, n: 2,
		logprobs: true, top_logprobs: 3, seed: 5 });
	assert(r.choices.length === 2 && r.choices[1].index === 1, JSON.stringify(r.choices.map((c) => c.index)));
	const lp = r.choices[0].logprobs.content;
	assert(lp.length >= 1 && lp[0].top_logprobs.length === 3 && typeof lp[0].logprob === 'number', JSON.stringify(lp[0]));
});

await test('openai_error_bad_request', async () => {
	try {
		await client.completions.create({ model: M, prompt: 'x', temperature: -1 });
		throw new Error('no exception');
	} catch (e) {
		assert(e instanceof OpenAI.BadRequestError, `got ${e.constructor.name}: ${e.message}`);
		assert(e.status === 400 && e.param === 'temperature', `status ${e.status} param ${e.param}`);
	}
});

await test('openai_error_not_found_model', async () => {
	try {
		await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
		throw new Error('no exception');
	} catch (e) {
		assert(e instanceof OpenAI.NotFoundError, `got ${e.constructor.name}: ${e.message}`);
	}
});

await test('openai_error_auth', async () => {
	const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${base}/v1`, maxRetries: 0 });
	try {
		await bad.models.list();
		throw new Error('no exception');
	} catch (e) {
		assert(e instanceof OpenAI.AuthenticationError && e.status === 401, `got ${e.constructor.name}: ${e.message}`);
	}
});

await test('openai_error_stream_bad_request', async () => {
	try {
		const s = await client.completions.create({ model: M, prompt: 'x', max_tokens: 0, stream: true });
		for await (const _ of s) { /* nothing */ }
		throw new Error('no exception');
	} catch (e) {
		assert(e instanceof OpenAI.BadRequestError && e.param === 'max_tokens', `got ${e.constructor.name}: ${e.message}`);
	}
});

// 64 concurrent greedy streams, 8 prompts x 8; each equals the same prompt run alone
const prompts = ['Once upon a time', 'The quick brown fox', 'In 1999,', 'def main():', 'Hello, my name is',
	'The weather today', 'Numbers: 1, 2, 3,', 'Paris is'];
const alone = {};
for (const p of prompts) {
	const r = await client.completions.create({ model: M, prompt: p, max_tokens: 12, temperature: 0 });
	alone[p] = r.choices[0].text;
}
await test('openai_64_concurrent_streams', async () => {
	const jobs = [];
	for (let i = 0; i < 64; i++) {
		const p = prompts[i % prompts.length];
		jobs.push((async () => {
			const s = await client.completions.create({ model: M, prompt: p, max_tokens: 12, temperature: 0, stream: true });
			let text = '', finish = null;
			for await (const c of s) for (const ch of c.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
			return { p, text, finish };
		})());
	}
	const res = await Promise.all(jobs);
	const bad = res.filter((r) => r.text !== alone[r.p] || r.finish !== 'length');
	assert(res.length === 64 && bad.length === 0,
		`${bad.length} of 64 differ, e.g. ${JSON.stringify(bad[0])} vs ${JSON.stringify(bad[0] && alone[bad[0].p])}`);
});

await test('openai_metrics_after_load', async () => {
	const m = await (await fetch(`${base}/metrics`)).text();
	const running = /^vllm:num_requests_running\{[^}]*\} (\S+)/m.exec(m);
	assert(running && running[1] === '0', `running ${running && running[1]}`);
	const ok = /^vllm:request_success_total\{finished_reason="length",model_name="gemma-tiny"\} (\d+)/m.exec(m);
	assert(ok && Number(ok[1]) >= 64 + 8, `success ${ok && ok[1]}`);
});

srv.kill('SIGTERM');
const code = await new Promise((r) => srv.on('exit', (c) => r(c)));
if (code === 0) pass('openai_server_exit_0'); else fail('openai_server_exit_0', `exit ${code}`);
process.exit(failed ? 1 : 0);
