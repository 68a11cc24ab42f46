/**
 * The result record: the one shared language between the parts of pi-hil.
 *
 * The scheduler produces one record per job (device × suite); the store
 * appends it to results.jsonl; every reporter reads only these records.
 *
 * The shape is written once, as the schemas below: the TypeScript types are
 * derived from them (each field's doc comment sits on its schema and shows in
 * editors on the derived type), results.jsonl is read back through them
 * (harness/results/read.ts), and the agent's events reuse them
 * (harness/agent/protocol.ts). Change a field here and the compiler shows
 * every reader that must follow.
 *
 * Fields the record gained later carry a `.default()`, so an older line reads
 * with the value that says "not known then"; timing.bootMs, whose arrival
 * also changed what wallMs counts, is upgraded by TimingSchema.
 */
import { z } from 'zod';

// ---------------------------------------------------------------- enums

/** How a run ended. Exactly one per job, decided by harness/run/outcome.ts; docs/outcomes.md has the table. */
export const OUTCOMES = [
  'passed',
  'failed',
  'oom_killed',
  'memory_error',
  'timeout',
  'crashed',
  'unsupported',
  'infra_error',
] as const;
export const OutcomeSchema = z.enum(OUTCOMES);
export type Outcome = z.output<typeof OutcomeSchema>;

export function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'string' && (OUTCOMES as readonly string[]).includes(value);
}

/** Where a piece of evidence came from. */
export const EVIDENCE_SOURCES = [
  'exit_code',
  'signal',
  'vmstat_oom_kill',
  'kernel_log',
  'cgroup_oom_kill',
  'stderr',
  'deadline',
  'interrupt',
  'pressure',
  'probe',
  'console',
  'transport',
  'foreign_job',
] as const;
export const EvidenceSourceSchema = z.enum(EVIDENCE_SOURCES);
export type EvidenceSource = z.output<typeof EvidenceSourceSchema>;

/** A source the agent may find unreadable: an evidence source, or one it reads evidence from. */
export const UnavailableSourceKindSchema = z.enum([...EVIDENCE_SOURCES, 'dmesg', 'journalctl', 'cgroup', 'psi']);

/** How pi-hil talks to a device. */
export const TRANSPORT_KINDS = ['ssh', 'qemu', 'local'] as const;
export const TransportKindSchema = z.enum(TRANSPORT_KINDS);
export type TransportKind = z.output<typeof TransportKindSchema>;

export const ARCHES = ['armhf', 'arm64', 'armel', 'amd64'] as const;
export const ArchSchema = z.enum(ARCHES);
export type Arch = z.output<typeof ArchSchema>;

/** The Python modules whose versions the agent reports. */
export const RUNTIME_MODULES = [
  'python',
  'numpy',
  'tensorflow',
  'tflite_runtime',
  'ai_edge_litert',
  'pyarmnn',
] as const;
export const RuntimeModuleSchema = z.enum(RUNTIME_MODULES);
export type RuntimeModule = z.output<typeof RuntimeModuleSchema>;

export const MEMORY_CGROUPS = ['v1', 'v2', 'none'] as const;
export const MemoryCgroupSchema = z.enum(MEMORY_CGROUPS);

/**
 * How `memory.peakRssKb` was measured; recorded because the methods differ:
 * a child's ru_maxrss includes its parent's peak at fork, so the agent counts
 * the payload's `rusage` only above its own high-water mark and otherwise
 * relies on VmHWM. `launcher_rusage` is the same figure in records made before
 * the payload was the agent's own child (it was taken by a small launcher).
 */
export const PEAK_METHODS = ['vmhwm', 'rusage', 'sampled_rss', 'launcher_rusage'] as const;
export const PeakMethodSchema = z.enum(PEAK_METHODS);
export type PeakMethod = z.output<typeof PeakMethodSchema>;

/** The verdict of a suite's expectation on a job's outcome. */
export const VERDICTS = ['met', 'unmet', 'infra'] as const;
export const VerdictSchema = z.enum(VERDICTS);
export type Verdict = z.output<typeof VerdictSchema>;

