/**
 * A QEMU device's own power, on one real guest: with its CPUs stopped through
 * QMP the guest is hung (an SSH command never returns); a power cycle resets
 * it in place and it answers again from a fresh boot. The guest's own reboot
 * still ends QEMU afterwards (the reset lifted -no-reboot for itself only), and
 * a cycle of a VM that is gone starts it again. Off ends the VM.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseInventory } from '../harness/inventory/load.ts';
import type { QemuDevice } from '../harness/inventory/device.ts';
import { powerControlFor } from '../harness/rack/power.ts';
import { QemuTransport } from '../harness/transport/qemu.ts';
import { recordedQemuPids } from '../harness/transport/qemu/pidfiles.ts';
import { waitFor } from '../scripts/lib/wait.ts';
import { ensureImage } from './qemu-fixtures.ts';

t.setTimeout(900_000);
const state = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-power-qemu-'));
process.env['PI_HIL_STATE'] = state;
// The file's teardown runs after the subtest's, which ends the VM first.
t.teardown(() => rmSync(state, { recursive: true, force: true }));

t.before(async () => {
  await ensureImage('arm64');
});

t.test('a hung guest is power-cycled through QMP and answers again; its own reboot still ends QEMU; a gone VM is started', async (t) => {
  const [device] = parseInventory('devices.yaml', 'devices:\n  - { name: power-arm64, transport: qemu, profile: pi3b-1g-arm64, timeouts: { boot: 10m, connect: 2m } }\n', {}).devices;
  if (device?.transport !== 'qemu') throw new Error('expected a qemu device');
  const q = new QemuTransport(device as QemuDevice);
  t.teardown(() => q.close());
  const power = powerControlFor(device, q);
  if (power === null) throw new Error('a qemu device always has a power control');
  t.match(power.describe, /system_reset over QMP/);
  t.equal(await power.status(), 'off', 'no VM before the first connect');

  await q.connect();
  t.equal(await power.status(), 'on');
  const bootId = async (): Promise<string> => {
    const r = await q.exec('cat /proc/sys/kernel/random/boot_id', { signal: AbortSignal.timeout(60_000) });
    t.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const firstBoot = await bootId();
  const vm = q.machine!;

  // Hung: every vCPU stopped, as a wedged kernel would leave it. The link stays open; nothing answers.
  await (await vm.qmpClient()).execute('stop');
  await t.rejects(q.exec('echo alive', { signal: AbortSignal.timeout(5000) }), 'an SSH command on the hung guest times out');

  const started = Date.now();
  await power.run('cycle');
  t.comment(`cycle: back in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.equal(q.machine, vm, 'the same VM, reset in place');
  const status = (await (await vm.qmpClient()).execute('query-status')) as { status?: string };
  t.equal(status.status, 'running', 'its CPUs run again');
  const secondBoot = await bootId();
  t.not(secondBoot, firstBoot, 'the guest booted afresh');
  t.equal((await q.exec('echo alive')).stdout.trim(), 'alive', 'an exec succeeds after the cycle');

  // The guest's own reboot is still an exit, as -no-reboot means (a panic reboot must end the VM).
  await q.exec('sudo -n systemctl reboot --no-block').catch(() => undefined);
  await waitFor('QEMU to exit on the guest reboot', () => vm.hasExited, 120_000);
  t.ok(vm.hasExited, 'the reset was allowed for the power cycle only');
  t.equal(await power.status(), 'off', 'an exited VM is off');

  await power.run('cycle');
  t.not(q.machine, vm, 'a VM that was gone is started again');
  t.equal((await q.exec('echo alive')).stdout.trim(), 'alive', 'and answers');

  await power.run('off');
  t.equal(await power.status(), 'off');
  t.equal(q.machine, null);
  t.same(recordedQemuPids(), [], 'off ended the VM');
});
