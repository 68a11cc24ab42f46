/**
 * The nightly's regression rules, each at its threshold's edge, with crafted
 * records; the thresholds' one place (defaults, a file, a suite's block) and
 * their errors; and the regressions listed first on compare.html (in
 * headless Chromium), in compare.md and in $GITHUB_STEP_SUMMARY.
 */
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type Diagnostic } from '../harness/config/diagnostics.ts';
import { DEFAULT_THRESHOLDS, parseThresholdsFile, resolvePolicy } from '../harness/config/thresholds.ts';
import { comparisonKey, findRegressions } from '../harness/report/regressions.ts';
import { writeReports } from '../harness/report/index.ts';
import type { ResultRecord } from '../harness/results/record.ts';
import { parseSuiteText } from '../harness/suite/suite.ts';
import { DEVICES, makeMeta, makeRecord, type FixtureDevice, type JobSpec } from './fixtures/records.ts';
import { launchChromium, watchErrors } from './helpers/browser.ts';
import { hil } from './helpers/hil.ts';

t.setTimeout(180_000);

const REAL = DEVICES.pi4b4g;
const EMULATED = DEVICES.pi3b;

function rec(runId: string, over: Partial<JobSpec> & { device?: FixtureDevice } = {}): ResultRecord {
  return makeRecord(runId, {
    device: REAL,
    suite: 'tflite-inference',
    outcome: 'passed',
    reason: 'exit code 0',
    peakMb: 200,
    payloadMs: 10_000,
    allowed: ['passed'],
    startMin: 1,
    ...over,
  });
}

const pair = (before: Partial<JobSpec>, after: Partial<JobSpec>) => findRegressions([rec('now', after)], [rec('base', before)]);
const rules = (before: Partial<JobSpec>, after: Partial<JobSpec>) => pair(before, after).regressions.map((r) => r.rule);

t.test('defaults are written once: 10% and 16 MB of memory, 20% of time', async (t) => {
  t.same(DEFAULT_THRESHOLDS, { memoryPct: 10, memoryFloorKb: 16 * 1024, timePct: 20, timeFloorMs: 1000 });
  t.same(resolvePolicy(null), { base: DEFAULT_THRESHOLDS, suites: {} });
  t.same(rules({}, {}), [], 'the same job twice is no regression');
});

t.test('outcome that got worse: passed -> oom_killed, met -> unmet; infra never', async (t) => {
  // The expectation allows an OOM kill: still met, still a job that stopped passing.
  t.same(rules({ allowed: ['passed', 'oom_killed'] }, { outcome: 'oom_killed', allowed: ['passed', 'oom_killed'] }), ['outcome']);
  const metUnmet = pair({ outcome: 'failed', allowed: ['failed'] }, { outcome: 'crashed', allowed: ['failed'] }).regressions[0];
  t.match(metUnmet, { rule: 'outcome', before: 'failed', after: 'crashed', verdictBefore: 'met', verdictAfter: 'unmet' });
  t.match(metUnmet?.why, /expected before, unexpected now/);
  t.same(rules({}, { outcome: 'infra_error', peakMb: null }), [], 'passed -> infra_error is infrastructure, not the product');
  t.same(rules({ outcome: 'infra_error', peakMb: null }, { outcome: 'failed' }), [], 'nothing to compare with after an infra_error');
  t.same(rules({ outcome: 'failed', allowed: ['failed'] }, { outcome: 'passed', allowed: ['failed', 'passed'] }), [], 'better is no regression');
  t.same(rules({ outcome: 'oom_killed', allowed: ['oom_killed', 'passed'] }, { outcome: 'failed', allowed: ['oom_killed', 'passed', 'failed'] }), [], 'changed, still met, never passed: not worse');
});

