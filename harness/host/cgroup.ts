/**
 * Memory cgroups on the controller's machine: the cap that makes this host
 * stand in for a Pi's RAM. cgroup v2 where the unified hierarchy has the
 * memory controller, v1 otherwise. We create groups under our own, so it
 * works inside a container or a CI job's nested group too.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MemoryCgroup {
  readonly path: string;
  readonly version: 1 | 2;
  /** Move a process (and so its future children) into the group. */
  adopt(pid: number): void;
  /** Kernel OOM kills inside the group so far. */
  oomKills(): number;
  /** Remove the group; processes still inside are killed first. */
  remove(): void;
}

const ROOT = '/sys/fs/cgroup';

/** Where our own memory cgroup is, or why there is none. */
export function memoryCgroupBase(): { version: 1 | 2; dir: string } {
  const self = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const unified = self.find((l) => l.startsWith('0::'));
  if (existsSync(join(ROOT, 'cgroup.controllers')) && readFileSync(join(ROOT, 'cgroup.controllers'), 'utf8').includes('memory') && unified) {
    return { version: 2, dir: join(ROOT, unified.slice(3)) };
  }
  const v1 = self.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (v1 && existsSync(join(ROOT, 'memory'))) return { version: 1, dir: join(ROOT, 'memory', v1.split(':')[2] ?? '') };
  throw new Error('no memory cgroup controller on this machine: mount cgroup v2 with the memory controller, or the v1 memory hierarchy at /sys/fs/cgroup/memory');
}

export function createMemoryCgroup(name: string, capMb: number): MemoryCgroup {
  const base = memoryCgroupBase();
  // v2 forbids processes in an inner node that delegates controllers, so group ours under a leaf-free parent.
  const parent = base.version === 2 ? join(base.dir, 'pi-hil') : base.dir;
  if (base.version === 2) {
    mkdirSync(parent, { recursive: true });
    writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory');
  }
  const path = join(parent, name);
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create memory cgroup ${path} (needs root): ${(err as Error).message}`);
  }
  const bytes = String(capMb * 1024 * 1024);
  if (base.version === 2) {
    writeFileSync(join(path, 'memory.max'), bytes);
    // No swap on a Pi-sized cap: the kernel must OOM-kill rather than page out.
    if (existsSync(join(path, 'memory.swap.max'))) writeFileSync(join(path, 'memory.swap.max'), '0');
  } else {
    writeFileSync(join(path, 'memory.limit_in_bytes'), bytes);
    if (existsSync(join(path, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(path, 'memory.memsw.limit_in_bytes'), bytes);
  }
  const procs = join(path, 'cgroup.procs');
  return {
    path,
    version: base.version,
    adopt: (pid) => writeFileSync(procs, String(pid)),
    oomKills: () => {
      const file = base.version === 2 ? 'memory.events' : 'memory.oom_control';
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(path, file), 'utf8'));
      return m ? Number(m[1]) : 0;
    },
    remove: () => removeCgroup(path),
  };
}

/** Remove a cgroup folder; processes still inside are killed first. */
export function removeCgroup(path: string): void {
  const procs = join(path, 'cgroup.procs');
  for (let attempt = 0; attempt < 50; attempt++) {
    if (!existsSync(path)) return;
    for (const pid of readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      rmdirSync(path);
      return;
    } catch {
      // Busy until the killed processes are reaped.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}
