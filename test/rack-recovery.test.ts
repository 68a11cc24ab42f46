/**
 * Recovery on a rack of real sshd devices: a device that dies mid-job is
 * power-cycled through its `power:` commands, its job is retried once and
 * both attempts are stored, linked; a device with no power control is down
 * for the rest of the run, and its later jobs are refused at once.
 */
import t from 'tap';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startLocalSshd } from '../scripts/lib/local-sshd.ts';
import { processesUnder } from '../scripts/lib/proc.ts';
import { onlyRunDir, readRecords, startHil, TEST_SUITES, waitFor } from './helpers/hil.ts';

t.setTimeout(600_000);

t.test('a device that dies mid-job is power-cycled, its job retried once, both attempts stored', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 2, defaults: { timeouts: { connect: '3s', boot: '30s' } } });
  // rack.stop() also ends the sshd the power script starts: it is found by its config's folder.
  t.teardown(() => rack.stop());
  // The rack's "power" for sshd-1: off kills its sshd by pidfile, on starts it again from its own config.
  const script = join(rack.dir, 'power.sh');
  const log = join(rack.dir, 'power.log');
  writeFileSync(
    script,
    `#!/bin/sh\nhome=${rack.dir}/$2\ncase "$1" in\n  off) kill -KILL "$(cat "$home/sshd.pid")" 2>/dev/null; echo "off $2" >> ${log} ;;\n` +
      `  on) /usr/sbin/sshd -f "$home/sshd_config" -E "$home/sshd.log" && echo "on $2" >> ${log} ;;\nesac\n`,
  );
  chmodSync(script, 0o755);
  const inventory = parse(readFileSync(rack.inventoryFile, 'utf8')) as { devices: Record<string, unknown>[] };
  inventory.devices[0]!['power'] = { adapter: 'command', on: `${script} on {name}`, off: `${script} off {name}`, delay: '500ms' };
  writeFileSync(rack.inventoryFile, stringify(inventory));

  const out = join(rack.dir, 'runs');
  const run = startHil(['run', '-i', rack.inventoryFile, '--suites', TEST_SUITES, '--suite', 'medium,quick', '--out', out, '--no-report', '--concurrency', '2']);
  await waitFor('both devices to start their medium job', () => (run.stderr().match(/medium\.sshd-\d: phase sleep/g) ?? []).length === 2);
  rack.kill('sshd-1');
  rack.kill('sshd-2');
  const { code } = await run.done;
  t.equal(code, 3, `infrastructure failed on sshd-2, nothing else\n${run.stderr()}`);
  const records = readRecords(onlyRunDir(out));
  const of = (jobId: string) => records.filter((r) => r.jobId === jobId);

  const [first, second] = of('medium.sshd-1');
  t.equal(first?.outcome, 'infra_error', first?.reason ?? 'no record');
  t.equal(first?.attempt.n, 1);
  t.equal(second?.outcome, 'passed', `the retry after the power cycle: ${second?.reason}`);
  t.same(second?.attempt, { n: 2, previous: { outcome: 'infra_error', reason: first?.reason } }, 'the retry names the attempt before it');
  t.equal(of('quick.sshd-1')[0]?.outcome, 'passed', 'the recovered device runs its next job');
  t.match(readFileSync(log, 'utf8'), /off sshd-1\non sshd-1/, 'cycled through its power commands');
  t.match(run.stderr(), /sshd-1 .*stopped answering: power-cycling it/);
  t.match(run.stderr(), /sshd-1 .*recovered/);
  t.match(run.stderr(), /4\/4 job\(s\) \(1 retried\) recorded/);

  // No power: block: down for the rest of the run, no retry, later jobs refused at once.
  t.same(of('medium.sshd-2').map((r) => r.outcome), ['infra_error'], 'a product-less failure on a device that stays down is not retried');
  const later = of('quick.sshd-2')[0];
  t.equal(later?.outcome, 'infra_error');
  t.match(later?.reason ?? '', /not run: the device went down earlier in this run: it stopped answering, and it has no power: block/);

  // What the power script started is not the rack's own sshd: stopping the rack still ends it.
  rack.stop();
  t.same(processesUnder(join(rack.dir, 'sshd-1')), [], 'no sshd of sshd-1 is left running');
});
