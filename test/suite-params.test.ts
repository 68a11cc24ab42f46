/**
 * Suite parameters: `params:` in suite.yaml (positioned errors for every
 * mistake), the environment a payload gets, hil_phase.param() on the device
 * side, and the shipped payloads' own fallbacks agreeing with suite.yaml.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Diagnostic } from '../harness/config/diagnostics.ts';
import { loadSuites, parseSuiteText } from '../harness/suite/suite.ts';
import { paramEnv, parseValue } from '../harness/suite/params.ts';
import { jobIdOf } from '../harness/results/record.ts';

const HEAD = `description: planted
timeout: 60s
probe: {}
expectations:
  - allow: [passed]
    claim: runs
`;

function parse(t: Test, params: string): { suite: ReturnType<typeof parseSuiteText>; d: Diagnostic[] } {
  const folder = t.testdir({ 'planted-suite': { 'main.py': '' } });
  const d: Diagnostic[] = [];
  const suite = parseSuiteText(`${HEAD}params:\n${params}`, join(folder, 'planted-suite'), d);
  return { suite, d };
}

t.test('the shipped suites declare their parameters with the article defaults', async (t) => {
  const byName = Object.fromEntries(loadSuites().map((s) => [s.name, s]));
  const defaults = (name: string) => Object.fromEntries(Object.values(byName[name]!.params).map((p) => [p.name, p.default]));
  t.same(defaults('keras-train'), { samples: 10, units: 10 });
  t.same(defaults('tflite-inference'), { threads: 0, runs: 100 });
  t.same(defaults('memory-ladder'), { step_mb: 16, limit_mb: 8192 });
  t.same(defaults('device-listing'), {});
  for (const s of Object.values(byName)) {
    for (const p of Object.values(s.params)) {
      t.ok(p.meaning.length > 10 && !p.meaning.includes('\n'), `${s.name}.${p.name} has a one-line meaning`);
      // The payload's own fallback (for a run by hand) is the declared default.
      const main = readFileSync(join(s.dir, s.main), 'utf8');
      t.match(main, new RegExp(`param\\("${p.name}", ${p.default}\\)`), `${s.name}/main.py falls back to ${p.name}=${p.default}`);
    }
  }
});

t.test('bad declarations are reported with position, value and what is allowed', async (t) => {
  const { suite, d } = parse(
    t,
    `  samples: {type: integr, default: 10, meaning: rows}
  units: {type: integer, default: 2.5, meaning: width}
  mode: {type: string, default: slow, choices: [fast, small], meaning: how}
  Bad-Name: {type: integer, default: 1, meaning: x}
  threads: {type: integer, default: 1, meaning: t, min: 4, max: 2}
  size: {type: number, default: 1, meening: typo}
  kind: {type: string, default: a, meaning: no choices}
`,
  );
  t.equal(suite, null);
  const at = (line: number) => d.filter((x) => x.line === line).map((x) => `${x.message} | ${x.value} | ${x.allowed}`);
  const base = HEAD.split('\n').length; // the line of `params:` is base
  t.match(at(base + 1), [/unknown type \| "integr" \| integer \| number \| string/]);
  t.match(at(base + 2), [/invalid default: expected an integer \| 2.5 \| an integer of at least|invalid default: expected an integer \| 2.5 \| an integer/]);
  t.match(at(base + 3), [/invalid default: not one of the choices \| "slow" \| one of fast, small/]);
  t.match(at(base + 4), [/invalid parameter name \| "Bad-Name"/]);
  t.match(at(base + 5), [/max is below min \| 2 \| at least 4/]);
  t.match(at(base + 6).join(), /unknown key `meening`/);
  t.match(at(base + 7).join(), /a string parameter needs its choices/);
  for (const x of d) t.match(x.file, /planted-suite\/suite\.yaml$/);
});

t.test('values from the command line are checked against the declaration', async (t) => {
  const { suite, d } = parse(t, '  samples: {type: integer, default: 10, min: 1, meaning: rows of data}\n  rate: {type: number, default: 0.5, meaning: learning rate}\n  mode: {type: string, default: fast, choices: [fast, small], meaning: how it runs}\n');
  t.same(d, []);
  const p = suite!.params;
  t.same(parseValue(p['samples']!, '1e6'), { value: 1_000_000 });
  t.same(parseValue(p['samples']!, '2.5'), { problem: 'expected an integer' });
  t.same(parseValue(p['samples']!, '0'), { problem: 'below the minimum' });
  t.same(parseValue(p['samples']!, 'ten'), { problem: 'expected an integer' });
  t.same(parseValue(p['rate']!, '0.01'), { value: 0.01 });
  t.same(parseValue(p['mode']!, 'small'), { value: 'small' });
  t.same(parseValue(p['mode']!, 'tiny'), { problem: 'not one of the choices' });
  const env = paramEnv(p, { samples: 1000 });
  t.equal(env['HIL_PARAM_SAMPLES'], '1000');
  t.equal(env['HIL_PARAM_RATE'], '0.5', 'a parameter not given goes at its default');
  t.equal(env['HIL_PARAM_MODE'], 'fast');
  t.same(paramEnv({}, {}), {}, 'a suite without params gets no extra environment');

  // The device side: hil_phase.param() types each value by the declaration.
  const script = 'import hil_phase as h, json; print(json.dumps([h.param("samples"), h.param("rate"), h.param("mode")]))';
  const run = spawnSync('python3', ['-c', script], { cwd: 'harness/agent', encoding: 'utf8', env: { ...process.env, ...env } });
  t.equal(run.status, 0, run.stderr);
  t.same(JSON.parse(run.stdout), [1000, 0.5, 'fast']);
  const bad = spawnSync('python3', ['-c', script], { cwd: 'harness/agent', encoding: 'utf8', env: { ...process.env, ...env, HIL_PARAM_SAMPLES: 'many' } });
  t.match(bad.stderr, /HIL_PARAM_SAMPLES='many' is not an integer/);
});

t.test('a job id carries its parameters in name order, and none when it has none', async (t) => {
  t.equal(jobIdOf('keras-train', 'cap-1g'), 'keras-train.cap-1g');
  t.equal(jobIdOf('keras-train', 'cap-1g', { units: 64, samples: 1000 }), 'keras-train.cap-1g[samples=1000,units=64]');
});
