/** Run the real `hil` command line as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResultRecord } from '../../harness/results/record.ts';
import type { RunMeta } from '../../harness/results/run-meta.ts';

export const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HIL = join(PROJECT, 'bin', 'hil.js');
export const TEST_SUITES = join(PROJECT, 'test', 'fixtures', 'suites');

export interface HilProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const ownDirs = new Map<string, string>();

/**
 * One folder per test file for what `hil` keeps between runs (known_hosts,
 * quarantine standings, leases of local devices): a test file's devices never
 * meet another file's, nor the project's own state, however often the suite
 * runs. A test that sets PI_HIL_STATE or PI_HIL_LEASES itself keeps its own.
 */
function ownDir(what: string): string {
  let dir = ownDirs.get(what);
  if (!dir) ownDirs.set(what, (dir = mkdtempSync(join(tmpdir(), `pi-hil-test-${what}-`))));
  return dir;
}

/** `stdin: 'pipe'` to type into it (as into `hil console`). */
export function startHil(args: string[], env: NodeJS.ProcessEnv = {}, stdin: 'ignore' | 'pipe' = 'ignore'): HilProcess {
  const isolated = { PI_HIL_STATE: process.env['PI_HIL_STATE'] ?? ownDir('state'), PI_HIL_LEASES: process.env['PI_HIL_LEASES'] ?? ownDir('leases') };
  const child = spawn(process.execPath, [...tsNodeArgs(), HIL, ...args], { cwd: PROJECT, env: { ...process.env, ...isolated, ...tsNodeEnv(), ...env }, stdio: [stdin, 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, done };
}

export async function hil(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startHil(args, env);
  const { code } = await p.done;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** The one run folder under `out` (tests give each run its own `out`). */
export function onlyRunDir(out: string): string {
  const runs = existsSync(out) ? readdirSync(out) : [];
  if (runs.length !== 1) throw new Error(`expected one run in ${out}, found ${runs.length}: ${runs.join(', ')}`);
  return join(out, runs[0]!);
}

export function readRecords(runDir: string): ResultRecord[] {
  const file = join(runDir, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ResultRecord);
}

export function readMeta(runDir: string): RunMeta {
  return JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as RunMeta;
}

/** Tests that drive `hil` wait on its output with the shared wait, offered here beside startHil. */
export { waitFor } from '../../scripts/lib/wait.ts';

/**
 * Node arguments that load TypeScript in a child process the way this test
 * process does: tap's own loader under `tap` (so the child's coverage maps
 * onto the same sources), else tsx.
 */
export function tsNodeArgs(): string[] {
  const tapLoader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps');
  return tapLoader.length > 0 ? tapLoader : ['--import', 'tsx'];
}

/** Environment for a child started with tsNodeArgs(): tells bin/hil.js a TypeScript loader is already in place. */
export function tsNodeEnv(): NodeJS.ProcessEnv {
  return process.execArgv.some((a) => a.includes('@tapjs/typescript')) ? { PI_HIL_TS_LOADER: 'external' } : {};
}
