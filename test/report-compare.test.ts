/**
 * The comparison page in headless Chromium from file://: the matrix, the
 * badges, the charts and their text alternatives, no console errors and no
 * network. The JUnit file is checked with the browser's XML parser.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeReports } from '../harness/report/index.ts';
import { launchChromium, watchErrors } from './helpers/browser.ts';
import { copyRuns } from './helpers/runs.ts';
import { cap128Record, makeMeta } from './fixtures/records.ts';
import { runFiles } from './fixtures/runs.ts';

t.setTimeout(120_000);
const runs = await copyRuns(t, 'nightly-041', 'nightly-042');
const run = runs['nightly-042']!;
await writeReports(run, { baseline: runs['nightly-041']!, allure: false });
const browser = await launchChromium();
t.teardown(() => browser.close());

t.test('the comparison page renders from file:// without network or errors', async (t) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(join(run, 'compare.html')).href);

  t.equal(await page.locator('h1').count(), 1, 'one h1');
  t.match(await page.locator('h1').innerText(), /Can TensorFlow run on this Raspberry Pi/);
  const h2 = await page.locator('h2').allInnerTexts();
  t.match(h2, ['Regressions against the baseline (3)', '32-bit vs 64-bit at a glance', 'Results by device and suite', "The article's claims", 'Changes since the baseline', 'Peak memory per device', 'Memory timelines']);

  // Matrix: 6 devices × 4 suites; 21 jobs and 3 "not run" cells.
  const matrix = page.locator('table.matrix');
  t.same(await matrix.locator('thead th[scope=col]').allInnerTexts(), ['DEVICE', 'KERAS-TRAIN', 'DEVICE-LISTING', 'TFLITE-INFERENCE', 'MEMORY-LADDER']);
  t.equal(await matrix.locator('tbody th[scope=row]').count(), 6);
  t.equal(await matrix.locator('td[data-job]').count(), 21);
  t.equal(await matrix.locator('td.empty').count(), 3);
  t.same(await matrix.locator('th[scope=rowgroup]').allInnerTexts(), ['32-bit userland, 32-bit kernel', '32-bit userland, 64-bit kernel', '64-bit'], 'three setups');
  t.same(await page.locator('#glance .three h3').allInnerTexts(), ['32-bit userland, 32-bit kernel\n2 devices', '32-bit userland, 64-bit kernel\n1 device', '64-bit\n3 devices'].map((x) => x), 'a glance card per setup');
  const oomCell = matrix.locator('td[data-job="keras-train.host-1g-amd64"]');
  await t.resolves(oomCell.locator('.badge.o-oom_killed').waitFor({ state: 'visible' }), 'oom_killed badge visible');
  t.match(await oomCell.innerText(), /oom_killed\s+peak RSS 1004 MB · anon 622 MB · cgroup 1018 MB\s+1 min 38 s\s+unexpected \(expected passed\)/);
  // Its runtime is not installed there: not tried, in its own group rather than "as expected".
  t.match(await matrix.locator('td[data-job="keras-train.pi3b-1g-armhf"]').innerText(), /unsupported[\s\S]*not installed$/);
  t.equal(await matrix.locator('td.c-notinstalled').count(), 4);
  t.match(await page.locator('.chips').innerText(), /4 not installed/);
  t.match(await matrix.locator('td[data-job="device-listing.pi5-8g-arm64"]').innerText(), /infra_error[\s\S]*infrastructure/);

  // Charts: a timeline per job and peak bars per device, each with a title and description.
  const timelines = page.locator('#timelines figure svg[role=img]');
  t.equal(await timelines.count(), 21, 'a timeline chart per job');
  await t.resolves(page.locator('#job-keras-train_host-1g-amd64 svg polyline.rss').waitFor({ state: 'visible' }), 'the OOM job draws its RSS line');
  t.equal(await page.locator('#peaks figure svg[role=img]').count(), 6, 'peak bars per device');
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('svg')].filter((s) => {
      const ids = (s.getAttribute('aria-labelledby') ?? '').split(' ').filter(Boolean);
      return ids.length !== 2 || ids.some((id) => !document.getElementById(id)?.textContent?.trim());
    }).length,
  );
  t.equal(unlabelled, 0, 'every chart has a <title> and a <desc>');

  // Claims and diff.
  t.same(await page.locator('#claims .standing').allInnerTexts(), ['SUPPORTED', 'MIXED', 'MIXED']);
  t.notMatch(await page.locator('#claims .ev').allInnerTexts(), /ended unsupported/, 'jobs without their runtime are no evidence');

  // The agent session: in the cell, and in full under the job's timeline.
  const reattached = matrix.locator('td[data-job="keras-train.pi4b-4g-arm64"]');
  t.match(await reattached.innerText(), /passed\s+peak RSS 905 MB · anon 561 MB\s+40 s\s+survived 1 SSH drop \(re-attached\)\s+as expected/);
  t.match(await page.locator('#job-keras-train_pi4b-4g-arm64 figcaption').innerText(), /agent: payload pid 5437; survived 1 SSH drop \(re-attached\); nothing left running/);
  t.match(await matrix.locator('td[data-job="device-listing.host-1g-amd64"]').innerText(), /1 pid left running/);
  // Output the record cut, with written vs kept.
  t.match(await matrix.locator('td[data-job="keras-train.pi5-8g-arm64"]').innerText(), /output truncated/);
  t.match(await page.locator('#job-keras-train_pi5-8g-arm64 figcaption').innerText(), /stdout truncated: 125 KB written, last 8\.0 KB kept/);
  // Boot time once per QEMU device, in its row header; the job times leave it out.
  t.match(await matrix.locator('th[data-device="zero2w-512-armhf"]').innerText(), /boot 26 s$/);
  t.equal(await matrix.locator('td[data-job]', { hasText: 'boot' }).count(), 0, 'no job cell carries a boot');
  t.match(await page.locator('#peak-note').innerText(), /^Peak memory\. RSS is the kernel’s resident high-water mark \(VmHWM\)/);
  const changes = await page.locator('#changes').innerText();
  t.match(changes, /tflite-inference\.pi4b-2g-armhf\s+passed\s+→\s+crashed\s+worse/);
  t.match(changes, /keras-train\.pi4b-4g-arm64\s+peak memory\s+690 MB → 905 MB\s+\+31%/);

  // A cell links to its timeline.
  await oomCell.locator('a').click();
  t.equal(new URL(page.url()).hash, '#job-keras-train_host-1g-amd64');

  t.same(errors, [], 'no console errors');
  t.ok(requests.length > 0 && requests.every((u) => u.startsWith('file://')), 'no request leaves file://');
});

t.test('a capped device whose three peaks differ, and a torn results file, as a reader sees them', async (t) => {
  const capRun = join(run, '..', 'cap-run');
  const cap128 = cap128Record();
  const files = runFiles({ meta: makeMeta('cap-run', [cap128], '2026-11-23T02:00:00.000Z'), records: [cap128] });
  await mkdir(capRun, { recursive: true });
  await writeFile(join(capRun, 'run.json'), files['run.json']);
  // A crash mid-append: the second record's line stops halfway.
  await writeFile(join(capRun, 'results.jsonl'), files['results.jsonl'] + files['results.jsonl'].slice(0, 300));
  const summary = await writeReports(capRun, { allure: false });
  t.match(summary.warnings, [/results\.jsonl:2: not JSON .*; this line is left out of the reports$/]);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(pathToFileURL(join(capRun, 'compare.html')).href);
  t.match(await page.locator('td[data-job="tflite-inference.cap-128"]').innerText(), /oom_killed\s+peak RSS 383 MB · anon 92\.0 MB · cgroup 128 MB\s+10 s\s+as expected$/);
  const warn = page.locator('section.warn');
  await t.resolves(warn.waitFor({ state: 'visible' }), 'the unreadable line is named before anything else');
  t.match(await warn.innerText(), /^1 line of the results could not be read; this page is built from the 1 record that could\.[\s\S]*cap-run\/results\.jsonl:2: not JSON/);
  t.same(errors, [], 'no console errors');
});

t.test('junit.xml parses as XML and has the expected structure', async (t) => {
  const xml = readFileSync(join(run, 'junit.xml'), 'utf8');
  const page = await browser.newPage();
  const shape = await page.evaluate((text) => {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    const error = doc.querySelector('parsererror')?.textContent ?? null;
    const root = doc.documentElement;
    const suites = [...root.children].map((s) => ({
      tag: s.tagName,
      name: s.getAttribute('name'),
      tests: Number(s.getAttribute('tests')),
      failures: Number(s.getAttribute('failures')),
      errors: Number(s.getAttribute('errors')),
      skipped: Number(s.getAttribute('skipped')),
      cases: [...s.children].map((c) => ({
        tag: c.tagName,
        name: c.getAttribute('name'),
        classname: c.getAttribute('classname'),
        time: c.getAttribute('time'),
        kinds: [...c.children].map((k) => k.tagName),
        props: c.querySelectorAll('properties > property').length,
      })),
    }));
    return { error, root: root.tagName, tests: root.getAttribute('tests'), suites };
  }, xml);
  t.equal(shape.error, null, 'well-formed XML');
  t.equal(shape.root, 'testsuites');
  t.equal(shape.tests, '21');
  t.same(shape.suites.map((s) => s.name), ['keras-train', 'device-listing', 'tflite-inference', 'memory-ladder']);
  for (const s of shape.suites) {
    t.equal(s.tag, 'testsuite');
    t.equal(s.tests, s.cases.length, `${s.name}: tests attribute counts its cases`);
    t.equal(s.failures, s.cases.filter((c) => c.kinds.includes('failure')).length, `${s.name}: failures`);
    t.equal(s.errors, s.cases.filter((c) => c.kinds.includes('error')).length, `${s.name}: errors`);
    t.equal(s.skipped, s.cases.filter((c) => c.kinds.includes('skipped')).length, `${s.name}: skipped`);
    for (const c of s.cases) {
      t.equal(c.tag, 'testcase');
      t.equal(c.classname, s.name);
      t.match(c.time, /^\d+\.\d{3}$/);
      t.equal(c.kinds[0], 'properties');
      t.ok(c.props >= 8);
    }
  }
  const byName = (suite: string, name: string) => shape.suites.find((s) => s.name === suite)?.cases.find((c) => c.name === name);
  t.ok(byName('keras-train', 'host-1g-amd64')?.kinds.includes('failure'));
  t.ok(byName('device-listing', 'pi5-8g-arm64')?.kinds.includes('error'));
  t.ok(byName('tflite-inference', 'pi5-8g-arm64')?.kinds.includes('skipped'));
  t.same(byName('keras-train', 'pi4b-4g-arm64')?.kinds, ['properties', 'system-out']);
});
