/**
 * `hil publish`, for real: three crafted nights published with real
 * `allure generate` (Allure 2, Java), then the site loaded over loopback
 * http in headless Chromium: the index renders, every link on it resolves to
 * a file that exists, the trend has one point per night, and the newest
 * night's Allure trend holds the nights before it. Re-publishing a night
 * replaces it; --keep 2 prunes to two and the index stays whole.
 */
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { publishNight } from '../harness/publish/site.ts';
import { nightId, type Night } from '../harness/publish/nights.ts';
import { baselineNightly, nightly, runFiles, type FixtureRun } from './fixtures/runs.ts';
import { launchChromium, watchErrors } from './helpers/browser.ts';
import { hil } from './helpers/hil.ts';
import { serveDir } from './helpers/serve.ts';

t.setTimeout(600_000);

const root = await mkdtemp(join(tmpdir(), 'pi-hil-publish-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const site = join(root, 'site');

/** A fixture night moved to its own date and run id, as three real nights would be. */
async function night(from: FixtureRun, runId: string, startedAt: string, extra: Record<string, string> = {}): Promise<string> {
  const run: FixtureRun = { meta: { ...from.meta, runId, startedAt }, records: from.records.map((r) => ({ ...r, runId })) };
  const dir = join(root, 'runs', runId);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries({ ...runFiles(run), ...extra })) await writeFile(join(dir, name), text);
  return dir;
}

const runs = [
  await night(baselineNightly(), 'night-1', '2026-11-21T02:00:00.000Z'),
  await night(nightly(), 'night-2', '2026-11-22T02:00:00.000Z'),
  // The nightly decision's file: two regressions against night 2.
  await night(nightly(), 'night-3', '2026-11-23T02:00:00.000Z', { 'regressions.json': JSON.stringify({ regressions: [{ jobId: 'a' }, { jobId: 'b' }] }) }),
];
const ids = ['night-1', 'night-2', 'night-3'].map((id, i) => nightId(`2026-11-2${i + 1}T02:00:00.000Z`, id));
const readNightsJson = () => (JSON.parse(readFileSync(join(site, 'nights.json'), 'utf8')) as { nights: Night[] }).nights;

for (const run of runs) await publishNight(run, { site });

const browser = await launchChromium();
t.teardown(() => browser.close());
const server = await serveDir(site);
t.teardown(() => server.close());

/** Every link of the index, resolved: each must name a file on disk that the server returns. */
async function checkIndex(t: Test, page: Page, expectNights: string[]): Promise<void> {
  const errors = watchErrors(page);
  const response = await page.goto(server.url);
  t.equal(response?.status(), 200, 'index.html is served');
  t.match(await page.title(), new RegExp(`${expectNights.length} nights`));
  const rows = await page.$$eval('tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-night')));
  t.same(rows, expectNights, 'one row per night, newest first');
  t.equal(await page.locator('svg.trend g.night').count(), expectNights.length, 'the trend has one point per night');
  t.equal(await page.locator('svg.trend circle.point-unexpected').count(), expectNights.length);
  const hrefs = await page.$$eval('a[href]', (as) => as.map((a) => (a as HTMLAnchorElement).href));
  t.ok(hrefs.length >= expectNights.length * 5, `${hrefs.length} links`);
  for (const href of new Set(hrefs)) {
    const path = decodeURIComponent(new URL(href).pathname);
    t.ok(href.startsWith(server.url), `${path} stays on the site`);
    t.ok(existsSync(join(site, path)), `${path} exists`);
    const r = await page.request.get(href);
    t.equal(r.status(), 200, `${path} resolves`);
  }
  t.same(errors, [], `no console errors or failed requests: ${errors.join('; ')}`);
}

t.test('three nights: nights.json, folders, latest/', async (t) => {
  const nights = readNightsJson();
  t.same(
    nights.map((n) => n.id),
    [...ids].reverse(),
    'newest first',
  );
  t.same(
    nights.map((n) => n.regressions),
    [2, null, null],
    'regressions where the run folder records them',
  );
  t.same(nights[0]!.counts, { expected: 11, unexpected: 4, infra: 1, skipped: 1, notinstalled: 4, none: 0 });
  t.equal(nights[0]!.commit, '4f6c2a9e1b7d3c5a8e0f2b4d6a8c0e1f3a5b7c9d', "run.json's gitSha");
  t.equal(nights[0]!.devices.length, 6);
  for (const id of ids) {
    for (const f of ['results.jsonl', 'run.json', 'compare.html', 'compare.md', 'allure/index.html', 'index.html']) {
      t.ok(existsSync(join(site, 'nights', id, f)), `${id}/${f}`);
    }
    t.notOk(existsSync(join(site, 'nights', id, 'allure-results')), 'allure-results are not published');
  }
  t.same(readdirSync(join(site, 'nights')).sort(), [...ids].sort(), 'no staging folders left behind');
  t.equal(readFileSync(join(site, 'latest', 'run.json'), 'utf8'), readFileSync(join(site, 'nights', ids[2]!, 'run.json'), 'utf8'), 'latest/ is the newest night');
  t.match(readFileSync(join(site, 'nights', ids[2]!, 'compare.md'), 'utf8'), /night-2/, 'compared against the previous published night');
});

