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
import { ResultsFormatError, parseResults, parseResultsTolerant, readResults, readResultsTolerant, readRunMeta } from '../harness/results/read.ts';
import { z } from 'zod';
import { describeFound, firstProblem } from '../harness/results/problem.ts';
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
  t.equal(errorOf('[1,2]').message, 'results.jsonl:1: expected an object, got an array');
  t.equal(errorOf(mutate((r) => ((r.memory as Record<string, unknown>).peakRssKb = '12'))).message, 'results.jsonl:1: memory.peakRssKb: expected a number, got a string ("12")');
  t.equal(errorOf(mutate((r) => (r.schema = 2))).problem, 'expected 1, got the number 2');
  t.equal(errorOf(mutate((r) => ((r.device as Record<string, unknown>).arch = 'x86'))).problem, 'expected one of armhf, arm64, armel, amd64, got a string ("x86")');
  t.equal(errorOf(mutate((r) => (r.jobId = 'x'))).problem, `expected ${nightly().records[0]!.jobId} (<suite>.<device>), got a string ("x")`);
  t.equal(errorOf(mutate((r) => ((r.timing as Record<string, unknown>).startedAt = 'yesterday'))).problem, 'expected an ISO-8601 instant, got a string ("yesterday")');
  t.equal(errorOf(mutate((r) => ((r.evidence as Record<string, unknown>[])[0]!.source = 'hunch'))).field, 'evidence[0].source');
  t.equal(errorOf(mutate((r) => ((r.values as Record<string, unknown>).gpus = ['gpu0']))).field, 'values.gpus');
  t.equal(errorOf(mutate((r) => ((r.facts as { versions: Record<string, unknown> }).versions.numpy = undefined))).field, 'facts.versions.numpy');
  const dup = errorOf(`${good}\n${good}`);
  t.equal(dup.line, 2);
  t.match(dup.message, /duplicate job/);
});

t.test('a record stored before the session, output and boot fields reads with them filled in', async (t) => {
  const now = nightly().records.find((r) => r.jobId === 'keras-train.pi3b-1g-armhf')!;
  const old = JSON.parse(JSON.stringify(now)) as Record<string, Record<string, unknown>>;
  delete old.agent;
  delete old.logs!.output;
  delete old.logs!.truncated;
  delete old.facts!.memoryLimitMb;
  delete old.facts!.memoryLimitFreeMb;
  delete old.timing!.bootMs;
  // Then wallMs still held the wait for the device, a VM's boot included.
  old.timing!.wallMs = now.timing.wallMs + now.timing.connectMs!;
  const [r] = parseResults(JSON.stringify(old));
  t.same(r!.agent, { payloadPid: null, reattached: 0, leftPids: [] });
  t.equal(r!.logs.output, null);
  t.equal(r!.logs.truncated, false);
  t.equal(r!.facts!.memoryLimitMb, null);
  t.equal(r!.facts!.memoryLimitFreeMb, null);
  t.equal(r!.timing.bootMs, null, 'the boot share of the old wait was never recorded');
  t.equal(r!.timing.wallMs, now.timing.wallMs, 'wallMs without the wait for the device, as new records keep it');
  t.equal(r!.timing.connectMs, now.timing.connectMs);
});

t.test('the new fields are checked when present', async (t) => {
  t.equal(errorOf(mutate((r) => ((r.agent as Record<string, unknown>).reattached = -1))).field, 'agent.reattached');
  t.equal(errorOf(mutate((r) => ((r.agent as Record<string, unknown>).reattached = '1'))).field, 'agent.reattached');
  t.equal(errorOf(mutate((r) => ((r.agent as Record<string, unknown>).leftPids = [12, 'x']))).field, 'agent.leftPids[1]');
  t.equal(errorOf(mutate((r) => ((r.agent as Record<string, unknown>).payloadPid = 'x'))).field, 'agent.payloadPid');
  t.equal(errorOf(mutate((r) => (r.agent = null))).field, 'agent');
  t.equal(errorOf(mutate((r) => ((r.logs as Record<string, unknown>).truncated = 'yes'))).field, 'logs.truncated');
  t.equal(errorOf(mutate((r) => ((r.logs as Record<string, unknown>).output = { stdout: { written: 1, kept: 1 } }))).field, 'logs.output.stderr');
  t.equal(errorOf(mutate((r) => ((r.logs as { output: { stdout: Record<string, unknown> } }).output.stdout.kept = null))).field, 'logs.output.stdout.kept');
  t.equal(errorOf(mutate((r) => ((r.timing as Record<string, unknown>).bootMs = '5s'))).field, 'timing.bootMs');
  t.equal(errorOf(mutate((r) => ((r.facts as Record<string, unknown>).memoryLimitMb = '128'))).field, 'facts.memoryLimitMb');
});