t.test('peak memory: above 10% AND at least 16 MB, same outcome on both nights', async (t) => {
  t.same(rules({ peakMb: 200 }, { peakMb: 220 }), [], 'exactly +10% is not above it');
  t.same(rules({ peakMb: 200 }, { peakMb: 220.1 }), ['memory'], 'just above +10% (and +20 MB)');
  t.same(rules({ peakMb: 100 }, { peakMb: 116 }), ['memory'], 'exactly +16 MB (and +16%) counts');
  t.same(rules({ peakMb: 100 }, { peakMb: 115.9 }), [], 'under +16 MB, though +15.9%');
  t.same(rules({ peakMb: 1000 }, { peakMb: 1090 }), [], '+90 MB is only +9%');
  t.same(rules({ peakMb: 200 }, { peakMb: 100 }), [], 'a fall is no regression');
  t.same(rules({ peakMb: 200, outcome: 'failed', allowed: ['failed'] }, { peakMb: 400, outcome: 'memory_error', allowed: ['failed', 'memory_error'] }), [], 'different outcomes measure different things');
  // Emulated devices' memory counts: it is the payload's, not the host's speed.
  t.same(rules({ device: EMULATED, peakMb: 100 }, { device: EMULATED, peakMb: 130 }), ['memory']);
  const m = pair({ peakMb: 100 }, { peakMb: 130 }).regressions[0];
  t.match(m, { rule: 'memory', metric: 'peak memory', before: 102400, after: 133120, unit: 'kb', device: REAL.name, suite: 'tflite-inference' });
  t.match(m?.why, /\+30\.0% \(\+30\.0 MB\), above \+10% and 16 MB/);
});

t.test('time: above 20% (and 1 s) on real devices with trusted timings only', async (t) => {
  t.same(rules({ payloadMs: 10_000 }, { payloadMs: 12_000 }), [], 'exactly +20% is not above it');
  t.same(rules({ payloadMs: 10_000 }, { payloadMs: 12_001 }), ['time'], 'just above +20%');
  t.same(rules({ payloadMs: 1_000 }, { payloadMs: 2_000 }), [], '+100% but only +1 s: noise');
  t.same(rules({ payloadMs: 1_000 }, { payloadMs: 2_001 }), ['time']);
  t.same(rules({ payloadMs: 10_000 }, { payloadMs: 20_000, throttled: { before: 0, after: 0x50005 } }), [], 'a throttled Pi ran slower: not the code');
  t.same(rules({ payloadMs: 10_000, throttled: { before: 0x50005, after: 0x50005 } }, { payloadMs: 20_000 }), [], 'nor is a throttled night a baseline');
  t.match(pair({ payloadMs: 10_000 }, { payloadMs: 15_000 }).regressions[0], { rule: 'time', metric: 'payload time', before: 10_000, after: 15_000, unit: 'ms' });
  // Emulated against emulated: shown, not counted.
  const emu = pair({ device: EMULATED, payloadMs: 10_000 }, { device: EMULATED, payloadMs: 20_000 });
  t.same(emu.regressions, []);
  t.match(emu.emulatedTime, [{ rule: 'time', jobId: `tflite-inference.${EMULATED.name}` }]);
  // A device that was emulated last night and real tonight compares with nothing.
  const realNow = rec('now', { payloadMs: 20_000 });
  const emulatedThen = rec('base', { payloadMs: 10_000 });
  emulatedThen.facts = { ...emulatedThen.facts!, emulated: true };
  const mixed = findRegressions([realNow], [emulatedThen]);
  t.same([mixed.regressions, mixed.emulatedTime], [[], []], 'emulated timings compare only with emulated ones');
});

t.test('records match on device + suite (+ params) through one key', async (t) => {
  const a = rec('base');
  const b = rec('now', { peakMb: 400 });
  t.equal(comparisonKey(a), comparisonKey(b));
  t.same(findRegressions([{ ...b, device: { ...b.device, name: 'other' } }], [a]).regressions, [], 'another device is another measurement');
  const withParams = (r: ResultRecord, params: Record<string, unknown>) => Object.assign({ ...r }, { params });
  t.not(comparisonKey(withParams(a, { batch: 1 })), comparisonKey(withParams(b, { batch: 8 })));
  t.equal(comparisonKey(withParams(a, { batch: 1, model: 'm' })), comparisonKey(withParams(b, { model: 'm', batch: 1 })), 'key order plays no part');
  t.same(findRegressions([withParams(b, { batch: 8 })], [withParams(a, { batch: 1 })]).regressions, []);
  t.same(findRegressions([withParams(b, { batch: 1 })], [withParams(a, { batch: 1 })]).regressions.map((r) => r.rule), ['memory']);
});

