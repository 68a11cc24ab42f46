/**
 * The crash-safe result store: reports/runs/<run-id>/results.jsonl gets one
 * record per job, appended and fsync'd the moment the job ends, so a
 * controller crash loses no finished job. run.json describes the run.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ResultRecord } from './record.ts';
import type { RunMeta } from './run-meta.ts';

export const RESULTS_FILE = 'results.jsonl';
export const RUN_META_FILE = 'run.json';

/** Sortable and unique enough for parallel CI shards: 20261124-173012-a3f9. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

export class RunStore {
  private fd: number | null;
  private count = 0;

  private constructor(
    readonly dir: string,
    private meta: RunMeta,
  ) {
    this.fd = openSync(join(dir, RESULTS_FILE), 'a', 0o644);
    this.writeMeta();
  }

  static create(root: string, meta: RunMeta): RunStore {
    const dir = join(root, meta.runId);
    mkdirSync(dir, { recursive: true });
    return new RunStore(dir, meta);
  }

  get recordCount(): number {
    return this.count;
  }

  /** Append one record and flush it to disk before returning. */
  append(record: ResultRecord): void {
    if (this.fd === null) throw new Error(`result store ${this.dir} is closed`);
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    fsyncSync(this.fd);
    this.count++;
  }

  /** Record the end of the run (stop time, exit code) and close the file. */
  finish(update: Pick<RunMeta, 'endedAt' | 'exitCode' | 'interrupted' | 'interruption'>): void {
    this.meta = { ...this.meta, ...update };
    this.writeMeta();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** run.json is replaced atomically, so a reader never sees half of it. */
  private writeMeta(): void {
    const tmp = join(this.dir, `.${RUN_META_FILE}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(this.meta, null, 2)}\n`);
    renameSync(tmp, join(this.dir, RUN_META_FILE));
  }
}
