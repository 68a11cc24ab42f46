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
import { verdictLabel } from '../harness/report/cell.ts';
import { assessClaims, bitsSummary, expectationTallies } from '../harness/report/claims.ts';
import { renderCompareHtml } from '../harness/report/compare.ts';
import { diffRuns } from '../harness/report/diff.ts';
import { formatDelta, formatMb, formatMs, formatRam } from '../harness/report/format.ts';
import { renderJunit, xmlEscape } from '../harness/report/junit.ts';
import { renderMarkdown } from '../harness/report/markdown.ts';
import { peakBarsSvg, timelineSvg } from '../harness/report/svg.ts';
import { renderTap } from '../harness/report/tap.ts';
import { notInstalled, statusMessage, testStatus } from '../harness/report/test-status.ts';
import { cap128Record, makeMeta } from './fixtures/records.ts';
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

t.test('Allure shows the agent session: a job that survived an SSH drop says so', async (t) => {
  const { result } = toAllure(job('keras-train.pi4b-4g-arm64'));
  const param = (name: string) => result.parameters.find((p) => p.name === name);
  t.same(param('re-attached'), { name: 're-attached', value: '1', excluded: true }, 'excluded: history still links the job across runs');
  t.same(param('payload pid'), { name: 'payload pid', value: '5437', excluded: true });
  t.same(param('left pids'), { name: 'left pids', value: 'none', excluded: true });
  t.ok(result.labels.some((l) => l.name === 'tag' && l.value === 're-attached'));
  const step = result.steps.find((st) => st.name.startsWith('agent session:'));
  t.equal(step?.name, 'agent session: payload pid 5437; survived 1 SSH drop (re-attached); nothing left running');
  t.equal(step?.status, 'passed');
  t.match(result.statusDetails.trace, /^agent: survived 1 SSH drop \(re-attached\) \(payload pid 5437\)$/m);
  t.match(result.description, /^Agent: payload pid 5437; survived 1 SSH drop \(re-attached\); nothing left running\.$/m);
  // Left-over processes are the harness's trouble: a broken step, and named in the trace.
  const left = toAllure(job('device-listing.host-1g-amd64')).result;
  t.equal(left.steps.find((st) => st.name.startsWith('agent session:'))?.status, 'broken');
  t.match(left.statusDetails.trace, /^agent: 1 process outlived the job: pid 88377 \(payload pid 3692\)$/m);
  t.equal(left.parameters.find((p) => p.name === 'left pids')?.value, '88377');
  t.notMatch(toAllure(job('keras-train.pi5-8g-arm64')).result.statusDetails.trace, /^agent:/m, 'a quiet session adds nothing to the trace');
});

t.test('truncated output says so, with the bytes written and kept', async (t) => {
  const r = job('keras-train.pi5-8g-arm64');
  t.equal(r.logs.truncated, true);
  const { result, files } = toAllure(r);
  const stdout = result.attachments.find((a) => a.name.startsWith('stdout'));
  t.equal(stdout?.name, 'stdout (truncated: 125 KB written, last 8.0 KB kept)');
  t.equal(files.find((f) => f.source === stdout?.source)?.content.length, 8192, 'the attachment is the kept tail');
  t.ok(result.labels.some((l) => l.name === 'tag' && l.value === 'output truncated'));
  t.match(result.description, /^Stdout truncated: 125 KB written, last 8\.0 KB kept\.$/m);
  t.match(result.statusDetails.trace, /^stdout truncated: 125 KB written, last 8\.0 KB kept$/m);
  t.equal(toAllure(job('keras-train.pi4b-4g-arm64')).result.attachments.find((a) => a.name.startsWith('stdout'))?.name, 'stdout', 'an uncut stream keeps its plain name');
  const html = renderCompareHtml({ meta: run.meta, records: run.records, diff: null });
  t.match(html, /<span class="notes">output truncated<\/span>/);
  t.match(html, /stdout truncated: 125 KB written, last 8\.0 KB kept/);
});

const cap128 = cap128Record();

