/**
 * `hil nightly`: the exit-code decision, one crafted night per code; and two
 * real nights on local sshd devices, the second with a memory regression
 * planted in a fixture suite: a site with two nights, exit 1 naming it.
 */
import t from 'tap';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { NIGHTLY_EXIT_MEANINGS, nightlyVerdict } from '../harness/cli/nightly.ts';
import { findRegressions } from '../harness/report/regressions.ts';
import type { ResultRecord } from '../harness/results/record.ts';
import { startLocalSshd } from '../scripts/lib/local-sshd.ts';
import { DEVICES, makeRecord, type JobSpec } from './fixtures/records.ts';
import { launchChromium, watchErrors } from './helpers/browser.ts';
import { hil, TEST_SUITES } from './helpers/hil.ts';

t.setTimeout(1_200_000);

const rec = (runId: string, over: Partial<JobSpec> = {}): ResultRecord =>
  makeRecord(runId, { device: DEVICES.pi4b4g, suite: 'tflite-inference', outcome: 'passed', reason: 'exit 0', peakMb: 100, payloadMs: 5000, allowed: ['passed'], startMin: 1, ...over });

/** A crafted night against a crafted previous night: the verdict's two inputs, as finish computes them. */
function night(before: ResultRecord[], now: ResultRecord[], maxInfra = 0) {
  return nightlyVerdict({ records: now, regressions: findRegressions(now, before).regressions, maxInfra });
}

const good = [rec('n1'), rec('n1', { suite: 'device-listing' })];

t.test('exit 0: every expectation held, no regression', async (t) => {
  const v = night(good, [rec('n2'), rec('n2', { suite: 'device-listing' })]);
  t.same(v, { code: 0, why: NIGHTLY_EXIT_MEANINGS[0] });
  // Infrastructure within --max-infra is said, not failed on.
  const tolerated = night(good, [rec('n2'), rec('n2', { suite: 'device-listing', outcome: 'infra_error', peakMb: null })], 1);
  t.equal(tolerated.code, 0);
  t.match(tolerated.why, /1 infrastructure failure\(s\), within --max-infra 1/);
});

t.test('exit 1: a regression, or an unmet expectation; infrastructure never hides either', async (t) => {
  const regressed = night(good, [rec('n2', { peakMb: 150 }), rec('n2', { suite: 'device-listing' })]);
  t.same(regressed, { code: 1, why: '1 regression(s): tflite-inference.pi4b-4g-arm64' });
  // Unmet on both nights: no regression against the night before, and still a failed night.
  const stillUnmet = [rec('n1'), rec('n1', { suite: 'device-listing', outcome: 'oom_killed' })];
  const unmet = night(stillUnmet, [rec('n2'), rec('n2', { suite: 'device-listing', outcome: 'oom_killed' })]);
  t.same(unmet, { code: 1, why: '1 unmet expectation(s): device-listing.pi4b-4g-arm64' });
  const both = night(good, [rec('n2', { peakMb: 150 }), rec('n2', { suite: 'device-listing', outcome: 'infra_error', peakMb: null })], 0);
  t.equal(both.code, 1, 'a regression and infrastructure trouble: 1, not 3');
  t.match(both.why, /1 regression\(s\): tflite-inference\.pi4b-4g-arm64; 1 infrastructure failure\(s\) besides/);
});