// ---------------------------------------------------------------- parts

/** A whole number of something, never negative; `what` says which in an error. */
const count = (what: string) => z.number().refine((n) => Number.isInteger(n) && n >= 0, { error: what });

/** An instant as `Date.prototype.toISOString()` writes it. */
const instant = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { error: 'an ISO-8601 instant' });

export const EvidenceSchema = z.object({
  source: EvidenceSourceSchema,
  /** Human-readable and already free of secrets, e.g. the kernel's "Killed process 1234 (python3)" line. */
  detail: z.string(),
});
export interface Evidence extends z.output<typeof EvidenceSchema> {}

/** An evidence source the agent wanted but could not read, and why (e.g. dmesg restricted). */
export const UnavailableSourceSchema = z.object({
  source: UnavailableSourceKindSchema,
  why: z.string(),
});
export interface UnavailableSource extends z.output<typeof UnavailableSourceSchema> {}

/** What the agent probed on the device. Versions are the string 'absent' when a module is missing. */
export const DeviceFactsSchema = z.object({
  /** /proc/device-tree/model, e.g. "Raspberry Pi 4 Model B Rev 1.4"; null where there is no device tree. */
  model: z.string().nullable(),
  /** `uname -m`: the kernel's view, aarch64 even under a 32-bit userland on a Pi 4. */
  machine: z.string(),
  /** `getconf LONG_BIT`: the userland's word size. */
  longBit: z.literal([32, 64]).nullable(),
  /**
   * The kernel's word size (from `uname -m`): 64 under a 32-bit userland on a Pi 4 or 5
   * since 2023 (arm_64bit=1). Null from an older agent: derive it from `machine`.
   */
  kernelBits: z.literal([32, 64]).nullable().default(null),
  /** `dpkg --print-architecture`, null without dpkg. */
  dpkgArch: z.string().nullable(),
  kernel: z.string(),
  ramMb: z.number(),
  swapMb: z.number(),
  pageSize: z.number(),
  memoryCgroup: MemoryCgroupSchema,
  /**
   * The memory limit of the cgroup the agent runs in (a capped local device, a
   * container), MiB; null when nothing caps it below the machine's RAM.
   * Older agents did not read it: unknown is "no limit seen".
   */
  memoryLimitMb: z.number().nullable().default(null),
  /** What is still free under that limit when the facts were read, MiB; null without a limit (or from an older agent). */
  memoryLimitFreeMb: z.number().nullable().default(null),
  dmesgRestrict: z.number().nullable(),
  cpuModel: z.string().nullable(),
  /** `vcgencmd get_throttled`, null where vcgencmd is absent. */
  throttled: z.string().nullable(),
  /** True under QEMU/virt, or on a local capped host device that only stands in for a Pi. */
  emulated: z.boolean(),
  /** How `emulated` was decided, e.g. "device-tree compatible linux,dummy-virt" or "local capped host". */
  emulation: z.string().nullable(),
  /** One version per runtime module; keys the agent may add beyond these are dropped. */
  versions: z.object(Object.fromEntries(RUNTIME_MODULES.map((m) => [m, z.string()])) as Record<RuntimeModule, z.ZodString>),
});
export interface DeviceFacts extends z.output<typeof DeviceFactsSchema> {}

/**
 * The kernel's word size of a device: its facts' kernelBits, else read off `uname -m`
 * (an older agent), else null.
 */
export function kernelBitsOf(facts: Pick<DeviceFacts, 'machine' | 'kernelBits'> | null): 32 | 64 | null {
  if (!facts) return null;
  if (facts.kernelBits === 32 || facts.kernelBits === 64) return facts.kernelBits;
  if (/^(aarch64|arm64|x86_64|ppc64|s390x|riscv64|mips64)/.test(facts.machine)) return 64;
  if (/^(armv|i[3-6]86|arm$)/.test(facts.machine)) return 32;
  return null;
}

