/**
 * The controller's side of the agent: deploy monitor.py and a payload into a
 * per-run workdir, start the agent, follow its events, survive a dropped
 * connection by re-attaching from the last byte offset, kill the job on
 * abort, and hand back what happened: the agent's end event (or where the
 * harness lost the job) and what it measured. Deciding the outcome is not this
 * file's job (harness/run/outcome.ts does it).
 *
 * A job that goes well is one exec: the agent and the payload travel on its
 * stdin (BOOT below), the events come back on its stdout, and the agent
 * removes the workdir once the controller has acknowledged the end.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/**
 * Run with `python3 -S -c` as the job's one exec: read the agent from stdin (a
 * length line, then its source), write it into the workdir (argv[1]: `attach`
 * and `kill` run it from there) and run it, compiled once per device: the
 * code object is kept in argv[2] (per interpreter), as compiling 60 kB of
 * Python costs a slow Pi a second or more. `start --bundle` then reads the
 * payload from the rest of stdin. Exit 5 (DEPLOY_FAILED in monitor.py) when
 * the workdir cannot be written. -S: the agent needs no site-packages
 * (monitor.py loads site itself where it looks modules up), and a slow Pi
 * saves the import.
 */
export const BOOT = [
  'import os,sys',
  'i=sys.stdin.buffer;s=i.read(int(i.readline()));p=sys.argv[1];c="%s.%s"%(sys.argv[2],sys.implementation.cache_tag)',
  'try:',
  ' if p!="-":',
  '  os.makedirs(os.path.dirname(p),0o700,exist_ok=True)',
  '  with open(p,"wb") as f:f.write(s)',
  'except OSError as e:',
  ' sys.stderr.write("hil: cannot deploy the agent: %s\\n"%e);sys.exit(5)',
  'import marshal',
  'd=os.path.dirname(c);k=None;mine=False',
  'try:',
  ' os.makedirs(d,0o700,exist_ok=True);st=os.stat(d)',
  // Only a cache this user made and no one else can write: it is run as code.
  ' mine=st.st_uid==os.getuid() and not st.st_mode&0o22',
  ' if mine:',
  '  with open(c,"rb") as f:k=marshal.load(f)',
  'except Exception:pass',
  'if k is None:',
  ' k=compile(s,".hil-monitor.py","exec")',
  ' try:',
  '  if mine:',
  '   t="%s.%d"%(c,os.getpid())',
  '   with open(t,"wb") as f:marshal.dump(k,f)',
  '   os.replace(t,c)',
  ' except OSError:pass',
  'sys.argv=[p]+sys.argv[3:];__file__=p',
  'exec(k)',
].join('\n');

/** The agent's source, and where a device keeps its compiled code (by content, so a new agent never runs old code). */
const AGENT_SOURCE = readFileSync(AGENT_FILES.monitor);
const AGENT_CODE = `.hil-agent/monitor-${createHash('sha256').update(AGENT_SOURCE).digest('hex').slice(0, 16)}`;

/**
 * One agent command as an exec: the command line and its stdin (the agent,
 * then `more`). `agentFile` is where the agent is written for later `attach`
 * and `kill` execs, or '-' for none (the health gate, before any workdir).
 */
export function agentExec(python: string, workdirRoot: string, agentFile: string, args: string[], more: Buffer[] = []): { command: string; stdin: Buffer } {
  return {
    command: shellJoin([python, '-S', '-c', BOOT, agentFile, posix.join(workdirRoot, AGENT_CODE), ...args]),
    stdin: Buffer.concat([Buffer.from(`${AGENT_SOURCE.length}\n`), AGENT_SOURCE, ...more]),
  };
}

