/**
 * Allure without Java gives a clear, actionable error while every other
 * report is still written; with Java, --single-file gives one index.html.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReports } from '../harness/report/index.ts';
import { findJava, JavaMissingError } from '../harness/report/allure-generate.ts';
import { copyRuns } from './helpers/runs.ts';

t.setTimeout(180_000);

t.test('missing Java: a clear error, and the other reports are written', async (t) => {
  const { 'nightly-042': run } = await copyRuns(t, 'nightly-042');
  await t.rejects(findJava({ PATH: '/nonexistent' }), JavaMissingError);
  const summary = await writeReports(run!, { env: { PATH: '/nonexistent' } });
  t.match(summary.allureError, /needs Java/);
  t.match(summary.allureError, /apt-get install openjdk-17-jre-headless/);
  t.equal(summary.paths.allureReport, null);
  for (const file of ['compare.html', 'compare.md', 'junit.xml', 'allure-results/categories.json', 'allure-results/executor.json']) {
    t.ok(existsSync(join(run!, file)), `${file} written`);
  }
  t.notOk(existsSync(join(run!, 'allure-report')), 'no report without Java');
});

t.test('--single-file makes one self-contained index.html', async (t) => {
  const { 'nightly-041': run } = await copyRuns(t, 'nightly-041');
  const summary = await writeReports(run!, { singleFile: true, env: { ...process.env, GITHUB_ACTIONS: 'true', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'pi-hil/pi-hil', GITHUB_RUN_ID: '9001', GITHUB_RUN_NUMBER: '41', GITHUB_WORKFLOW: 'nightly' } });
  t.equal(summary.allureError, null);
  t.same(readdirSync(join(run!, 'allure-report')), ['index.html']);
  const html = readFileSync(join(run!, 'allure-report', 'index.html'), 'utf8');
  // The data files are inlined as base64, keyed by their usual path.
  const summaryB64 = /d\('widgets\/summary\.json','([A-Za-z0-9+/=]+)'/.exec(html)?.[1];
  if (!summaryB64) throw new Error('no inlined summary.json in the single-file report');
  const inlined = JSON.parse(Buffer.from(summaryB64, 'base64').toString('utf8')) as { statistic: { total: number } };
  t.equal(inlined.statistic.total, 20, 'the data is inlined');
  t.notMatch(html, /googletagmanager/, 'no analytics tag');
  t.match(summary.warnings, [/single-file/]);
  const executor = JSON.parse(readFileSync(join(run!, 'allure-results', 'executor.json'), 'utf8')) as Record<string, unknown>;
  t.match(executor, { type: 'github', buildOrder: 41, buildName: 'nightly #41', buildUrl: 'https://github.com/pi-hil/pi-hil/actions/runs/9001' });
});
