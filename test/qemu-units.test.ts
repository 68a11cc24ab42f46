/**
 * The pure parts of the emulated Pis: profiles, mirrors, recipe keys, the launch
 * command line, the console buffer and the build lock.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { VmConfig } from '../harness/transport/qemu/config.ts';
import { ConsoleLog, PANIC_RE } from '../harness/transport/qemu/console-log.ts';
import { hashTree, recipeKey, type Recipe } from '../harness/image/image.ts';
import { acquireLock, isAlive } from '../harness/host/lock.ts';
import { parseSources, pickMirrors } from '../harness/image/mirror.ts';
import { findProfile, guestCpus, PROFILES } from '../harness/pi/profiles.ts';
import { qemuArgs } from '../harness/transport/qemu/vm.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-qemu-units-'));

t.test('profiles cover the Pi models of the issue', async (t) => {
  const want = ['zero2w-512-armhf', 'zero2w-512-arm64', 'pi3b-1g-armhf', 'pi3b-1g-arm64', 'pi4b-2g-armhf', 'pi4b-2g-arm64', 'pi4b-4g-armhf', 'pi4b-8g-arm64'];
  for (const n of want) t.ok(findProfile(n), n);
  t.equal(findProfile('pi4b-4g-armhf')?.kernel, 'armmp-lpae', 'more than 3 GB on 32-bit needs LPAE');
  t.equal(findProfile('pi4b-2g-armhf')?.kernel, 'armmp');
  t.equal(findProfile('pi4b-4g-armhf')?.extraAppend, 'movablecore=1280M', 'page tables kept below the 4 GiB line');
  t.equal(findProfile('pi4b-2g-armhf')?.extraAppend, null);
  for (const p of PROFILES) {
    t.equal(p.machine, 'virt', `${p.name} uses -M virt`);
    // The kernel decides the binary: an armhf userland under the arm64 kernel needs qemu-system-aarch64.
    t.equal(p.binary, p.kernelBits === 64 ? 'qemu-system-aarch64' : 'qemu-system-arm', `${p.name} binary`);
    t.equal(p.kernelBits, p.kernel === 'arm64' ? 64 : 32, `${p.name} kernel word size`);
    t.equal(p.image, p.arch === 'armhf' && p.kernelBits === 64 ? 'armhf-k64' : p.arch, `${p.name} image`);
    t.ok(p.note.length > 0 && !p.note.includes('\n'), `${p.name} has a one-line note`);
  }
  // 32-bit Pi OS on a Pi 4 or 5 today: armhf userland under the arm64 kernel, on the Pi's own core.
  for (const [name, cpu, ram] of [
    ['pi4b-4g-armhf-k64', 'cortex-a72', 4096],
    ['pi5-4g-armhf-k64', 'cortex-a76', 4096],
    ['pi5-8g-armhf-k64', 'cortex-a76', 8192],
    ['pi5-16g-armhf-k64', 'cortex-a76', 16384],
  ] as const) {
    t.match(findProfile(name), { arch: 'armhf', kernel: 'arm64', kernelBits: 64, image: 'armhf-k64', cpu, ramMb: ram, extraAppend: null }, name);
  }
  for (const [name, ram] of [['pi5-4g-arm64', 4096], ['pi5-8g-arm64', 8192], ['pi5-16g-arm64', 16384]] as const) {
    t.match(findProfile(name), { arch: 'arm64', kernel: 'arm64', cpu: 'cortex-a76', ramMb: ram }, name);
  }
  t.equal(guestCpus({ piCores: 4 }, 2), 2, 'never more vCPUs than host cores');
  t.equal(guestCpus({ piCores: 4 }, 16), 4, "never more than the Pi's cores");
  t.equal(findProfile('nope'), undefined);
});

t.test('the host mirror is read from both apt source formats', async (t) => {
  const deb822 = 'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n';
  t.same(pickMirrors(parseSources(deb822)), { main: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security' });
  const oneLine = 'deb [arch=amd64] http://ftp.de.debian.org/debian/ bookworm main\n# deb http://x/y z\n';
  t.equal(pickMirrors(parseSources(oneLine)).main, 'http://ftp.de.debian.org/debian');
  t.equal(pickMirrors([]).main, 'http://deb.debian.org/debian', 'falls back to deb.debian.org');
});

t.test('the recipe key changes with what goes into the image', async (t) => {
  const base: Recipe = {
    arch: 'armhf',
    suite: 'bookworm',
    packages: ['python3'],
    kernels: ['armmp'],
    guestUser: 'pi',
    initrd: 'tiny-initramfs',
    scriptSha256: 'a',
    harnessPublicKey: 'ssh-ed25519 AAAA',
    wheelhouseSha256: null,
  };
  const k = recipeKey(base);
  t.match(k, /^armhf-[0-9a-f]{16}$/);
  t.equal(recipeKey({ ...base }), k, 'same recipe, same key');
  t.not(recipeKey({ ...base, scriptSha256: 'b' }), k, 'the build script');
  t.not(recipeKey({ ...base, packages: ['python3', 'x'] }), k, 'the package list');
  t.not(recipeKey({ ...base, wheelhouseSha256: 'w' }), k, 'the wheelhouse');
  // The armhf-k64 layer: named for itself, and keyed by both images it is made from and its script.
  const layer: Recipe = { ...base, kernels: ['arm64'], layer: { name: 'armhf-k64', userland: k, kernelImage: 'arm64-0', scriptSha256: 'l' } };
  const lk = recipeKey(layer);
  t.match(lk, /^armhf-k64-[0-9a-f]{16}$/);
  t.not(recipeKey({ ...layer, layer: { name: 'armhf-k64', userland: 'armhf-1', kernelImage: 'arm64-0', scriptSha256: 'l' } }), lk, 'a new armhf image');
  t.not(recipeKey({ ...layer, layer: { name: 'armhf-k64', userland: k, kernelImage: 'arm64-1', scriptSha256: 'l' } }), lk, 'a new arm64 image');
  t.not(recipeKey({ ...layer, layer: { name: 'armhf-k64', userland: k, kernelImage: 'arm64-0', scriptSha256: 'm' } }), lk, 'the layer script');
  t.equal(recipeKey({ ...base, layer: undefined }), k, 'a base recipe without a layer keeps its key');
  t.not(recipeKey({ ...base, initrd: 'initramfs-tools' }), k, 'the initrd generator');
  const wh = path.join(tmp, 'wh');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(wh);
  writeFileSync(path.join(wh, 'a-1.0-py3-none-any.whl'), 'one');
  const h1 = await hashTree(wh);
  writeFileSync(path.join(wh, 'a-1.0-py3-none-any.whl'), 'two');
  t.not(await hashTree(wh), h1, 'the wheelhouse hash follows the content');
});

t.test('one command line for cold boot and restore; only the restore adds -incoming', async (t) => {
  const cfg: VmConfig = {
    name: 'x',
    arch: 'armhf',
    binary: 'qemu-system-arm',
    machine: 'virt',
    cpu: 'cortex-a7',
    ramMb: 512,
    cpus: 2,
    disk: '/img/disk.qcow2',
    diskFormat: 'qcow2',
    kernel: '/img/vmlinuz',
    initrd: '/img/initrd',
    dtb: null,
    append: 'console=ttyAMA0',
    user: 'pi',
    privateKeyFile: '/k',
    hostKeyFingerprint: 'SHA256:x',
    baseId: 'b',
    profile: 'p',
  };
  const cold = qemuArgs(cfg, '/o.qcow2', 2222, '/q.sock');
  const warm = qemuArgs(cfg, '/o.qcow2', 2222, '/q.sock', "/state dir/it's");
  t.same(warm.slice(0, cold.length), cold);
  t.same(warm.slice(cold.length), ['-incoming', `exec:cat '/state dir/it'\\''s'`], 'the state path is shell-quoted');
  t.ok(cold.includes('hostfwd=tcp:127.0.0.1:2222-:22') || cold.some((a) => a.includes('hostfwd=tcp:127.0.0.1:2222-:22')), 'SSH forwarded on loopback only');
  t.equal(cold[cold.indexOf('-m') + 1], '512');
});

t.test('the console buffer keeps a file, marks and waits', async (t) => {
  const log = new ConsoleLog(path.join(tmp, 'c.log'));
  log.append('boot\n');
  const mark = log.mark();
  const waited = log.waitFor(/Killed process (\d+)/, mark);
  log.append('[  1.0] Out of memory: Killed process 42 (python3)\n');
  t.equal((await waited)[1], '42');
  t.equal(log.since(mark).startsWith('[  1.0]'), true);
  t.match(log.tail(10), /python3\)\n$/);
  const ac = new AbortController();
  const never = log.waitFor(/never/, 0, ac.signal);
  ac.abort(new Error('stop'));
  await t.rejects(never, /stop/);
  log.close();
  const { readFileSync } = await import('node:fs');
  t.match(readFileSync(path.join(tmp, 'c.log'), 'utf8'), /Killed process 42/);
  t.match('Kernel panic - not syncing: Attempted to kill init!', PANIC_RE);
});

t.test('the build lock is exclusive and taken over from a dead owner', async (t) => {
  const file = path.join(tmp, 'x.lock');
  const release = await acquireLock(file);
  let second = false;
  const p = acquireLock(file).then((r) => {
    second = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(second, 'a second taker waits');
  await release();
  await (await p)();
  writeFileSync(file, String(2 ** 22 + 11));
  t.notOk(isAlive(2 ** 22 + 11));
  await (await acquireLock(file))();
  t.pass('a stale lock is taken over');
});
