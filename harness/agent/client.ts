/**
 * The controller's side of the agent: deploy monitor.py and a payload into a
 * per-run workdir, start the agent, follow its events, survive a dropped
 * connection by re-attaching from the last byte offset, kill the job on
 * abort, and hand back what happened: the agent's end event (or where the
 * harness lost the job) and what it measured. Deciding the outcome is not this
 * file's job (harness/run/outcome.ts does it).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type {
  DeviceFacts,
  Evidence,
  Logs,
  MemoryMetrics,
  MemorySample,
  Outcome,
  PhaseRecord,
  ResultRecord,
  UnavailableSource,
} from '../results/record.ts';
import { ConnectionRefusedError, type ExecResult, type Transport } from '../transport/transport.ts';
import { shellJoin } from '../transport/quote.ts';
import type { AgentEvent, EndEvent, Rusage, SampleEvent, Value } from './protocol.ts';
import { LineSplitter, parseEvent, ProtocolError } from './protocol.ts';

const AGENT_FILES = {
  monitor: fileURLToPath(new URL('./monitor.py', import.meta.url)),
  phase: fileURLToPath(new URL('./hil_phase.py', import.meta.url)),
};

export interface AgentJob {
  runId: string;
  jobId: string;
  /** Local folder whose files are uploaded, e.g. suites/<name>/. */
  payloadDir: string;
  /** The payload's arguments after the interpreter, e.g. ['main.py']. */
  entry: string[];
  /** Requirement probe, run with the same interpreter before the payload. */
  probe?: { code: string } | { file: string };
  /** Interpreter on the device; runs the agent and the payload. */
  python: string;
  /** device.workdir: the job runs in <workdirRoot>/<runId>/<jobId>. */
  workdirRoot: string;
  deadlineMs: number;
  intervalMs: number;
  /** Leave the workdir on the device. */
  keep: boolean;
  /** Probe device facts in this run (default true; they cost ~0.3-1 s). */
  facts?: boolean;
  /** Set for a host that only stands in for a Pi: facts then say emulated: true with this text. */
  standIn?: string;
  /** How long to keep trying to re-attach after the job's deadline (default 60 s). */
  reconnectGraceMs?: number;
  /** Timeline points kept in the record; the peak is always kept (default 2000). */
  maxSamples?: number;
  /** Extra environment for the agent and so the payload, e.g. HIL_PARAM_SAMPLES (names: A-Z, 0-9, _). */
  env?: Record<string, string>;
}

/** Where the harness lost the job, when no end event was collected. */
export type HarnessStage =
  /** Uploading the agent or the payload failed (or the device did not answer for it). */
  | 'deploy'
  /** The agent answered but could not start the job. */
  | 'agent_start'
  /** The agent's worker died without an end event. */
  | 'agent_died'
  /** The agent spoke something the controller does not understand. */
  | 'protocol'
  /** The stream was lost and re-attaching failed until the give-up time. */
  | 'lost'
  /** The job was aborted and its end could not be collected. */
  | 'uncollected'
  /** The device never answered (reported by the caller, which connects before shipping). */
  | 'connect';

/** How the job ended as far as the controller knows: the agent's own end event, or where the harness lost it. */
export type AgentEnding =
  | { kind: 'agent_end'; end: EndEvent }
  | { kind: 'harness_failure'; stage: HarnessStage; detail: string };

/** What the agent measured and reported: facts and figures, no decision. */
export interface AgentRun extends Pick<ResultRecord, 'unavailable' | 'exit' | 'memory' | 'phases' | 'facts' | 'values' | 'probe' | 'throttle'> {
  ending: AgentEnding;
  logs: Pick<Logs, 'stdoutTail' | 'stderrTail' | 'kernelOomLines' | 'output' | 'truncated'>;
  timing: { deployMs: number | null; payloadMs: number | null };
  workdir: string;
  /** The payload's pid (= its process group) on the device. */
  pid: number | null;
  rusage: Rusage | null;
  /** How often the controller re-attached after losing the stream. */
  reattached: number;
  /** The controller aborted the job (signal). */
  aborted: boolean;
  /** Pids of the job the agent found alive after its cleanup (should be empty). */
  left: number[];
  /** Sample events received vs written by the agent: equal unless the stream lost or doubled some. */
  sampleEvents: { received: number; written: number | null };
}

type Sink = (e: AgentEvent) => void;

