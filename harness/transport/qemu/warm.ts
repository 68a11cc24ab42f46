/**
 * Warm start: one saved state per VM configuration, made once and restored by any
 * number of VMs at the same time.
 *
 * The state is taken from a template VM that booted cold on its own overlay (A) over the
 * base image. Once SSH works, the template is paused and migrated to a file, and A is
 * never written again. Every warm VM then gets a fresh overlay (B) over A and restores
 * the file with `-incoming`: the guest's RAM and its disk agree, and the VMs share
 * nothing writable. Keyed like the image, plus everything migration must match
 * (QEMU version, machine, cpu, RAM, vCPUs, kernel, command line).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { VmConfig } from './config.ts';
import { guestExecRetry } from './guest-ssh.ts';
import { acquireLock } from '../../host/lock.ts';
import { warmDir } from '../../host/paths.ts';
import { qemuArgs, QemuVm } from './vm.ts';

const run = promisify(execFile);

export interface WarmState {
  dir: string;
  /** Overlay A: the disk as it was when the state was saved. */
  disk: string;
  state: string;
  key: string;
}

const versions = new Map<string, string>();
async function qemuVersion(binary: string): Promise<string> {
  let v = versions.get(binary);
  if (!v) {
    v = (await run(binary, ['--version'])).stdout.split('\n')[0] ?? '';
    versions.set(binary, v);
  }
  return v;
}

export async function warmKey(cfg: VmConfig): Promise<string> {
  const shape = {
    qemu: await qemuVersion(cfg.binary),
    base: cfg.baseId,
    machine: cfg.machine,
    cpu: cfg.cpu,
    ramMb: cfg.ramMb,
    cpus: cfg.cpus,
    kernel: cfg.kernel,
    initrd: cfg.initrd,
    dtb: cfg.dtb,
    user: cfg.user,
    // The device layout, with the per-VM parts (paths, port) blanked out.
    args: qemuArgs(cfg, 'DISK', 0, 'QMP').join(' '),
  };
  const hash = createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 12);
  return `${cfg.baseId}_${cfg.profile}-${cfg.ramMb}m_${hash}`;
}

export async function findWarmState(cfg: VmConfig): Promise<WarmState | null> {
  const key = await warmKey(cfg);
  const dir = path.join(warmDir(), key);
  const ws: WarmState = { dir, disk: path.join(dir, 'disk.qcow2'), state: path.join(dir, 'state'), key };
  return existsSync(path.join(dir, 'meta.json')) && existsSync(ws.state) ? ws : null;
}

export interface PrepareOptions {
  bootTimeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (msg: string) => void;
}

/** Find the warm state for `cfg`, making it (one cold boot) when there is none yet. */
export async function ensureWarmState(cfg: VmConfig, opts: PrepareOptions): Promise<WarmState> {
  const found = await findWarmState(cfg);
  if (found) return found;
  if (!cfg.hostKeyFingerprint) throw new Error('warm start needs the guest host key (an image built by hil)');
  const key = await warmKey(cfg);
  const dir = path.join(warmDir(), key);
  await mkdir(warmDir(), { recursive: true });
  const unlock = await acquireLock(`${dir}.lock`, opts.signal);
  try {
    const again = await findWarmState(cfg);
    if (again) return again;
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const disk = path.join(tmp, 'disk.qcow2');
    const started = Date.now();
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', cfg.diskFormat, '-b', cfg.disk, disk]);
    opts.onProgress?.(`${cfg.name}: cold boot to make the warm state ${key}`);
    const vm = await QemuVm.launch(cfg, { disk, label: `warm-${cfg.name}` });
    try {
      await vm.waitReady({ timeoutMs: opts.bootTimeoutMs, signal: opts.signal });
      // A full login once, so sshd, PAM and the user's session are paged in before saving.
      await guestExecRetry(vm.login(), 'sync', started + opts.bootTimeoutMs, opts.signal);
      // Let the session's processes end: the saved guest should hold no half-closed connection.
      await new Promise((r) => setTimeout(r, 1500));
      await vm.saveState(path.join(tmp, 'state'));
    } finally {
      await vm.stop();
    }
    await writeFile(
      path.join(tmp, 'meta.json'),
      `${JSON.stringify({ key, cfg: { ...cfg, privateKeyFile: undefined }, madeAt: new Date().toISOString(), coldBootMs: vm.readyMs, prepareMs: Date.now() - started }, null, 2)}\n`,
    );
    await rm(dir, { recursive: true, force: true });
    // Overlay A names its backing file by absolute path, which the rename does not change.
    await rename(tmp, dir);
    opts.onProgress?.(`${cfg.name}: warm state ready after ${Math.round((Date.now() - started) / 1000)} s`);
    return { dir, disk: path.join(dir, 'disk.qcow2'), state: path.join(dir, 'state'), key };
  } finally {
    await unlock();
  }
}

/** Metadata of a warm state, for listings. */
export async function readWarmMeta(dir: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
