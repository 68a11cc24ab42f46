/**
 * The agent's event stream: one JSON object per line, written by monitor.py
 * to <workdir>/.hil/events.jsonl and streamed over the transport. The byte
 * offset into that file is what a controller re-attaches from.
 *
 * Sizes are KiB, times ms since the payload started (t) unless named
 * otherwise. Every event is checked against the schemas here (built from the
 * result record's, harness/results/record.ts), so the rest of the harness
 * only ever sees well-typed values; the types are derived from the same
 * schemas.
 */
import { z } from 'zod';
import {
  DeviceFactsSchema,
  OutputBytesSchema,
  ThrottleSchema,
  PeakMethodSchema,
  PhaseRecordSchema,
  UnavailableSourceSchema,
  ValueSchema,
  type DeviceFacts,
} from '../results/record.ts';
import { firstProblem } from '../results/problem.ts';

export type { OutputBytes, Value } from '../results/record.ts';

export const PROTOCOL_VERSION = 1;

/** Null when the agent left the field out (a payload that never started leaves most of the end event out). */
const orNull = <T extends z.ZodType>(schema: T) => schema.nullable().default(null);

export const HelloEventSchema = z.object({
  type: z.literal('hello'),
  v: z.number(),
  agentPid: z.number(),
  python: z.string(),
  intervalMs: z.number(),
  deadlineMs: z.number(),
  /** Agent start, wall clock. */
  epochMs: z.number(),
});
export interface HelloEvent extends z.output<typeof HelloEventSchema> {}

export const FactsEventSchema = z.object({
  type: z.literal('facts'),
  facts: DeviceFactsSchema,
});
export interface FactsEvent extends z.output<typeof FactsEventSchema> {}

/** The facts that change while a device is in use, sent instead of all facts once the controller has those from this run. */
export const DeviceFactsNowSchema = DeviceFactsSchema.pick({ memoryLimitMb: true, memoryLimitFreeMb: true, throttled: true });
export interface DeviceFactsNow extends z.output<typeof DeviceFactsNowSchema> {}

export const FactsNowEventSchema = z.object({
  type: z.literal('factsNow'),
  facts: DeviceFactsNowSchema,
});
export interface FactsNowEvent extends z.output<typeof FactsNowEventSchema> {}

/** Who killed a process of the job on purpose: the agent at its deadline, or on the controller's request (`monitor.py kill`). */
export const KilledBySchema = z.enum(['deadline', 'controller']);
export type KilledBy = z.output<typeof KilledBySchema>;

/** What the requirement probe did. */
export const ProbeResultSchema = z.object({
  ok: z.boolean(),
  message: z.string(),
  /**
   * Set when the agent killed the probe on purpose; ok is then false, and
   * says nothing about the device. Null when the probe ended by itself.
   */
  killedBy: orNull(KilledBySchema),
});
export interface ProbeResult extends z.output<typeof ProbeResultSchema> {}

export const ProbeEventSchema = ProbeResultSchema.extend({ type: z.literal('probe') });
export interface ProbeEvent extends z.output<typeof ProbeEventSchema> {}

export const StartEventSchema = z.object({
  type: z.literal('start'),
  pid: z.number(),
  pgid: z.number(),
  t: z.number(),
  /** "v1:<dir>" / "v2:<dir>" of the memory cgroup sampled, or null. */
  cgroup: orNull(z.string()),
});
export interface StartEvent extends z.output<typeof StartEventSchema> {}

export const SampleEventSchema = z.object({
  type: z.literal('sample'),
  t: z.number(),
  /** Processes in the payload's tree at this instant. */
  n: z.number(),
  rss: z.number(),
  anon: z.number(),
  file: z.number(),
  /** Largest VmHWM over the tree. */
  hwm: z.number(),
  avail: z.number(),
  swap: z.number(),
  /** System-wide major faults per second (/proc/vmstat pgmajfault). */
  majflt: z.number(),
  /** The payload tree's major faults per second (/proc/PID/stat). */
  pmajflt: z.number(),
  /** Memory PSI "some avg10", where the kernel has PSI. */
  psi: z.number().optional(),
  /** The memory cgroup's usage, where one is sampled. */
  cg: z.number().optional(),
});
export interface SampleEvent extends z.output<typeof SampleEventSchema> {}

export const PhaseEventSchema = z.object({
  type: z.literal('phase'),
  name: z.string(),
  t: z.number(),
});
export interface PhaseEvent extends z.output<typeof PhaseEventSchema> {}

export const ValueEventSchema = z.object({
  type: z.literal('value'),
  key: z.string(),
  value: ValueSchema,
  t: z.number(),
});
export interface ValueEvent extends z.output<typeof ValueEventSchema> {}

export const RusageSchema = z.object({
  maxrssKb: z.number(),
  utimeMs: z.number(),
  stimeMs: z.number(),
  majflt: z.number(),
});
export interface Rusage extends z.output<typeof RusageSchema> {}

