/**
 * 32-bit Raspberry Pi OS as it boots on a Pi 4 or 5 today, for real: the armhf root under
 * the arm64 kernel (image armhf-k64, profiles `*-armhf-k64`). One 4 GB Pi 4 guest runs
 * tflite-inference through the armhf Arm NN packages and memory-ladder, whose 32-bit
 * process climbs past the 3 GB that a 32-bit kernel leaves it; then a Pi 5 guest boots
 * to SSH on its own core with 16 GB declared and only what it uses resident.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { findProfile } from '../harness/pi/profiles.ts';
import { QemuTransport } from '../harness/transport/qemu.ts';
import { recordedQemuPids } from '../harness/transport/qemu/pidfiles.ts';
import { hil, onlyRunDir, readRecords } from './helpers/hil.ts';
import { ensureImage, qemuDevice } from './qemu-fixtures.ts';

t.setTimeout(1_800_000);
process.env['PI_HIL_STATE'] = mkdtempSync(join(os.tmpdir(), 'pi-hil-qemu-k64-'));

const open: QemuTransport[] = [];
t.teardown(async () => {
  await Promise.all(open.map((q) => q.close()));
});

t.before(async () => {
  // The layer over the armhf and arm64 images (which it builds first when they are missing).
  const img = await ensureImage('armhf-k64');
  t.same(Object.keys(img.kernels), ['arm64'], 'the armhf-k64 image boots the arm64 kernel');
});

t.test('armhf userland on the arm64 kernel: facts, tflite through Arm NN, and memory past 3.5 GB', async (t) => {
  const dir = t.testdir();
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(
    inventory,
    `defaults: { transport: qemu, timeouts: { job: 15m } }
devices:
  - { name: k64-4g, profile: pi4b-4g-armhf-k64 }
`,
  );
  const out = join(dir, 'runs');
  const r = await hil(['run', '-i', inventory, '--suite', 'tflite-inference,memory-ladder', '--out', out, '--no-report']);
  t.equal(r.code, 0, `every expectation met\n${r.stderr.slice(-3000)}`);
  const records = readRecords(onlyRunDir(out));
  const tflite = records.find((x) => x.jobId === 'tflite-inference.k64-4g');
  const ladder = records.find((x) => x.jobId === 'memory-ladder.k64-4g');
  if (!tflite || !ladder) {
    t.fail(`a record is missing: ${records.map((x) => x.jobId).join(', ')}`);
    return;
  }
  const f = tflite.facts;
  t.equal(f?.machine, 'aarch64', 'uname -m: the 64-bit kernel');
  t.equal(f?.dpkgArch, 'armhf', 'dpkg: the armhf userland');
  t.equal(f?.longBit, 32, 'getconf LONG_BIT: 32');
  t.equal(f?.kernelBits, 64, "the facts carry the kernel's word size");
  t.match(f?.kernel ?? '', /-arm64$/, "Debian's arm64 kernel");
  t.equal(f?.cpuModel, 'Cortex-A72', 'the Pi 4 core');
  t.ok((f?.ramMb ?? 0) > 3600, `4 GB of RAM seen (${f?.ramMb} MB)`);

  t.equal(tflite.outcome, 'passed', tflite.reason);
  t.equal(tflite.values['interpreter'], 'pyarmnn', 'the model ran through the armhf Arm NN packages');
  t.equal(tflite.expectation?.verdict, 'met');

  const usable = Number(ladder.values['usable_mb']);
  t.equal(ladder.values['address_bits'], 32, 'a 32-bit Python climbed');
  t.ok(usable > 3500, `a 32-bit process used ${usable} MB: past the ~3 GB of a 32-bit kernel`);
  t.ok(usable <= 4096, 'and no more than its 4 GB address space');
  t.ok(['memory_error', 'oom_killed'].includes(ladder.outcome), `stopped by the address space or the RAM: ${ladder.outcome} (${ladder.reason})`);
  t.equal(ladder.expectation?.verdict, 'met', 'the 64-bit-kernel expectation of memory-ladder');
  t.match(ladder.expectation?.claim ?? '', /under the 64-bit kernel/, 'judged as its own setup');
});

t.test('a Pi 5 guest (armhf on the arm64 kernel, 16 GB declared) boots to SSH on the Pi 5 core', async (t) => {
  const profile = findProfile('pi5-16g-armhf-k64');
  t.equal(profile?.cpu, 'cortex-a76');
  // Cold and without a saved state: a warm state of a 16 GB guest is not worth its file.
  const q = new QemuTransport(qemuDevice('pi5-16g', 'pi5-16g-armhf-k64'), { warm: false });
  open.push(q);
  await q.connect();
  const r = await q.exec("uname -m; getconf LONG_BIT; dpkg --print-architecture; awk '/^CPU part/ {print $4; exit}' /proc/cpuinfo; awk '/^MemTotal/ {print $2}' /proc/meminfo");
  t.equal(r.code, 0, r.stderr);
  const [machine, bits, arch, part, memKb] = r.stdout.trim().split('\n');
  t.equal(machine, 'aarch64');
  t.equal(bits, '32');
  t.equal(arch, 'armhf');
  t.equal(part, '0xd0b', 'Cortex-A76, the Pi 5 core');
  t.ok(Number(memKb) > 15 * 1024 * 1024, `the guest sees 16 GB (${memKb} kB)`);
  // Declared, not touched: QEMU holds only what the guest has used.
  const pid = q.machine?.pid ?? 0;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  t.ok(rssKb < 3 * 1024 * 1024, `QEMU's resident memory is ${Math.round(rssKb / 1024)} MB, not 16 GB`);
  await q.close();
  t.same(recordedQemuPids(), [], 'the VM is gone after close');
});
