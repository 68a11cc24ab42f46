/**
 * The result record: the one shared language between the parts of pi-hil.
 *
 * The scheduler produces one record per job (device × suite); the store
 * appends it to results.jsonl; every reporter reads only these records.
 * Change a field here and the compiler shows every reader that must follow.
 */

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
export type Outcome = (typeof OUTCOMES)[number];

export function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'string' && (OUTCOMES as readonly string[]).includes(value);
}

/** Where a piece of evidence came from. */
export type EvidenceSource =
  | 'exit_code'
  | 'signal'
  | 'vmstat_oom_kill'
  | 'kernel_log'
  | 'cgroup_oom_kill'
  | 'stderr'
  | 'deadline'
  | 'interrupt'
  | 'pressure'
  | 'probe'
  | 'console'
  | 'transport';

export interface Evidence {
  source: EvidenceSource;
  /** Human-readable and already free of secrets, e.g. the kernel's "Killed process 1234 (python3)" line. */
  detail: string;
}

/** An evidence source the agent wanted but could not read, and why (e.g. dmesg restricted). */
export interface UnavailableSource {
  source: EvidenceSource | 'dmesg' | 'journalctl' | 'cgroup' | 'psi';
  why: string;
}

/** What the agent probed on the device. Versions are the string 'absent' when a module is missing. */
export interface DeviceFacts {
  /** /proc/device-tree/model, e.g. "Raspberry Pi 4 Model B Rev 1.4"; null where there is no device tree. */
  model: string | null;
  /** `uname -m`: the kernel's view, aarch64 even under a 32-bit userland on a Pi 4. */
  machine: string;
  /** `getconf LONG_BIT`: the userland's word size. */
  longBit: 32 | 64 | null;
  /** `dpkg --print-architecture`, null without dpkg. */
  dpkgArch: string | null;
  kernel: string;
  ramMb: number;
  swapMb: number;
  pageSize: number;
  memoryCgroup: 'v1' | 'v2' | 'none';
  /**
   * The memory limit of the cgroup the agent runs in (a capped local device, a
   * container), MiB; null when nothing caps it below the machine's RAM.
   */
  memoryLimitMb: number | null;
  /** What is still free under that limit when the facts were read, MiB; null without a limit. */
  memoryLimitFreeMb: number | null;
  dmesgRestrict: number | null;
  cpuModel: string | null;
  /** `vcgencmd get_throttled`, null where vcgencmd is absent. */
  throttled: string | null;
  /** True under QEMU/virt, or on a local capped host device that only stands in for a Pi. */
  emulated: boolean;
  /** How `emulated` was decided, e.g. "device-tree compatible linux,dummy-virt" or "local capped host". */
  emulation: string | null;
  versions: Record<RuntimeModule, string>;
}

export const RUNTIME_MODULES = [
  'python',
  'numpy',
  'tensorflow',
  'tflite_runtime',
  'ai_edge_litert',
  'pyarmnn',
] as const;
export type RuntimeModule = (typeof RUNTIME_MODULES)[number];

/** One sample of the memory timeline. Sizes in KiB, time in ms since the payload started. */
export interface MemorySample {
  t: number;
  /** Sums over the payload's process tree. */
  rssKb: number;
  anonKb: number;
  fileKb: number;
  /** Largest VmHWM over the tree at this instant. */
  hwmKb: number;
  /** System-wide. */
  availKb: number;
  swapUsedKb: number;
  /** Major page faults per second since the previous sample. */
  majfltPerS: number;
  /** /proc/pressure/memory "some avg10", where the kernel has PSI. */
  psiSome10?: number;
  /** cgroup memory usage (v2 memory.current, v1 memory.usage_in_bytes), where a memory cgroup exists. */
  cgroupKb?: number;
}

/** A phase the payload marked with `@@hil phase <name>`. */
export interface PhaseRecord {
  name: string;
  startMs: number;
  endMs: number;
  peakRssKb: number;
}

/**
 * How `memory.peakRssKb` was measured; recorded because the methods differ:
 * a child's ru_maxrss includes its parent's peak at fork, so the agent
 * measures from a small launcher or relies on VmHWM.
 */
export type PeakMethod = 'vmhwm' | 'launcher_rusage' | 'sampled_rss';