t.test('peaks that differ by more than 10% are all shown, labelled', async (t) => {
  const step = toAllure(cap128).result.steps.find((st) => st.name.startsWith('peak memory'));
  t.equal(step?.name, 'peak memory: RSS 383 MB · anon 92.0 MB · cgroup 128 MB (they differ by more than 10%)');
  t.same(step?.parameters, [
    { name: 'peak RSS (VmHWM)', value: '383 MB' },
    { name: 'peak anonymous', value: '92.0 MB' },
    { name: 'cgroup peak', value: '128 MB' },
  ]);
  t.match(toAllure(cap128).result.description, /^Peak memory, by measure \(they differ by more than 10%\): peak RSS \(VmHWM\) 383 MB, peak anonymous 92\.0 MB, cgroup peak 128 MB \(RSS by vmhwm\); wall time 10\.4 s, after waiting 420 ms for the device\.$/m);
  const html = renderCompareHtml({ meta: makeMeta('cap-run', [cap128], '2026-11-23T02:00:00.000Z'), records: [cap128], diff: null });
  t.match(html, /<td data-job="tflite-inference\.cap-128"[^>]*>.*<span class="cellmeta">peak RSS 383 MB · anon 92\.0 MB · cgroup 128 MB<\/span><span class="cellmeta time">10 s<\/span>/);
  t.equal(html.match(/RSS is the kernel’s resident high-water mark/g)?.length, 1, 'the three are explained once');
  // Within 10% of each other, one number is the truth: no breakdown.
  const agree = { ...cap128, memory: { ...cap128.memory, peakRssKb: 120_000, peakAnonKb: 116_000, cgroupPeakKb: 125_000 } };
  t.equal(toAllure(agree).result.steps.find((st) => st.name.startsWith('peak memory'))?.name, 'peak memory: RSS 117 MB');
  t.match(renderCompareHtml({ meta: run.meta, records: [agree], diff: null }), /<span class="cellmeta">peak 117 MB<\/span><span class="cellmeta time">10 s<\/span>/);
});

t.test('a VM boot is shown once, under its device, and is not in any job time', async (t) => {
  const html = renderCompareHtml({ meta: run.meta, records: run.records, diff: null });
  t.match(html, /<th scope="row" class="dev" data-device="zero2w-512-armhf">.*?<small class="boot">boot 26 s<\/small><\/th>/);
  t.match(html, /<th scope="row" class="dev" data-device="pi3b-1g-armhf">.*?<small class="boot">boot 27 s<\/small><\/th>/);
  t.equal(html.match(/class="boot"/g)?.length, 2, 'only the QEMU devices booted');
  const first = job('keras-train.zero2w-512-armhf');
  t.equal(first.timing.bootMs, 25_536);
  t.equal(first.timing.wallMs, 3_350, 'wallMs holds no boot');
  t.match(html, /<td data-job="keras-train\.zero2w-512-armhf"[^>]*>.*?<span class="cellmeta time">3\.4 s<\/span>/);
  // Two boots of one device (a VM restarted mid-run) are both said, once.
  const again = { ...job('memory-ladder.pi3b-1g-armhf'), timing: { ...job('memory-ladder.pi3b-1g-armhf').timing, bootMs: 3_100 } };
  const twice = renderCompareHtml({ meta: run.meta, records: [...run.records.filter((r) => r.jobId !== again.jobId), again], diff: null });
  t.match(twice, /<small class="boot">2 boots: 27 s, 3\.1 s<\/small>/);
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
  // Outcome regressions first; the QEMU guest's slower payload is shown, never counted.
  t.same(diff.regressions.map((r) => [r.jobId, r.rule]), [
    ['tflite-inference.pi4b-2g-armhf', 'outcome'],
    ['device-listing.host-1g-amd64', 'outcome'],
    ['keras-train.pi4b-4g-arm64', 'memory'],
  ]);
  t.same(diff.emulatedTime.map((r) => [r.jobId, r.metric]), [['tflite-inference.pi3b-1g-armhf', 'payload time']]);
  t.same(diff.added, ['memory-ladder.pi4b-4g-arm64']);
  t.same(diff.removed, []);
  const reversed = diffRuns(base.records, run.records);
  t.same(reversed.removed, ['memory-ladder.pi4b-4g-arm64']);
  t.ok(reversed.changes.every((c) => c.kind === 'better' || c.kind === 'infra'));
  t.same(diffRuns(run.records, run.records, { memoryPct: 0, timePct: 0, memoryFloorKb: 0, timeFloorMs: 0 }).regressions, [], 'a run is no regression of itself');
  // A throttled Pi's slower job is no time regression (regressions.test.ts has every rule).
  const throttled = run.records.map((r) =>
    r.jobId === 'tflite-inference.pi3b-1g-armhf' ? { ...r, timing: { ...r.timing, trusted: false, untrustedBecause: 'under-voltage during the job' } } : r,
  );
  t.same(diffRuns(throttled, base.records).emulatedTime, [], 'a throttled job is compared with nothing');
});

