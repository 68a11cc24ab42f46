/**
 * Reading run dirs back: the committed fixtures are exactly what the typed
 * builder makes (so they cannot drift from ResultRecord), and a bad line is
 * named by line number and field.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResultsFormatError, parseResults, readResults, readRunMeta } from '../harness/results/read.ts';
import { FIXTURE_RUNS } from './helpers/runs.ts';
import { baselineNightly, nightly, runFiles } from './fixtures/runs.ts';

t.test('committed fixture run dirs match the typed builder', async (t) => {
  for (const run of [nightly(), baselineNightly()]) {
    for (const [name, text] of Object.entries(runFiles(run))) {
      t.equal(readFileSync(join(FIXTURE_RUNS, run.meta.runId, name), 'utf8'), text, `${run.meta.runId}/${name} is current (rebuild: npx tsx test/fixtures/build-runs.ts)`);
    }
    const dir = join(FIXTURE_RUNS, run.meta.runId);
    t.same(readResults(dir), run.records);
    t.same(readRunMeta(dir), run.meta);
  }
});

const good = JSON.stringify(nightly().records[0]);
const mutate = (edit: (r: Record<string, unknown>) => void): string => {
  const r = JSON.parse(good) as Record<string, unknown>;
  edit(r);
  return JSON.stringify(r);
};
const errorOf = (text: string): ResultsFormatError => {
  try {
    parseResults(text, 'results.jsonl');
  } catch (err) {
    if (err instanceof ResultsFormatError) return err;
    throw err;
  }
  throw new Error('no error raised');
};

t.test('bad lines are named by line and field', async (t) => {
  t.equal(parseResults(`${good}\n\n`).length, 1, 'blank lines are fine');
  t.match(errorOf(`${good}\n{oops`).message, /^results\.jsonl:2: not JSON/);
  t.equal(errorOf(mutate((r) => (r.outcome = 'exploded'))).field, 'outcome');
  t.equal(errorOf(mutate((r) => (r.schema = 2))).field, 'schema');
  t.equal(errorOf(mutate((r) => (r.jobId = 'x'))).field, 'jobId');
  t.equal(errorOf(mutate((r) => ((r.memory as Record<string, unknown>).peakRssKb = '12'))).field, 'memory.peakRssKb');
  t.equal(errorOf(mutate((r) => ((r.timing as Record<string, unknown>).startedAt = 'yesterday'))).field, 'timing.startedAt');
  t.equal(errorOf(mutate((r) => ((r.device as Record<string, unknown>).arch = 'x86'))).field, 'device.arch');
  t.equal(errorOf(mutate((r) => ((r.facts as Record<string, unknown>).longBit = 16))).field, 'facts.longBit');
  t.equal(errorOf(mutate((r) => (r.probe = { ok: 'yes', message: '' }))).field, 'probe.ok');
  t.equal(errorOf(mutate((r) => ((r.expectation as Record<string, unknown>).allowed = ['fine']))).field, 'expectation.allowed[0]');
  t.equal(errorOf(mutate((r) => ((r.memory as { samples: Record<string, unknown>[] }).samples[0]!.rssKb = null))).field, 'memory.samples[0].rssKb');
  t.equal(errorOf(mutate((r) => ((r.phases as Record<string, unknown>[])[0]!.name = 3))).field, 'phases[0].name');
  t.equal(errorOf(mutate((r) => (r.thrashing = 'no'))).field, 'thrashing');
  t.equal(errorOf(mutate((r) => ((r.logs as Record<string, unknown>).console = 7))).field, 'logs.console');
  t.equal(errorOf(mutate((r) => ((r.evidence as unknown[])[0] = 'text'))).field, 'evidence[0]');
  t.equal(errorOf('[1,2]').field, '');
  const dup = errorOf(`${good}\n${good}`);
  t.equal(dup.line, 2);
  t.match(dup.message, /duplicate job/);
});

t.test('run.json is checked too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pi-hil-read-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'run.json'), '{');
  t.throws(() => readRunMeta(dir), /run\.json:1: not JSON/);
  const meta = JSON.parse(JSON.stringify(nightly().meta)) as Record<string, unknown>;
  (meta.inventory as { devices: Record<string, unknown>[] }).devices[0]!.ramMb = 'lots';
  await writeFile(join(dir, 'run.json'), JSON.stringify(meta));
  t.throws(() => readRunMeta(dir), new ResultsFormatError(join(dir, 'run.json'), 1, 'inventory.devices[0].ramMb', 'expected a number'));
  t.throws(() => readResults(dir), /ENOENT/);
});
