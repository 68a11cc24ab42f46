/** run.json: what a run was, beside its results.jsonl. */
import type { DeviceSnapshot } from './record.ts';

export interface RunMeta {
  runId: string;
  startedAt: string;
  endedAt: string | null;
  harnessVersion: string;
  gitSha: string | null;
  /** What was asked for on the command line. */
  selection: { devices: string[]; tags: string[]; suites: string[]; shard: string | null; concurrency: number };
  /** The inventory as loaded, secrets removed (a password is only ever an env var's name anyway). */
  inventory: { file: string; devices: (DeviceSnapshot & { target: string })[] };
  /** Planned jobs, so a reader can tell finished from never-started. */
  jobs: string[];
  exitCode: number | null;
  interrupted: 'SIGINT' | 'SIGTERM' | null;
}