/** One sample of the memory timeline. Sizes in KiB, time in ms since the payload started. */
export const MemorySampleSchema = z.object({
  t: z.number(),
  /** Sums over the payload's process tree. */
  rssKb: z.number(),
  anonKb: z.number(),
  fileKb: z.number(),
  /** Largest VmHWM over the tree at this instant. */
  hwmKb: z.number(),
  /** System-wide. */
  availKb: z.number(),
  swapUsedKb: z.number(),
  /** Major page faults per second since the previous sample. */
  majfltPerS: z.number(),
  /** /proc/pressure/memory "some avg10", where the kernel has PSI. */
  psiSome10: z.number().optional(),
  /** cgroup memory usage (v2 memory.current, v1 memory.usage_in_bytes), where a memory cgroup exists. */
  cgroupKb: z.number().optional(),
});
export interface MemorySample extends z.output<typeof MemorySampleSchema> {}

/** A phase the payload marked with `@@hil phase <name>`. */
export const PhaseRecordSchema = z.object({
  name: z.string(),
  startMs: z.number(),
  endMs: z.number(),
  peakRssKb: z.number(),
});
export interface PhaseRecord extends z.output<typeof PhaseRecordSchema> {}

export const MemoryMetricsSchema = z.object({
  /** Peak resident set of the payload, KiB. */
  peakRssKb: z.number().nullable(),
  peakMethod: PeakMethodSchema.nullable(),
  peakAnonKb: z.number().nullable(),
  /** Peak of the sampled timeline alone, to compare with the kernel's high-water mark. */
  sampledPeakRssKb: z.number().nullable(),
  /** cgroup peak (v2 memory.peak, v1 memory.max_usage_in_bytes) where present. */
  cgroupPeakKb: z.number().nullable(),
  minAvailKb: z.number().nullable(),
  sampleIntervalMs: z.number(),
  samples: z.array(MemorySampleSchema),
});
export interface MemoryMetrics extends z.output<typeof MemoryMetricsSchema> {}

const TimingFieldsSchema = z.object({
  /** ISO-8601 instants. */
  queuedAt: instant,
  startedAt: instant,
  endedAt: instant,
  /**
   * The job as the controller saw it, from the device answering to the
   * record: the wait for the device (connectMs, bootMs) is not in it, so a
   * device's first job is comparable with its others.
   */
  wallMs: z.number(),
  /** Waiting for the device's session in this job (0 when it was already open; includes a VM's boot). */
  connectMs: z.number().nullable(),
  /** The part of connectMs a QEMU device spent booting (or warm-starting); null when no VM started for this job. */
  bootMs: z.number().nullable(),
  /** Uploading the agent and payload. */
  deployMs: z.number().nullable(),
  /** The payload process alone, as the agent measured it. */
  payloadMs: z.number().nullable(),
  /**
   * False when the Pi was throttled or under-volted during the job: it ran
   * slower, so its times compare with no other run's. Older records were
   * never judged: trusted.
   */
  trusted: z.boolean().default(true),
  /** Why the times are not trusted, e.g. "under-voltage during the job (0x50005)"; null when they are. */
  untrustedBecause: z.string().nullable().default(null),
});
export interface Timing extends z.output<typeof TimingFieldsSchema> {}

/**
 * Timing as stored. A record from before bootMs existed counted the wait for
 * the device (connectMs, a VM's boot included) in wallMs: it is taken out so
 * old and new jobs, and a baseline from before the change, compare like with
 * like. The boot's share of that wait was never recorded, so it stays unknown.
 */
export const TimingSchema = TimingFieldsSchema.extend({ bootMs: TimingFieldsSchema.shape.bootMs.optional() }).transform(
  (t): Timing =>
    t.bootMs === undefined ? { ...t, bootMs: null, wallMs: Math.max(0, t.wallMs - (t.connectMs ?? 0)) } : { ...t, bootMs: t.bootMs },
);

