// tests/service/responses_api.test.mjs - POST /v1/responses and the API
// fidelity items of issue 18 against `gemma-run serve` (CPU, tiny mkmodel
// model), with clients nobody here wrote: the official `openai` client
// (client.responses.create, streaming and not) and the Vercel AI SDK
// (generateText / streamText with createOpenAI's default provider call,
// which uses /v1/responses). A Responses request must give the same greedy
// text as the equivalent chat request; the stream's events come in
// OpenAI's order with consecutive sequence numbers. curl checks that what
// is not supported is refused with a 400 naming the parameter. Then
// logit_bias (+100 forces a token, -100 bans the greedy one),
// response_format, and usage.prompt_tokens_details.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const require = createRequire(path.join(root, 'tools/node/package.json'));
const OpenAI = require('openai').default ?? require('openai');
const { generateText, streamText } = require('ai');
const { createOpenAI } = require('@ai-sdk/openai');
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

if (!fs.existsSync(BIN)) { console.log(`FAIL responses_setup: ${BIN} not built`); process.exit(1); }
const port = await freePort();
const logf = path.join(os.tmpdir(), `responses-test-${process.pid}.log`);
const log = fs.openSync(logf, 'w');
const srv = spawn(BIN, ['serve', '--model', modelDir(), '--host', '127.0.0.1', '--port', String(port), '--backend', process.env.GR_TEST_BACKEND || 'cpu',
	'--threads', '2', '--served-model-name', 'gemma-tiny', '--api-key', 'sk-test', '--log-format', 'text'], { stdio: ['ignore', log, log] });
const cleanup = () => { try { srv.kill('SIGKILL'); } catch {} try { fs.unlinkSync(logf); } catch {} };
process.on('exit', cleanup);
const base = `http://127.0.0.1:${port}`;
let ready = false;
for (let i = 0; i < 1200 && !ready; i++) {
	try { ready = (await fetch(`${base}/health`)).status === 200; } catch {}
	if (!ready) await new Promise((r) => setTimeout(r, 50));
}
if (!ready) { console.log('FAIL responses_setup: server not ready'); console.log(fs.readFileSync(logf, 'utf8').slice(-2000)); process.exit(1); }

const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${base}/v1`, maxRetries: 0, timeout: 120000 });
const M = 'gemma-tiny';
const PROMPT = 'Tell me about the sea';
const post = async (p, body) => {
	const r = await fetch(`${base}${p}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-test' }, body: JSON.stringify(body) });
	return { status: r.status, json: await r.json() };
};
// the same greedy request through chat: what /v1/responses must reproduce
async function chatText(messages, max) {
	const r = await client.chat.completions.create({ model: M, messages, max_tokens: max, temperature: 0 });
	return { text: r.choices[0].message.content, finish: r.choices[0].finish_reason, usage: r.usage };
}

const ref = await chatText([{ role: 'user', content: PROMPT }], 8);

await test('responses_create', async () => {
	const r = await client.responses.create({ model: M, input: PROMPT, max_output_tokens: 8, temperature: 0 });
	assert(r.object === 'response' && /^resp_/.test(r.id) && typeof r.created_at === 'number', JSON.stringify(r).slice(0, 300));
	assert(r.output.length === 1 && r.output[0].type === 'message' && r.output[0].role === 'assistant' && /^msg_/.test(r.output[0].id), JSON.stringify(r.output));
	const part = r.output[0].content[0];
	assert(part.type === 'output_text' && Array.isArray(part.annotations), JSON.stringify(part));
	assert(r.output_text === ref.text, `responses ${JSON.stringify(r.output_text)} vs chat ${JSON.stringify(ref.text)}`);
	const incomplete = ref.finish === 'length';
	assert(r.status === (incomplete ? 'incomplete' : 'completed'), `status ${r.status} finish ${ref.finish}`);
	assert(incomplete ? r.incomplete_details.reason === 'max_output_tokens' : r.incomplete_details === null, JSON.stringify(r.incomplete_details));
	const u = r.usage;
	assert(u.input_tokens === ref.usage.prompt_tokens && u.output_tokens === ref.usage.completion_tokens &&
		u.total_tokens === u.input_tokens + u.output_tokens && u.input_tokens_details.cached_tokens === 0 &&
		u.output_tokens_details.reasoning_tokens === 0, JSON.stringify(u));
	assert(r.max_output_tokens === 8 && r.temperature === 0 && r.store === false, JSON.stringify(r).slice(0, 400));
});

