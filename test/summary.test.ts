/**
 * What a person sees at the end of `hil run`: the summary of a real small run
 * on local devices (the second against the first as its baseline, with a
 * planted memory rise), and the live overall-progress line on a terminal.
 */
import t from 'tap';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createProgress, overallLine } from '../harness/cli/progress.ts';
import { renderSummary } from '../harness/cli/summary.ts';
import type { RunDiff } from '../harness/report/diff.ts';
import { DEVICES, makeRecord } from './fixtures/records.ts';
import { hil, onlyRunDir, TEST_SUITES } from './helpers/hil.ts';

t.setTimeout(600_000);

t.test('hil run ends with a summary: outcomes, verdicts, regressions, slowest job, exit code, compare.html', async (t) => {
  const dir = t.testdir();
  const suites = join(dir, 'suites');
  for (const s of ['quick', 'grow']) cpSync(join(TEST_SUITES, s), join(suites, s), { recursive: true });
  writeFileSync(join(dir, 'devices.yaml'), 'defaults: { transport: local, ram_mb: 512, arch: amd64 }\ndevices:\n  - { name: a }\n');
  const run = (out: string, ...extra: string[]) => hil(['run', '-i', join(dir, 'devices.yaml'), '--suites', suites, '--out', join(dir, out), '--concurrency', '1', ...extra]);

  writeFileSync(join(suites, 'grow', 'size_mb.txt'), '1\n');
  const first = await run('night-1', '--no-report');
  t.equal(first.code, 0, first.stderr);
  const baseline = onlyRunDir(join(dir, 'night-1'));
  t.match(first.stderr, /── hil run \S+: summary ──\noutcomes: {4}2 passed\nverdicts: {4}2 as expected, 0 unexpected, 0 infrastructure\nslowest: {5}(grow|quick)\.a \d[\d.]* (ms|s) \(passed\)\nexit 0: {6}every job met its expectation\nreport: {6}not written/);
  t.notMatch(first.stderr, /regressions:/, 'no baseline, no regressions line');

  // The second night holds 64 MB more: a memory regression on the same device and suite.
  writeFileSync(join(suites, 'grow', 'size_mb.txt'), '65\n');
  const second = await run('night-2', '--baseline', baseline);
  t.equal(second.code, 0, `hil run's exit code is the expectations' (the nightly weighs regressions): ${second.stderr}`);
  const summary = second.stderr.slice(second.stderr.indexOf('── hil run'));
  t.match(summary, /^outcomes: {4}2 passed$/m);
  t.match(summary, /^regressions: 1 against \S+:\n {2}- grow\.a: peak memory \+\d+\.\d% \(\+6\d\.\d MB\), above \+10% and 16 MB$/m);
  t.match(summary, /^exit 0: {6}every job met its expectation$/m);
  const page = /^report: {6}(.*compare\.html)$/m.exec(summary)?.[1];
  t.ok(page && existsSync(page), `the page it names exists: ${page}`);
  t.equal(summary.trim().split('\n').length, 8, 'short: a header and seven lines');
});

t.test('the summary names what needs a look, and caps the regressions it lists', async (t) => {
  const base = { device: DEVICES.pi4b4g, suite: 'keras-train', reason: 'r', peakMb: 100, payloadMs: 1000, startMin: 0, allowed: ['passed' as const] };
  const records = [
    makeRecord('r', { ...base, outcome: 'passed' }),
    makeRecord('r', { ...base, suite: 'tflite-inference', outcome: 'oom_killed', payloadMs: 9000 }),
    makeRecord('r', { ...base, suite: 'device-listing', outcome: 'infra_error', peakMb: null }),
  ];
  const regression = { key: 'k', jobId: 'j', device: 'd', suite: 's', rule: 'outcome', before: 'passed', after: 'failed', verdictBefore: 'met', verdictAfter: 'unmet', why: 'passed before, failed now' } as const;
  const diff: RunDiff = { baselineRunId: 'night-0', changes: [], regressions: Array.from({ length: 7 }, (_, i) => ({ ...regression, jobId: `j${i}` })), emulatedTime: [], added: [], removed: [], thresholds: { memoryPct: 10, memoryFloorKb: 16384, timePct: 20, timeFloorMs: 1000 }, policy: { base: { memoryPct: 10, memoryFloorKb: 16384, timePct: 20, timeFloorMs: 1000 }, suites: {} } };
  const text = renderSummary({ title: 'hil run x', records, planned: 4, diff, exitCode: 1, compareHtml: 'runs/x/compare.html' });
  t.match(text, /^outcomes: {4}1 passed, 1 oom_killed, 1 infra_error; 1 planned job\(s\) without a record$/m);
  t.match(text, /^verdicts: {4}1 as expected, 1 unexpected, 1 infrastructure$/m);
  t.match(text, /^regressions: 7 against night-0:\n {2}- j0: passed before, failed now\n[\s\S]* {2}- j4: .*\n {2}… and 2 more on the comparison page$/m);
  t.match(text, /^slowest: {5}tflite-inference\.pi4b-4g-arm64 11 s \(oom_killed\)$/m);
  t.match(text, /^exit 1: {6}a job did not meet its expectation$/m);
  t.match(renderSummary({ title: 'n', records, diff: null, exitCode: 3, compareHtml: null, meanings: { 3: 'only infrastructure failed, above --max-infra' } }), /^exit 3: {6}only infrastructure failed, above --max-infra$/m);
});

t.test('the overall progress line: jobs done of total, elapsed, a rough time left', async (t) => {
  t.equal(overallLine(0, 12, 5_000), 'jobs 0/12 · 5s elapsed · time left unknown');
  t.equal(overallLine(3, 12, 80_000), 'jobs 3/12 · 1m20s elapsed · ~4m00s left');
  t.equal(overallLine(12, 12, 3_725_000), 'jobs 12/12 · 1h02m elapsed · done');
  // On a terminal it leads the live block, and a retried job counts once.
  let screen = '';
  let now = 1_000_000;
  const out = { isTTY: true, columns: 100, write: (s: string) => (screen += s) } as unknown as NodeJS.WriteStream;
  const p = createProgress(['pi-a', 'pi-b'], out, { totalJobs: 4, now: () => now });
  p.observe({ kind: 'job-start', device: 'pi-a', jobId: 'quick.pi-a' });
  now += 10_000;
  p.observe({ kind: 'job-end', device: 'pi-a', jobId: 'quick.pi-a', outcome: 'infra_error', reason: 'lost', wallMs: 1000, peakRssKb: null });
  p.observe({ kind: 'job-end', device: 'pi-a', jobId: 'quick.pi-a', outcome: 'passed', reason: 'exit 0', wallMs: 1000, peakRssKb: null });
  p.stop();
  const last = screen.slice(screen.lastIndexOf('\x1b[0J') + 4);
  t.match(last, /^jobs 1\/4 · 10s elapsed · ~30s left\npi-a\s+idle.*\npi-b\s+waiting/);
  t.match(screen, /\x1b\[3A\x1b\[0J/, 'the block it redraws is three lines: overall and two devices');
  // Off a terminal, the log stays one line per event.
  const lines: string[] = [];
  const plain = createProgress(['pi-a'], { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream, { totalJobs: 1 });
  plain.observe({ kind: 'job-start', device: 'pi-a', jobId: 'quick.pi-a' });
  plain.stop();
  t.equal(lines.length, 1);
});
