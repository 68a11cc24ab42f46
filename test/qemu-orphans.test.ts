/**
 * No QEMU process outlives its controller: not after SIGINT mid-boot (with and without
 * a handler), not after SIGKILL; and a later start sweeps what a dead controller left.
 */
import t from 'tap';
import { tsNodeArgs } from './helpers/hil.ts';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isQemu, sweepStaleVms, vmsDir, writeVmRecord } from '../harness/transport/qemu/pidfiles.ts';
import { waitFor } from '../scripts/lib/wait.ts';
import { ensureImage, qemuPidsMentioning } from './qemu-fixtures.ts';

t.setTimeout(3_600_000);
const here = path.dirname(fileURLToPath(import.meta.url));

t.before(async () => {
  // The controllers boot the arm64 image.
  await ensureImage('arm64');
});

/** Start a controller in its own state folder; resolve once its QEMU is running. */
async function controllerWithVm(mode: 'default' | 'abort') {
  const state = mkdtempSync(path.join(os.tmpdir(), `pi-hil-orphan-${mode}-`));
  const child = spawn(process.execPath, [...tsNodeArgs(), path.join(here, 'qemu-controller-fixture.ts'), mode, 'pi3b-1g-arm64'], {
    env: { ...process.env, PI_HIL_STATE: state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
  const vms = path.join(state, 'qemu', 'vms');
  const qemuPid = (): number | null => {
    if (!existsSync(vms)) return null;
    for (const d of readdirSync(vms)) {
      try {
        const pid = (JSON.parse(readFileSync(path.join(vms, d, 'vm.json'), 'utf8')) as { qemuPid: number }).qemuPid;
        if (isQemu(pid)) return pid;
      } catch {
        /* being written */
      }
    }
    return null;
  };
  // Keep the pid seen: a first start replaces its template VM by the restored one, so a second look may miss.
  let pid: number | null = null;
  await waitFor('the controller to launch QEMU', () => (pid = qemuPid()) !== null, 120_000).catch((e: Error) => {
    throw new Error(`${e.message}; its output:\n${out}`);
  });
  if (pid === null) throw new Error(`the controller never launched QEMU:\n${out}`);
  return { child, state, pid: pid as number, exited, output: () => out };
}

for (const mode of ['default', 'abort'] as const) {
  t.test(`SIGINT to a controller mid-boot (${mode === 'default' ? "Node's default action" : 'handler that aborts'}) leaves no QEMU`, async (t) => {
    const c = await controllerWithVm(mode);
    t.ok(qemuPidsMentioning(c.state).length > 0, 'a QEMU of this controller is running mid-boot');
    c.child.kill('SIGINT');
    const code = await c.exited;
    if (mode === 'abort') t.equal(code, 130, `the controller exits 130\n${c.output()}`);
    await t.resolves(waitFor(`QEMU ${c.pid} to exit`, () => !isQemu(c.pid), 30_000), `QEMU ${c.pid} is gone after the controller's SIGINT`);
    t.same(qemuPidsMentioning(c.state), [], 'no QEMU of that controller is left');
  });
}

t.test('SIGKILL of the controller (a crash) leaves no QEMU, and the next start sweeps its folder', async (t) => {
  const c = await controllerWithVm('default');
  c.child.kill('SIGKILL');
  await c.exited;
  await t.resolves(waitFor(`QEMU ${c.pid} to exit`, () => !isQemu(c.pid), 30_000), 'the parent-death signal ended QEMU');
  process.env['PI_HIL_STATE'] = c.state;
  t.ok(readdirSync(vmsDir()).length > 0, 'the dead controller left its VM folder');
  sweepStaleVms();
  t.same(readdirSync(vmsDir()), [], 'a later start removed it');
});

t.test('the sweep kills a QEMU whose controller is gone and spares live controllers', async (t) => {
  process.env['PI_HIL_STATE'] = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-sweep-'));
  mkdirSync(vmsDir(), { recursive: true });
  // A stand-in QEMU (a sleep named like one), not a child of any live controller.
  const fake = spawn('bash', ['-c', 'exec -a qemu-system-fake sleep 600'], { stdio: 'ignore', detached: true });
  fake.unref();
  const fakePid = fake.pid as number;
  // Until its exec, the stand-in is bash, whose own argv already names qemu-system-fake: wait for the exec itself.
  const execd = () => {
    try {
      return readFileSync(`/proc/${fakePid}/cmdline`, 'utf8').split('\0')[0] === 'qemu-system-fake';
    } catch {
      return false;
    }
  };
  await waitFor('the stand-in QEMU to start', execd, 5000);
  const deadDir = path.join(vmsDir(), 'stale-1');
  mkdirSync(deadDir);
  writeVmRecord(deadDir, { qemuPid: fakePid, controllerPid: 2 ** 22 + 7, binary: 'qemu-system-fake', name: 'stale', startedAt: '' });
  const liveDir = path.join(vmsDir(), 'live-1');
  mkdirSync(liveDir);
  writeVmRecord(liveDir, { qemuPid: 1, controllerPid: process.ppid, binary: 'x', name: 'live', startedAt: '' });
  const killed = sweepStaleVms();
  t.same(killed, [fakePid], 'the orphan was killed');
  await t.resolves(waitFor('the orphan to exit', () => !isQemu(fakePid), 5000), 'and is gone');
  t.notOk(existsSync(deadDir), "the orphan's folder is removed");
  t.ok(existsSync(liveDir), "a live controller's VM is left alone");
});
