/**
 * Recovery of an emulated Pi, end to end through `hil run`: the guest's CPUs
 * are stopped through QMP in the middle of a job (a wedged Pi: the link stays
 * up, nothing answers); the controller loses the job, power-cycles the guest
 * (QMP system_reset), finds it healthy again, and retries the job, which
 * passes. Both attempts are stored.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Qmp } from '../harness/transport/qemu/qmp.ts';
import { ensureImage } from './qemu-fixtures.ts';
import { onlyRunDir, readRecords, startHil, TEST_SUITES, waitFor } from './helpers/hil.ts';

t.setTimeout(900_000);

t.before(async () => {
  await ensureImage('arm64');
});

t.test('a hung guest is power-cycled and its job retried once; both attempts stored', async (t) => {
  const dir = t.testdir();
  const state = mkdtempSync(join(os.tmpdir(), 'pi-hil-recovery-qemu-'));
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(inventory, 'devices:\n  - { name: wedge-arm64, transport: qemu, profile: pi3b-1g-arm64, timeouts: { connect: 20s, boot: 10m } }\n');
  const out = join(dir, 'runs');
  const run = startHil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'medium', '--out', out, '--no-report'], { PI_HIL_STATE: state });
  await waitFor('the job to start its payload', () => /medium\.wedge-arm64: phase sleep/.test(run.stderr()), 600_000);
  // The VM this run booted keeps its QMP socket in the run's state folder.
  const vms = join(state, 'vms');
  const socket = readdirSync(vms).map((id) => join(vms, id, 'qmp.sock')).find((p) => existsSync(p));
  if (!socket) throw new Error(`no QMP socket under ${vms}`);
  const qmp = await Qmp.connect(socket);
  await qmp.execute('qmp_capabilities');
  await qmp.execute('stop');
  qmp.close();
  const { code } = await run.done;
  t.equal(code, 0, `the retry passed, so every expectation is met\n${run.stderr()}`);
  const [first, second] = readRecords(onlyRunDir(out));
  t.equal(first?.outcome, 'infra_error', first?.reason ?? 'no record');
  t.equal(second?.outcome, 'passed', second?.reason ?? 'no retry record');
  t.same(second?.attempt, { n: 2, previous: { outcome: 'infra_error', reason: first?.reason } });
  t.match(run.stderr(), /wedge-arm64 .*stopped answering: power-cycling it \(QEMU: system_reset/);
  t.match(run.stderr(), /wedge-arm64 .*recovered/);
});
