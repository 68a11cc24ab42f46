/**
 * The renderers on the fixture records: status mapping for every outcome,
 * a TAP stream that tap's own parser accepts, JUnit escaping, the Allure
 * category regexes under Java's whole-message matching, Markdown, claims
 * and the baseline diff.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser, type FinalResults, type Result } from 'tap-parser';
import { OUTCOMES, type ResultRecord } from '../harness/results/record.ts';
import { findPreviousReport } from '../harness/report/allure-generate.ts';
import { CATEGORIES, SAFE_SOURCE, executorFor, safeName, toAllure } from '../harness/report/allure.ts';
import { assessClaims } from '../harness/report/claims.ts';
import { diffRuns } from '../harness/report/diff.ts';
import { formatDelta, formatMb, formatMs, formatRam } from '../harness/report/format.ts';
import { renderJunit, xmlEscape } from '../harness/report/junit.ts';
import { renderMarkdown } from '../harness/report/markdown.ts';
import { peakBarsSvg, timelineSvg } from '../harness/report/svg.ts';
import { renderTap } from '../harness/report/tap.ts';
import { statusMessage, testStatus } from '../harness/report/verdict.ts';
import { baselineNightly, nightly } from './fixtures/runs.ts';

const run = nightly();
const base = baselineNightly();
const job = (id: string): ResultRecord => {
  const r = run.records.find((x) => x.jobId === id);
  if (!r) throw new Error(`no fixture job ${id}`);
  return r;
};

t.test('the fixture run covers every outcome and status', async (t) => {
  t.same(new Set(run.records.map((r) => r.outcome)), new Set(OUTCOMES));
  t.same(new Set(run.records.map(testStatus)), new Set(['passed', 'failed', 'broken', 'skipped']));
});

t.test('status: expectation decides, infra is broken, never probed is skipped', async (t) => {
  t.equal(testStatus(job('keras-train.pi3b-1g-armhf')), 'passed', 'unsupported, allowed');
  t.equal(testStatus(job('keras-train.host-1g-amd64')), 'failed', 'oom_killed, not allowed');
  t.equal(testStatus(job('device-listing.pi5-8g-arm64')), 'broken');
  t.equal(testStatus(job('tflite-inference.pi5-8g-arm64')), 'skipped');
  const bare = { ...job('keras-train.pi5-8g-arm64'), expectation: null };
  t.equal(testStatus(bare), 'passed', 'no expectation: passed outcome passes');
  t.equal(testStatus({ ...bare, outcome: 'crashed' }), 'failed', 'no expectation: anything else fails');
  t.match(statusMessage(job('device-listing.host-1g-amd64')), /^timeout: deadline[^\n]*\nexpected passed \| unsupported \(unmet\)\nthrashing/);
});

t.test("tap's parser reads the TAP stream cleanly", async (t) => {
  const text = renderTap(run.records);
  t.match(text, /^TAP version 14\n1\.\.21\n/);
  const asserts: Result[] = [];
  const extra: string[] = [];
  const parser = new Parser();
  parser.on('assert', (r: Result) => asserts.push(r));
  parser.on('extra', (line: string) => extra.push(line));
  const results = await new Promise<FinalResults>((resolve) => {
    parser.on('complete', resolve);
    parser.end(text);
  });
  t.same(extra, [], 'no lines outside TAP');
  t.equal(results.plan.end, 21);
  t.equal(results.count, 21);
  t.equal(results.pass, 16, '15 passed + 1 skipped are ok');
  t.equal(results.fail, 5, '4 failed + 1 broken are not ok');
  t.equal(results.skip, 1);
  t.same(results.failures.filter((f) => f.tapError), [], 'no parse errors');
  const skipped = asserts.find((a) => a.name.startsWith('tflite-inference.pi5-8g-arm64'));
  t.match(skipped?.skip, /^never probed: cancelled/);
  const oom = asserts.find((a) => a.name === 'keras-train.host-1g-amd64: oom_killed');
  t.match(oom?.diag, { outcome: 'oom_killed', status: 'failed', device: { ramMb: 1024, longBit: 64 }, kernelOomLines: [/Memory cgroup out of memory/] });
  // A '#' in a reason must not start a directive.
  const hashed = renderTap([{ ...job('keras-train.pi5-8g-arm64'), jobId: 'a#b.c' }]);
  t.match(hashed, /^ok 1 - a\\#b\.c: passed$/m);
});

t.test('JUnit escapes what XML cannot carry raw', async (t) => {
  t.equal(xmlEscape(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  t.equal(xmlEscape('nul\u0000bell\u0007ok'), 'nul\uFFFDbell\uFFFDok', 'control characters are replaced');
  const xml = renderJunit(run.records, run.meta.runId);
  t.match(xml, /ValueError: Model provided has model identifier &apos;\uFFFD\uFFFD\uFFFD\uFFFD&apos;/, 'the NULs of a real stderr are replaced');
  t.match(xml, /<skipped message="never probed: cancelled before/);
  t.match(xml, /<error message="infra_error: SSH connection dropped/);
});

t.test('Allure results: safe names, labels, and categories that match whole messages', async (t) => {
  for (const r of run.records) {
    const { result, files } = toAllure(r);
    for (const f of files) t.match(f.source, SAFE_SOURCE);
    t.equal(result.fullName, `${r.suite}.${r.device.name}`);
  }
  t.equal(safeName('a b/c:d'), 'a_b_c_d');
  t.equal(safeName('../etc'), 'etc');
  // Java's String.matches: the whole message, (?s) lets '.' cross lines.
  const javaMatches = (regex: string, message: string) => new RegExp(`^(?:${regex.replace('(?s)', '')})$`, 's').test(message);
  const categoryOf = (r: ResultRecord) =>
    CATEGORIES.find((c) => (c.matchedStatuses as readonly string[]).includes(testStatus(r)) && javaMatches(c.messageRegex, statusMessage(r)))?.name;
  t.equal(categoryOf(job('keras-train.host-1g-amd64')), 'OOM killed');
  t.equal(categoryOf(job('device-listing.host-1g-amd64')), 'Timeout / thrashing');
  t.equal(categoryOf(job('tflite-inference.pi4b-2g-armhf')), 'Crashed');
  t.equal(categoryOf(job('device-listing.pi5-8g-arm64')), 'Infrastructure');
  t.equal(categoryOf({ ...job('keras-train.pi4b-2g-armhf'), expectation: null }), 'Allocation failed (MemoryError)');
  t.equal(categoryOf({ ...job('keras-train.pi3b-1g-armhf'), expectation: null }), 'Unsupported runtime');
  t.equal(categoryOf(job('tflite-inference.pi4b-4g-arm64')), undefined, 'a plain failure is a product defect');
});

t.test('executor: GitLab from CI_* variables, local otherwise', async (t) => {
  t.match(executorFor({ GITLAB_CI: 'true', CI_PIPELINE_IID: '77', CI_JOB_NAME: 'nightly', CI_PROJECT_URL: 'https://gitlab.example/pi', CI_JOB_URL: 'https://gitlab.example/pi/-/jobs/5' }, 'r1', 3), {
    type: 'gitlab',
    buildOrder: 77,
    buildName: 'nightly #77',
    buildUrl: 'https://gitlab.example/pi/-/jobs/5',
  });
  t.same(executorFor({}, 'r1', 3), { name: 'local', type: 'local', buildOrder: 3, buildName: 'r1', reportName: 'pi-hil r1' });
});

t.test('charts carry text alternatives and degrade without samples', async (t) => {
  const svg = timelineSvg(job('keras-train.host-1g-amd64'), 'x');
  t.match(svg, /<title id="x-title">Memory timeline: keras-train on host-1g-amd64<\/title><desc id="x-desc">Resident memory over 1 min 35 s, peaking at 1004 MB on a device with 1 GB of RAM/);
  t.match(svg, />RAM 1 GB</, 'RAM line drawn when in range');
  t.notMatch(timelineSvg(job('device-listing.pi4b-4g-arm64'), 'y'), />RAM 4 GB</, 'RAM line left out when it would flatten the curve');
  t.match(timelineSvg(job('device-listing.pi5-8g-arm64'), 'z'), /no samples: infra_error/);
  const bars = peakBarsSvg('pi3b-1g-armhf', 1024, run.records.filter((r) => r.device.name === 'pi3b-1g-armhf'), 'p');
  t.match(bars, /<desc id="p-desc">Peak memory on pi3b-1g-armhf \(RAM 1 GB\): keras-train 14.2 MB \(unsupported\)/);
  t.match(peakBarsSvg('none', 512, [], 'q'), /No peak memory measured/);
});

t.test('formatting', async (t) => {
  t.equal(formatMb(null), '—');
  t.equal(formatMb(512), '0.5 MB');
  t.equal(formatMb(900 * 1024), '900 MB');
  t.equal(formatMb(3.5 * 1024 * 1024), '3.5 GB');
  t.equal(formatMb(12 * 1024 * 1024), '12 GB');
  t.equal(formatRam(512), '512 MB');
  t.equal(formatRam(1536), '1.5 GB');
  t.equal(formatMs(null), '—');
  t.equal(formatMs(420), '420 ms');
  t.equal(formatMs(9_460), '9.5 s');
  t.equal(formatMs(99_000), '1 min 39 s');
  t.equal(formatDelta(0, 0), '0%');
  t.equal(formatDelta(0, 5), '+∞');
  t.equal(formatDelta(100, 80), '-20%');
});

t.test('diff against the baseline', async (t) => {
  const diff = diffRuns(run.records, base.records);
  t.equal(diff.baselineRunId, 'nightly-041');
  t.same(
    diff.changes.map((c) => [c.jobId, c.before, c.after, c.kind]),
    [
      ['tflite-inference.pi4b-2g-armhf', 'passed', 'crashed', 'worse'],
      ['device-listing.host-1g-amd64', 'passed', 'timeout', 'worse'],
      ['device-listing.pi5-8g-arm64', 'passed', 'infra_error', 'infra'],
    ],
  );
  t.same(diff.regressions.map((r) => [r.jobId, r.metric]), [
    ['tflite-inference.pi3b-1g-armhf', 'payload time'],
    ['keras-train.pi4b-4g-arm64', 'peak memory'],
  ]);
  t.same(diff.added, ['memory-ladder.pi4b-4g-arm64']);
  t.same(diff.removed, []);
  const reversed = diffRuns(base.records, run.records);
  t.same(reversed.removed, ['memory-ladder.pi4b-4g-arm64']);
  t.ok(reversed.changes.every((c) => c.kind === 'better' || c.kind === 'infra'));
  t.same(diffRuns(run.records, run.records, { memoryPct: 0, timePct: 0, memoryFloorKb: 0, timeFloorMs: 0 }).regressions, [], 'a run is no regression of itself');
});

t.test("the article's claims, weighed", async (t) => {
  const [train32, lite32, recommend64] = assessClaims(run.records);
  t.equal(train32?.verdict, 'supported');
  t.equal(train32?.for.length, 3);
  t.equal(lite32?.verdict, 'mixed');
  t.match(lite32?.for, [/tflite-inference passed on zero2w-512-armhf .* where keras-train ended unsupported/]);
  t.match(lite32?.against, [/crashed on pi4b-2g-armhf/]);
  t.equal(recommend64?.verdict, 'mixed');
  t.match(recommend64?.for, [/keras-train passed on 2 of 3 64-bit devices and 0 of 3 32-bit devices/]);
  t.match(recommend64?.against, [/tflite-inference passed on 1 of 2 64-bit devices and 2 of 3 32-bit devices/]);
  t.same(assessClaims([]).map((c) => c.verdict), ['untested', 'untested', 'untested']);
});

t.test('the Markdown twin', async (t) => {
  const md = renderMarkdown({ meta: run.meta, records: run.records, diff: diffRuns(run.records, base.records) });
  t.match(md, /^# Can TensorFlow run on this Raspberry Pi\?\n/);
  t.match(md, /\| keras-train \| 0 of 3 ran \| 2 of 3 ran \(from 4 GB\) \|/);
  t.match(md, /\| \*\*host-1g-amd64\*\* \| 64-bit \| 1 GB \| ❌ `oom_killed` · 1004 MB · 1 min 39 s \|/);
  t.match(md, /### 🟢 Training on 32-bit Raspbian with about 1 GB fails: supported/);
  t.match(md, /\| tflite-inference\.pi4b-2g-armhf \| `passed` \| `crashed` \| worse \|/);
  t.match(md, /\| keras-train\.pi4b-4g-arm64 \| peak memory \| 690 MB \| 905 MB \| \+31% \|/);
  t.match(md, /## What needs a look\n\n- \*\*tflite-inference\.pi4b-2g-armhf\*\* `crashed`/);
  t.match(md, /- \*\*device-listing\.pi5-8g-arm64\*\* `infra_error`/);
  const plain = renderMarkdown({ meta: run.meta, records: run.records, diff: null });
  t.match(plain, /No baseline given/);
  // Every table row has as many cells as its header.
  for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
    const widths = block.split('\n').map((l) => l.split(/(?<!\\)\|/).length);
    t.ok(widths.every((w) => w === widths[0]), 'table rows are aligned');
  }
});

t.test('the previous report is the latest earlier sibling run with a history', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'pi-hil-prev-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  for (const dir of ['20261120-020000-aaaa/allure-report/history', '20261121-020000-bbbb/allure-report/history', '20261122-020000-cccc', '20261124-020000-eeee/allure-report/history']) {
    await mkdir(join(root, dir), { recursive: true });
  }
  t.equal(await findPreviousReport(join(root, '20261123-020000-dddd')), join(root, '20261121-020000-bbbb', 'allure-report'));
  t.equal(await findPreviousReport(join(root, '20261120-020000-aaaa')), null);
});
