// tests/service/schema_check_cli.test.mjs - `gemma-run schema-check`: for a
// corpus of schemas, hand-written valid and invalid documents; each label is
// first confirmed by ajv (an independent validator, tests/node-structured),
// then the grammar must agree (exit 0 / 1). Unsupported schemas exit 2
// naming the keyword.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BIN = path.join(root, process.env.BUILD || 'build', 'gemma-run');
const req = createRequire(path.join(root, 'tests/node-structured/package.json'));
let Ajv, addFormats;
try {
	Ajv = req('ajv/dist/2020').default;
	addFormats = req('ajv-formats').default ?? req('ajv-formats');
} catch (e) {
	console.log(`FAIL schema_check_setup: ajv missing in tests/node-structured (tools/deps.sh): ${e.message}`);
	process.exit(1);
}
if (!fs.existsSync(BIN)) { console.log(`FAIL schema_check_setup: ${BIN} not built`); process.exit(1); }
const ajv = new Ajv({ strict: false });
addFormats(ajv);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'schema-check-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
let failed = 0;

function run(schema, doc) {
	const f = path.join(dir, 's.json');
	fs.writeFileSync(f, typeof schema === 'string' ? schema : JSON.stringify(schema));
	return spawnSync(BIN, ['schema-check', '--schema', f], { input: doc });
}

const corpus = [
	['types', { type: 'object', properties: { s: { type: 'string' }, i: { type: 'integer' }, n: { type: 'number' }, b: { type: 'boolean' },
		z: { type: 'null' }, a: { type: 'array' }, o: { type: 'object' } }, required: ['s', 'i', 'n', 'b', 'z', 'a', 'o'] },
	 ['{"s":"x","i":1,"n":1.5,"b":true,"z":null,"a":[1,"2"],"o":{"k":[]}}', '{ "s" : "\\u00e9\\"", "i": -7, "n": 2e5, "b": false, "z": null, "a": [], "o": {} }'],
	 ['{"s":1,"i":1,"n":1,"b":true,"z":null,"a":[],"o":{}}', '{"s":"x","i":1.5,"n":1,"b":true,"z":null,"a":[],"o":{}}', '{"s":"x","i":1,"n":1,"b":true,"z":null,"a":[]}']],
	['required_optional', { properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'boolean' } }, required: ['b'], additionalProperties: false },
	 ['{"b":""}', '{"a":1,"b":"x"}', '{"b":"x","c":true}', '{"a":1,"b":"x","c":false}'],
	 ['{}', '{"a":1}', '{"b":"x","d":1}', '{"b":2}']],
	['enum_const', { type: 'object', properties: { e: { enum: ['red', 2, null, [1]] }, c: { const: 'k' } }, required: ['e', 'c'], additionalProperties: false },
	 ['{"e":"red","c":"k"}', '{"e":2,"c":"k"}', '{"e":null,"c":"k"}', '{"e":[1],"c":"k"}'],
	 ['{"e":"blue","c":"k"}', '{"e":"red","c":"K"}', '{"e":3,"c":"k"}']],
	['arrays', { type: 'array', items: { type: 'integer', minimum: 10, maximum: 99 }, minItems: 2, maxItems: 3 },
	 ['[10,99]', '[ 10 , 50 , 99 ]'], ['[10]', '[10,20,30,40]', '[9,10]', '[10,100]', '[10,"11"]']],
	['prefix', { type: 'array', prefixItems: [{ type: 'string' }, { type: 'boolean' }], items: { type: 'null' } },
	 ['["a",true]', '["a",false,null,null]'], ['[true,"a"]', '["a",true,1]']],
	['anyof_oneof', { type: 'object', properties: { x: { anyOf: [{ type: 'string', maxLength: 2 }, { type: 'integer' }] }, y: { oneOf: [{ type: 'null' }, { type: 'boolean' }] } },
		required: ['x', 'y'], additionalProperties: false },
	 ['{"x":"ab","y":null}', '{"x":5,"y":true}'], ['{"x":"abc","y":null}', '{"x":1.5,"y":null}', '{"x":1,"y":0}']],
	['allof', { allOf: [{ properties: { a: { type: 'integer' } }, required: ['a'] }, { properties: { b: { type: 'string' } }, required: ['b'] }] },
	 ['{"a":1,"b":"x"}'], ['{"a":1}', '{"b":"x"}', '{"a":"1","b":"x"}']],
	['ref_recursive', { $defs: { list: { anyOf: [{ type: 'null' }, { type: 'object', properties: { head: { type: 'integer' }, tail: { $ref: '#/$defs/list' } },
		required: ['head', 'tail'], additionalProperties: false }] } }, $ref: '#/$defs/list' },
	 ['null', '{"head":1,"tail":null}', '{"head":1,"tail":{"head":2,"tail":{"head":3,"tail":null}}}'], ['{"head":1}', '{"head":1,"tail":{"head":"2","tail":null}}']],
	['definitions', { definitions: { pos: { type: 'integer', minimum: 1 } }, type: 'array', items: { $ref: '#/definitions/pos' } },
	 ['[]', '[1,2,300]'], ['[0]', '[-1]']],
	['strings', { type: 'object', properties: { s: { type: 'string', minLength: 2, maxLength: 4 }, p: { type: 'string', pattern: '^[a-z]+[0-9]?$' } }, required: ['s', 'p'], additionalProperties: false },
	 ['{"s":"ab","p":"abc"}', '{"s":"abcd","p":"x9"}', '{"s":"\u00e9\u00e9","p":"q"}'], ['{"s":"a","p":"abc"}', '{"s":"abcde","p":"abc"}', '{"s":"ab","p":"9a"}', '{"s":"ab","p":"a99"}']],
	['formats', { type: 'object', properties: { d: { type: 'string', format: 'date' }, t: { type: 'string', format: 'time' }, dt: { type: 'string', format: 'date-time' },
		u: { type: 'string', format: 'uuid' }, e: { type: 'string', format: 'email' } }, required: ['d', 't', 'dt', 'u', 'e'], additionalProperties: false },
	 ['{"d":"2024-01-31","t":"12:30:00Z","dt":"2024-06-30T23:59:59.5+02:00","u":"123e4567-e89b-12d3-a456-426614174000","e":"john.doe@mail.example.com"}'],
	 ['{"d":"2024-1-31","t":"12:30:00Z","dt":"2024-06-30T23:59:59Z","u":"123e4567-e89b-12d3-a456-426614174000","e":"a@b.co"}',
	  '{"d":"2024-01-31","t":"25:30:00Z","dt":"2024-06-30T23:59:59Z","u":"123e4567-e89b-12d3-a456-426614174000","e":"a@b.co"}',
	  '{"d":"2024-01-31","t":"12:30:00Z","dt":"2024-06-30T23:59:59Z","u":"not-a-uuid","e":"a@b.co"}',
	  '{"d":"2024-01-31","t":"12:30:00Z","dt":"2024-06-30T23:59:59Z","u":"123e4567-e89b-12d3-a456-426614174000","e":"no-at-sign"}']],
	['int_range', { type: 'integer', minimum: -20, exclusiveMaximum: 1000 }, ['-20', '0', '7', '999'], ['-21', '1000', '3.5', '"5"']],
];

