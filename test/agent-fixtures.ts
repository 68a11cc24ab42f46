/**
 * Shared fixtures for the agent tests: planted payloads in a temp folder, a
 * temp device workdir, and a look at /proc for anything a job left behind.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentEvent } from '../harness/agent/protocol.ts';
import type { AgentJob, AgentRun } from '../harness/agent/client.ts';
import { runOnDevice } from '../harness/agent/client.ts';
import { decideOutcome, type OutcomeDecision } from '../harness/run/outcome.ts';
import type { Transport } from '../harness/transport/transport.ts';
import { descendantsOf } from '../scripts/lib/local-sshd.ts';

/** The device interpreter for local runs; overridable for other machines. */
export const PYTHON = process.env.HIL_TEST_PYTHON ?? '/usr/bin/python3';

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
        runId: `run-${process.pid}`,
        jobId: `job-${++counter}`,
        payloadDir: p.payloadDir,
        entry: ['main.py'],
        ...(opts.probe ? { probe: opts.probe } : {}),
        python: opts.python ?? PYTHON,
        workdirRoot: p.workdirRoot,
        deadlineMs,
        intervalMs: opts.intervalMs ?? 50,
        keep: opts.keep ?? false,
        facts: opts.facts ?? false,
        ...(opts.standIn ? { standIn: opts.standIn } : {}),
      },
      signal,
      opts.onEvent,
    );
    const abort = signal.aborted ? { cause: 'interrupt' as const, detail: String(signal.reason) } : null;
    return { ...run, ...decideOutcome({ ending: run.ending, abort, deadlineMs, reattached: run.reattached }) };
  } finally {
    p.dispose();
  }
}

/** Pids whose process group is `pgid` or whose command line mentions `needle`. */
export function survivors(pgid: number | null, needle: string): number[] {
  const left: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z') continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if ((pgid !== null && f[2] === String(pgid)) || cmd.includes(needle)) left.push(Number(name));
    } catch {
      // gone while we looked
    }
  }
  return left;
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
  const out: number[] = [];
  for (const pid of descendantsOf(process.pid)) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (pid !== worker && argv.some((a) => a.endsWith('monitor.py')) && argv.includes('start')) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}