t.test('the Allure trend of the newest night holds the nights before it', async (t) => {
  const trend = JSON.parse(readFileSync(join(site, 'nights', ids[2]!, 'allure', 'history', 'history-trend.json'), 'utf8')) as { buildOrder: number }[];
  t.equal(trend.length, 3, 'three points: this night and the two before');
  t.same(
    trend.map((p) => p.buildOrder),
    [3, 2, 1],
  );
  const page = await browser.newPage();
  t.teardown(() => page.close());
  const errors = watchErrors(page);
  await page.goto(`${server.url}latest/allure/index.html`);
  await page.getByText('pi-hil night-3').first().waitFor();
  t.equal((await page.locator('.summary-widget__stats').innerText()).match(/\d+/)?.[0], '21', 'the summary shows the 21 test cases');
  // The trend widget draws one group of bars per point of history-trend.json.
  await page.locator('[data-id="trend"] svg, .trend-widget svg, svg').first().waitFor();
  t.same(errors, []);
});

t.test('the index in Chromium: renders, every link resolves, one trend point a night', async (t) => {
  const page = await browser.newPage();
  t.teardown(() => page.close());
  await checkIndex(t, page, [...ids].reverse());
  t.match(await page.locator('tbody tr').first().innerText(), /2026-11-23 02:00 UTC/);
  t.match(await page.locator('tbody tr').nth(1).innerText(), /—/, 'no recorded regressions: a dash');
});

t.test('re-publishing a night replaces it', async (t) => {
  await publishNight(runs[1]!, { site });
  t.same(
    readNightsJson().map((n) => n.id),
    [...ids].reverse(),
  );
  t.same(readdirSync(join(site, 'nights')).sort(), [...ids].sort());
});

t.test('hil publish --keep 2 prunes the oldest night and keeps the index whole', async (t) => {
  const r = await hil(['publish', runs[2]!, '--site', site, '--keep', '2']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), join(site, 'index.html'));
  t.same(
    readNightsJson().map((n) => n.id),
    [ids[2], ids[1]],
  );
  t.notOk(existsSync(join(site, 'nights', ids[0]!)), 'the oldest night is gone');
  const page = await browser.newPage();
  t.teardown(() => page.close());
  await checkIndex(t, page, [ids[2]!, ids[1]!]);
});

t.test('a night whose Allure report fails leaves the site as it was', async (t) => {
  const before = ['nights.json', 'index.html', 'latest/run.json'].map((f) => readFileSync(join(site, f), 'utf8'));
  const listing = readdirSync(join(site, 'nights')).sort();
  // No Java on the PATH and no JAVA_HOME: Allure 2 cannot run.
  const r = await hil(['publish', runs[0]!, '--site', site], { PATH: '/nonexistent', JAVA_HOME: '' });
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /could not be generated, so nothing was published[\s\S]*needs Java/);
  t.same(
    ['nights.json', 'index.html', 'latest/run.json'].map((f) => readFileSync(join(site, f), 'utf8')),
    before,
    'nights.json, the index and latest/ are unchanged',
  );
  t.same(readdirSync(join(site, 'nights')).sort(), listing, 'no half-built night is left');
  t.notOk(existsSync(join(site, '.publish.lock')), 'the lock is released');
});

t.test('bad input: usage and a damaged nights.json are named', async (t) => {
  const noSite = await hil(['publish', runs[0]!]);
  t.equal(noSite.code, 2);
  t.match(noSite.stderr, /--site: required/);
  // The same checks in process: each spawned `hil` costs seconds of loading.
  await t.rejects(publishNight(runs[0]!, { site, keep: 0 }), { message: /--keep[\s\S]*allowed: a whole number of 1 or more/ });
  await t.rejects(publishNight(runs[0]!, { site, allure: 4 as 2 }), { message: /--allure[\s\S]*allowed: 2 .* or 3/ });
  await t.rejects(publishNight(root, { site }), { message: /no results\.jsonl/ });
  const damaged = join(root, 'damaged');
  await mkdir(damaged, { recursive: true });
  await writeFile(join(damaged, 'nights.json'), JSON.stringify({ schema: 1, nights: [{ id: 'x' }] }));
  const r = await hil(['publish', runs[0]!, '--site', damaged]);
  t.equal(r.code, 2);
  t.match(r.stderr, /nights\.json: nights\.0\.id/);
  t.same(readdirSync(join(damaged, 'nights')), [], 'nothing was added to the damaged site');
});