for (const [name, schema, good, bad] of corpus) {
	let why = '';
	for (const [docs, want] of [[good, true], [bad, false]]) {
		for (const d of docs) {
			const a = ajv.validate(schema, JSON.parse(d));
			if (a !== want) why += ` | ajv says ${a} for ${d} (corpus label ${want})`;
			const r = run(schema, d);
			if (r.status !== (want ? 0 : 1)) why += ` | schema-check exit ${r.status} for ${d}: ${r.stderr}`;
		}
	}
	if (why) { failed++; console.log(`FAIL schema_check_${name}:${why}`); } else console.log(`PASS schema_check_${name}`);
}

{
	const cases = [[{ type: 'object', patternProperties: { '^a': {} } }, 'patternProperties'], [{ type: 'array', uniqueItems: true }, 'uniqueItems'],
		[{ type: 'string', format: 'ipv6' }, 'ipv6'], ['{"type":', 'not valid JSON']];
	let why = '';
	for (const [s, word] of cases) {
		const r = run(s, '1');
		if (r.status !== 2 || !String(r.stderr).includes(word)) why += ` | ${JSON.stringify(s)}: exit ${r.status} ${r.stderr}`;
	}
	if (why) { failed++; console.log(`FAIL schema_check_unsupported:${why}`); } else console.log('PASS schema_check_unsupported');
}
process.exit(failed ? 1 : 0);