t.test("the article's claims, weighed", async (t) => {
  const [train32, lite32, recommend64] = assessClaims(run.records);
  t.equal(train32?.standing, 'supported');
  // Two 32-bit devices have no TensorFlow to try: only pi4b-2g-armhf's MemoryError speaks to the claim.
  t.equal(train32?.for.length, 1);
  t.match(train32?.for, [/^keras-train ended memory_error on pi4b-2g-armhf \(2 GB, 32-bit on a 64-bit kernel\)/], 'a real Pi 4 on 32-bit Pi OS: armhf on the 64-bit kernel');
  t.match(train32?.summary, /^keras-train passed on 0 of 1 32-bit devices\./, 'one kernel tried it: no split');
  t.equal(lite32?.standing, 'mixed');
  t.match(lite32?.for, [/^tflite-inference passed on zero2w-512-armhf \(512 MB, 32-bit on a 32-bit kernel\) at 61\.5 MB$/, /^tflite-inference passed on pi3b-1g-armhf /]);
  t.match(lite32?.summary, /tflite-inference passed on 2 of 3 \(2 of 2 on a 32-bit kernel, 0 of 1 on a 64-bit kernel\) devices/, 'both 32-bit setups, apart');
  t.match(lite32?.against, [/crashed on pi4b-2g-armhf/]);
  t.equal(recommend64?.standing, 'mixed');
  // 64-bit against each 32-bit setup on its own.
  t.match(recommend64?.for, [
    /keras-train passed on 2 of 3 64-bit devices and 0 of 1 devices with 32-bit on a 64-bit kernel/,
    /tflite-inference passed on 1 of 2 64-bit devices and 0 of 1 devices with 32-bit on a 64-bit kernel/,
  ]);
  t.match(recommend64?.against, [
    /device-listing passed on 1 of 2 64-bit devices and 1 of 1 devices with 32-bit on a 64-bit kernel/,
    /tflite-inference passed on 1 of 2 64-bit devices and 2 of 2 devices with 32-bit on a 32-bit kernel/,
  ]);
  t.match(recommend64?.summary, /memory-ladder, what one process could use: 32-bit on a 32-bit kernel up to \d+ MB \(pi3b-1g-armhf, \w+\);.* 64-bit up to \d+ MB/);
  t.same(assessClaims([]).map((c) => c.standing), ['untested', 'untested', 'untested']);
});

