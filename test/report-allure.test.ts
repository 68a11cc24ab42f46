/**
 * The Allure report, generated for real with Java from the fixture runs:
 * its data (summary, test cases, categories), a trend of two points after
 * a second run, and the page itself in headless Chromium over loopback http.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReports } from '../harness/report/index.ts';
import { launchChromium, watchErrors } from './helpers/browser.ts';
import { copyRuns } from './helpers/runs.ts';
import { serveDir } from './helpers/serve.ts';

interface Stat {
  failed: number;
  broken: number;
  skipped: number;
  passed: number;
  unknown: number;
  total: number;
}
const json = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

t.setTimeout(240_000);
const runs = await copyRuns(t, 'nightly-041', 'nightly-042');
const [first, second] = [runs['nightly-041']!, runs['nightly-042']!];
const env = { PATH: process.env.PATH ?? '', ...(process.env.JAVA_HOME ? { JAVA_HOME: process.env.JAVA_HOME } : {}) };

const one = await writeReports(first, { env });
const two = await writeReports(second, { baseline: first, env });

t.test('both runs generate an Allure report with Java', async (t) => {
  t.equal(one.allureError, null, 'first run: Allure report generated');
  t.equal(two.allureError, null, 'second run: Allure report generated');
  t.same(two.warnings, []);
  t.ok(existsSync(join(second, 'allure-report', 'index.html')));
});

t.test('summary counts follow the record statuses', async (t) => {
  const summary = json<{ statistic: Stat; reportName: string }>(join(second, 'allure-report/widgets/summary.json'));
  t.same(summary.statistic, { failed: 4, broken: 1, skipped: 1, passed: 15, unknown: 0, total: 21 });
  t.same(two.statuses, { passed: 15, failed: 4, broken: 1, skipped: 1 });
  t.equal(summary.reportName, 'pi-hil nightly-042');
});

t.test('test cases carry identity, labels, steps and attachments', async (t) => {
  const dir = join(second, 'allure-report/data/test-cases');
  interface Case {
    fullName: string;
    status: string;
    labels: { name: string; value: string }[];
    parameters: { name: string; value: string }[];
    extra: { history?: { items: { status: string }[] } };
    testStage: { steps: { name: string; status: string }[]; attachments: { name: string; source: string }[] };
    statusMessage?: string;
    statusTrace?: string;
  }
  const cases = readdirSync(dir).map((f) => json<Case>(join(dir, f)));
  t.equal(cases.length, 21);
  const oom = cases.find((c) => c.fullName === 'keras-train.host-1g-amd64');
  if (!oom) throw new Error('keras-train.host-1g-amd64 missing from the report');
  t.equal(oom.status, 'failed', 'oom_killed where passed was expected: failed');
  const label = (c: Case, name: string) => c.labels.filter((l) => l.name === name).map((l) => l.value);
  t.same(label(oom, 'parentSuite'), ['64-bit']);
  t.same(label(oom, 'suite'), ['keras-train']);
  t.same(label(oom, 'subSuite'), ['host-1g-amd64']);
  t.same(label(oom, 'host'), ['host-1g-amd64']);
  t.same(label(oom, 'epic'), ['A 64-bit system is strongly recommended for TensorFlow']);
  t.ok(label(oom, 'tag').includes('emulated') && label(oom, 'tag').includes('RAM 1 GB') && label(oom, 'tag').includes('amd64'));
  const param = (name: string) => oom.parameters.find((p) => p.name === name)?.value;
  t.equal(param('device'), 'host-1g-amd64');
  t.equal(param('suite'), 'keras-train');
  t.same(oom.testStage.steps.map((s) => s.name.split(':')[0]), ['import', 'build', 'compile', 'fit', 'peak memory', 'agent session'], 'one step per phase, then the peaks and the session');
  t.equal(oom.testStage.steps[4]?.name, 'peak memory: RSS 1004 MB · anon 622 MB · cgroup 1018 MB (they differ by more than 10%)');
  t.same(
    oom.testStage.attachments.map((a) => a.name).sort(),
    ['device facts', 'kernel OOM lines', 'memory timeline (CSV)', 'memory timeline (chart)', 'stdout'],
  );
  for (const a of oom.testStage.attachments) {
    t.ok(existsSync(join(second, 'allure-report/data/attachments', a.source)), `attachment ${a.name} is in the report`);
  }
  const armhf = cases.find((c) => c.fullName === 'keras-train.pi3b-1g-armhf');
  t.same(armhf && label(armhf, 'parentSuite'), ['32-bit']);
  t.equal(armhf?.status, 'passed', 'unsupported where the expectation allows it: passed');
  t.equal(cases.find((c) => c.fullName === 'device-listing.pi5-8g-arm64')?.status, 'broken');
  t.equal(cases.find((c) => c.fullName === 'tflite-inference.pi5-8g-arm64')?.status, 'skipped');
  // A job that survived an SSH drop says so in the generated report, and still links to last night.
  const survivor = cases.find((c) => c.fullName === 'keras-train.pi4b-4g-arm64');
  t.equal(survivor?.parameters.find((p) => p.name === 're-attached')?.value, '1');
  t.equal(survivor?.parameters.find((p) => p.name === 'payload pid')?.value, '5437');
  t.match(survivor?.testStage.steps.map((s) => s.name), ['import', 'build', 'compile', 'fit', /^peak memory/, 'agent session: payload pid 5437; survived 1 SSH drop (re-attached); nothing left running']);
  t.match(survivor?.statusTrace, /agent: survived 1 SSH drop \(re-attached\)/);
  t.same(survivor?.extra.history?.items.map((i) => i.status), ['passed'], 'the session parameters leave the history id alone');
  const verbose = cases.find((c) => c.fullName === 'keras-train.pi5-8g-arm64');
  t.ok(verbose?.testStage.attachments.some((a) => a.name === 'stdout (truncated: 125 KB written, last 8.0 KB kept)'), 'a cut stream says so');
  // History links across runs: the crashed job was passed last night.
  const crashed = cases.find((c) => c.fullName === 'tflite-inference.pi4b-2g-armhf');
  t.same(crashed?.extra.history?.items.map((i) => i.status), ['passed']);
});

t.test('categories sort failures by cause', async (t) => {
  const cats = json<{ items: { name: string; statistic: Stat }[] }>(join(second, 'allure-report/widgets/categories.json'));
  const byName = Object.fromEntries(cats.items.map((c) => [c.name, c.statistic.total]));
  t.equal(byName['OOM killed'], 1);
  t.equal(byName['Timeout / thrashing'], 1);
  t.equal(byName['Crashed'], 1);
  t.equal(byName['Infrastructure'], 1);
});

t.test('the second run shows a trend of two points', async (t) => {
  const trend = json<{ buildOrder: number; reportName: string; data: Stat }[]>(join(second, 'allure-report/widgets/history-trend.json'));
  t.equal(trend.length, 2);
  t.same(trend.map((p) => p.buildOrder), [2, 1]);
  t.same(trend.map((p) => p.data.total), [21, 20]);
  const env = readFileSync(join(second, 'allure-results/environment.properties'), 'utf8');
  t.match(env, /^Run=nightly-042$/m);
  t.equal(json<{ type: string }>(join(second, 'allure-results/executor.json')).type, 'local');
});

t.test('the Allure page renders in Chromium over loopback http', async (t) => {
  const server = await serveDir(join(second, 'allure-report'));
  t.teardown(server.close);
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}index.html`);
  await page.getByText('pi-hil nightly-042').first().waitFor();
  t.equal((await page.locator('.summary-widget__stats').innerText()).match(/\d+/)?.[0], '21', 'summary shows 21 test cases');
  await page.goto(`${server.url}index.html#suites`);
  await page.getByText('32-bit', { exact: true }).first().waitFor();
  await page.getByText('64-bit', { exact: true }).first().waitFor();
  await page.goto(`${server.url}index.html#categories`);
  await page.getByText('OOM killed').first().waitFor();
  await page.goto(`${server.url}index.html#graph`);
  await page.locator('svg').first().waitFor();
  t.same(errors, [], 'no console errors or failed requests');
});