class RunState {
  facts: DeviceFacts | null = null;
  samples: SampleEvent[] = [];
  end: EndEvent | null = null;
  seen = 0;
  intervalMs: number;
  deadlineMs: number | null = null;
  offset = 0;
  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }
  take(e: AgentEvent): void {
    this.seen++;
    if (e.type === 'hello') {
      this.intervalMs = e.intervalMs;
      this.deadlineMs = e.deadlineMs;
    } else if (e.type === 'facts') this.facts = e.facts;
    else if (e.type === 'sample') this.samples.push(e);
    else if (e.type === 'end') this.end = e;
  }
}

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(join(dir, rel), { withFileTypes: true })) {
    if (ent.name === '__pycache__' || ent.name === '.hil') continue;
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...(await listFiles(dir, r)));
    else if (ent.isFile()) out.push(r);
  }
  return out;
}

/** Upload the agent and the payload. Returns the probe's path on the device, if any. */
async function deploy(t: Transport, job: AgentJob, wd: string): Promise<string | null> {
  // One mkdir: each exec can cost seconds where the login shell is slow to start.
  // monitor.py makes its own .hil state folder.
  await t.mkdir(wd, 0o700);
  await t.writeFile(monitorPath(wd), await readFile(AGENT_FILES.monitor), 0o600);
  await t.writeFile(posix.join(wd, 'hil_phase.py'), await readFile(AGENT_FILES.phase), 0o600);
  const made = new Set<string>();
  for (const rel of await listFiles(job.payloadDir)) {
    const dir = posix.dirname(rel);
    if (dir !== '.' && !made.has(dir)) {
      await t.mkdir(posix.join(wd, dir), 0o700);
      made.add(dir);
    }
    const local = join(job.payloadDir, rel);
    const mode = (await stat(local)).mode & 0o100 ? 0o700 : 0o600;
    await t.writeFile(posix.join(wd, rel), await readFile(local), mode);
  }
  if (!job.probe) return null;
  const probePath = posix.join(wd, '.hil-probe.py');
  const code = 'code' in job.probe ? job.probe.code : await readFile(job.probe.file, 'utf8');
  await t.writeFile(probePath, code, 0o600);
  return probePath;
}

/** Run one exec and feed its stdout, line by line, into the state. */
async function stream(
  t: Transport,
  command: string,
  st: RunState,
  sink: Sink | undefined,
  signal: AbortSignal | undefined,
): Promise<ExecResult> {
  const split = new LineSplitter();
  const base = st.offset;
  let bad: ProtocolError | null = null;
  const res = await t.exec(command, {
    ...(signal ? { signal } : {}),
    onStdout: (chunk) => {
      for (const line of split.push(chunk)) {
        st.offset = base + split.consumed;
        if (!line.trim()) continue;
        let e: AgentEvent;
        try {
          e = parseEvent(line);
        } catch (err) {
          if (err instanceof ProtocolError) bad ??= err;
          else throw err;
          continue;
        }
        st.take(e);
        try {
          sink?.(e);
        } catch (err) {
          // An observer's bug must not lose the run: it is reported, not thrown into the stream.
          process.emitWarning(`onEvent threw: ${describeReason(err)}`);
        }
      }
    },
  });
  if (bad) throw bad;
  return res;
}

function toSample(s: SampleEvent): MemorySample {
  const m: MemorySample = {
    t: s.t,
    rssKb: s.rss,
    anonKb: s.anon,
    fileKb: s.file,
    hwmKb: s.hwm,
    availKb: s.avail,
    swapUsedKb: s.swap,
    majfltPerS: s.majflt,
  };
  if (s.psi !== undefined) m.psiSome10 = s.psi;
  if (s.cg !== undefined) m.cgroupKb = s.cg;
  return m;
}

/** At most `max` points: the largest-RSS sample of each bucket, so the peak survives. */
export function downsample(samples: MemorySample[], max: number): MemorySample[] {
  if (samples.length <= max) return samples;
  const out: MemorySample[] = [];
  const size = samples.length / max;
  for (let b = 0; b < max; b++) {
    let best: MemorySample | undefined;
    for (let i = Math.floor(b * size); i < Math.floor((b + 1) * size); i++) {
      const s = samples[i];
      if (s && (!best || s.rssKb > best.rssKb)) best = s;
    }
    if (best) out.push(best);
  }
  return out;
}

