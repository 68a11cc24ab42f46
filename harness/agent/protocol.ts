/**
 * The agent's event stream: one JSON object per line, written by monitor.py
 * to <workdir>/.hil/events.jsonl and streamed over the transport. The byte
 * offset into that file is what a controller re-attaches from.
 *
 * Sizes are KiB, times ms since the payload started (t) unless named
 * otherwise. Every event is validated here, so the rest of the harness only
 * ever sees well-typed values.
 */
import type { DeviceFacts, PhaseRecord, StreamBytes, UnavailableSource } from '../results/record.ts';
import { RUNTIME_MODULES } from '../results/record.ts';

export const PROTOCOL_VERSION = 1;

export interface HelloEvent {
  type: 'hello';
  v: number;
  agentPid: number;
  python: string;
  intervalMs: number;
  deadlineMs: number;
  /** Agent start, wall clock. */
  epochMs: number;
}

export interface FactsEvent {
  type: 'facts';
  facts: DeviceFacts;
}

/** Who killed a process of the job on purpose: the agent at its deadline, or on the controller's request (`monitor.py kill`). */
export type KilledBy = 'deadline' | 'controller';

/** What the requirement probe did. */
export interface ProbeResult {
  ok: boolean;
  message: string;
  /**
   * Set when the agent killed the probe on purpose; ok is then false, and
   * says nothing about the device. Null when the probe ended by itself.
   */
  killedBy: KilledBy | null;
}

export interface ProbeEvent extends ProbeResult {
  type: 'probe';
}

export interface StartEvent {
  type: 'start';
  pid: number;
  pgid: number;
  t: number;
  /** "v1:<dir>" / "v2:<dir>" of the memory cgroup sampled, or null. */
  cgroup: string | null;
}

export interface SampleEvent {
  type: 'sample';
  t: number;
  /** Processes in the payload's tree at this instant. */
  n: number;
  rss: number;
  anon: number;
  file: number;
  /** Largest VmHWM over the tree. */
  hwm: number;
  avail: number;
  swap: number;
  /** System-wide major faults per second (/proc/vmstat pgmajfault). */
  majflt: number;
  /** The payload tree's major faults per second (/proc/PID/stat). */
  pmajflt: number;
  psi?: number;
  cg?: number;
}

export interface PhaseEvent {
  type: 'phase';
  name: string;
  t: number;
}

export type Value = string | number | boolean | null;

export interface ValueEvent {
  type: 'value';
  key: string;
  value: Value;
  t: number;
}

export interface Rusage {
  maxrssKb: number;
  utimeMs: number;
  stimeMs: number;
  majflt: number;
}

export interface Pressure {
  windowMs: number;
  /** The payload tree's major-fault rate over the window. */
  majfltPerS: number;
  sysMajfltPerS: number;
  psiSome10: number | null;
  /** Whose PSI: the job's cgroup (v2) or the whole system. */
  psiScope: 'cgroup' | 'system' | null;
}

export interface OomEvidence {
  vmstatBefore: number | null;
  vmstatAfter: number | null;
  cgroupBefore: number | null;
  cgroupAfter: number | null;
  kernelLines: string[];
  kernelLogSource: 'dmesg' | 'journalctl' | null;
}

export interface EndMemory {
  peakRssKb: number | null;
  peakMethod: 'vmhwm' | 'launcher_rusage' | 'sampled_rss' | null;
  peakAnonKb: number | null;
  sampledPeakRssKb: number | null;
  hwmPeakKb: number | null;
  rusageMaxrssKb: number | null;
  cgroupPeakKb: number | null;
  minAvailKb: number | null;
  /** Sample events the agent wrote (to check none were lost or doubled). */
  samples: number;
}

/** Bytes the payload wrote to each stream, and bytes of each tail the end event keeps. */
export interface OutputBytes {
  stdout: StreamBytes;
  stderr: StreamBytes;
}

/**
 * The last event: facts only, from which the controller decides the outcome.
 * Fields after `values` are absent when the payload never started.
 */
