/**
 * Shared fixtures for the agent tests: planted payloads in a temp folder, a
 * temp device workdir, and a look at /proc for anything a job left behind.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentEvent } from '../harness/agent/protocol.ts';
import type { AgentJob, AgentRun } from '../harness/agent/client.ts';
import { runOnDevice } from '../harness/agent/client.ts';
import { decideOutcome, type OutcomeDecision } from '../harness/run/outcome.ts';
import type { Transport } from '../harness/transport/transport.ts';
import { descendantsOf, processes } from '../scripts/lib/proc.ts';

/** The device interpreter for local runs; overridable for other machines. */
export const PYTHON = process.env.HIL_TEST_PYTHON ?? '/usr/bin/python3';

export const MONITOR = fileURLToPath(new URL('../harness/agent/monitor.py', import.meta.url));

/** Run Python `code` (with -S, as the agent runs) with the agent loaded as module `m`: its exit status and output. */
export function withAgentModule(code: string): { status: number | null; stdout: string; stderr: string } {
  const load = `import importlib.util, sys\nspec = importlib.util.spec_from_file_location("m", ${JSON.stringify(MONITOR)})\nm = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\n`;
  return spawnSync(PYTHON, ['-S', '-c', load + code], { encoding: 'utf8', timeout: 60_000 });
}

let counter = 0;

export interface Planted {
  payloadDir: string;
  workdirRoot: string;
  dispose(): void;
}

/** A payload folder holding main.py (and any other files), plus a device workdir root. */
export function plant(files: Record<string, string>): Planted {
  const payloadDir = mkdtempSync(join(tmpdir(), 'hil-payload-'));
  const workdirRoot = mkdtempSync(join(tmpdir(), 'hil-device-'));
  // Like /tmp: an unprivileged device user (the sshd rack's) may create its run folders here.
  chmodSync(workdirRoot, 0o1777);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(payloadDir, name), text);
  return {
    payloadDir,
    workdirRoot,
    dispose() {
      rmSync(payloadDir, { recursive: true, force: true });
      rmSync(workdirRoot, { recursive: true, force: true });
    },
  };
}

export interface RunOpts {
  deadlineMs?: number;
  intervalMs?: number;
  probe?: AgentJob['probe'];
  facts?: boolean;
  standIn?: string;
  keep?: boolean;
  signal?: AbortSignal;
  python?: string;
  onEvent?: (e: AgentEvent) => void;
  /** The device's workdir root (default: a fresh one per run), e.g. one that two runs share. */
  workdirRoot?: string;
  /** The run the job belongs to (default: one per test process). */
  runId?: string;
}

/** An agent run with the outcome the controller decides for it. */
export type DecidedRun = AgentRun & OutcomeDecision;

/**
 * Run `main.py` (the given source) on the transport, and decide its outcome as
 * the controller does (an aborted signal counts as an interrupt).
 */
export async function runPlanted(transport: Transport, main: string, opts: RunOpts = {}): Promise<DecidedRun> {
  const p = plant({ 'main.py': main });
  const signal = opts.signal ?? new AbortController().signal;
  const deadlineMs = opts.deadlineMs ?? 20_000;
  try {
    const run = await runOnDevice(
      transport,
      {
        runId: opts.runId ?? `run-${process.pid}`,
        jobId: `job-${++counter}`,
        payloadDir: p.payloadDir,
        entry: ['main.py'],
        ...(opts.probe ? { probe: opts.probe } : {}),
        python: opts.python ?? PYTHON,
        workdirRoot: opts.workdirRoot ?? p.workdirRoot,
        deadlineMs,
        intervalMs: opts.intervalMs ?? 50,
        keep: opts.keep ?? false,
        facts: opts.facts ?? false,
        ...(opts.standIn ? { standIn: opts.standIn } : {}),
      },
      signal,
      opts.onEvent,
    );
    // As executeJob tells them apart: a timeout is the deadline backstop, anything else an interrupt.
    const timedOut = signal.reason instanceof Error && signal.reason.name === 'TimeoutError';
    const abort = signal.aborted ? { cause: timedOut ? ('deadline' as const) : ('interrupt' as const), detail: String(signal.reason) } : null;
    return { ...run, ...decideOutcome({ ending: run.ending, abort, deadlineMs, reattached: run.reattached }) };
  } finally {
    p.dispose();
  }
}

/** Pids whose process group is `pgid` or whose command line mentions `needle`. */
export function survivors(pgid: number | null, needle: string): number[] {
  return processes()
    // A zombie has finished; this test process mentions the needle itself.
    .filter((p) => p.pid !== process.pid && p.state !== 'Z')
    .filter((p) => (pgid !== null && p.pgid === pgid) || p.cmdline.includes(needle))
    .map((p) => p.pid);
}

/** Python that allocates and touches exactly `mb` MiB of anonymous memory, then holds it. */
export function allocSource(mb: number, holdS = 0.3): string {
  return [
    'import time',
    `b = bytearray(b"\\x01") * (${mb} * 1024 * 1024)  # written, so every page is resident`,
    `time.sleep(${holdS})`,
  ].join('\n');
}

/**
 * Pids of this test process's own `monitor.py start` foreground processes,
 * never the detached `worker` (which shares their argv). Killing them is what
 * a dropped SSH session does to the agent; only this process's descendants,
 * so agents of test files running in parallel are never hit.
 */
export function agentForegrounds(worker: number): number[] {
  const all = processes();
  const mine = new Set(descendantsOf(process.pid, all));
  return all
    .filter((p) => mine.has(p.pid) && p.pid !== worker && p.argv.some((a) => a.endsWith('monitor.py')) && p.argv.includes('start'))
    .map((p) => p.pid);
}
