/**
 * `hil merge`: real runs on local devices, sharded 1/2 and 2/2, merged, give
 * the records of the unsharded run (times, ids and facts that change by the
 * second aside); a job twice or a shard missing is refused, naming the files.
 */
import t from 'tap';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseInventory } from '../harness/inventory/load.ts';
import { shardOf } from '../harness/run/plan.ts';
import { MergeError, mergeRuns, readShardRun } from '../harness/results/merge.ts';
import type { ResultRecord } from '../harness/results/record.ts';
import { hil, onlyRunDir, readMeta, readRecords, TEST_SUITES } from './helpers/hil.ts';

t.setTimeout(600_000);

const INVENTORY = `defaults: { transport: local, ram_mb: 512, arch: amd64 }
devices:
  - { name: a }
  - { name: b }
  - { name: c }
  - { name: d }
`;

/** What a record says about the product, without what changes from one run to the next. */
function stable(r: ResultRecord) {
  return {
    jobId: r.jobId,
    suite: r.suite,
    device: r.device,
    outcome: r.outcome,
    reason: r.reason,
    exit: r.exit,
    expectation: r.expectation,
    probe: r.probe,
    phases: r.phases.map((p) => p.name),
    values: r.values,
    stdout: r.logs.stdoutTail,
    attempt: r.attempt,
    evidence: r.evidence.map((e) => e.source),
    facts: r.facts && { machine: r.facts.machine, longBit: r.facts.longBit, kernel: r.facts.kernel, emulated: r.facts.emulated, versions: r.facts.versions },
  };
}
const byJob = (rs: ResultRecord[]) => rs.map(stable).sort((x, y) => x.jobId.localeCompare(y.jobId));

const root = t.testdir();
const inventory = join(root, 'devices.yaml');
// A workdir root of its own: local devices are all this host, and another test's job under the shared
// default (/tmp/pi-hil) would show in these records as a foreign job.
writeFileSync(inventory, INVENTORY.replace('arch: amd64 }', `arch: amd64, workdir: ${JSON.stringify(join(root, 'device'))} }`));
const run = (out: string, ...extra: string[]) =>
  hil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'quick', '--out', join(root, out), '--no-report', '--concurrency', '1', ...extra]);

// The split this inventory gets, so the test knows both shards hold devices.
const split = parseInventory('devices.yaml', INVENTORY, {}).devices.map((d) => shardOf(d, 2));

t.test('1/2 and 2/2 merged are the unsharded run', async (t) => {
  t.ok(split.includes(1) && split.includes(2), `both shards get devices: ${split.join(',')}`);
  // One job at a time, one run after the other: local devices are all this host, where a job beside it shows as a foreign one.
  t.match(readFileSync(inventory, 'utf8'), /workdir: /, 'the devices work under this test\'s folder');
  const whole = await run('whole');
  const one = await run('s1', '--shard', '1/2');
  const two = await run('s2', '--shard', '2/2');
  for (const r of [whole, one, two]) t.equal(r.code, 0, r.stderr);
  const s1 = onlyRunDir(join(root, 's1'));
  const s2 = onlyRunDir(join(root, 's2'));
  const merged = join(root, 'merged');
  const m = await hil(['merge', s2, s1, '--out', merged, '--run-id', 'night-1']);
  t.equal(m.code, 0, m.stderr);
  t.match(m.stderr, /hil merge: 4 record\(s\) from 2 run\(s\) \(2\/2, 1\/2\)/);
  const wholeRecords = readRecords(onlyRunDir(join(root, 'whole')));
  const mergedRecords = readRecords(merged);
  t.equal(wholeRecords.length, 4);
  t.same(byJob(mergedRecords), byJob(wholeRecords), 'the same records, job for job');
  t.ok(mergedRecords.every((r) => r.runId === 'night-1'), 'one night, one run id');
  const meta = readMeta(merged);
  t.equal(meta.runId, 'night-1');
  t.same(meta.shards?.map((s) => [s.shard, s.records, s.exitCode, s.runId]), [
    ['2/2', readRecords(s2).length, 0, readMeta(s2).runId],
    ['1/2', readRecords(s1).length, 0, readMeta(s1).runId],
  ]);
  t.same([...meta.jobs].sort(), [...readMeta(onlyRunDir(join(root, 'whole'))).jobs].sort());
  t.equal(meta.exitCode, 0);
  t.equal(meta.selection.shard, null);
  for (const f of ['compare.html', 'compare.md', 'junit.xml', 'allure-results', 'allure-report/index.html']) t.ok(existsSync(join(merged, f)), `${f} rebuilt`);
  t.match(readFileSync(join(merged, 'compare.md'), 'utf8'), /Run `night-1` .* 4 devices × 1 suites, 4 jobs/);

  t.test('a missing shard is named', async (t) => {
    const r = await hil(['merge', s1, '--out', join(root, 'only-1')]);
    t.equal(r.code, 2);
    t.match(r.stderr, /hil merge: shard 2\/2 missing: given 1\/2 \(.*s1.*\)/);
    t.notOk(existsSync(join(root, 'only-1')), 'nothing written');
  });

  t.test('a shard given twice, and a job in two runs, are refused naming both files', async (t) => {
    t.throws(() => mergeRuns([readShardRun(s1), readShardRun(s1), readShardRun(s2)], 'x'), { name: 'MergeError', message: /shard 1\/2 given twice: .*s1.*run\.json and .*s1.*run\.json/ });
    // Two copies of an unsharded run hold the same jobs.
    const copy = join(root, 'whole-copy');
    cpSync(onlyRunDir(join(root, 'whole')), copy, { recursive: true });
    const r = await hil(['merge', onlyRunDir(join(root, 'whole')), copy, '--out', join(root, 'dup')]);
    t.equal(r.code, 2);
    t.match(r.stderr, /hil merge: job quick\.[a-d] is in both .*whole\/[^/]+\/results\.jsonl and .*whole-copy\/results\.jsonl/);
    t.throws(() => mergeRuns([readShardRun(s1), readShardRun(onlyRunDir(join(root, 'whole')))], 'x'), MergeError, 'a whole run and a shard do not make a night');
    const again = await hil(['merge', s1, s2, '--out', merged]);
    t.equal(again.code, 2);
    t.match(again.stderr, /is not empty: merge into a new folder/);
    const none = await hil(['merge', s1, s2]);
    t.equal(none.code, 2);
    t.match(none.stderr, /--out/);
  });
});
