/**
 * Bookkeeping so that no QEMU process outlives its controller.
 *
 * Three layers, because each covers a death the others miss:
 * 1. every QEMU runs under `setpriv --pdeathsig SIGKILL` (see vm.ts): the kernel kills it
 *    when the controller dies, even by SIGKILL, where no handler of ours can run;
 * 2. a process 'exit' hook kills the VMs of this process synchronously;
 * 3. a pidfile per VM under the state folder: the next start ends VMs whose controller is
 *    gone (for the case the first two cannot cover, e.g. a reparented QEMU).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive } from '../../host/lock.ts';
import { vmStateDir } from './paths.ts';

export interface VmRecord {
  qemuPid: number;
  controllerPid: number;
  binary: string;
  name: string;
  startedAt: string;
}

export function vmsDir(): string {
  return path.join(vmStateDir(), 'vms');
}

export function logsDir(): string {
  return path.join(vmStateDir(), 'logs');
}

export function writeVmRecord(vmDir: string, rec: VmRecord): void {
  writeFileSync(path.join(vmDir, 'vm.json'), `${JSON.stringify(rec)}\n`);
}

function readVmRecord(vmDir: string): VmRecord | null {
  try {
    return JSON.parse(readFileSync(path.join(vmDir, 'vm.json'), 'utf8')) as VmRecord;
  } catch {
    return null;
  }
}

/** True when `pid` is still a QEMU process (not a recycled pid of something else). */
export function isQemu(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('qemu-system-');
  } catch {
    return false;
  }
}

function killQemu(pid: number): void {
  if (!isQemu(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

const live = new Map<string, number>();
let hooked = false;

/** Track a VM of this process; the exit hook kills whatever is still tracked. */
export function trackVm(vmDir: string, qemuPid: number): void {
  live.set(vmDir, qemuPid);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const [dir, pid] of live) {
        killQemu(pid);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

export function untrackVm(vmDir: string): void {
  live.delete(vmDir);
}

/**
 * End VMs whose controller is gone and remove their folders. VMs of live controllers
 * (other runs in parallel) are left alone. Returns the pids it killed.
 */
export function sweepStaleVms(): number[] {
  const killed: number[] = [];
  let names: string[];
  try {
    names = readdirSync(vmsDir());
  } catch {
    return killed;
  }
  for (const n of names) {
    const dir = path.join(vmsDir(), n);
    if (live.has(dir)) continue;
    const rec = readVmRecord(dir);
    if (!rec) {
      // A folder without a record is a launch that died before writing it; give a launch in
      // progress (of another controller) a minute before calling it stale.
      let age = Infinity;
      try {
        age = Date.now() - statSync(dir).mtimeMs;
      } catch {
        /* gone */
      }
      if (age > 60_000) rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (rec.controllerPid !== process.pid && isAlive(rec.controllerPid)) continue;
    if (isQemu(rec.qemuPid)) {
      killQemu(rec.qemuPid);
      killed.push(rec.qemuPid);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return killed;
}

/** Folders of the live VMs of device `name` that a live controller holds (for `hil console`). */
export function liveVmDirsOf(name: string): string[] {
  if (!existsSync(vmsDir())) return [];
  return readdirSync(vmsDir())
    .map((n) => path.join(vmsDir(), n))
    .filter((dir) => {
      const rec = readVmRecord(dir);
      return rec !== null && rec.name === name && isQemu(rec.qemuPid) && isAlive(rec.controllerPid);
    });
}

/** Live QEMU pids recorded under the state folder (for tests and `hil check`). */
export function recordedQemuPids(): number[] {
  if (!existsSync(vmsDir())) return [];
  return readdirSync(vmsDir())
    .map((n) => readVmRecord(path.join(vmsDir(), n)))
    .filter((r): r is VmRecord => r !== null && isQemu(r.qemuPid))
    .map((r) => r.qemuPid);
}

export function ensureStateDirs(): void {
  mkdirSync(vmsDir(), { recursive: true });
  mkdirSync(logsDir(), { recursive: true });
}

/** Keep the newest `keep` console logs. */
export function trimLogs(keep = 100): void {
  try {
    const files = readdirSync(logsDir())
      .map((f) => ({ f, m: statSync(path.join(logsDir(), f)).mtimeMs }))
      .sort((a, b) => b.m - a.m);
    for (const { f } of files.slice(keep)) rmSync(path.join(logsDir(), f), { force: true });
  } catch {
    /* nothing to trim */
  }
}
