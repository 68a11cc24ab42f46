/**
 * A retried job's two records: the reports judge by the last attempt and
 * show that it was retried; Allure gets both, as retries of one test.
 */
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finalAttempts } from '../harness/results/attempts.ts';
import { writeReports } from '../harness/report/index.ts';
import { DEVICES, makeMeta, makeRecord } from './fixtures/records.ts';

const runId = 'retry-run';
const spec = { device: DEVICES.pi4b4g, suite: 'keras-train', peakMb: 300, payloadMs: 9000, allowed: ['passed' as const], startMin: 0 };
const lost = makeRecord(runId, { ...spec, outcome: 'infra_error', reason: 'lost the device and it never came back: ECONNREFUSED' });
const retry = {
  ...makeRecord(runId, { ...spec, outcome: 'passed', reason: 'exit 0', startMin: 3 }),
  attempt: { n: 2, previous: { outcome: lost.outcome, reason: lost.reason } },
};
const other = makeRecord(runId, { ...spec, suite: 'device-listing', outcome: 'passed', reason: 'exit 0', startMin: 5 });

t.test('the last attempt of each job, in first-seen order', async (t) => {
  t.same(finalAttempts([lost, other, retry]).map((r) => [r.jobId, r.attempt.n]), [
    ['keras-train.pi4b-4g-arm64', 2],
    ['device-listing.pi4b-4g-arm64', 1],
  ]);
  t.same(finalAttempts([lost]), [lost], 'a job that was not retried keeps its one record');
});

t.test('reports: one row per job, the retry visible, both attempts in Allure', async (t) => {
  const dir = t.testdir();
  const records = [lost, retry, other];
  writeFileSync(join(dir, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...makeMeta(runId, records, lost.timing.queuedAt), jobs: [lost.jobId, other.jobId] }));
  const summary = await writeReports(dir, { allure: true });
  t.equal(summary.records, 2, 'two jobs');
  t.same(summary.statuses, { passed: 2, failed: 0, broken: 0, skipped: 0 }, 'judged by the retry, not the lost attempt');
  const md = readFileSync(join(dir, 'compare.md'), 'utf8');
  t.match(md, /attempt 2, after infra_error: lost the device and it never came back/);
  const html = readFileSync(join(dir, 'compare.html'), 'utf8');
  t.match(html, /attempt 2, after infra_error/);
  const results = readdirSync(join(dir, 'allure-results'))
    .filter((f) => f.endsWith('-result.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, 'allure-results', f), 'utf8')) as { fullName: string; status: string });
  const keras = results.filter((r) => r.fullName.startsWith('keras-train'));
  t.same(keras.map((r) => r.status).sort(), ['broken', 'passed'], 'both attempts, the first broken, as Allure shows retries');
  t.equal(new Set(keras.map((r) => r.fullName)).size, 1, 'one test identity');
});