t.test('a probe-unsupported cell is not counted as evidence by any claim', async (t) => {
  const untried = run.records.filter(notInstalled);
  t.same(untried.map((r) => r.jobId).sort(), ['device-listing.pi3b-1g-armhf', 'device-listing.zero2w-512-armhf', 'keras-train.pi3b-1g-armhf', 'keras-train.zero2w-512-armhf']);
  const weigh = (records: ResultRecord[]) => assessClaims(records).map((c) => ({ id: c.id, standing: c.standing, for: c.for, against: c.against }));
  t.same(weigh(run.records), weigh(run.records.filter((r) => !notInstalled(r))), 'the claims are the same with or without them');
  // Alone they leave every claim untested, said in words on the page and in Markdown.
  t.same(weigh(untried).map((c) => c.standing), ['untested', 'untested', 'untested']);
  const page = renderCompareHtml({ meta: run.meta, records: untried, diff: null });
  t.equal(page.match(/<span class="standing standing-untested">not tested in this run<\/span>/g)?.length, 3);
  t.equal(renderMarkdown({ meta: run.meta, records: untried, diff: null }).match(/^### ⚪ .*: not tested in this run$/gm)?.length, 3);
  // The probe makes the difference: a tried job that ended unsupported is evidence.
  const tried = untried.map((r) => ({ ...r, probe: { ok: true, message: 'requirements met' } }));
  t.match(weigh(tried)[0]?.for, [/keras-train ended unsupported on zero2w-512-armhf/, /keras-train ended unsupported on pi3b-1g-armhf/]);
  // Nor does the suite's own expectation, met because it allows unsupported, count them as met.
  const train32 = expectationTallies(run.records).find((x) => x.claim.startsWith('Training even a tiny Keras model'));
  t.match(train32, { met: 1, unmet: 0, infra: 0, notInstalled: 2 });
  // The matrix gives them their own label, and the glance counts them apart.
  t.same(untried.map((r) => verdictLabel(r).text), ['not installed', 'not installed', 'not installed', 'not installed']);
  const [k32, k64, b64] = bitsSummary(run.records);
  t.match(k32, { bits: '32-bit userland, 32-bit kernel', devices: 2, suites: [{ suite: 'keras-train', passed: 0, total: 0, notInstalled: 2 }] });
  t.match(k64, { bits: '32-bit userland, 64-bit kernel', devices: 1, suites: [{ suite: 'keras-train', passed: 0, total: 1, notInstalled: 0 }] });
  t.match(b64, { bits: '64-bit', devices: 3 });
  t.same(verdictLabel({ ...untried[0]!, expectation: { ...untried[0]!.expectation!, allowed: ['passed'], verdict: 'unmet' } }).key, 'unexpected', 'where a result was expected, it still needs a look');
});

t.test('the Markdown twin', async (t) => {
  const md = renderMarkdown({ meta: run.meta, records: run.records, diff: diffRuns(run.records, base.records) });
  t.match(md, /^# Can TensorFlow run on this Raspberry Pi\?\n/);
  t.match(md, /\| Example \| 32-bit userland, 32-bit kernel \(2 devices\) \| 32-bit userland, 64-bit kernel \(1 devices\) \| 64-bit \(3 devices\) \|/, 'three setups, three columns');
  t.match(md, /\| keras-train \| 0 of 0 ran, 2 not installed \| 0 of 1 ran \| 2 of 3 ran \(from 4 GB\) \|/);
  t.match(md, /\| \*\*pi4b-2g-armhf\*\* \| 32-bit on a 64-bit kernel \| 2 GB \|/);
  t.match(md, /\| \*\*host-1g-amd64\*\* \| 64-bit \| 1 GB \| — \| ❌ `oom_killed` · RSS 1004 MB \/ anon 622 MB \/ cgroup 1018 MB · 1 min 38 s \|/);
  t.match(md, /\| \*\*zero2w-512-armhf\*\* \| 32-bit on a 32-bit kernel \| 512 MB \| 26 s \| ➖ `unsupported` · RSS 14\.2 MB \/ anon 8\.8 MB · 3\.4 s \|/, 'boot once per device; the job time without it');
  t.match(md, /\| ✅ `passed` · RSS 905 MB \/ anon 561 MB · 40 s · survived 1 SSH drop \(re-attached\) \|/);
  t.match(md, /^- \*\*keras-train\.pi4b-4g-arm64\*\*: payload pid 5437; survived 1 SSH drop \(re-attached\); nothing left running$/m);
  t.match(md, /^- \*\*keras-train\.pi5-8g-arm64\*\*: .*; stdout truncated: 125 KB written, last 8\.0 KB kept$/m);
  t.match(md, /^- \*\*device-listing\.host-1g-amd64\*\*: .*1 process outlived the job: pid 88377$/m);
  t.match(md, /^Peak memory: RSS is the kernel’s resident high-water mark/m);
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
