/** run.json: what a run was, beside its results.jsonl. */
import type { DeviceSnapshot, ParamValue } from './record.ts';
import type { ThresholdOverride } from '../config/thresholds.ts';

export interface RunMeta {
  runId: string;
  startedAt: string;
  endedAt: string | null;
  harnessVersion: string;
  gitSha: string | null;
  /** What was asked for on the command line. */
  selection: RunSelection;
  /** The inventory as loaded, secrets removed (a password is only ever an env var's name anyway). */
  inventory: { file: string; devices: (DeviceSnapshot & { target: string })[] };
  /** Planned jobs, so a reader can tell finished from never-started. */
  jobs: string[];
  exitCode: number | null;
  /** The signal that stopped the run (the first SIGINT or SIGTERM); null when none came. */
  interrupted: InterruptSignal | null;
  /** What the interrupt led to. Absent when no signal came (and in runs recorded before it existed). */
  interruption?: Interruption;
  /** The suites' own `thresholds:` blocks, by suite; absent when none has one (and in older runs). */
  thresholds?: Record<string, ThresholdOverride>;
  /** Set by `hil merge`: the shard runs this run was joined from. */
  shards?: ShardPart[];
}

export interface RunSelection {
  devices: string[];
  tags: string[];
  suites: string[];
  shard: string | null;
  concurrency: number;
  /**
   * Suite parameters given on the command line, each with its values as parsed:
   * `hil run --param`, or the values `hil envelope --fix` held. Empty: every
   * parameter at its default. Absent in runs recorded before parameters existed.
   */
  params?: Record<string, ParamValue[]>;
  /** `hil envelope` only: the parameter it searched and how. */
  envelope?: { param: string; from: number; to: number; factor: number; resolution: number };
}

/** One shard of a merged run, as `hil merge` found it. */
export interface ShardPart {
  runId: string;
  /** "i/n" as the shard's run.json said, or null for a run without --shard. */
  shard: string | null;
  /** The folder it was read from, by name (never a machine path). */
  dir: string;
  records: number;
  exitCode: number | null;
}

export type InterruptSignal = 'SIGINT' | 'SIGTERM';

export interface Interruption {
  /** Every SIGINT and SIGTERM the controller received, in order. */
  signals: InterruptSignal[];
  /**
   * `waited`: the running jobs were stopped on their devices, recorded, and the
   * connections closed before the exit. `abandoned`: a second signal made the
   * controller exit without waiting for that clean-up, so the jobs in
   * `unfinishedJobs` have no record and may have left processes or workdirs on
   * their devices.
   */
  remoteCleanup: 'waited' | 'abandoned';
  /** Jobs that had started when the controller stopped and have no record. */
  unfinishedJobs: string[];
}
