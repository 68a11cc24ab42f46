/**
 * Quarantine with real `hil` processes: a device whose sshd is down fails its
 * admission three runs in a row, is then quarantined and skipped at no cost,
 * and a passing `hil check` (or `hil quarantine release`) lets it run again.
 * Also the rack commands a person uses: `hil lease show` and `hil clean`.
 */
import t from 'tap';
import { join } from 'node:path';
import { startLocalSshd } from '../scripts/lib/local-sshd.ts';
import { hil, readRecords, TEST_SUITES } from './helpers/hil.ts';
import { readdirSync } from 'node:fs';

t.setTimeout(600_000);

t.test('down three runs in a row: quarantined, skipped, then released by a passing hil check', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1, defaults: { timeouts: { connect: '2s' } } });
  t.teardown(() => rack.stop());
  const env = { PI_HIL_STATE: join(rack.dir, 'state') };
  const out = join(rack.dir, 'runs');
  const run = () => hil(['run', '-i', rack.inventoryFile, '--suites', TEST_SUITES, '--suite', 'quick', '--out', out, '--no-report'], env);
  const lastRecord = () => {
    const runs = readdirSync(out).sort();
    return readRecords(join(out, runs[runs.length - 1]!))[0];
  };
  rack.kill('sshd-1');
  for (let n = 1; n <= 3; n++) {
    const r = await run();
    t.equal(r.code, 3, `run ${n}: only infrastructure failed`);
    t.match(lastRecord()?.reason ?? '', /not run: the device could not be reached/, `run ${n}`);
    if (n === 3) t.match(r.stderr, /quarantined after 3 failed runs in a row/);
  }
  const list = await hil(['quarantine', 'list'], env);
  t.match(list.stdout, /sshd-1 .* failed 3 runs in a row; last: .*ECONNREFUSED/);
  const started = Date.now();
  const skipped = await run();
  t.equal(skipped.code, 3);
  t.match(lastRecord()?.reason ?? '', /not run: the device is quarantined: quarantined since \S+: failed 3 runs in a row/);
  t.ok(Date.now() - started < 30_000, 'a quarantined device costs no connect timeout');

  await rack.restart('sshd-1');
  const check = await hil(['check', '-i', rack.inventoryFile, '--device', 'sshd-1'], env);
  t.equal(check.code, 0, check.stdout + check.stderr);
  t.match(check.stdout, /sshd-1: passed, released from quarantine/);
  t.match((await hil(['quarantine', 'list'], env)).stdout, /no device is quarantined/);
  t.equal((await run()).code, 0, 'the device runs again');
});

t.test('hil quarantine release, hil lease show, hil clean', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1 });
  t.teardown(() => rack.stop());
  const env = { PI_HIL_STATE: join(rack.dir, 'state') };
  t.match((await hil(['quarantine', 'release', 'sshd-1'], env)).stdout, /sshd-1: not quarantined/);
  const show = await hil(['lease', 'show', 'sshd-1', '-i', rack.inventoryFile], env);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, /sshd-1: free/);
  const refused = await hil(['lease', 'release', 'sshd-1', '-i', rack.inventoryFile], env);
  t.equal(refused.code, 2, 'releasing without --force is a usage error');
  t.match(refused.stderr, /--force/);
  const clean = await hil(['clean', 'sshd-1', '-i', rack.inventoryFile], env);
  t.equal(clean.code, 0, clean.stderr);
  t.match(clean.stdout, /sshd-1: nothing to clean/);
});