export const PressureSchema = z.object({
  windowMs: z.number(),
  /** The payload tree's major-fault rate over the window. */
  majfltPerS: z.number(),
  sysMajfltPerS: z.number(),
  psiSome10: orNull(z.number()),
  /** Whose PSI: the job's cgroup (v2) or the whole system. */
  psiScope: orNull(z.enum(['cgroup', 'system'])),
});
export interface Pressure extends z.output<typeof PressureSchema> {}

export const OomEvidenceSchema = z.object({
  vmstatBefore: orNull(z.number()),
  vmstatAfter: orNull(z.number()),
  cgroupBefore: orNull(z.number()),
  cgroupAfter: orNull(z.number()),
  kernelLines: z.array(z.string()).default([]),
  kernelLogSource: orNull(z.enum(['dmesg', 'journalctl'])),
});
export interface OomEvidence extends z.output<typeof OomEvidenceSchema> {}

export const EndMemorySchema = z.object({
  peakRssKb: orNull(z.number()),
  peakMethod: orNull(PeakMethodSchema),
  peakAnonKb: orNull(z.number()),
  sampledPeakRssKb: orNull(z.number()),
  hwmPeakKb: orNull(z.number()),
  rusageMaxrssKb: orNull(z.number()),
  cgroupPeakKb: orNull(z.number()),
  minAvailKb: orNull(z.number()),
  /** Sample events the agent wrote (to check none were lost or doubled). */
  samples: z.number(),
});
export interface EndMemory extends z.output<typeof EndMemorySchema> {}

/**
 * The last event: facts only, from which the controller decides the outcome.
 * Fields after `values` are absent when the payload never started.
 */
export const EndEventSchema = z.object({
  type: z.literal('end'),
  unavailable: z.array(UnavailableSourceSchema).default([]),
  values: z.record(z.string(), ValueSchema).default({}),
  started: z.boolean().default(false),
  probe: orNull(ProbeResultSchema),
  /** Set when the agent itself failed; the other facts are then absent. */
  agentError: orNull(z.string()),
  /**
   * Who killed the payload's process group on purpose; 'controller' also when
   * the kill request came before the payload started. A probe the agent
   * killed is told by probe.killedBy instead.
   */
  killedBy: orNull(KilledBySchema),
  /** When the agent killed the group on purpose (killedBy set), ms since the payload started; null otherwise. */
  killedAtMs: orNull(z.number()),
  pid: orNull(z.number()),
  pids: z.array(z.number()).default([]),
  code: orNull(z.number()),
  signal: orNull(z.string()),
  rusage: orNull(RusageSchema),
  payloadMs: orNull(z.number()),
  deadlineFired: z.boolean().default(false),
  pressure: orNull(PressureSchema),
  oom: orNull(OomEvidenceSchema),
  memory: orNull(EndMemorySchema),
  phases: z.array(PhaseRecordSchema).default([]),
  /** Pids of the job still alive after the agent's cleanup: should be empty. */
  left: z.array(z.number()).default([]),
  stdoutTail: z.string().default(''),
  stderrTail: z.string().default(''),
  /** Null when the payload never started (or the agent predates it). */
  output: orNull(OutputBytesSchema),
  /** The throttle state before and after the payload; null when it never started (or the agent predates it). */
  throttle: orNull(ThrottleSchema),
  /** Other pi-hil jobs found alive on the device while this one ran (by their agents): they shared its memory. */
  foreign: z.array(z.object({ pid: z.number(), workdir: z.string() })).default([]),
});
export interface EndEvent extends z.output<typeof EndEventSchema> {}

export const AgentEventSchema = z.discriminatedUnion('type', [
  HelloEventSchema,
  FactsEventSchema,
  FactsNowEventSchema,
  ProbeEventSchema,
  StartEventSchema,
  SampleEventSchema,
  PhaseEventSchema,
  ValueEventSchema,
  EndEventSchema,
]);
export type AgentEvent = HelloEvent | FactsEvent | FactsNowEvent | ProbeEvent | StartEvent | SampleEvent | PhaseEvent | ValueEvent | EndEvent;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** Check `value` against `schema`, or throw a ProtocolError naming the first bad field. `what` names the whole value. */
function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const p = firstProblem(parsed.error, value);
  const got = `got ${JSON.stringify(p.found)?.slice(0, 120)}`;
  if (p.field === '' && p.issue.code === 'invalid_type') throw new ProtocolError(`${what} must be a JSON object: ${got}`);
  if (p.field === 'type' && p.issue.code === 'invalid_union') throw new ProtocolError(`unknown event type: ${got}`);
  throw new ProtocolError(`field ${p.field} must be ${p.expected}: ${got}`);
}

/** Validate the output of `monitor.py facts`. Throws ProtocolError naming the bad field. */
export function toFacts(o: unknown): DeviceFacts {
  return check(DeviceFactsSchema, o, 'facts');
}

/** Validate one decoded event. Throws ProtocolError naming the bad field. */
export function toEvent(o: unknown): AgentEvent {
  return check(AgentEventSchema, o, 'an event');
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
