import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Diagnostic } from '../harness/config/diagnostics.ts';
import { loadSuite, loadSuites, parseSuiteText, payloadFiles } from '../harness/suite/suite.ts';
import { probeScript } from '../harness/suite/probe.ts';

t.test('the four shipped suites load and say what they need', async (t) => {
  const suites = loadSuites();
  t.same(suites.map((s) => s.name), ['device-listing', 'keras-train', 'memory-ladder', 'tflite-inference']);
  const byName = Object.fromEntries(suites.map((s) => [s.name, s]));
  t.same(byName['keras-train']?.phases, ['import', 'build', 'compile', 'fit']);
  t.same(byName['keras-train']?.probe.allOf, ['tensorflow']);
  t.same(byName['tflite-inference']?.probe.anyOf, ['ai_edge_litert', 'tflite_runtime', 'tensorflow', 'pyarmnn']);
  t.same(payloadFiles(byName['tflite-inference']!), ['main.py', 'model.tflite']);
  t.same(Object.keys(byName['device-listing']?.values ?? {}), ['tf_version', 'gpus', 'cpus']);
  for (const s of suites) {
    t.ok(s.timeoutMs >= 60_000 && s.timeoutMs <= 600_000, `${s.name} timeout ${s.timeoutMs} ms`);
    t.ok(s.expectations.length > 0, `${s.name} has expectations`);
    for (const e of s.expectations) t.match(e.source.file, /^suites\/[a-z-]+\/suite\.yaml$/);
  }
  t.equal(loadSuite('keras-train').name, 'keras-train');
});

t.test('an unknown suite name lists the real ones and guesses', async (t) => {
  const err = t.throws(() => loadSuite('keras-trian')) as ConfigError;
  t.type(err, ConfigError);
  t.match(err.message, /no suite named keras-trian/);
  t.match(err.message, /did you mean `keras-train`\?/);
});

const BROKEN = `description: planted mistakes
timeuot: 60s
timeout: soon
main: nope.py
values:
  gpus: number of GPUs
probe:
  all_of: [tensorflow, "not a module"]
expectations:
  - when: {arch: armhf, ram_mb: "about 1 GB", transprot: qemu}
    allow: [oom_kiled]
    claim: fails on 1 GB
    check: {gpu: 0}
  - when: {long_bit: 48}
    allow: passed
  - when: {kernel_bits: "64"}
    allow: passed
`;

function diagnosticsOf(t: Test, text: string, folder: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  const suite = parseSuiteText(text, folder, out);
  t.equal(suite, null, 'no suite comes back when anything is wrong');
  return out;
}

t.test('every mistake in a suite file is reported at once, with position, value and what is allowed', async (t) => {
  const folder = t.testdir({ 'planted-suite': { 'main.py': '' } });
  const d = diagnosticsOf(t, BROKEN, join(folder, 'planted-suite'));
  const at = (line: number) => d.filter((x) => x.line === line);
  const one = (line: number, message: RegExp): Diagnostic => {
    const found = at(line).find((x) => message.test(x.message));
    t.ok(found, `line ${line}: ${message}`);
    return found ?? { file: '', line: 0, col: 0, message: '' };
  };
  const typo = one(2, /unknown key `timeuot`/);
  t.equal(typo.col, 1);
  t.equal(typo.hint, 'did you mean `timeout`?');
  t.match(one(3, /invalid duration/).value, '"soon"');
  t.match(one(4, /file not found/).value, 'nope.py');
  t.match(one(8, /invalid list item/).value, '"not a module"');
  t.match(one(8, /missing required key `why`/).allowed, 'what is missing');
  const ram = one(10, /invalid RAM range/);
  t.equal(ram.value, '"about 1 GB"');
  t.match(ram.allowed, '"<= N"');
  t.equal(one(10, /unknown key `transprot`/).hint, 'did you mean `transport`?');
  const outcome = one(11, /unknown allow/);
  t.equal(outcome.hint, 'did you mean `oom_killed`?');
  t.match(outcome.allowed, 'memory_error');
  const check = one(13, /check on `gpu`/);
  t.equal(check.hint, 'did you mean `gpus`?');
  t.equal(one(14, /invalid word size/).allowed, '32 | 64');
  const kernel = one(16, /invalid kernel word size/);
  t.equal(kernel.value, '"64"', 'a quoted number is not a word size');
  t.equal(kernel.allowed, '32 | 64');
  t.equal(kernel.col, 25, 'positioned at the value');
  t.equal(d.length, 13, d.map((x) => `${x.line}:${x.col} ${x.message}`).join('\n'));
  for (const x of d) t.match(x.file, /planted-suite\/suite\.yaml$/);
});

t.test('YAML syntax errors and missing keys are positioned too', async (t) => {
  const folder = t.testdir({ s: { 'main.py': '' } });
  const syntax = diagnosticsOf(t, 'description: [unclosed\n', join(folder, 's'));
  t.ok(syntax.length > 0 && syntax.every((x) => /invalid YAML/.test(x.message)));
  const missing = diagnosticsOf(t, 'article: x\n', join(folder, 's')).map((x) => x.message);
  t.same(missing.sort(), ['missing required key `description`', 'missing required key `expectations`', 'missing required key `probe`', 'missing required key `timeout`']);
});