await test('responses_create_stream_events', async () => {
	const s = await client.responses.create({ model: M, input: PROMPT, max_output_tokens: 8, temperature: 0, stream: true });
	const types = [], seqs = [];
	let text = '', done = null, final = null;
	for await (const ev of s) {
		types.push(ev.type);
		seqs.push(ev.sequence_number);
		if (ev.type === 'response.output_text.delta') text += ev.delta;
		if (ev.type === 'response.output_text.done') done = ev.text;
		if (ev.type === 'response.completed') final = ev.response;
	}
	const head = ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'];
	const tail = ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed'];
	const mid = types.slice(head.length, types.length - tail.length);
	assert(JSON.stringify(types.slice(0, 4)) === JSON.stringify(head) && JSON.stringify(types.slice(-4)) === JSON.stringify(tail) &&
		mid.length > 0 && mid.every((t) => t === 'response.output_text.delta'), types.join(','));
	assert(seqs.every((q, i) => q === i), `sequence numbers ${seqs}`);
	assert(text === ref.text && done === ref.text, `deltas ${JSON.stringify(text)} done ${JSON.stringify(done)} chat ${JSON.stringify(ref.text)}`);
	assert(final && final.output[0].content[0].text === ref.text && final.usage.output_tokens === ref.usage.completion_tokens, JSON.stringify(final).slice(0, 300));
});