export interface EndEvent {
  type: 'end';
  unavailable: UnavailableSource[];
  values: Record<string, Value>;
  started: boolean;
  probe: ProbeResult | null;
  /** Set when the agent itself failed; the other facts are then absent. */
  agentError: string | null;
  /**
   * Who killed the payload's process group on purpose; 'controller' also when
   * the kill request came before the payload started. A probe the agent
   * killed is told by probe.killedBy instead.
   */
  killedBy: KilledBy | null;
  /** When the agent killed the group on purpose (killedBy set), ms since the payload started; null otherwise. */
  killedAtMs: number | null;
  pid: number | null;
  pids: number[];
  code: number | null;
  signal: string | null;
  rusage: Rusage | null;
  payloadMs: number | null;
  deadlineFired: boolean;
  pressure: Pressure | null;
  oom: OomEvidence | null;
  memory: EndMemory | null;
  phases: PhaseRecord[];
  /** Pids of the job still alive after the agent's cleanup: should be empty. */
  left: number[];
  stdoutTail: string;
  stderrTail: string;
  /** Null when the payload never started (or the agent predates it). */
  output: OutputBytes | null;
}

export type AgentEvent =
  | HelloEvent
  | FactsEvent
  | ProbeEvent
  | StartEvent
  | SampleEvent
  | PhaseEvent
  | ValueEvent
  | EndEvent;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(what: string, v: unknown): never {
  throw new ProtocolError(`${what}: got ${JSON.stringify(v)?.slice(0, 120)}`);
}

function num(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`field ${k} must be a number`, v);
  return v;
}
function numOrNull(o: Obj, k: string): number | null {
  return o[k] === null || o[k] === undefined ? null : num(o, k);
}
function optNum(o: Obj, k: string): number | undefined {
  return o[k] === undefined || o[k] === null ? undefined : num(o, k);
}
function str(o: Obj, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') fail(`field ${k} must be a string`, v);
  return v;
}
function strOrNull(o: Obj, k: string): string | null {
  return o[k] === null || o[k] === undefined ? null : str(o, k);
}
function bool(o: Obj, k: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') fail(`field ${k} must be a boolean`, v);
  return v;
}
function obj(o: Obj, k: string): Obj {
  const v = o[k];
  if (!isObj(v)) fail(`field ${k} must be an object`, v);
  return v;
}
function objOrNull(o: Obj, k: string): Obj | null {
  return o[k] === null || o[k] === undefined ? null : obj(o, k);
}
function arr(o: Obj, k: string): unknown[] {
  const v = o[k] ?? [];
  if (!Array.isArray(v)) fail(`field ${k} must be an array`, v);
  return v;
}
function oneOf<T extends string>(o: Obj, k: string, allowed: readonly T[]): T | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  return fail(`field ${k} must be one of ${allowed.join(', ')}`, v);
}
function value(v: unknown): Value {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  return fail('a value must be a string, number, boolean or null', v);
}

function parseFacts(o: Obj): DeviceFacts {
  const lb = numOrNull(o, 'longBit');
  const cg = oneOf(o, 'memoryCgroup', ['v1', 'v2', 'none'] as const);
  const vo = obj(o, 'versions');
  const versions = {} as DeviceFacts['versions'];
  for (const m of RUNTIME_MODULES) versions[m] = str(vo, m);
  return {
    model: strOrNull(o, 'model'),
    machine: str(o, 'machine'),
    longBit: lb === 32 || lb === 64 ? lb : null,
    dpkgArch: strOrNull(o, 'dpkgArch'),
    kernel: str(o, 'kernel'),
    ramMb: num(o, 'ramMb'),
    swapMb: num(o, 'swapMb'),
    pageSize: num(o, 'pageSize'),
    memoryCgroup: cg ?? 'none',
    memoryLimitMb: numOrNull(o, 'memoryLimitMb'),
    memoryLimitFreeMb: numOrNull(o, 'memoryLimitFreeMb'),
    dmesgRestrict: numOrNull(o, 'dmesgRestrict'),
    cpuModel: strOrNull(o, 'cpuModel'),
    throttled: strOrNull(o, 'throttled'),
    emulated: bool(o, 'emulated'),
    emulation: strOrNull(o, 'emulation'),
    versions,
  };
}