t.test('thresholds: a file over the defaults, a suite block over the file, the file`s suites over both', async (t) => {
  const file = parseThresholdsFile('thresholds.yaml', 'memory_pct: 50\ntime_pct: 30\nsuites:\n  keras-train: { memory_min_mb: 64 }\n');
  const policy = resolvePolicy(file, { 'tflite-inference': { memoryPct: 5 }, 'keras-train': { memoryPct: 5 } });
  t.same(policy.base, { ...DEFAULT_THRESHOLDS, memoryPct: 50, timePct: 30 });
  t.same(policy.suites['tflite-inference'], { ...policy.base, memoryPct: 5 });
  t.same(policy.suites['keras-train'], { ...policy.base, memoryPct: 5, memoryFloorKb: 64 * 1024 });
  const now = [rec('now', { peakMb: 240 }), rec('now', { suite: 'device-listing', peakMb: 240 }), rec('now', { suite: 'keras-train', peakMb: 240 })];
  const base = [rec('base', { peakMb: 200 }), rec('base', { suite: 'device-listing', peakMb: 200 }), rec('base', { suite: 'keras-train', peakMb: 200 })];
  // +20%, +40 MB: over tflite-inference's 5%, under the file's 50%, under keras-train's 64 MB.
  t.same(findRegressions(now, base, policy).regressions.map((r) => r.suite), ['tflite-inference']);
  t.same(findRegressions(now, base).regressions.map((r) => r.suite), ['tflite-inference', 'device-listing', 'keras-train'], 'the defaults flag all three');
});

t.test('a bad thresholds file: every problem positioned, with the value and what is allowed', async (t) => {
  const text = 'memory_pct: ten\nmemroy_min_mb: 16\ntime_pct: -3\nsuites:\n  keras-train: { time_pct: [1] }\n  x: 4\n';
  const err = t.throws(() => parseThresholdsFile('nightly.yaml', text)) as unknown as ConfigError;
  t.ok(err instanceof ConfigError);
  const at = (d: Diagnostic) => `${d.file}:${d.line}:${d.col}`;
  t.same(err.diagnostics.map(at), ['nightly.yaml:1:13', 'nightly.yaml:2:1', 'nightly.yaml:3:11', 'nightly.yaml:5:28', 'nightly.yaml:6:6']);
  t.match(err.message, /nightly\.yaml:1:13: expected a number\n    got: "ten"\n    allowed: a number from 0 to 1000/);
  t.match(err.message, /unknown key `memroy_min_mb`[\s\S]*did you mean `memory_min_mb`/);
  t.match(err.message, /got: -3/);
  t.throws(() => parseThresholdsFile('t.yaml', '- 1\n'), { message: /t\.yaml:1:1: a thresholds file must be a mapping/ });
});

t.test("a suite's thresholds block is read and checked like the rest of suite.yaml", async (t) => {
  const dir = join(t.testdir({ 'my-suite': { 'main.py': 'print(1)\n' } }), 'my-suite');
  const base = 'description: d\ntimeout: 30s\nprobe: {}\nexpectations:\n  - when: {}\n    allow: [passed]\n    claim: c\n';
  const diagnostics: Diagnostic[] = [];
  const suite = parseSuiteText(`${base}thresholds: { memory_pct: 25, time_min_ms: 5000 }\n`, dir, diagnostics);
  t.same(diagnostics, []);
  t.same(suite?.thresholds, { memoryPct: 25, timeFloorMs: 5000 });
  t.same(parseSuiteText(base, dir, [])?.thresholds, {}, 'no block: the night decides');
  const bad: Diagnostic[] = [];
  t.equal(parseSuiteText(`${base}thresholds: { memory_pct: lots, time: 3 }\n`, dir, bad), null);
  t.match(bad.sort((a, b) => a.col - b.col).map((d) => `${d.line}:${d.col} ${d.message} ${d.value ?? ''}`), ['8:27 expected a number "lots"', '8:33 unknown key `time` in thresholds time']);
});

