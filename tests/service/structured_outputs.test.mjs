// tests/service/structured_outputs.test.mjs - structured outputs end to end:
// `gemma-run serve` (CPU, the tiny random-weight mkmodel model, which left
// alone writes garbage, so only the token mask can make its output valid)
// asked for many completions (seeds x temperatures x n) under a corpus of
// JSON Schemas (nested objects, arrays, enums, $ref recursion, patterns,
// formats, integer ranges), json_object, regexes and choices, in every
// request form (response_format, guided_*, structured_outputs, json_schema,
// chat, completions, /generate, streaming). Every completed output
// (finish_reason "stop") is checked by a validator written independently of
// the grammar compiler: ajv + ajv-formats (tests/node-structured), JSON.parse,
// JS RegExp. Unsupported schemas are a 400 naming the keyword.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BUILD = process.env.BUILD || 'build';
const BIN = path.join(root, BUILD, 'gemma-run');
const req = createRequire(path.join(root, 'tests/node-structured/package.json'));

let failed = 0;
const pass = (n) => console.log(`PASS ${n}`);
const fail = (n, why) => { failed++; console.log(`FAIL ${n}: ${why}`); };
async function test(name, fn) {
	try { await fn(); pass(name); } catch (e) { fail(name, (e && e.stack) ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e)); }
}
function assert(c, msg) { if (!c) throw new Error(msg); }

let Ajv, addFormats;
try {
	Ajv = req('ajv/dist/2020').default;
	addFormats = req('ajv-formats').default ?? req('ajv-formats');
} catch (e) {
	console.log(`FAIL structured_setup: ajv is not installed in tests/node-structured (tools/deps.sh): ${e.message}`);
	process.exit(1);
}
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);

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

if (!fs.existsSync(BIN)) { console.log(`FAIL structured_setup: ${BIN} not built`); process.exit(1); }
const port = await freePort();
const logf = path.join(os.tmpdir(), `structured-test-${process.pid}.log`);
const log = fs.openSync(logf, 'w');
const srv = spawn(BIN, ['serve', '--model', modelDir(), '--host', '127.0.0.1', '--port', String(port), '--backend', process.env.GR_TEST_BACKEND || 'cpu',
	'--threads', '2', '--max-num-seqs', '16', '--log-format', 'text'], { stdio: ['ignore', log, log] });
const cleanup = () => { try { srv.kill('SIGKILL'); } catch {} try { fs.unlinkSync(logf); } catch {} };
process.on('exit', cleanup);
const base = `http://127.0.0.1:${port}`;
let ready = false;
for (let i = 0; i < 1200 && !ready; i++) {
	try { ready = (await fetch(`${base}/health`)).status === 200; } catch {}
	if (!ready) await new Promise((r) => setTimeout(r, 50));
}
if (!ready) { console.log('FAIL structured_setup: server not ready'); console.log(fs.readFileSync(logf, 'utf8').slice(-2000)); process.exit(1); }

async function post(route, body) {
	const r = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
	return { status: r.status, json: await r.json() };
}

const schemas = {
	person: { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 130 },
		email: { type: 'string', format: 'email' }, admin: { type: 'boolean' } }, required: ['name', 'age'], additionalProperties: false },
	nested: { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 },
		meta: { type: 'object', properties: { when: { type: 'string', format: 'date-time' }, day: { type: 'string', format: 'date' }, at: { type: 'string', format: 'time' } },
			required: ['when', 'day', 'at'], additionalProperties: false } }, required: ['id', 'tags', 'meta'], additionalProperties: false },
	tree: { $defs: { node: { type: 'object', properties: { v: { type: 'integer', minimum: -5, maximum: 5 }, kids: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } },
		required: ['v', 'kids'], additionalProperties: false } }, $ref: '#/$defs/node' },
	patterns: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{2}-[0-9]{3}$' }, word: { type: 'string', minLength: 2, maxLength: 5 },
		kind: { anyOf: [{ type: 'null' }, { type: 'number' }, { const: 'x' }] } }, required: ['code', 'word', 'kind'], additionalProperties: false },
	tuple: { type: 'array', prefixItems: [{ type: 'string', maxLength: 4 }, { type: 'integer' }, { enum: [true, null] }], items: false },
	allof: { allOf: [{ properties: { a: { type: 'integer' } }, required: ['a'] }, { properties: { b: { type: ['string', 'null'], maxLength: 3 } }, required: ['b'] }] },
};

const stats = {};
function check(name, kind, spec, text, finish) {
	stats[name] = stats[name] || { stop: 0, length: 0 };
	stats[name][finish === 'stop' ? 'stop' : 'length']++;
	if (finish !== 'stop')
		return;
	if (kind === 'schema') {
		let v;
		try { v = JSON.parse(text); } catch (e) { throw new Error(`${name}: not JSON: ${JSON.stringify(text)}`); }
		const validate = ajv.compile(spec);
		assert(validate(v), `${name}: ${JSON.stringify(text)} fails the schema: ${ajv.errorsText(validate.errors)}`);
	} else if (kind === 'object') {
		let v;
		try { v = JSON.parse(text); } catch (e) { throw new Error(`${name}: not JSON: ${JSON.stringify(text)}`); }
		assert(v !== null && typeof v === 'object' && !Array.isArray(v), `${name}: not an object: ${text}`);
	} else if (kind === 'regex') {
		assert(new RegExp(`^(?:${spec})$`, 'u').test(text), `${name}: ${JSON.stringify(text)} does not match /${spec}/`);
	} else if (kind === 'choice') {
		assert(spec.includes(text), `${name}: ${JSON.stringify(text)} is not one of ${spec}`);
	}
}