const UNAVAILABLE_SOURCES = [
  'exit_code', 'signal', 'vmstat_oom_kill', 'kernel_log', 'cgroup_oom_kill', 'stderr', 'deadline',
  'pressure', 'probe', 'console', 'transport', 'dmesg', 'journalctl', 'cgroup', 'psi',
] as const;

const KILLERS = ['deadline', 'controller'] as const;

function parseProbe(o: Obj): ProbeResult {
  return { ok: bool(o, 'ok'), message: str(o, 'message'), killedBy: oneOf(o, 'killedBy', KILLERS) };
}

function parseStreamBytes(o: Obj, k: string): StreamBytes {
  const s = obj(o, k);
  return { written: num(s, 'written'), kept: num(s, 'kept') };
}

function parseEnd(o: Obj): EndEvent {
  const pr = objOrNull(o, 'probe');
  const out = objOrNull(o, 'output');
  const ps = objOrNull(o, 'pressure');
  const oo = objOrNull(o, 'oom');
  const mo = objOrNull(o, 'memory');
  const ru = objOrNull(o, 'rusage');
  const vo = isObj(o.values) ? o.values : {};
  const values: Record<string, Value> = {};
  for (const [k, v] of Object.entries(vo)) values[k] = value(v);
  return {
    type: 'end',
    unavailable: arr(o, 'unavailable').map((u) => {
      if (!isObj(u)) return fail('unavailable entries must be objects', u);
      return { source: oneOf(u, 'source', UNAVAILABLE_SOURCES) ?? fail('unavailable source', u), why: str(u, 'why') };
    }),
    values,
    started: o.started === undefined ? false : bool(o, 'started'),
    probe: pr ? parseProbe(pr) : null,
    agentError: strOrNull(o, 'agentError'),
    killedBy: oneOf(o, 'killedBy', KILLERS),
    killedAtMs: numOrNull(o, 'killedAtMs'),
    pid: numOrNull(o, 'pid'),
    pids: arr(o, 'pids').map((p) => (typeof p === 'number' ? p : fail('pids must be numbers', p))),
    code: numOrNull(o, 'code'),
    signal: strOrNull(o, 'signal'),
    rusage: ru
      ? { maxrssKb: num(ru, 'maxrssKb'), utimeMs: num(ru, 'utimeMs'), stimeMs: num(ru, 'stimeMs'), majflt: num(ru, 'majflt') }
      : null,
    payloadMs: numOrNull(o, 'payloadMs'),
    deadlineFired: o.deadlineFired === undefined ? false : bool(o, 'deadlineFired'),
    pressure: ps
      ? {
          windowMs: num(ps, 'windowMs'),
          majfltPerS: num(ps, 'majfltPerS'),
          sysMajfltPerS: num(ps, 'sysMajfltPerS'),
          psiSome10: numOrNull(ps, 'psiSome10'),
          psiScope: oneOf(ps, 'psiScope', ['cgroup', 'system'] as const),
        }
      : null,
    oom: oo
      ? {
          vmstatBefore: numOrNull(oo, 'vmstatBefore'),
          vmstatAfter: numOrNull(oo, 'vmstatAfter'),
          cgroupBefore: numOrNull(oo, 'cgroupBefore'),
          cgroupAfter: numOrNull(oo, 'cgroupAfter'),
          kernelLines: arr(oo, 'kernelLines').map((l) => (typeof l === 'string' ? l : fail('kernel lines', l))),
          kernelLogSource: oneOf(oo, 'kernelLogSource', ['dmesg', 'journalctl'] as const),
        }
      : null,
    memory: mo
      ? {
          peakRssKb: numOrNull(mo, 'peakRssKb'),
          peakMethod: oneOf(mo, 'peakMethod', ['vmhwm', 'launcher_rusage', 'sampled_rss'] as const),
          peakAnonKb: numOrNull(mo, 'peakAnonKb'),
          sampledPeakRssKb: numOrNull(mo, 'sampledPeakRssKb'),
          hwmPeakKb: numOrNull(mo, 'hwmPeakKb'),
          rusageMaxrssKb: numOrNull(mo, 'rusageMaxrssKb'),
          cgroupPeakKb: numOrNull(mo, 'cgroupPeakKb'),
          minAvailKb: numOrNull(mo, 'minAvailKb'),
          samples: num(mo, 'samples'),
        }
      : null,
    phases: arr(o, 'phases').map((p) => {
      if (!isObj(p)) return fail('phases must be objects', p);
      return { name: str(p, 'name'), startMs: num(p, 'startMs'), endMs: num(p, 'endMs'), peakRssKb: num(p, 'peakRssKb') };
    }),
    left: arr(o, 'left').map((p) => (typeof p === 'number' ? p : fail('left must be numbers', p))),
    stdoutTail: strOrNull(o, 'stdoutTail') ?? '',
    stderrTail: strOrNull(o, 'stderrTail') ?? '',
    output: out ? { stdout: parseStreamBytes(out, 'stdout'), stderr: parseStreamBytes(out, 'stderr') } : null,
  };
}