t.test('a torn results file: the good records, and every bad line named', async (t) => {
  const second = JSON.stringify(nightly().records[1]);
  const text = `${good}\n{"schema":1}\n${second}\n${good}\n${second.slice(0, 200)}`;
  const { records, bad } = parseResultsTolerant(text, 'run/results.jsonl');
  t.same(records.map((r) => r.jobId), [nightly().records[0]!.jobId, nightly().records[1]!.jobId]);
  t.same(
    bad.map((e) => [e.line, e.field]),
    [
      [2, 'runId'],
      [4, 'jobId'],
      [5, ''],
    ],
  );
  t.equal(bad[0]!.message, 'run/results.jsonl:2: runId: expected a string, got nothing');
  t.match(bad[1]!.problem, /^duplicate job /);
  t.match(bad[2]!.message, /^run\/results\.jsonl:5: not JSON/);
  // The strict reader still stops at the first bad line.
  t.equal(errorOf(text).line, 2);
  const dir = await mkdtemp(join(tmpdir(), 'pi-hil-read-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'results.jsonl'), text);
  t.same(readResultsTolerant(dir).bad.map((e) => e.file), [1, 2, 3].map(() => join(dir, 'results.jsonl')));
});

t.test('a problem says what the schema wanted, for the checks a schema may add', async (t) => {
  const wanted = (schema: z.ZodType, value: unknown): string => {
    const parsed = schema.safeParse(value);
    if (parsed.success) return 'accepted';
    const p = firstProblem(parsed.error, value, ['at']);
    return `${p.field}: expected ${p.expected}, got ${describeFound(p.found)}`;
  };
  t.equal(wanted(z.object({ n: z.number().int().min(1) }), { n: 0 }), 'at.n: expected a number of at least 1, got the number 0');
  t.equal(wanted(z.object({ n: z.number().int() }), { n: 1.5 }), 'at.n: expected a whole number, got the number 1.5');
  t.equal(wanted(z.number().lt(5), 5), 'at: expected a number below 5, got the number 5');
  t.equal(wanted(z.object({ tags: z.array(z.string()).max(1) }), { tags: ['a', 'b'] }), 'at.tags: expected at most 1 item, got an array');
  t.equal(wanted(z.string().min(2), 'a'), 'at: expected at least 2 characters, got a string ("a")');
  t.equal(wanted(z.number().multipleOf(5), 3), 'at: expected a multiple of 5, got the number 3');
  t.equal(wanted(z.strictObject({ x: z.number() }), { x: 1, y: 2 }), 'at: expected no key "y", got an object');
  t.equal(wanted(z.object({ 'odd key': z.boolean() }), {}), 'at["odd key"]: expected a boolean, got nothing');
  t.equal(wanted(z.array(z.object({ ok: z.boolean() })), [{ ok: true }, { ok: 'yes' }]), 'at[1].ok: expected a boolean, got a string ("yes")');
  t.equal(describeFound('x'.repeat(100)), `a string ("${'x'.repeat(59)}…")`, 'long strings are cut');
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
  t.throws(() => readRunMeta(dir), new ResultsFormatError(join(dir, 'run.json'), 1, 'inventory.devices[0].ramMb', 'expected a number, got a string ("lots")'));
  t.throws(() => readResults(dir), /ENOENT/);
});