export interface MemoryMetrics {
  /** Peak resident set of the payload, KiB. */
  peakRssKb: number | null;
  peakMethod: PeakMethod | null;
  peakAnonKb: number | null;
  /** Peak of the sampled timeline alone, to compare with the kernel's high-water mark. */
  sampledPeakRssKb: number | null;
  /** cgroup peak (v2 memory.peak, v1 memory.max_usage_in_bytes) where present. */
  cgroupPeakKb: number | null;
  minAvailKb: number | null;
  sampleIntervalMs: number;
  samples: MemorySample[];
}

export interface Timing {
  /** ISO-8601 instants. */
  queuedAt: string;
  startedAt: string;
  endedAt: string;
  /**
   * The job as the controller saw it, from the device answering to the
   * record: the wait for the device (connectMs, bootMs) is not in it, so a
   * device's first job is comparable with its others.
   */
  wallMs: number;
  /** Waiting for the device's session in this job (0 when it was already open; includes a VM's boot). */
  connectMs: number | null;
  /** The part of connectMs a QEMU device spent booting (or warm-starting); null when no VM started for this job. */
  bootMs: number | null;
  /** Uploading the agent and payload. */
  deployMs: number | null;
  /** The payload process alone, as the agent measured it. */
  payloadMs: number | null;
}

/** The device as the inventory described it, snapshotted into each record (no secrets). */
export interface DeviceSnapshot {
  name: string;
  transport: 'ssh' | 'qemu' | 'local';
  model: string;
  ramMb: number;
  arch: Arch;
  tags: string[];
}

export const ARCHES = ['armhf', 'arm64', 'armel', 'amd64'] as const;
export type Arch = (typeof ARCHES)[number];

/** The verdict of a suite's expectation for this device class. */
export interface ExpectationVerdict {
  /** Outcomes the expectation allows. */
  allowed: Outcome[];
  /** The article's claim that the expectation tests. */
  claim: string;
  /** met: outcome allowed; unmet: not allowed; infra: infra_error, which never counts as a product result. */
  verdict: 'met' | 'unmet' | 'infra';
}

/** How much of one output stream the payload wrote, and how much of it the record keeps. */
export interface StreamBytes {
  written: number;
  /** Bytes of the tail kept in the record (`logs.stdoutTail` / `logs.stderrTail`). */
  kept: number;
}

export interface Logs {
  stdoutTail: string;
  stderrTail: string;
  /** Null when the payload never started (or an older agent); otherwise bytes written and kept per stream. */
  output: { stdout: StreamBytes; stderr: StreamBytes } | null;
  /** True when a stream wrote more than the record keeps. */
  truncated: boolean;
  /** Serial console excerpt (QEMU devices) for the job's time window. */
  console: string | null;
  /** Kernel log lines about OOM that name the payload's pid. */
  kernelOomLines: string[];
}

/** What the agent's session on the device went through; evidence that a job survived trouble. */
export interface AgentSession {
  /** The payload's pid (= its process group) on the device; null when it never started. */
  payloadPid: number | null;
  /** How often the controller re-attached after the SSH stream was lost. */
  reattached: number;
  /** Pids of the job still alive after the agent's clean-up (should be empty). */
  leftPids: number[];
}

export const RECORD_SCHEMA = 1;

export interface ResultRecord {
  schema: typeof RECORD_SCHEMA;
  runId: string;
  /** `<suite>.<device>`: stable across runs, used for Allure identity and baselines. */
  jobId: string;
  suite: string;
  device: DeviceSnapshot;
  outcome: Outcome;
  /** One sentence on why this outcome, e.g. "SIGKILL with a kernel OOM line naming pid 4242". */
  reason: string;
  evidence: Evidence[];
  unavailable: UnavailableSource[];
  /** The deadline fired while major faults or memory PSI were high. */
  thrashing: boolean;
  exit: { code: number | null; signal: string | null };
  timing: Timing;
  memory: MemoryMetrics;
  phases: PhaseRecord[];
  facts: DeviceFacts | null;
  /** Values the suite reported with `@@hil value <key> <json>`, e.g. tf_version, gpus, cpus, latency_p50_ms. */
  values: Record<string, string | number | boolean | null>;
  /** The suite's requirement probe; null when it never ran (the job ended before it). */
  probe: { ok: boolean; message: string } | null;
  expectation: ExpectationVerdict | null;
  logs: Logs;
  agent: AgentSession;
}