const temps = [0.7, 1.0, 1.5];
for (const [name, schema] of Object.entries(schemas)) {
	await test(`structured_schema_${name}`, async () => {
		for (const t of temps) for (const seed of [1, 2]) {
			const r = await post('/v1/completions', { prompt: 'JSON:', max_tokens: 160, temperature: t, seed, n: 4,
				response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } } });
			assert(r.status === 200, `${r.status} ${JSON.stringify(r.json)}`);
			for (const c of r.json.choices) check(name, 'schema', schema, c.text, c.finish_reason);
		}
		assert(stats[name].stop >= 3, `only ${stats[name].stop} of ${stats[name].stop + stats[name].length} outputs completed: the test shows little`);
	});
}

await test('structured_json_object_chat', async () => {
	for (const seed of [1, 2]) {
		const r = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'give JSON' }], max_tokens: 300, temperature: 0.7, seed, n: 8,
			response_format: { type: 'json_object' } });
		assert(r.status === 200, `${r.status} ${JSON.stringify(r.json)}`);
		for (const c of r.json.choices) check('json_object', 'object', null, c.message.content, c.finish_reason);
	}
	assert(stats.json_object.stop >= 1, `no json_object output completed (${stats.json_object.length} cut)`);
});

await test('structured_vllm_forms', async () => {
	const forms = [
		['guided_json', { guided_json: schemas.person }, 'schema', schemas.person],
		['guided_json_text', { guided_json: JSON.stringify(schemas.tuple) }, 'schema', schemas.tuple],
		['structured_outputs_json', { structured_outputs: { json: schemas.allof } }, 'schema', schemas.allof],
		['llama_json_schema', { json_schema: schemas.person }, 'schema', schemas.person],
		['guided_regex', { guided_regex: '(cat|dog)s? [0-9]{1,3}!' }, 'regex', '(cat|dog)s? [0-9]{1,3}!'],
		['structured_outputs_regex', { structured_outputs: { regex: '[a-f]{2,4}@[0-9]' } }, 'regex', '[a-f]{2,4}@[0-9]'],
		['guided_choice', { guided_choice: ['alpha', 'beta', 'gamma delta'] }, 'choice', ['alpha', 'beta', 'gamma delta']],
		['structured_outputs_choice', { structured_outputs: { choice: ['ja', 'nein'] } }, 'choice', ['ja', 'nein']],
	];
	for (const [name, extra, kind, spec] of forms) {
		const r = await post('/v1/completions', { prompt: 'x', max_tokens: 120, temperature: 1.2, seed: 7, n: 4, ...extra });
		assert(r.status === 200, `${name}: ${r.status} ${JSON.stringify(r.json)}`);
		for (const c of r.json.choices) check(name, kind, spec, c.text, c.finish_reason);
		assert(stats[name].stop >= 1, `${name}: no output completed`);
	}
});

await test('structured_generate_route', async () => {
	const r = await post('/generate', { prompt: 'x', max_tokens: 40, temperature: 1, seed: 3, guided_choice: ['up', 'down'] });
	assert(r.status === 200, `${r.status} ${JSON.stringify(r.json)}`);
	const t = r.json.text[0];
	assert(t === 'xup' || t === 'xdown', JSON.stringify(r.json));
});

await test('structured_stream', async () => {
	const r = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ prompt: 'x', max_tokens: 200, temperature: 0.8, seed: 11, stream: true,
			response_format: { type: 'json_schema', json_schema: { name: 'n', schema: schemas.nested } } }) });
	const body = await r.text();
	let text = '', finish = null;
	for (const line of body.split('\n')) {
		if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
		const c = JSON.parse(line.slice(6));
		text += c.choices[0].text;
		if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
	}
	assert(finish === 'stop' || finish === 'length', `finish ${finish}`);
	check('stream', 'schema', schemas.nested, text, finish);
});

await test('structured_length_is_prefix', async () => {
	// cut by max_tokens: finish_reason length, and the text is a prefix the grammar allowed (not complete)
	const r = await post('/v1/completions', { prompt: 'x', max_tokens: 3, temperature: 1, seed: 5, n: 4,
		response_format: { type: 'json_schema', json_schema: { name: 'p', schema: schemas.nested } } });
	assert(r.status === 200, JSON.stringify(r.json));
	for (const c of r.json.choices) {
		assert(c.finish_reason === 'length', JSON.stringify(c));
		assert(c.text.startsWith('{'), JSON.stringify(c));
	}
});

await test('structured_errors_name_the_keyword', async () => {
	const cases = [
		[{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', minProperties: 1 } } } }, 'response_format', 'minProperties'],
		[{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { not: {} } } } }, 'response_format', 'not'],
		[{ response_format: { type: 'xml' } }, 'response_format', 'type'],
		[{ guided_json: { type: 'string', format: 'hostname' } }, 'guided_json', 'hostname'],
		[{ guided_regex: '(?<=a)b' }, 'guided_regex', 'lookaround'],
		[{ guided_regex: 'a(b' }, 'guided_regex', 'parenthesis'],
		[{ guided_choice: [1, 2] }, 'guided_choice', 'strings'],
		[{ guided_grammar: 'root ::= "a"' }, 'guided_grammar', 'not supported'],
		[{ guided_regex: 'a', guided_choice: ['b'] }, 'guided_choice', 'only one'],
	];
	for (const [extra, param, word] of cases) {
		const r = await post('/v1/completions', { prompt: 'x', max_tokens: 4, ...extra });
		assert(r.status === 400, `${JSON.stringify(extra)}: status ${r.status}`);
		assert(r.json.error.param === param && r.json.error.message.includes(word),
			`${JSON.stringify(extra)}: ${JSON.stringify(r.json.error)}`);
	}
});

console.log(`  outputs per case (stop/length): ${JSON.stringify(stats)}`);
process.exit(failed ? 1 : 0);