/** Two crafted nights on disk: the second regressed in memory and in outcome. */
function nights(root: string): { base: string; now: string } {
  const base = [rec('night-1', { peakMb: 100 }), rec('night-1', { suite: 'device-listing', device: REAL, peakMb: 50 }), rec('night-1', { device: EMULATED, payloadMs: 10_000 })];
  const now = [
    rec('night-2', { peakMb: 180 }),
    rec('night-2', { suite: 'device-listing', device: REAL, peakMb: 50, outcome: 'oom_killed', allowed: ['passed'] }),
    rec('night-2', { device: EMULATED, payloadMs: 30_000 }),
  ];
  const write = (name: string, records: ResultRecord[]) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(join(dir, 'run.json'), JSON.stringify(makeMeta(name, records, '2026-11-23T02:00:00Z'), null, 2));
    return dir;
  };
  return { base: write('night-1', base), now: write('night-2', now) };
}

t.test('compare.html lists the regressions first, with the thresholds (headless Chromium)', async (t) => {
  const { base, now } = nights(t.testdir());
  const summary = await writeReports(now, { baseline: base, allure: false });
  t.equal(summary.diff?.regressions.length, 2);
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(pathToFileURL(join(now, 'compare.html')).href);
  const h2 = await page.locator('h2').allInnerTexts();
  t.equal(h2[0], 'Regressions against the baseline (2)', 'the first section a reader meets');
  const rows = page.locator('#regressions tbody tr');
  t.same(await rows.evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-job'), tr.getAttribute('data-rule')])), [
    [`device-listing.${REAL.name}`, 'outcome'],
    [`tflite-inference.${REAL.name}`, 'memory'],
  ]);
  t.match(await rows.nth(0).innerText(), /outcome got worse\s+passed → oom_killed/);
  t.match(await rows.nth(1).innerText(), /peak memory rose\s+100 MB → 180 MB/);
  t.match(await page.locator('#thresholds').innerText(), /default: peak memory > \+10% and ≥ \+16 MB; time > \+20% and > \+1 s/);
  t.match(await page.locator('#regressions').innerText(), /Emulated devices, time only[^\n]*tflite-inference\.pi3b-1g-armhf payload time \+200\.0%/);
  t.ok(await page.locator('nav.toc a[href="#regressions"]').isVisible(), 'the table of contents leads with it');
  t.same(errors, []);
  const md = readFileSync(join(now, 'compare.md'), 'utf8');
  const headings = [...md.matchAll(/^## (.*)$/gm)].map((m) => m[1]);
  t.equal(headings[0], 'Regressions against the baseline (2)');
  t.match(md, /\| device-listing\.pi4b-4g-arm64 \| outcome got worse \| passed → oom_killed \| expected before, unexpected now: passed → oom_killed \|/);
  t.match(md, /^- default: peak memory > \+10%/m);
});

t.test('hil report --baseline --thresholds prints the regressions and appends them to $GITHUB_STEP_SUMMARY', async (t) => {
  const dir = t.testdir();
  const { base, now } = nights(dir);
  const summaryFile = join(dir, 'step-summary.md');
  writeFileSync(summaryFile, 'an earlier step wrote this\n');
  const thresholds = join(dir, 'thresholds.yaml');
  writeFileSync(thresholds, 'memory_pct: 90\n');
  const r = await hil(['report', now, '--baseline', base, '--thresholds', thresholds, '--no-allure'], { GITHUB_STEP_SUMMARY: summaryFile });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /1 regression against night-1:\n  device-listing\.pi4b-4g-arm64: expected before, unexpected now: passed → oom_killed\n/);
  t.match(r.stderr, /thresholds: default: peak memory > \+90%/);
  const written = readFileSync(summaryFile, 'utf8');
  t.match(written, /^an earlier step wrote this\n### ❌ pi-hil night-2: 1 regression against night-1\n/, 'appended after what was there');
  t.match(written, /\| device-listing\.pi4b-4g-arm64 \| outcome got worse \|/);
  const noEnv = await hil(['report', now, '--baseline', base, '--no-allure'], { GITHUB_STEP_SUMMARY: '' });
  t.equal(noEnv.code, 0);
  t.equal(readFileSync(summaryFile, 'utf8'), written, 'unset: nothing written');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'time_pct: fast\n');
  const e = await hil(['report', now, '--baseline', base, '--thresholds', bad, '--no-allure']);
  t.equal(e.code, 2);
  t.match(e.stderr, /bad\.yaml:1:11: expected a number\n    got: "fast"/);
});
