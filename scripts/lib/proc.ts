/**
 * The processes of this machine, read from /proc: the one scan the tests and scripts
 * use to find what a job, a device or a VM left running, and to follow a process tree.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** Process group: a detached job and everything it started share one. */
  pgid: number;
  /** One letter from /proc/<pid>/stat: R, S, D, Z (zombie), … */
  state: string;
  /** The command line as the kernel keeps it: arguments separated by NUL bytes. */
  cmdline: string;
  argv: string[];
}

/**
 * Every process, in one pass. A process that exits while it is being read is left
 * out: it is gone, which is what callers looking for leftovers want to know.
 */
export function processes(): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name (field 2) may itself hold spaces and parentheses: parse after the last ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      out.push({ pid, ppid: Number(f[1]), pgid: Number(f[2]), state: f[0] ?? '', cmdline, argv: cmdline.split('\0').filter(Boolean) });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/** The command line of one process (arguments separated by NUL bytes), or null once it is gone. */
export function commandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
}

/** Every process below `root` in the process tree, children before their own children. */
export function descendantsOf(root: number, all: ProcessEntry[] = processes()): number[] {
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}

/**
 * Pids of other processes whose command line mentions a path inside `dir` (`sshd-1/`
 * is not `sshd-10/`). The caller is left out: it may well have that path in its own.
 */
export function processesUnder(dir: string): number[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return processes()
    .filter((p) => p.pid !== process.pid && p.cmdline.includes(prefix))
    .map((p) => p.pid);
}

/**
 * Pids of processes whose working directory is inside `dir`: a payload started in a
 * job's workdir names no path in its command line, but it runs there.
 */
export function workingIn(dir: string): number[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const out: number[] = [];
  for (const p of processes()) {
    try {
      if (`${readlinkSync(`/proc/${p.pid}/cwd`)}/`.startsWith(prefix)) out.push(p.pid);
    } catch {
      /* exited, or not ours to read */
    }
  }
  return out;
}