await test('responses_message_items_and_instructions', async () => {
	const want = await chatText([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' },
		{ role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'And the sea?' }], 6);
	const r = await client.responses.create({ model: M, instructions: 'Be brief.', max_output_tokens: 6, temperature: 0, input: [
		{ role: 'user', content: [{ type: 'input_text', text: 'Hi there' }] },
		{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello!' }] },
		{ role: 'user', content: 'And the sea?' }] });
	assert(r.output_text === want.text && r.usage.input_tokens === want.usage.prompt_tokens,
		`responses ${JSON.stringify(r.output_text)} (${r.usage.input_tokens}) vs chat ${JSON.stringify(want.text)} (${want.usage.prompt_tokens})`);
	assert(r.instructions === 'Be brief.', JSON.stringify(r.instructions));
});

// a body over 16 KiB is parsed on a prep worker (http_prep.c): same answer
await test('responses_large_body_prep_worker', async () => {
	const r = await post('/v1/responses', { model: M, input: PROMPT, max_output_tokens: 8, temperature: 0, metadata: { pad: 'x'.repeat(20000) } });
	assert(r.status === 200 && r.json.output[0].content[0].text === ref.text, `${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
	const bad = await post('/v1/responses', { model: M, input: PROMPT, tools: [{ type: 'function', name: 'f' }], metadata: { pad: 'x'.repeat(20000) } });
	assert(bad.status === 400 && bad.json.error.param === 'tools', JSON.stringify(bad.json));
});

// the AI SDK's default provider call (openai('model')) is the Responses API
const urls = [];
const provider = createOpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test',
	fetch: (u, init) => { urls.push(String(u)); return fetch(u, init); } });

await test('ai_sdk_generate_text', async () => {
	urls.length = 0;
	const r = await generateText({ model: provider(M), prompt: PROMPT, maxOutputTokens: 8, temperature: 0, maxRetries: 0 });
	assert(urls.length === 1 && urls[0].endsWith('/v1/responses'), `called ${urls}`);
	assert(r.text === ref.text, `ai ${JSON.stringify(r.text)} vs chat ${JSON.stringify(ref.text)}`);
	assert(r.finishReason === (ref.finish === 'length' ? 'length' : 'stop'), `finish ${r.finishReason}`);
	assert(r.usage.inputTokens === ref.usage.prompt_tokens && r.usage.outputTokens === ref.usage.completion_tokens, JSON.stringify(r.usage));
});

await test('ai_sdk_stream_text', async () => {
	urls.length = 0;
	let err = null;
	const r = streamText({ model: provider(M), prompt: PROMPT, maxOutputTokens: 8, temperature: 0, maxRetries: 0, onError: ({ error }) => { err = error; } });
	let text = '';
	for await (const d of r.textStream) text += d;
	assert(!err, `stream error ${err}`);
	assert(urls.length === 1 && urls[0].endsWith('/v1/responses'), `called ${urls}`);
	assert(text === ref.text, `ai stream ${JSON.stringify(text)} vs chat ${JSON.stringify(ref.text)}`);
	const u = await r.usage;
	assert(u.outputTokens === ref.usage.completion_tokens && (await r.finishReason) === (ref.finish === 'length' ? 'length' : 'stop'), JSON.stringify(u));
});

await test('ai_sdk_system_message', async () => {
	const want = await chatText([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: PROMPT }], 5);
	const r = await generateText({ model: provider(M), system: 'Be brief.', prompt: PROMPT, maxOutputTokens: 5, temperature: 0, maxRetries: 0 });
	assert(r.text === want.text, `ai ${JSON.stringify(r.text)} vs chat ${JSON.stringify(want.text)}`);
});

// what is not supported: refused by name (curl, as a user would check)
function curl(method, p, body) {
	const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '-X', method, '-H', 'Authorization: Bearer sk-test', '-H', 'Content-Type: application/json'];
	if (body) args.push('-d', JSON.stringify(body));
	const out = execFileSync('curl', [...args, `${base}${p}`], { encoding: 'utf8' });
	const i = out.lastIndexOf('\n');
	return { status: Number(out.slice(i + 1)), json: JSON.parse(out.slice(0, i)) };
}
const refusals = [
	['tools', { input: 'x', tools: [{ type: 'function', name: 'f', parameters: {} }] }],
	['tool_choice', { input: 'x', tool_choice: 'required' }],
	['previous_response_id', { input: 'x', previous_response_id: 'resp_123' }],
	['background', { input: 'x', background: true }],
	['conversation', { input: 'x', conversation: 'conv_1' }],
	['text', { input: 'x', text: { format: { type: 'json_schema', name: 'a', schema: {} } } }],
	['input', { input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x/y.png' }] }] }],
	['input', { input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file_1' }] }] }],
	['input', { input: [{ type: 'function_call_output', call_id: 'c', output: 'x' }] }],
	['input', { input: [{ type: 'item_reference', id: 'msg_1' }] }],
	['input', { input: [] }],
	['input', {}],
	['max_output_tokens', { input: 'x', max_output_tokens: 0 }],
	['temperature', { input: 'x', temperature: -1 }],
];
await test('responses_refusals_name_the_parameter', async () => {
	for (const [param, body] of refusals) {
		const r = curl('POST', '/v1/responses', { model: M, ...body });
		assert(r.status === 400 && r.json.error && r.json.error.param === param && r.json.error.message,
			`${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.json)}`);
	}
	// store is accepted, and nothing is stored
	const ok = curl('POST', '/v1/responses', { model: M, input: 'x', max_output_tokens: 2, store: true, tool_choice: 'auto', tools: [] });
	assert(ok.status === 200 && ok.json.store === false, JSON.stringify(ok.json).slice(0, 200));
	const g = curl('GET', `/v1/responses/${ok.json.id}`);
	assert(g.status === 404 && g.json.error && g.json.error.code === 404, `GET: ${g.status} ${JSON.stringify(g.json)}`);
});

await test('responses_openai_client_error', async () => {
	try {
		await client.responses.create({ model: M, input: 'x', previous_response_id: 'resp_1' });
		throw new Error('accepted');
	} catch (e) {
		assert(e instanceof OpenAI.BadRequestError && e.param === 'previous_response_id', `${e}`);
	}
});

// logit_bias: +100 forces a token under greedy; -100 on the greedy token changes it
const detok = async (ids) => (await post('/detokenize', { model: M, tokens: ids })).json.prompt;
await test('logit_bias_forces_token', async () => {
	const r = await post('/v1/completions', { model: M, prompt: 'The sea is', max_tokens: 3, temperature: 0, logit_bias: { 100: 100 } });
	assert(r.status === 200, JSON.stringify(r.json));
	const want = await detok([100, 100, 100]);
	assert(r.json.choices[0].text === want, `${JSON.stringify(r.json.choices[0].text)} vs ${JSON.stringify(want)}`);
	const c = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0, logit_bias: { 100: 100 } });
	assert(c.choices[0].message.content === await detok([100, 100]), JSON.stringify(c.choices[0]));
});

await test('logit_bias_bans_greedy_token', async () => {
	const plain = await post('/v1/completions', { model: M, prompt: 'The sea is', max_tokens: 1, temperature: 0, logprobs: 2 });
	const first = plain.json.choices[0].text;
	const ids = (await post('/tokenize', { model: M, prompt: first, add_special_tokens: false })).json.tokens;
	assert(ids.length === 1 && (await detok(ids)) === first, `token of ${JSON.stringify(first)}: ${ids}`);
	const bias = { [ids[0]]: -100 };
	const banned = await post('/v1/completions', { model: M, prompt: 'The sea is', max_tokens: 1, temperature: 0, logprobs: 2, logit_bias: bias });
	assert(banned.status === 200 && banned.json.choices[0].text !== first, `still ${JSON.stringify(banned.json.choices[0])}`);
	// the second best raw token takes its place; logprobs stay raw (before the bias)
	const top = plain.json.choices[0].logprobs.top_logprobs[0];
	const second = Object.keys(top).find((t) => t !== first);
	assert(banned.json.choices[0].text === second, `${JSON.stringify(banned.json.choices[0].text)} vs second ${JSON.stringify(second)}`);
	assert(Math.abs(banned.json.choices[0].logprobs.token_logprobs[0] - top[second]) < 1e-4, JSON.stringify(banned.json.choices[0].logprobs));
	const bad = curl('POST', '/v1/completions', { model: M, prompt: 'x', logit_bias: { 99999999: 1 } });
	assert(bad.status === 400 && bad.json.error.param === 'logit_bias', JSON.stringify(bad.json));
});

await test('response_format_text_or_structured', async () => {
	// structured outputs (tests/service/structured_outputs.test.mjs checks the output): accepted
	const js = curl('POST', '/v1/chat/completions', { model: M, messages: [{ role: 'user', content: 'x' }], max_tokens: 8, response_format: { type: 'json_object' } });
	assert(js.status === 200, JSON.stringify(js.json).slice(0, 300));
	const bad = curl('POST', '/v1/chat/completions', { model: M, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'yaml' } });
	assert(bad.status === 400 && bad.json.error.param === 'response_format', JSON.stringify(bad.json));
	const ok = curl('POST', '/v1/chat/completions', { model: M, messages: [{ role: 'user', content: 'x' }], max_tokens: 1, response_format: { type: 'text' } });
	assert(ok.status === 200, JSON.stringify(ok.json));
});

await test('usage_prompt_tokens_details', async () => {
	const c = await client.completions.create({ model: M, prompt: PROMPT, max_tokens: 2, temperature: 0 });
	assert(c.usage.prompt_tokens_details && c.usage.prompt_tokens_details.cached_tokens === 0, JSON.stringify(c.usage));
	const s = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: PROMPT }], max_tokens: 2, stream: true, stream_options: { include_usage: true } });
	let u = null;
	for await (const ch of s) if (ch.usage) u = ch.usage;
	assert(u && u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens === 0, JSON.stringify(u));
});

// completions logprobs.text_offset counts characters (code points), as vLLM:
// with non-ASCII tokens, text sliced by character at the offsets gives each
// token back; the stream's offsets are the same
await test('text_offset_in_characters', async () => {
	const body = { model: M, prompt: 'Hello', max_tokens: 8, temperature: 0, logprobs: 0 };
	const r = await post('/v1/completions', body);
	const ch = r.json.choices[0], lp = ch.logprobs;
	assert(/[^\x00-\x7f]/.test(ch.text), `greedy text has no non-ASCII character to test with: ${JSON.stringify(ch.text)}`);
	assert(lp.tokens.join('') === ch.text, `tokens ${JSON.stringify(lp.tokens)} do not make ${JSON.stringify(ch.text)}`);
	const cps = Array.from(ch.text);
	lp.tokens.forEach((t, i) => {
		const end = i + 1 < lp.tokens.length ? lp.text_offset[i + 1] : cps.length;
		assert(cps.slice(lp.text_offset[i], end).join('') === t, `token ${i} ${JSON.stringify(t)} at ${lp.text_offset[i]}..${end}: ${JSON.stringify(lp.text_offset)}`);
	});
	const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sk-test' },
		body: JSON.stringify({ ...body, stream: true }) });
	const offs = [];
	for (const line of (await res.text()).split('\n'))
		if (line.startsWith('data: {')) { const c = JSON.parse(line.slice(6)); if (c.choices[0].logprobs) offs.push(...c.choices[0].logprobs.text_offset); }
	assert(JSON.stringify(offs) === JSON.stringify(lp.text_offset), `stream ${JSON.stringify(offs)} vs ${JSON.stringify(lp.text_offset)}`);
	// echo: offsets start after the prompt's characters
	const e = await post('/v1/completions', { ...body, prompt: 'Grüße', echo: true, max_tokens: 2 });
	assert(e.json.choices[0].logprobs.text_offset[0] === 5, JSON.stringify(e.json.choices[0].logprobs));
});

srv.kill('SIGTERM');
const code = await new Promise((r) => srv.on('exit', (c) => r(c)));
if (code === 0) pass('responses_server_exit_0'); else fail('responses_server_exit_0', `exit ${code}`);
process.exit(failed ? 1 : 0);
