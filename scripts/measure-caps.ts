/**
 * Run one suite's main.py on this machine under memory cgroup caps and print
 * how each run ended, how long it took and its cgroup peak: the measurements
 * behind the caps in devices.yaml and the timeouts in suites/*.yaml.
 *
 *   tsx scripts/measure-caps.ts <suite> <capMb>... [--python PATH] [--deadline-s N] [--cold | --warm]
 *
 * The page cache decides how a low cap ends. --warm reads the venv's files
 * outside the cap first: they are charged to our own group, the cap binds on
 * anonymous memory, and a run that does not fit is OOM-killed in seconds.
 * --cold evicts them first: library pages are then charged to the cap and
 * reclaimed and re-read over and over, so a low cap may thrash until the
 * deadline. A real Pi's RAM holds both kinds.
 *
 * Needs root (it creates child memory cgroups) and, for the TensorFlow suites,
 * the interpreter that scripts/tf-venv.sh prints.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createMemoryCgroup } from '../harness/host/cgroup.ts';

export interface CappedRun {
  capMb: number;
  code: number | null;
  signal: string | null;
  oomKills: number;
  wallS: number;
  peakMb: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

// posix_fadvise(DONTNEED) on every file of the venv: only these pages leave the cache.
const EVICT = `
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        try:
            fd = os.open(os.path.join(root, f), os.O_RDONLY)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
`;

const WARM = `
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        try:
            with open(os.path.join(root, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass
        except OSError:
            pass
`;

function venvScript(python: string, script: string, what: string): void {
  // Only a venv: the prefix of a system python is all of /usr.
  const prefix = spawnSync(python, ['-c', 'import sys; print(sys.prefix if sys.prefix != sys.base_prefix else "")'], { encoding: 'utf8' }).stdout.trim();
  if (!prefix) return;
  const r = spawnSync(python, ['-c', script, prefix], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} ${prefix} failed: ${r.stderr}`);
}

/** Drop the venv of `python` from the page cache. */
export function evictVenv(python: string): void {
  venvScript(python, EVICT, 'evicting');
}

/**
 * Read the venv of `python` into the page cache from outside any cap, so
 * those pages are charged to our own group and a capped run is limited by
 * its anonymous memory: it is then OOM-killed within seconds instead of
 * thrashing on re-read library code until the deadline.
 */
export function warmVenv(python: string): void {
  venvScript(python, WARM, 'warming');
}

function peakMb(dir: string): number | null {
  for (const f of ['memory.max_usage_in_bytes', 'memory.peak']) {
    const p = join(dir, f);
    if (existsSync(p)) return Math.round(Number(readFileSync(p, 'utf8').trim()) / 2 ** 20);
  }
  return null;
}

/** Run `python script` inside a fresh memory cgroup of `capMb`, killed at the deadline. */
export async function runCapped(python: string, script: string, capMb: number, deadlineS: number, env: NodeJS.ProcessEnv = process.env): Promise<CappedRun> {
  script = resolve(script);
  const group = createMemoryCgroup(`measure-${process.pid}-${capMb}-${Date.now()}`, capMb);
  const t0 = process.hrtime.bigint();
  try {
    // The shell joins the group before exec, so every page python touches is charged to it.
    const child = spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'sh', group.path, python, script], {
      cwd: resolve(script, '..'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, deadlineS * 1000);
    const [code, signal] = await new Promise<[number | null, string | null]>((done) => child.on('close', (c, s) => done([c, s])));
    clearTimeout(timer);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    return { capMb, code, signal, oomKills: group.oomKills(), wallS, peakMb: peakMb(group.path), timedOut, stdout, stderr };
  } finally {
    group.remove();
  }
}

export function verdictOf(r: CappedRun): string {
  if (r.timedOut) return 'timeout';
  if (r.signal === 'SIGKILL' && r.oomKills > 0) return 'oom_killed';
  if (/MemoryError/.test(r.stderr)) return 'memory_error';
  if (r.code === 0) return 'passed';
  return r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
}

/** The `@@hil phase` and `@@hil value` lines of a payload's stdout; a later value wins. */
export function markers(stdout: string): { phases: string[]; values: Record<string, string | number | boolean | null> } {
  const phases = [...stdout.matchAll(/^@@hil phase (\S+)$/gm)].map((m) => m[1] ?? '');
  const values: Record<string, string | number | boolean | null> = {};
  for (const m of stdout.matchAll(/^@@hil value (\S+) (.*)$/gm)) values[m[1] ?? ''] = JSON.parse(m[2] ?? 'null') as string | number | boolean | null;
  return { phases, values };
}

function lastPhase(stdout: string): string {
  return markers(stdout).phases.pop() ?? '-';
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, fallback: string): string => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    const [v] = args.splice(i, 2).slice(1);
    return v ?? fallback;
  };
  const python = opt('--python', 'python3');
  const deadlineS = Number(opt('--deadline-s', '300'));
  const flag = (name: string): boolean => (args.includes(name) ? args.splice(args.indexOf(name), 1).length > 0 : false);
  const cold = flag('--cold');
  const warm = flag('--warm');
  const [suite, ...caps] = args;
  if (!suite || caps.length === 0) {
    console.error('usage: tsx scripts/measure-caps.ts <suite> <capMb>... [--python PATH] [--deadline-s N] [--cold | --warm]');
    process.exit(2);
  }
  const script = resolve('suites', suite, 'main.py');
  console.log(cold ? 'cold page cache (venv evicted before each run)' : warm ? 'warm page cache (venv read before each run)' : 'page cache as found');
  console.log('| suite | cap MB | ended | exit | oom kills | wall s | cgroup peak MB | last phase |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const cap of caps.map(Number)) {
    if (cold) evictVenv(python);
    if (warm) warmVenv(python);
    const r = await runCapped(python, script, cap, deadlineS);
    console.log(`| ${suite} | ${cap} | ${verdictOf(r)} | ${r.signal ?? r.code} | ${r.oomKills} | ${r.wallS.toFixed(1)} | ${r.peakMb ?? '?'} | ${lastPhase(r.stdout)} |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