function memoryOf(st: RunState, job: AgentJob): MemoryMetrics {
  const m = st.end?.memory ?? null;
  return {
    peakRssKb: m?.peakRssKb ?? null,
    peakMethod: m?.peakMethod ?? null,
    peakAnonKb: m?.peakAnonKb ?? null,
    sampledPeakRssKb: m?.sampledPeakRssKb ?? null,
    cgroupPeakKb: m?.cgroupPeakKb ?? null,
    minAvailKb: m?.minAvailKb ?? null,
    sampleIntervalMs: st.intervalMs,
    samples: downsample(st.samples.map(toSample), job.maxSamples ?? 2000),
  };
}

interface Progress {
  deployMs: number | null;
  reattached: number;
  aborted: boolean;
}

/** The run as collected: whatever the stream delivered, with the ending the controller knows. */
function collected(job: AgentJob, wd: string, st: RunState, ending: AgentEnding, p: Progress): AgentRun {
  const end = ending.kind === 'agent_end' ? ending.end : null;
  const output = end?.output ?? null;
  return {
    ending,
    unavailable: end?.unavailable ?? [],
    exit: { code: end?.code ?? null, signal: end?.signal ?? null },
    memory: memoryOf(st, job),
    phases: end?.phases ?? [],
    facts: st.facts,
    values: { ...(end?.values ?? {}) },
    probe: end?.probe ? { ok: end.probe.ok, message: end.probe.message } : null,
    throttle: end?.throttle ?? null,
    logs: {
      stdoutTail: end?.stdoutTail ?? '',
      stderrTail: end?.stderrTail ?? '',
      kernelOomLines: end?.oom?.kernelLines ?? [],
      output,
      truncated: output !== null && (output.stdout.written > output.stdout.kept || output.stderr.written > output.stderr.kept),
    },
    timing: { deployMs: p.deployMs, payloadMs: end?.payloadMs ?? null },
    workdir: wd,
    pid: end?.pid ?? null,
    rusage: end?.rusage ?? null,
    reattached: p.reattached,
    aborted: p.aborted,
    left: end?.left ?? [],
    sampleEvents: { received: st.samples.length, written: end?.memory?.samples ?? null },
  };
}

function failure(stage: HarnessStage, detail: string): AgentEnding {
  return { kind: 'harness_failure', stage, detail };
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  return String(reason ?? 'aborted');
}

/** Where the agent lives in a workdir (beside the payload, out of its way). */
function monitorPath(wd: string): string {
  return posix.join(wd, '.hil-monitor.py');
}

/** The shell-safe path of the job's workdir. */
export function workdirOf(job: Pick<AgentJob, 'workdirRoot' | 'runId' | 'jobId'>): string {
  for (const part of [job.runId, job.jobId]) {
    if (!/^[A-Za-z0-9._@+-]+$/.test(part) || part === '.' || part === '..') {
      throw new Error(`runId/jobId may not be used as a folder name: ${JSON.stringify(part)}`);
    }
  }
  return posix.join(job.workdirRoot, job.runId, job.jobId);
}

/**
 * Deploy, run and collect one job. Resolves with the run (infra_error when
 * the harness could not do its job); rejects only on programming errors.
 */