t.test('a YAML syntax error in suite.yaml is reported at the mistake, not where the parser gave up', async (t) => {
  // The unclosed `[` is on line 3; the parser only notices at 4:1.
  const text = 'description: planted\ntimeout: 60s\nphases: [import, fit\nprobe: {}\nexpectations: []\n';
  const dir = t.testdir({ planted: { 'suite.yaml': text, 'main.py': '' } });
  const err = t.throws(() => loadSuites(dir)) as ConfigError;
  t.type(err, ConfigError);
  t.same(err.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`), ['3:9 invalid YAML: `[` (a flow sequence) opened here is never closed']);
  t.match(err.diagnostics[0], { file: /planted\/suite\.yaml$/, value: '"phases: [import, fit"', allowed: 'a closing `]`', hint: /read on to 4:1/ });
  t.match(err.message, /planted\/suite\.yaml:3:9: invalid YAML/);

  const quote = diagnosticsOf(t, 'description: "planted\ntimeout: 60s\nprobe: {}\n', join(dir, 'planted'));
  t.same(quote.map((d) => `${d.line}:${d.col} ${d.message}`), ['1:14 invalid YAML: the quote " opened here is never closed']);
});

t.test('loadSuites gathers the problems of every suite into one ConfigError', async (t) => {
  const dir = t.testdir({
    a: { 'suite.yaml': 'description: a\ntimeout: 1m\nprobe: {}\nexpectations: [{allow: [passd], claim: c}]\n', 'main.py': '' },
    b: { 'suite.yaml': 'description: b\ntimeout: 3h\nprobe: {}\nexpectations: []\n', 'main.py': '' },
    'not-a-suite': { 'readme.txt': '' },
  });
  const err = t.throws(() => loadSuites(dir)) as ConfigError;
  t.type(err, ConfigError);
  t.equal(err.diagnostics.length, 2);
  t.match(err.message, /a\/suite\.yaml:4:\d+: unknown allow\n\s+got: "passd"/);
  t.match(err.message, /b\/suite\.yaml:2:10: timeout too long/);
});

t.test('the probe finds modules without importing them', async (t) => {
  const dir = t.testdir({ present_mod: { '__init__.py': 'raise SystemExit("imported!")\n' } });
  const run = (allOf: string[], anyOf: string[]) => {
    const file = join(dir, `probe-${allOf.length}-${anyOf.length}.py`);
    writeFileSync(file, probeScript({ allOf, anyOf, why: 'needed for the test' }));
    return spawnSync('python3', [file], { cwd: dir, encoding: 'utf8' });
  };
  const ok = run(['present_mod', 'json'], ['no_such_mod', 'present_mod']);
  t.equal(ok.status, 0, ok.stderr);
  t.equal(ok.stdout.trim(), 'found present_mod, json', 'found, and not imported (its import would exit)');
  const missing = run(['no_such_mod'], ['also_missing', 'nor_this']);
  t.equal(missing.status, 1);
  t.equal(missing.stdout.trim(), 'missing no_such_mod; one of also_missing, nor_this: needed for the test');
  mkdirSync(join(dir, 'empty'));
  t.equal(run([], []).stdout.trim(), 'no requirements');
  // The requirements travel as Python literals written by JSON.stringify: awkward text must survive.
  const why = 'it\'s "quoted", a \\ backslash, Grüße 🍓 and a\ttab';
  const file = join(dir, 'probe-why.py');
  writeFileSync(file, probeScript({ allOf: ['no_such_mod'], anyOf: [], why }));
  const awkward = spawnSync('python3', [file], { cwd: dir, encoding: 'utf8' });
  t.equal(awkward.stdout.trim(), `missing no_such_mod: ${why}`, awkward.stderr);
});

t.test('needs: what a device must have free, checked at the line and column of the mistake', async (t) => {
  const folder = join(t.testdir({ 'needy-suite': { 'main.py': '' } }), 'needy-suite');
  const head = 'description: x\ntimeout: 10s\nprobe: {}\nexpectations: []\n';
  const d = diagnosticsOf(t, `${head}needs: {ram_mb: -5, disc_mb: 10}\n`, folder);
  const ram = d.find((x) => x.line === 5 && /out of range/.test(x.message));
  t.ok(ram, JSON.stringify(d));
  t.equal(ram?.col, 17);
  t.equal(ram?.value, '-5');
  t.equal(ram?.allowed, 'an integer from 0 to 1048576');
  const typo = d.find((x) => /unknown key `disc_mb`/.test(x.message));
  t.equal(typo?.hint, 'did you mean `disk_mb`?');
  t.equal(typo?.col, 21);
  const ok: Diagnostic[] = [];
  const suite = parseSuiteText(`${head}needs: {ram_mb: 256}\n`, folder, ok);
  t.same(ok, []);
  t.same(suite?.needs, { ramMb: 256, diskMb: 16 }, 'what is not given keeps its default');
  t.same(parseSuiteText(head, folder, [])?.needs, { ramMb: 32, diskMb: 16 }, 'no needs: the defaults');
});
