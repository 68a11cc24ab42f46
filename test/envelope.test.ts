/**
 * Parameters and capacity searches for real, through the `hil` command line
 * on local memory-capped devices (cgroups; needs root):
 * - `hil run --param` on two devices stores one record per combination, and
 *   the generated Allure report shows them as parameter rows of one test,
 *   and run.json keeps the values given;
 * - a two-probe memory-ladder `hil envelope`: run.json keeps the search and
 *   the --fix values, and the pages' headline counts the probes;
 * - `hil envelope` for keras-train over `units` with real TensorFlow on
 *   512 MB, 1 GB and 2 GB caps: envelopes that grow with the cap, bounded by
 *   a passed record and an oom_killed or memory_error record, within the
 *   job bound; the Capacity section checked in headless Chromium.
 *
 * The envelope runs three TF searches at once, four or five probes each (TF's
 * import alone takes seconds per probe): 8.5 minutes measured on a 2-core host
 * at load average 27, 13 minutes for the whole file; less on a quiet host.
 */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hil, onlyRunDir, readMeta, readRecords } from './helpers/hil.ts';
import { DEBIAN_PYTHON, tfPython } from './helpers/tf-venv.ts';
import { launchChromium, watchErrors } from './helpers/browser.ts';
import { warmVenv } from '../scripts/measure-caps.ts';
import { writeReports } from '../harness/report/index.ts';
import { diffRuns } from '../harness/report/diff.ts';
import { jobBound } from '../harness/envelope/search.ts';
import type { ResultRecord } from '../harness/results/record.ts';