/** The agent's and monitor.py's exit code for a payload or agent that could not be written to the device. */
const DEPLOY_FAILED = 5;

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
  /**
   * The device's facts from an earlier job of this run: the agent then reads
   * only the facts that change (DeviceFactsNow) and the run's facts are these
   * with those laid over them.
   */
  knownFacts?: DeviceFacts;
  /** Environment variables for the payload (beside the device's own). */
  env?: Record<string, string>;
  /** Set for a host that only stands in for a Pi: facts then say emulated: true with this text. */
  standIn?: string;
  /** How long to keep trying to re-attach after the job's deadline (default 60 s). */
  reconnectGraceMs?: number;
  /** Timeline points kept in the record; the peak is always kept (default 2000). */
  maxSamples?: number;
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
  constructor(intervalMs: number, private readonly knownFacts: DeviceFacts | null = null) {
    this.intervalMs = intervalMs;
  }
  /** When the agent said hello: it was on the device and running. */
  helloAt: number | null = null;
  take(e: AgentEvent): void {
    this.seen++;
    if (e.type === 'hello') {
      this.helloAt ??= Date.now();
      this.intervalMs = e.intervalMs;
      this.deadlineMs = e.deadlineMs;
    } else if (e.type === 'facts') this.facts = e.facts;
    else if (e.type === 'factsNow') this.facts = this.knownFacts ? { ...this.knownFacts, ...e.facts } : null;
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

/** Where the probe goes in the workdir. */
const PROBE_FILE = '.hil-probe.py';

/**
 * The job's one stdin: the agent for BOOT, then the payload for `start
 * --bundle` (a header naming each file, its mode and size, and the
 * environment, then the files' bytes), so nothing is uploaded file by file.
 */
async function bundle(job: AgentJob): Promise<Buffer> {
  const files: [string, number, Buffer][] = [['hil_phase.py', 0o600, await readFile(AGENT_FILES.phase)]];
  for (const rel of await listFiles(job.payloadDir)) {
    const local = join(job.payloadDir, rel);
    const mode = (await stat(local)).mode & 0o100 ? 0o700 : 0o600;
    files.push([rel, mode, await readFile(local)]);
  }
  if (job.probe) {
    const code = 'code' in job.probe ? job.probe.code : await readFile(job.probe.file, 'utf8');
    files.push([PROBE_FILE, 0o600, Buffer.from(code)]);
  }
  // Lines and lengths, not JSON: the agent reads them without importing json (read_bundle_header in monitor.py).
  const env = Object.entries(job.env ?? {});
  for (const [rel] of files) if (rel.includes('\n')) throw new Error(`cannot send ${JSON.stringify(rel)}: a file name with a line break`);
  for (const [name] of env) if (/[\s=]/.test(name)) throw new Error(`cannot set the environment variable ${JSON.stringify(name)}: a name with a space, line break or =`);
  const head = [`hil-bundle 1 ${files.length} ${env.length}`, ...files.map(([rel, mode, data]) => `${mode.toString(8)} ${data.length} ${rel}`)].join('\n');
  const values = env.map(([name, value]) => Buffer.concat([Buffer.from(`${Buffer.byteLength(value)} ${name}\n`), Buffer.from(value)]));
  return Buffer.concat([Buffer.from(`${head}\n`), ...values, ...files.map(([, , data]) => data)]);
}

/**
 * Run one exec and feed its stdout, line by line, into the state. With
 * `cleanup`, the agent waits on stdin for the controller's word that it has
 * the end event, then removes the workdir: `ok` goes to it then.
 */
async function stream(
  t: Transport,
  command: string,
  st: RunState,
  sink: Sink | undefined,
  signal: AbortSignal | undefined,
  input?: { data?: Buffer; cleanup?: boolean },
): Promise<ExecResult> {
  const split = new LineSplitter();
  const base = st.offset;
  let bad: ProtocolError | null = null;
  let ack: ((word: string) => void) | null = null;
  const acked = input?.cleanup ? new Promise<Buffer>((resolve) => (ack = (word) => resolve(Buffer.from(word)))) : null;
  const res = await t.exec(command, {
    ...(signal ? { signal } : {}),
    ...(input?.data || acked ? { stdin: input?.data ?? Buffer.alloc(0) } : {}),
    ...(acked ? { stdinMore: acked } : {}),
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
        // A garbled stream is answered with silence: the workdir stays for a look, and cleanup() removes it.
        if (e.type === 'end') ack?.(bad ? '' : 'ok\n');
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
  const st = new RunState(job.intervalMs, job.knownFacts ?? null);
  let reattached = 0;
  let deployMs: number | null = null;
  let aborted = false;
  let deviceDown = false;
  // Set once the agent removed the workdir itself: the cleanup exec is then not needed.
  let cleaned = false;
  const t0 = Date.now();
  try {
    let input: Buffer;
    try {
      input = await bundle(job);
      await transport.connect(signal);
    } catch (err) {
      return collected(job, wd, st, failure('deploy', describeReason(err)), { deployMs, reattached: 0, aborted: signal.aborted });
    }
    const cleanup = job.keep ? [] : ['--cleanup'];
    const { command: start, stdin } = agentExec(job.python, job.workdirRoot, monitor, [
      'start', '--workdir', wd,
      '--deadline-s', String(job.deadlineMs / 1000),
      '--interval-ms', String(job.intervalMs),
      '--bundle', ...cleanup,
      ...(job.probe ? ['--probe', posix.join(wd, PROBE_FILE)] : []),
      '--facts', job.facts === false ? 'none' : job.knownFacts ? 'now' : 'full',
      ...(job.standIn ? ['--standin', job.standIn] : []),
      '--', job.python, ...job.entry,
    ], [input]);
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
        const res = await stream(transport, command, st, onEvent, signal, { ...(command === start ? { data: stdin } : {}), cleanup: !job.keep });
        deployMs ??= st.helloAt !== null ? st.helloAt - t0 : null;
        if (st.end) {
          cleaned = !job.keep && res.code === 0;
          break;
        }
        // The agent or the payload could not be written to the device (exit 2 from attach: Python found no agent there).
        if (st.seen === 0 && (res.code === DEPLOY_FAILED || (command !== start && res.code === 2))) {
          return collected(job, wd, st, failure('deploy', `exit ${res.code}: ${res.stderr.trim().slice(-500)}`), { deployMs, reattached, aborted });
        }
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
      command = shellJoin([job.python, monitor, 'attach', '--workdir', wd, '--offset', String(st.offset), ...cleanup]);
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
    if (!job.keep && !deviceDown && !cleaned) await cleanup(transport, job, wd);
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
