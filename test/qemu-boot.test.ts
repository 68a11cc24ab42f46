/**
 * Emulated Pis for real: both images are built (or taken from the cache) in set-up, an
 * armhf and an arm64 guest boot in parallel and each runs a command over SSH, a second
 * start takes the warm path, and a broken boot is an infra error with the console tail.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QemuTransport } from '../harness/transport/qemu.ts';
import { resolveVmConfig } from '../harness/transport/qemu/config.ts';
import { recordedQemuPids } from '../harness/transport/qemu/pidfiles.ts';
import { findWarmState, readWarmMeta } from '../harness/transport/qemu/warm.ts';
import { TransportError } from '../harness/transport/transport.ts';
import { startHil, waitFor } from './helpers/hil.ts';
import { ensureImages, qemuDevice, qemuPidsMentioning } from './qemu-fixtures.ts';

t.setTimeout(3_600_000);
const state = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-qemu-boot-'));
process.env['PI_HIL_STATE'] = state;

const open: QemuTransport[] = [];
t.teardown(async () => {
  await Promise.all(open.map((q) => q.close()));
});

t.before(async () => {
  await ensureImages();
});

t.test('an armhf and an arm64 guest boot in parallel and each runs a job over SSH', async (t) => {
  const armhf = new QemuTransport(qemuDevice('boot-armhf', 'pi3b-1g-armhf'));
  const arm64 = new QemuTransport(qemuDevice('boot-arm64', 'pi3b-1g-arm64'));
  open.push(armhf, arm64);
  await Promise.all([armhf.connect(), arm64.connect()]);
  t.not(armhf.machine?.port, arm64.machine?.port, 'each VM has its own forwarded port');
  const probe = 'getconf LONG_BIT; dpkg --print-architecture; uname -m; cat /proc/device-tree/compatible | tr "\\0" " "; echo';
  const [a, b] = await Promise.all([armhf.exec(probe), arm64.exec(probe)]);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  const [aBits, aArch, aMachine, aCompat] = a.stdout.trim().split('\n');
  const [bBits, bArch, bMachine] = b.stdout.trim().split('\n');
  t.equal(aBits, '32', 'armhf userland is 32-bit');
  t.equal(aArch, 'armhf');
  t.match(aMachine ?? '', /^armv7/);
  t.match(aCompat ?? '', /linux,dummy-virt/, 'the device tree says virt: the facts can tell it is emulated');
  t.equal(bBits, '64', 'arm64 userland is 64-bit');
  t.equal(bArch, 'arm64');
  t.equal(bMachine, 'aarch64');
  // The TFLite runtime of the images: Arm NN, its reference CPU backend and TFLite parser (explicit: only Recommends).
  const nn = await armhf.exec(
    `dpkg-query -W -f '\${Package}\n' libarmnn-cpuref-backend22 libarmnntfliteparser22 python3-pyarmnn && python3 -c 'import pyarmnn, numpy; print("imports ok")'`,
  );
  t.equal(nn.code, 0, nn.code === 0 ? 'the Arm NN check ran' : nn.stderr);
  t.match(nn.stdout, /libarmnn-cpuref-backend22[\s\S]*imports ok/, 'Arm NN, its CPU backend and NumPy are in the image');
  t.ok(armhf.consoleFile, 'the console is logged to a file');
  await Promise.all([armhf.close(), arm64.close()]);
  t.same(recordedQemuPids(), [], 'both VMs are gone after close');
});

t.test('a second start of the same profile restores the warm state', async (t) => {
  const device = qemuDevice('warm-armhf', 'pi3b-1g-armhf');
  const ws = await findWarmState(await resolveVmConfig(device));
  t.ok(ws, 'the first start left a warm state');
  const before = ws ? await readWarmMeta(ws.dir) : null;
  const q = new QemuTransport(device);
  open.push(q);
  await q.connect();
  t.equal(q.boot?.mode, 'warm', `warm start (${q.boot?.warmSkipped ?? 'no fallback'})`);
  const after = ws ? await readWarmMeta(ws.dir) : null;
  t.same(after, before, 'the saved state was reused, not made again');
  const r = await q.exec('date +%s');
  t.equal(r.code, 0);
  const skew = Math.abs(Number(r.stdout.trim()) - Date.now() / 1000);
  t.ok(skew < 120, `the guest clock was set after the restore (skew ${skew.toFixed(1)} s)`);
  const mark = q.console.mark();
  const echo = await q.exec(`echo pi-hil-console-check | sudo -n tee /dev/ttyAMA0 >/dev/null`);
  t.equal(echo.code, 0, echo.stderr);
  await q.machine?.console.waitFor(/pi-hil-console-check/, mark, AbortSignal.timeout(60_000));
  t.match(q.console.since(mark), /pi-hil-console-check/, 'the job window of the console is captured');

  // `hil console` attaches to this VM (held by this process, as by a run) and leaves it running.
  const inventory = path.join(state, 'console-devices.yaml');
  writeFileSync(inventory, 'devices:\n  - { name: warm-armhf, transport: qemu, profile: pi3b-1g-armhf }\n');
  const con = startHil(['console', 'warm-armhf', '-i', inventory], {}, 'pipe');
  con.child.stdin?.write('echo pi-hil-$((6 * 7))\r');
  await waitFor('the console to answer', () => /pi-hil-42/.test(con.stdout()), 60_000).catch(() => undefined);
  t.match(con.stdout(), /pi-hil-42/, 'a command typed into hil console ran in the guest');
  con.child.stdin?.write('\x1d');
  const ended = await con.done;
  t.equal(ended.code, 0, con.stderr());
  t.match(con.stderr(), /attached to the VM of a running hil run[\s\S]*detached; the VM keeps running/);
  const still = await q.exec('true');
  t.equal(still.code, 0, 'the VM still answers after the console detached');

  // The SSH link drops (as when a guest stalls under its OOM killer): connect() brings it back.
  await q.exec('sudo -n pkill -KILL -u pi sshd').catch(() => undefined);
  await waitFor('the dropped link to be seen', () => !q.linkUp, 30_000).catch(() => undefined);
  t.notOk(q.linkUp, 'the SSH link is down');
  await q.connect();
  const back = await q.exec('echo back');
  t.equal(back.stdout.trim(), 'back', 'the same VM answers over a new SSH connection');
  await q.close();
});

t.test('two warm VMs of one profile run at once from the same saved state', async (t) => {
  const a = new QemuTransport(qemuDevice('twin-a', 'pi3b-1g-arm64'));
  const b = new QemuTransport(qemuDevice('twin-b', 'pi3b-1g-arm64'));
  open.push(a, b);
  await Promise.all([a.connect(), b.connect()]);
  t.equal(a.boot?.mode, 'warm');
  t.equal(b.boot?.mode, 'warm');
  // Each writes its own overlay: a file made in one is absent in the other.
  await a.exec('touch /home/pi/only-in-a');
  const seen = await b.exec('test -e /home/pi/only-in-a && echo shared || echo separate');
  t.equal(seen.stdout.trim(), 'separate', 'the VMs do not share a writable disk');
  await Promise.all([a.close(), b.close()]);
});

t.test('a kernel panic during boot is a TransportError with the console tail', async (t) => {
  const q = new QemuTransport(
    qemuDevice('panic-armhf', 'pi3b-1g-armhf', 0, {
      append: 'root=/dev/vda rw rootwait console=ttyAMA0 panic=1 init=/bin/false',
    }),
    { warm: false },
  );
  open.push(q);
  const err = await q.connect().then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, TransportError);
  t.match((err as Error).message, /Kernel panic - not syncing/);
  t.match((err as Error).message, /console tail/);
  t.same(recordedQemuPids(), [], 'the failed VM was cleaned up');
});

t.test('a guest that does not answer in time is a TransportError', async (t) => {
  const device = qemuDevice('slow-arm64', 'pi3b-1g-arm64');
  device.timeouts = { ...device.timeouts, bootMs: 2000 };
  const q = new QemuTransport(device, { warm: false });
  open.push(q);
  const err = await q.connect().then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, TransportError);
  t.match((err as Error).message, /no SSH banner within 2 s/);
});

t.test('no qemu process is left', async (t) => {
  await Promise.all(open.map((q) => q.close()));
  t.same(recordedQemuPids(), []);
  t.same(qemuPidsMentioning(state), []);
});
