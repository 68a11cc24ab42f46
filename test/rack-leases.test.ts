/**
 * Never two controllers on one device, with real `hil run` processes on a
 * rack of real sshd devices: two controllers started together share the rack
 * without one job ever overlapping another on a device, and a controller
 * killed with SIGKILL frees its devices within its lease's TTL.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalSshd, type LocalSshdRack } from '../scripts/lib/local-sshd.ts';
import { workingIn } from '../scripts/lib/proc.ts';
import { onlyRunDir, readRecords, startHil, TEST_SUITES, waitFor } from './helpers/hil.ts';

t.setTimeout(600_000);

interface Stamp {
  start: number;
  end: number;
}

/** The intervals the stamp suite logged on each device. */
function stamps(rack: LocalSshdRack): Map<string, Stamp[]> {
  const out = new Map<string, Stamp[]>();
  for (const d of rack.devices) {
    const file = join(rack.workRoot, d.name, 'stamps.log');
    const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
    out.set(d.name, lines.map((l) => l.split(' ').map(Number)).map(([start = 0, end = 0]) => ({ start, end })));
  }
  return out;
}

function overlaps(intervals: Stamp[]): boolean {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  return sorted.some((x, i) => i > 0 && x.start < sorted[i - 1]!.end);
}

const run = (rack: LocalSshdRack, out: string, suite: 'stamp' | 'long', ...extra: string[]) =>
  startHil(['run', '-i', rack.inventoryFile, '--suites', TEST_SUITES, '--suite', suite, '--out', out, '--no-report', '--concurrency', '4', ...extra]);

t.test('two controllers at once: every job runs, none overlaps another on its device', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 4 });
  t.teardown(() => rack.stop());
  const a = run(rack, join(rack.dir, 'runs-a'), 'stamp', '--lease-wait', '2m');
  const b = run(rack, join(rack.dir, 'runs-b'), 'stamp', '--lease-wait', '2m');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  t.equal(ra.code, 0, a.stderr());
  t.equal(rb.code, 0, b.stderr());
  const records = [...readRecords(onlyRunDir(join(rack.dir, 'runs-a'))), ...readRecords(onlyRunDir(join(rack.dir, 'runs-b')))];
  t.equal(records.length, 8);
  t.ok(records.every((r) => r.outcome === 'passed'), records.map((r) => `${r.jobId}: ${r.outcome} ${r.reason}`).join('\n'));
  for (const [device, intervals] of stamps(rack)) {
    t.equal(intervals.length, 2, `${device} ran one job of each controller`);
    t.notOk(overlaps(intervals), `${device}: no two jobs overlapped ${JSON.stringify(intervals)}`);
  }
});

t.test('without --lease-wait, a held device is skipped with its holder named', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1 });
  t.teardown(() => rack.stop());
  // `long` sleeps two minutes: the first controller holds the device throughout.
  const a = run(rack, join(rack.dir, 'runs-a'), 'long');
  await waitFor('the first controller to start its job', () => /phase sleep/.test(a.stderr()));
  const b = run(rack, join(rack.dir, 'runs-b'), 'stamp');
  const rb = await b.done;
  t.equal(rb.code, 3, `exit 3: only infrastructure failed\n${b.stderr()}`);
  const [skipped] = readRecords(onlyRunDir(join(rack.dir, 'runs-b')));
  t.equal(skipped?.outcome, 'infra_error');
  t.match(skipped?.reason ?? '', /another controller holds the device: sshd-1 is leased by \S+ \(pid \d+/);
  a.child.kill('SIGINT');
  t.equal((await a.done).code, 130, 'the holder is interrupted as a person would');
});

t.test('a controller killed with SIGKILL frees its devices within the lease TTL; its job is killed', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 2 });
  t.teardown(() => rack.stop());
  const ttl = 8;
  const a = run(rack, join(rack.dir, 'runs-a'), 'long', '--lease-ttl', `${ttl}s`);
  await waitFor('the first controller to start both jobs', () => (a.stderr().match(/phase sleep/g) ?? []).length === 2);
  a.child.kill('SIGKILL');
  await a.done;
  const killedAt = Date.now();
  const b = run(rack, join(rack.dir, 'runs-b'), 'stamp', '--lease-wait', '1m');
  const rb = await b.done;
  t.equal(rb.code, 0, b.stderr());
  const records = readRecords(onlyRunDir(join(rack.dir, 'runs-b')));
  t.same(records.map((r) => r.outcome), ['passed', 'passed']);
  const firstStart = Math.min(...records.map((r) => Date.parse(r.timing.startedAt)));
  t.ok(firstStart - killedAt < (ttl + 10) * 1000, `the second controller got in ${firstStart - killedAt} ms after the kill (TTL ${ttl} s)`);
  t.match(b.stderr(), /took over the expired lease of .* killed its leftover processes/, 'the takeover is logged');
  t.same(workingIn(rack.workRoot), [], "nothing of the dead controller's jobs is left on the devices");
});