t.test('exit 2: inventory or usage error', async (t) => {
  t.same(nightlyVerdict({ records: good, regressions: [], maxInfra: 0, usageError: true }), { code: 2, why: NIGHTLY_EXIT_MEANINGS[2] });
  const dir = t.testdir();
  const noSite = await hil(['nightly', 'finish', dir]);
  t.equal(noSite.code, 2);
  t.match(noSite.stderr, /--site/);
  const badInventory = join(dir, 'devices.yaml');
  writeFileSync(badInventory, 'devices:\n  - { name: x, transport: lokal }\n');
  const bad = await hil(['nightly', 'run', '-i', badInventory, '--out', join(dir, 'out')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /devices\.yaml:2:\d+: unknown transport[\s\S]*"lokal"/);
  const step = await hil(['nightly', 'sleep']);
  t.equal(step.code, 2);
  t.match(step.stderr, /allowed: run, finish/);
});

t.test('exit 3: only infrastructure failed, above --max-infra', async (t) => {
  const v = night(good, [rec('n2'), rec('n2', { suite: 'device-listing', outcome: 'infra_error', peakMb: null })]);
  t.same(v, { code: 3, why: '1 infrastructure failure(s), above --max-infra 0' });
});

t.test('two nights on local sshd devices: a site of two nights, and exit 1 naming the planted regression', async (t) => {
  const dir = t.testdir();
  const rack = await startLocalSshd({ dir: join(dir, 'rack'), count: 2, prefix: 'nightly' });
  t.teardown(() => rack.stop());
  const suites = join(dir, 'suites');
  for (const s of ['quick', 'grow']) cpSync(join(TEST_SUITES, s), join(suites, s), { recursive: true });
  const site = join(dir, 'site');
  const summaryFile = join(dir, 'step-summary.md');
  const env = { GITHUB_STEP_SUMMARY: summaryFile };

  /** One night as CI runs it: two shard jobs, then the finishing job. */
  async function runNight(n: number): Promise<{ code: number | null; stderr: string }> {
    const shards: string[] = [];
    for (const i of [1, 2]) {
      const out = join(dir, `night-${n}`, `shard-${i}`);
      const r = await hil(['nightly', 'run', '-i', rack.inventoryFile, '--suites', suites, '--shard', `${i}/2`, '--out', out, '--concurrency', '1'], env);
      t.equal(r.code, 0, `night ${n} shard ${i}: ${r.stderr}`);
      t.match(r.stdout, /^nightly-\d\s+yes\s/m, 'the devices were checked first');
      shards.push(out);
    }
    return hil(['nightly', 'finish', ...shards, '--site', site, '--out', join(dir, `night-${n}`, 'merged')], env);
  }

  writeFileSync(join(suites, 'grow', 'size_mb.txt'), '1\n');
  const first = await runNight(1);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, /no published night to compare with; this is the first/);
  t.match(first.stderr, /^exit 0: {6}every expectation held, no regression$/m);

  // The planted regression: the suite holds 64 MB more on the second night.
  writeFileSync(join(suites, 'grow', 'size_mb.txt'), '65\n');
  const second = await runNight(2);
  t.equal(second.code, 1, second.stderr);
  t.match(second.stderr, /^ {2}grow\.nightly-1: peak memory \+\d+\.\d% \(\+6\d\.\d MB\), above \+10% and 16 MB$/m);
  t.match(second.stderr, /^exit 1: {6}2 regression\(s\): grow\.nightly-\d, grow\.nightly-\d$/m);
  t.match(readFileSync(summaryFile, 'utf8'), /### ❌ pi-hil \S+: 2 regressions against \S+/, 'the CI step summary names them');

  const nights = JSON.parse(readFileSync(join(site, 'nights.json'), 'utf8')) as { nights: { regressions: number | null; jobs: number }[] };
  t.same(nights.nights.map((n) => [n.jobs, n.regressions]), [[4, 2], [4, 0]], 'two nights, newest first, with their regression counts');
  t.ok(existsSync(join(site, 'latest', 'compare.html')));
  const merged = JSON.parse(readFileSync(join(dir, 'night-2', 'merged', 'run.json'), 'utf8')) as { shards: { shard: string }[] };
  t.same(merged.shards.map((s) => s.shard), ['1/2', '2/2']);
  t.equal((JSON.parse(readFileSync(join(dir, 'night-2', 'merged', 'run.json'), 'utf8')) as { exitCode: number }).exitCode, 1, "the night's run.json carries its verdict");

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(pathToFileURL(join(site, 'latest', 'compare.html')).href);
  t.equal((await page.locator('h2').allInnerTexts())[0], 'Regressions against the baseline (2)');
  t.same(await page.locator('#regressions tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-rule'))), ['memory', 'memory']);
  t.same(errors, []);
});
