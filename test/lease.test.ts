/**
 * Device leases for real: the lease script run on this host and on a real
 * sshd device, two holders racing, a dead holder's lease expiring and its
 * leftover job killed, and a release by force.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, existsSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLease, deviceLeaseSite, hostLeaseSite, LeaseBusyError, thisHolder, type LeaseHolder } from '../harness/rack/lease.ts';
import { createTransport } from '../harness/transport/factory.ts';
import type { Transport } from '../harness/transport/transport.ts';
import { loadInventory } from '../harness/inventory/load.ts';
import { startLocalSshd } from '../scripts/lib/local-sshd.ts';
import { waitFor } from './helpers/hil.ts';

t.setTimeout(120_000);

const holder = (runId: string, workdirRoot: string): LeaseHolder => ({ ...thisHolder(runId, workdirRoot), who: `test ${runId}` });

t.test('one holder at a time; the second is told who holds it, and gets it once released', async (t) => {
  process.env['PI_HIL_LEASES'] = t.testdir();
  const site = hostLeaseSite('dev-a');
  const first = await acquireLease('dev-a', site, holder('20261202-010101-aaaa', '/tmp/none'));
  const busy = await acquireLease('dev-a', site, holder('20261202-010101-bbbb', '/tmp/none')).catch((e: unknown) => e);
  t.type(busy, LeaseBusyError);
  t.match((busy as Error).message, /dev-a is leased by test 20261202-010101-aaaa \(pid \d+ on .*\), expires in \d+ s/);
  const waiting = acquireLease('dev-a', site, holder('20261202-010101-bbbb', '/tmp/none'), { waitMs: 20_000 });
  await first.release();
  const second = await waiting;
  t.equal(second.record.runId, '20261202-010101-bbbb', 'the waiting controller got the device when it was released');
  await second.release();
  await first.release(); // twice is harmless
});

t.test("a dead holder's lease expires; the next controller kills its job and removes its workdir", async (t) => {
  process.env['PI_HIL_LEASES'] = t.testdir();
  const root = join(t.testdir(), 'work');
  const deadRun = '20261202-020202-dead';
  const jobDir = join(root, deadRun, 'sleepy.dev-b');
  mkdirSync(join(jobDir, '.hil'), { recursive: true });
  // The dead controller's payload, still running in its own process group in the job's workdir.
  const orphan = spawn('sleep', ['300'], { cwd: jobDir, detached: true, stdio: 'ignore' });
  orphan.unref();
  t.teardown(() => {
    try {
      process.kill(-(orphan.pid ?? 0), 'SIGKILL');
    } catch {
      // already gone, as it should be
    }
  });
  writeFileSync(join(jobDir, '.hil', 'payload.json'), JSON.stringify({ pid: orphan.pid, pgid: orphan.pid }));
  // An old run folder no lease holds, and a young one: only the old one is swept.
  const old = join(root, '20261101-000000-0001');
  mkdirSync(old, { recursive: true });
  utimesSync(old, new Date('2026-11-01'), new Date('2026-11-01'));
  const young = join(root, '20261202-000000-0002');
  mkdirSync(young, { recursive: true });

  const site = hostLeaseSite('dev-b');
  // The dead holder took the lease and never renewed it (a Lease object would): it expires after 1 s.
  await site.run('acquire', { id: 'dead', holder: holder(deadRun, root), ttlS: 1 });
  const log: string[] = [];
  const lease = await acquireLease('dev-b', site, holder('20261202-030303-live', root), { waitMs: 10_000, log: (m) => log.push(m) });
  t.teardown(() => lease.release());
  t.match(log.join('\n'), new RegExp(`took over the expired lease of test ${deadRun}.*killed its leftover processes group ${orphan.pid}`));
  await waitFor('the orphan to die', () => orphan.exitCode !== null || orphan.signalCode !== null, 5000);
  t.equal(orphan.signalCode, 'SIGKILL', "the dead holder's payload group was killed");
  t.notOk(existsSync(join(root, deadRun)), "the dead holder's workdir is gone");
  t.notOk(existsSync(old), 'a workdir older than a day is swept');
  t.ok(existsSync(young), 'a young workdir is kept');
});

t.test('leases on a real sshd device; a lost lease is noticed; force release names the holder', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1 });
  t.teardown(() => rack.stop());
  const d = loadInventory(rack.inventoryFile).devices[0];
  if (!d || d.transport !== 'ssh') throw new Error('local sshd rack gave no ssh device');
  const transport = (): Transport => createTransport(d, { acceptNew: false, knownHostsFile: join(rack.dir, 'known_hosts') });
  const a = transport();
  const b = transport();
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const siteA = deviceLeaseSite(a, d.python, d.workdir);
  const siteB = deviceLeaseSite(b, d.python, d.workdir);
  const log: string[] = [];
  const held = await acquireLease(d.name, siteA, holder('20261202-040404-aaaa', d.workdir), { ttlMs: 3000, log: (m) => log.push(m) });
  const busy = await acquireLease(d.name, siteB, holder('20261202-040404-bbbb', d.workdir)).catch((e: unknown) => e);
  t.type(busy, LeaseBusyError, 'the lease lives on the device: a second connection sees it');
  // A person at the rack breaks the lease; the holder notices at its next renewal.
  const broken = await siteB.run('release', { id: 'operator', force: true });
  t.equal(broken.ok, true);
  t.equal(broken.holder?.runId, '20261202-040404-aaaa', 'a forced release says whose lease it was');
  await waitFor('the holder to notice', () => held.lost.aborted, 10_000);
  t.match(log.join('\n'), /lease lost/);
  await held.release();
});