/** Validate the output of `monitor.py facts`. Throws ProtocolError naming the bad field. */
export function toFacts(o: unknown): DeviceFacts {
  if (!isObj(o)) return fail('facts must be a JSON object', o);
  return parseFacts(o);
}

/** Validate one decoded event. Throws ProtocolError naming the bad field. */
export function toEvent(o: unknown): AgentEvent {
  if (!isObj(o)) return fail('an event must be a JSON object', o);
  const type = o.type;
  switch (type) {
    case 'hello':
      return {
        type,
        v: num(o, 'v'),
        agentPid: num(o, 'agentPid'),
        python: str(o, 'python'),
        intervalMs: num(o, 'intervalMs'),
        deadlineMs: num(o, 'deadlineMs'),
        epochMs: num(o, 'epochMs'),
      };
    case 'facts':
      return { type, facts: parseFacts(obj(o, 'facts')) };
    case 'probe':
      return { type, ...parseProbe(o) };
    case 'start':
      return { type, pid: num(o, 'pid'), pgid: num(o, 'pgid'), t: num(o, 't'), cgroup: strOrNull(o, 'cgroup') };
    case 'sample': {
      const e: SampleEvent = {
        type,
        t: num(o, 't'),
        n: num(o, 'n'),
        rss: num(o, 'rss'),
        anon: num(o, 'anon'),
        file: num(o, 'file'),
        hwm: num(o, 'hwm'),
        avail: num(o, 'avail'),
        swap: num(o, 'swap'),
        majflt: num(o, 'majflt'),
        pmajflt: num(o, 'pmajflt'),
      };
      const psi = optNum(o, 'psi');
      const cg = optNum(o, 'cg');
      if (psi !== undefined) e.psi = psi;
      if (cg !== undefined) e.cg = cg;
      return e;
    }
    case 'phase':
      return { type, name: str(o, 'name'), t: num(o, 't') };
    case 'value':
      return { type, key: str(o, 'key'), value: value(o.value), t: num(o, 't') };
    case 'end':
      return parseEnd(o);
    default:
      return fail('unknown event type', type);
  }
}

/** Parse one line of the stream. */
export function parseEvent(line: string): AgentEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    throw new ProtocolError(`not JSON: ${line.slice(0, 120)}`, { cause: err });
  }
  return toEvent(raw);
}

/**
 * Splits a byte stream into lines and counts the bytes of whole lines taken,
 * which is exactly the offset into events.jsonl to re-attach from.
 */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of complete lines consumed so far, relative to the start offset. */
  consumed = 0;

  push(chunk: Buffer): string[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let i = this.pending.indexOf(10, start); i >= 0; i = this.pending.indexOf(10, start)) {
      lines.push(this.pending.subarray(start, i).toString('utf8'));
      this.consumed += i + 1 - start;
      start = i + 1;
    }
    this.pending = this.pending.subarray(start);
    return lines;
  }

  /** Drop a partial line (the stream broke mid-line; it will be re-read). */
  reset(): void {
    this.pending = Buffer.alloc(0);
  }
}