t.setTimeout(20 * 60_000);
const dir = mkdtempSync(join(tmpdir(), 'pi-hil-envelope-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const env = { PATH: process.env.PATH ?? '', ...(process.env.JAVA_HOME ? { JAVA_HOME: process.env.JAVA_HOME } : {}) };

function inventory(name: string, python: string, caps: number[], jobTimeout?: string): string {
  const file = join(dir, `${name}.yaml`);
  const devices = caps.map(
    (cap) => `  - { name: cap-${cap}, transport: local, cap_mb: ${cap}, ram_mb: ${cap}, arch: amd64, model: "local host capped at ${cap} MB", python: ${JSON.stringify(python)}${jobTimeout ? `, timeouts: { job: ${jobTimeout} }` : ''} }`,
  );
  writeFileSync(file, `defaults:\n  workdir: ${join(dir, 'wd')}\ndevices:\n${devices.join('\n')}\n`);
  return file;
}

t.test('hil run --param: one record per combination, shown by Allure as parameters of one test', async (t) => {
  const file = inventory('matrix', DEBIAN_PYTHON, [256, 512]);
  const bad = await hil(['run', '-i', file, '--suite', 'memory-ladder', '--param', 'limit_mb=32,lots', '--out', join(dir, 'bad')]);
  t.equal(bad.code, 2, 'a bad value is a usage error');
  t.match(bad.stderr, /--param: memory-ladder's limit_mb: expected an integer\n\s+got: "limit_mb=lots"\n\s+allowed: an integer of at least 1 \(MB\)/);
  const unknown = await hil(['run', '-i', file, '--suite', 'memory-ladder', '--param', 'samples=10', '--out', join(dir, 'bad')]);
  t.match(unknown.stderr, /no selected suite declares a parameter samples[\s\S]*allowed: limit_mb, step_mb/);

  // hil envelope says what it can search, before it touches a device.
  const noParam = await hil(['envelope', '-i', file, '--suite', 'memory-ladder', '--param', 'loss', '--from', '1', '--to', '10']);
  t.equal(noParam.code, 2);
  t.match(noParam.stderr, /--param: memory-ladder has no integer or number parameter "loss"[\s\S]*allowed: step_mb, limit_mb/);
  const zero = await hil(['envelope', '-i', file, '--suite', 'memory-ladder', '--param', 'limit_mb', '--from', '0', '--to', '10']);
  t.match(zero.stderr, /--from must be above 0 \(the steps are geometric\)/);

  const out = join(dir, 'matrix-runs');
  const r = await hil(['run', '-i', file, '--suite', 'memory-ladder', '--param', 'limit_mb=32,64', '--out', out, '--no-report']);
  const run = onlyRunDir(out);
  const records = readRecords(run);
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.same(readMeta(run).selection.params, { limit_mb: [32, 64] }, 'run.json records the --param values, parsed');
  t.same(records.map((x) => x.jobId).sort(), [
    'memory-ladder.cap-256[limit_mb=32]',
    'memory-ladder.cap-256[limit_mb=64]',
    'memory-ladder.cap-512[limit_mb=32]',
    'memory-ladder.cap-512[limit_mb=64]',
  ]);
  for (const x of records) {
    t.equal(x.outcome, 'passed', `${x.jobId}: ${x.reason}`);
    t.equal(x.values.limit_mb, x.params.limit_mb, 'the payload ran with the value given');
    t.equal(x.values.step_mb, 16, 'and the parameter not given at its default');
    t.equal(x.envelope, null);
  }

  const summary = await writeReports(run, { env });
  t.equal(summary.allureError, null);
  const cases = readdirSync(join(run, 'allure-report/data/test-cases')).map(
    (f) => JSON.parse(readFileSync(join(run, 'allure-report/data/test-cases', f), 'utf8')) as { fullName: string; parameters: { name: string; value: string }[] },
  );
  const of256 = cases.filter((c) => c.fullName === 'memory-ladder.cap-256');
  t.equal(of256.length, 2, 'one test, two rows');
  t.same(of256.map((c) => c.parameters.find((p) => p.name === 'limit_mb')?.value).sort(), ['32', '64']);
  const results = readdirSync(join(run, 'allure-results')).filter((f) => f.endsWith('-result.json')).map((f) => JSON.parse(readFileSync(join(run, 'allure-results', f), 'utf8')) as { testCaseId: string; historyId: string; fullName: string });
  const rows = results.filter((x) => x.fullName === 'memory-ladder.cap-256');
  t.equal(new Set(rows.map((x) => x.testCaseId)).size, 1, 'the same test case');
  t.equal(new Set(rows.map((x) => x.historyId)).size, 2, 'each parameter row its own history');
  t.match(readFileSync(join(run, 'compare.md'), 'utf8'), /\| Device \| Setup \| RAM \| memory-ladder limit_mb=32 \| memory-ladder limit_mb=64 \|/, 'the page has a column per value');

  // --baseline matches by device, suite and params: the same run against itself changes nothing,
  // and a run without params is another job altogether.
  const same = diffRuns(records, records);
  t.same([same.changes, same.added, same.removed], [[], [], []]);
  const plain = records.map((x): ResultRecord => ({ ...x, params: {}, jobId: `${x.suite}.${x.device.name}` }));
  t.equal(diffRuns(records, plain.slice(0, 1)).added.length, 4);
});

t.test('hil envelope records its search in run.json; its page counts the probes\' devices and suites', async (t) => {
  const file = inventory('small-envelope', DEBIAN_PYTHON, [256, 512]);
  const out = join(dir, 'small-envelope-runs');
  // Two probes a device (32, then 64 MB, the top of the range), far under the caps.
  const r = await hil(['envelope', '-i', file, '--suite', 'memory-ladder', '--param', 'limit_mb', '--fix', 'step_mb=8', '--from', '32', '--to', '64', '--factor', '2', '--resolution', '1.5', '--out', out], env);
  t.equal(r.code, 0, r.stderr.slice(-3000));
  const run = onlyRunDir(out);
  const records = readRecords(run);
  t.same(records.map((x) => `${x.device.name} ${x.params.limit_mb} ${x.params.step_mb} ${x.outcome}`).sort(), ['cap-256 32 8 passed', 'cap-256 64 8 passed', 'cap-512 32 8 passed', 'cap-512 64 8 passed']);
  const { selection } = readMeta(run);
  t.same(selection.params, { step_mb: [8] }, 'the value --fix held');
  t.same(selection.envelope, { param: 'limit_mb', from: 32, to: 64, factor: 2, resolution: 1.5 }, 'the search');
  t.same(selection.suites, ['memory-ladder']);
  // Only probes: the headline still counts them, by device and by suite (not by parameter value).
  t.match(readFileSync(join(run, 'compare.md'), 'utf8'), /· 2 devices × 1 suites, 4 jobs ·/);
  t.match(readFileSync(join(run, 'compare.html'), 'utf8'), /<li>2 devices × 1 suites, 4 jobs<\/li>/);
});

t.test('hil envelope: keras-train units on 512 MB, 1 GB and 2 GB with real TensorFlow', async (t) => {
  const python = tfPython();
  // TF's libraries charged outside the caps, so a cap binds on anonymous memory and kills fast.
  warmVenv(python);
  const file = inventory('envelope', python, [512, 1024, 2048], '150s');
  const out = join(dir, 'envelope-runs');
    // Coarse on purpose (ten-fold steps, one bisection): each TF probe costs about a minute here.
  const args = ['envelope', '-i', file, '--suite', 'keras-train', '--param', 'units', '--from', '10000', '--to', '10000000', '--resolution', '3.5', '--out', out];
  const started = Date.now();
  const r = await hil(args, env);
  t.comment(`hil envelope took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.comment(r.stdout);
  t.equal(r.code, 0, r.stderr.slice(-3000));
  const run = onlyRunDir(out);
  const records = readRecords(run);
  const bound = jobBound({ from: 10_000, to: 10_000_000, integer: true, factor: 10, resolution: 3.5 });
  const largest: number[] = [];
  for (const cap of [512, 1024, 2048]) {
    const mine = records.filter((x) => x.device.name === `cap-${cap}`);
    t.ok(mine.length > 0 && mine.every((x) => x.envelope?.search === 'units' && typeof x.params.units === 'number'), `cap-${cap}: every probe is a record of the search`);
    t.ok(mine.length <= bound + 1, `cap-${cap}: ${mine.length} jobs, bound ${bound} (+1 retry)`);
    t.same(mine.map((x) => x.envelope?.step), mine.map((_, i) => i + 1), 'steps in order');
    const passes = mine.filter((x) => x.outcome === 'passed').map((x) => Number(x.params.units));
    const fails = mine.filter((x) => x.outcome === 'oom_killed' || x.outcome === 'memory_error');
    t.ok(passes.length > 0, `cap-${cap}: something passed`);
    t.ok(fails.length > 0, `cap-${cap}: something failed for memory: ${mine.map((x) => `${x.params.units}:${x.outcome}`).join(' ')}`);
    const pass = Math.max(...passes);
    const fail = Math.min(...fails.map((x) => Number(x.params.units)));
    t.ok(pass < fail && fail / pass <= 3.5, `cap-${cap}: passes at ${pass}, fails at ${fail}`);
    t.notOk(mine.some((x) => !['passed', 'oom_killed', 'memory_error'].includes(x.outcome)), 'no other outcome along the way');
    t.match(r.stdout, new RegExp(`cap-${cap}\\s+${pass}\\s.*${fail} \\((oom_killed|memory_error)\\)`), 'the answer on stdout');
    largest.push(pass);
  }
  t.ok(largest[0]! <= largest[1]! && largest[1]! <= largest[2]!, `envelopes grow with the cap: ${largest.join(' <= ')}`);

  // `hil report` rebuilds the Capacity section from the records alone.
  const md = readFileSync(join(run, 'compare.md'), 'utf8');
  t.match(md, /## Capacity\n\n### keras-train: the largest `units` that passes/);
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(pathToFileURL(join(run, 'compare.html')).href);
  const rows = page.locator('#capacity tr[data-device]');
  t.equal(await rows.count(), 3);
  for (const [i, cap] of [512, 1024, 2048].entries()) {
    const row = page.locator(`#capacity tr[data-device="cap-${cap}"]`);
    t.equal(await row.getAttribute('data-largest-pass'), String(largest[i]));
    t.equal(await row.getAttribute('data-status'), 'bounded');
    t.ok(await row.locator('svg.capbar rect.pass').isVisible(), `cap-${cap}: the bar is drawn`);
    t.match(await row.locator('.badge').innerText(), /oom_killed|memory_error/);
  }
  t.equal(await page.locator('#capacity figure svg circle.probe').count(), records.length, 'every probe on a peak-memory chart');
  t.same(errors, []);
});