export async function runOnDevice(
  transport: Transport,
  job: AgentJob,
  signal: AbortSignal,
  onEvent?: (e: AgentEvent) => void,
): Promise<AgentRun> {
  const wd = workdirOf(job);
  const monitor = monitorPath(wd);
  const st = new RunState(job.intervalMs);
  let reattached = 0;
  let deployMs: number | null = null;
  let aborted = false;
  let deviceDown = false;
  const t0 = Date.now();
  try {
    let probePath: string | null;
    try {
      await transport.connect(signal);
      probePath = await deploy(transport, job, wd);
      deployMs = Date.now() - t0;
    } catch (err) {
      return collected(job, wd, st, failure('deploy', describeReason(err)), { deployMs, reattached: 0, aborted: signal.aborted });
    }
    const env = Object.entries(job.env ?? {});
    const bad = env.find(([k]) => !/^[A-Z_][A-Z0-9_]*$/.test(k));
    if (bad) throw new Error(`not an environment variable name: ${JSON.stringify(bad[0])}`);
    const start = shellJoin([
      // env(1): the agent's environment is the payload's, so nothing in monitor.py changes.
      ...(env.length ? ['env', ...env.map(([k, v]) => `${k}=${v}`)] : []),
      job.python, monitor, 'start', '--workdir', wd,
      '--deadline-s', String(job.deadlineMs / 1000),
      '--interval-ms', String(job.intervalMs),
      ...(probePath ? ['--probe', probePath] : []),
      ...(job.facts === false ? ['--no-facts'] : []),
      ...(job.standIn ? ['--standin', job.standIn] : []),
      '--', job.python, ...job.entry,
    ]);
    const giveUpAt = Date.now() + job.deadlineMs + (job.reconnectGraceMs ?? 60_000);
    let lastError = '';
    let command = start;
    for (let attempt = 0; !st.end; attempt++) {
      if (signal.aborted) break;
      try {
        if (attempt > 0) {
          await sleep(Math.min(5000, 250 * 2 ** Math.min(attempt, 5)), undefined, { signal }).catch(() => undefined);
          if (signal.aborted) break;
          // No connect attempt may run past the give-up time.
          await transport.connect(AbortSignal.any([signal, AbortSignal.timeout(Math.max(0, giveUpAt - Date.now()))]));
          reattached++;
        }
        const res = await stream(transport, command, st, onEvent, signal);
        if (st.end) break;
        // The agent answered but could not start, or lost its worker: re-attaching will not help.
        if (st.seen === 0 && res.code !== null && res.code !== 0 && command === start) {
          return collected(job, wd, st, failure('agent_start', `exit ${res.code}: ${res.stderr.trim().slice(-500)}`), { deployMs, reattached, aborted });
        }
        if (res.code === 3) {
          return collected(job, wd, st, failure('agent_died', res.stderr.trim().slice(-500) || 'exit 3'), { deployMs, reattached, aborted });
        }
        lastError = `stream ended without an end event (exit ${res.code ?? 'none'}, signal ${res.signal ?? 'none'})`;
      } catch (err) {
        if (err instanceof ProtocolError) {
          return collected(job, wd, st, failure('protocol', err.message), { deployMs, reattached, aborted });
        }
        if (signal.aborted) break;
        lastError = describeReason(err);
        // Refused for the whole connect timeout: the device is down, and waiting out the deadline changes nothing.
        if (err instanceof ConnectionRefusedError) {
          deviceDown = true;
          return collected(job, wd, st, failure('lost', lastError), { deployMs, reattached, aborted });
        }
      }
      if (Date.now() > giveUpAt) {
        return collected(job, wd, st, failure('lost', lastError), { deployMs, reattached, aborted });
      }
      command = shellJoin([job.python, monitor, 'attach', '--workdir', wd, '--offset', String(st.offset)]);
    }
    if (!st.end && signal.aborted) {
      aborted = true;
      await killAndCollect(transport, job, wd, st, onEvent);
      if (!st.end) {
        return collected(job, wd, st, failure('uncollected', describeReason(signal.reason)), { deployMs, reattached, aborted });
      }
    }
    if (!st.end) throw new Error('unreachable: loop ended without end event or abort');
    return collected(job, wd, st, { kind: 'agent_end', end: st.end }, { deployMs, reattached, aborted });
  } finally {
    // A device that is down would only cost another connect timeout; its workdir is swept on a later run.
    if (!job.keep && !deviceDown) await cleanup(transport, job, wd);
  }
}

/** Kill the job over a fresh exec (the aborted one may be gone), then read the rest of the events. */
async function killAndCollect(t: Transport, job: AgentJob, wd: string, st: RunState, sink: Sink | undefined): Promise<void> {
  const monitor = monitorPath(wd);
  const own = AbortSignal.timeout(30_000);
  try {
    await t.connect(own);
    await t.exec(shellJoin([job.python, monitor, 'kill', '--workdir', wd]), { signal: own });
    await stream(t, shellJoin([job.python, monitor, 'attach', '--workdir', wd, '--offset', String(st.offset)]), st, sink, own);
  } catch {
    // Reported by the caller as an uncollected end.
  }
}

async function cleanup(t: Transport, job: AgentJob, wd: string): Promise<void> {
  const own = AbortSignal.timeout(30_000);
  try {
    await t.connect(own);
    // The run folder goes too once its last job is done; rmdir refuses while others remain.
    const rmdir = shellJoin(['rmdir', '--', posix.join(job.workdirRoot, job.runId)]);
    await t.exec(`${shellJoin(['rm', '-rf', '--', wd])}; ${rmdir} 2>/dev/null; true`, { signal: own });
  } catch {
    // A leftover workdir is untidy, not wrong.
  }
}