/** The device as the inventory described it, snapshotted into each record (no secrets). */
export const DeviceSnapshotSchema = z.object({
  name: z.string(),
  transport: TransportKindSchema,
  model: z.string(),
  ramMb: z.number(),
  arch: ArchSchema,
  tags: z.array(z.string()),
});
export interface DeviceSnapshot extends z.output<typeof DeviceSnapshotSchema> {}

/** A suite's expectation for this device class, and its verdict on the job's outcome. */
export const ExpectationCheckSchema = z.object({
  /** Outcomes the expectation allows. */
  allowed: z.array(OutcomeSchema),
  /** The article's claim that the expectation tests. */
  claim: z.string(),
  /** met: the outcome is one the expectation allows; unmet: it is not; infra: infra_error, which never counts as a product result. */
  verdict: VerdictSchema,
});
export interface ExpectationCheck extends z.output<typeof ExpectationCheckSchema> {}

/** How much of one output stream the payload wrote, and how much of it the record keeps. */
export const StreamBytesSchema = z.object({
  written: count('a byte count'),
  /** Bytes of the tail kept in the record (`logs.stdoutTail` / `logs.stderrTail`). */
  kept: count('a byte count'),
});
export interface StreamBytes extends z.output<typeof StreamBytesSchema> {}

/** Bytes the payload wrote to each stream, and bytes of each tail kept. */
export const OutputBytesSchema = z.object({
  stdout: StreamBytesSchema,
  stderr: StreamBytesSchema,
});
export interface OutputBytes extends z.output<typeof OutputBytesSchema> {}

export const LogsSchema = z.object({
  stdoutTail: z.string(),
  stderrTail: z.string(),
  /** Null when the payload never started (or an older agent); otherwise bytes written and kept per stream. */
  output: OutputBytesSchema.nullable().default(null),
  /** True when a stream wrote more than the record keeps; older agents counted nothing, so nothing is said to be cut. */
  truncated: z.boolean().default(false),
  /** Serial console excerpt (QEMU devices) for the job's time window. */
  console: z.string().nullable(),
  /** Kernel log lines about OOM that name the payload's pid. */
  kernelOomLines: z.array(z.string()),
});
export interface Logs extends z.output<typeof LogsSchema> {}

/**
 * What the agent's session on the device went through; evidence that a job
 * survived trouble. Older records kept none: no pid known, no re-attach,
 * nothing left.
 */
export const AgentSessionSchema = z.object({
  /** The payload's pid (= its process group) on the device; null when it never started. */
  payloadPid: z.number().nullable(),
  /** How often the controller re-attached after the SSH stream was lost. */
  reattached: count('a count'),
  /** Pids of the job still alive after the agent's clean-up (should be empty). */
  leftPids: z.array(z.number().refine(Number.isInteger, { error: 'a pid' })),
});
export interface AgentSession extends z.output<typeof AgentSessionSchema> {}

/** `vcgencmd get_throttled` and the SoC temperature at one instant; each null where it could not be read. */
export const ThrottleReadingSchema = z.object({
  /** The raw bit field: bits 0–3 now, 16–19 since boot (see harness/rack/throttle.ts). */
  throttled: z.number().nullable(),
  /** From the kernel's thermal zone, °C. */
  socTempC: z.number().nullable(),
});
export interface ThrottleReading extends z.output<typeof ThrottleReadingSchema> {}

/** The device's throttle state around the payload, as the agent read it. */
export const ThrottleSchema = z.object({
  before: ThrottleReadingSchema,
  after: ThrottleReadingSchema,
  /** Why vcgencmd could not be read (absent, or the user is not in the video group); null when it was. */
  unavailable: z.string().nullable(),
});
export interface Throttle extends z.output<typeof ThrottleSchema> {}

/**
 * Which attempt of its job a record is. A job that ended infra_error because
 * its device stopped answering is tried once more after the device was
 * recovered; both records are kept, and the second names the first.
 */
export const AttemptSchema = z.object({
  n: z.number().int().min(1),
  /** How the attempt before this one ended; null on a first attempt. */
  previous: z.object({ outcome: OutcomeSchema, reason: z.string() }).nullable(),
});
export interface Attempt extends z.output<typeof AttemptSchema> {}

/** A value a suite reported with `@@hil value <key> <json>`: JSON scalars only. */
export const ValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type Value = z.output<typeof ValueSchema>;

/** A suite parameter's value (`params:` in suite.yaml): an integer, a number or one of its string choices. */
export const ParamValueSchema = z.union([z.number(), z.string()]);
export type ParamValue = z.output<typeof ParamValueSchema>;

/** Which capacity search a job was a probe of (`hil envelope`), and its place in it. */
export const EnvelopeTagSchema = z.object({
  /** The parameter searched; its value in this job is params[search]. */
  search: z.string(),
  /** 1 for the first probe of the search on this device, then 2, 3, ... */
  step: z.number().int().min(1),
});
export interface EnvelopeTag extends z.output<typeof EnvelopeTagSchema> {}

/**
 * A job's identity: `<suite>.<device>`, then the parameters it was given, in
 * name order: `keras-train.cap-1g[samples=1000,units=64]`. A job without
 * parameters keeps the identity it always had.
 */
export function jobIdOf(suite: string, device: string, params: Readonly<Record<string, ParamValue>> = {}): string {
  const keys = Object.keys(params).sort();
  return keys.length === 0 ? `${suite}.${device}` : `${suite}.${device}[${keys.map((k) => `${k}=${params[k]}`).join(',')}]`;
}

export const RECORD_SCHEMA = 1;

export const ResultRecordSchema = z
  .object({
    schema: z.literal(RECORD_SCHEMA),
    runId: z.string(),
    /** `<suite>.<device>` and the parameters given (see jobIdOf): stable across runs, used for Allure identity and baselines. */
    jobId: z.string(),
    suite: z.string(),
    device: DeviceSnapshotSchema,
    outcome: OutcomeSchema,
    /** One sentence on why this outcome, e.g. "SIGKILL with a kernel OOM line naming pid 4242". */
    reason: z.string(),
    evidence: z.array(EvidenceSchema),
    unavailable: z.array(UnavailableSourceSchema),
    /** The deadline fired while major faults or memory PSI were high. */
    thrashing: z.boolean(),
    exit: z.object({ code: z.number().nullable(), signal: z.string().nullable() }),
    timing: TimingSchema,
    memory: MemoryMetricsSchema,
    phases: z.array(PhaseRecordSchema),
    facts: DeviceFactsSchema.nullable(),
    /** Values the suite reported with `@@hil value <key> <json>`, e.g. tf_version, gpus, cpus, latency_p50_ms. */
    values: z.record(z.string(), ValueSchema),
    /** The suite's requirement probe; null when it never ran (the job ended before it). */
    probe: z.object({ ok: z.boolean(), message: z.string() }).nullable(),
    expectation: ExpectationCheckSchema.nullable(),
    logs: LogsSchema,
    agent: AgentSessionSchema.default(() => ({ payloadPid: null, reattached: 0, leftPids: [] })),
    /** Null when the payload never started, or from an agent that did not read it. */
    throttle: ThrottleSchema.nullable().default(null),
    attempt: AttemptSchema.default(() => ({ n: 1, previous: null })),
    /** The suite parameters this job was given (`--param`, `hil envelope`); the others ran at their defaults. */
    params: z.record(z.string(), ParamValueSchema).default(() => ({})),
    /** Set on the probes of a capacity search (`hil envelope`); null on an ordinary job. */
    envelope: EnvelopeTagSchema.nullable().default(null),
  })
  .superRefine((r, ctx) => {
    const want = jobIdOf(r.suite, r.device.name, r.params);
    if (r.jobId !== want) ctx.addIssue({ code: 'custom', path: ['jobId'], message: `${want} (<suite>.<device>${Object.keys(r.params).length ? '[<params>]' : ''})`, input: r.jobId });
  });
export interface ResultRecord extends z.output<typeof ResultRecordSchema> {}
