/**
 * Joining the shards of one night into one run: one results.jsonl, one
 * run.json that lists the shards. Refuses, naming the files, what would make
 * the night's numbers wrong: the same job (and attempt) in two shards, a
 * shard missing, shards of different splits.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseShard } from '../run/plan.ts';
import type { ResultRecord } from './record.ts';
import { readResults, readRunMeta } from './read.ts';
import type { RunMeta, ShardPart } from './run-meta.ts';
import { RESULTS_FILE, RUN_META_FILE } from './store.ts';

export interface ShardRun {
  /** The folder as given, for messages. */
  dir: string;
  meta: RunMeta;
  records: ResultRecord[];
}

export class MergeError extends Error {
  override readonly name = 'MergeError';
}

export interface Merged {
  meta: RunMeta;
  records: ResultRecord[];
}

/** Read one shard's run folder (results.jsonl must read cleanly: a merged night must not lose a line quietly). */
export function readShardRun(dir: string): ShardRun {
  if (!existsSync(join(dir, RESULTS_FILE)) || !existsSync(join(dir, RUN_META_FILE))) {
    throw new MergeError(`${dir}: not a run folder (it needs ${RESULTS_FILE} and ${RUN_META_FILE})`);
  }
  return { dir, meta: readRunMeta(dir), records: readResults(dir) };
}

/** A harness failure outranks an interrupt, which outranks an unmet expectation, which outranks infrastructure. */
const EXIT_RANK = [4, 143, 130, 1, 3, 0];

function worstExit(codes: (number | null)[]): number | null {
  if (codes.some((c) => c === null)) return null;
  const known = codes as number[];
  return [...known].sort((a, b) => rank(a) - rank(b))[0] ?? null;
}

function rank(code: number): number {
  const i = EXIT_RANK.indexOf(code);
  return i === -1 ? -1 : i;
}

function shardOfRun(run: ShardRun): { index: number; count: number } | null {
  const spec = run.meta.selection.shard;
  if (spec === null || spec === undefined) return null;
  try {
    return parseShard(spec);
  } catch {
    throw new MergeError(`${join(run.dir, RUN_META_FILE)}: selection.shard is ${JSON.stringify(spec)}, not "i/n"`);
  }
}

/** Every shard i/n present once, all of one n; or none of them sharded. */
function checkShards(runs: readonly ShardRun[]): void {
  const shards = runs.map(shardOfRun);
  const sharded = runs.filter((_, i) => shards[i] !== null);
  if (sharded.length === 0) return;
  if (sharded.length !== runs.length) {
    const whole = runs.find((_, i) => shards[i] === null)!;
    throw new MergeError(`${join(whole.dir, RUN_META_FILE)} is a run without --shard, and ${join(sharded[0]!.dir, RUN_META_FILE)} is shard ${sharded[0]!.meta.selection.shard}: merge the shards of one night, or whole runs, not both`);
  }
  const count = shards[0]!.count;
  const other = runs.findIndex((_, i) => shards[i]!.count !== count);
  if (other !== -1) {
    throw new MergeError(`${join(runs[0]!.dir, RUN_META_FILE)} is shard ${runs[0]!.meta.selection.shard} and ${join(runs[other]!.dir, RUN_META_FILE)} is shard ${runs[other]!.meta.selection.shard}: shards of different splits`);
  }
  const byIndex = new Map<number, ShardRun>();
  runs.forEach((run, i) => {
    const index = shards[i]!.index;
    const first = byIndex.get(index);
    if (first) throw new MergeError(`shard ${index}/${count} given twice: ${join(first.dir, RUN_META_FILE)} and ${join(run.dir, RUN_META_FILE)}`);
    byIndex.set(index, run);
  });
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length) {
    const have = [...byIndex.keys()].sort((a, b) => a - b).map((i) => `${i}/${count} (${byIndex.get(i)!.dir})`);
    throw new MergeError(`shard${missing.length === 1 ? '' : 's'} ${missing.map((i) => `${i}/${count}`).join(', ')} missing: given ${have.join(', ')}`);
  }
}

/** Join shard runs into one; `runId` is the merged run's. Throws MergeError naming the files at fault. */
export function mergeRuns(runs: readonly ShardRun[], runId: string): Merged {
  if (runs.length === 0) throw new MergeError('no run folder given');
  checkShards(runs);
  const seen = new Map<string, string>();
  const records: ResultRecord[] = [];
  for (const run of runs) {
    for (const r of run.records) {
      const key = `${r.jobId}#${r.attempt.n}`;
      const first = seen.get(key);
      const file = join(run.dir, RESULTS_FILE);
      if (first) throw new MergeError(`job ${r.jobId}${r.attempt.n > 1 ? ` (attempt ${r.attempt.n})` : ''} is in both ${first} and ${file}: one device may be driven by one shard only`);
      seen.set(key, file);
      // One night, one run id; run.json keeps each shard's own.
      records.push({ ...r, runId });
    }
  }
  const metas = runs.map((r) => r.meta);
  const first = metas[0]!;
  const devices = new Map<string, RunMeta['inventory']['devices'][number]>();
  for (const m of metas) for (const d of m.inventory.devices) if (!devices.has(d.name)) devices.set(d.name, d);
  const thresholds = Object.assign({}, ...metas.map((m) => m.thresholds ?? {})) as NonNullable<RunMeta['thresholds']>;
  const shards: ShardPart[] = runs.map((r) => ({ runId: r.meta.runId, shard: r.meta.selection.shard ?? null, dir: basename(resolve(r.dir)), records: r.records.length, exitCode: r.meta.exitCode }));
  const ends = metas.map((m) => m.endedAt);
  const meta: RunMeta = {
    runId,
    startedAt: metas.map((m) => m.startedAt).sort()[0]!,
    endedAt: ends.some((e) => e === null) ? null : (ends as string[]).sort().at(-1)!,
    harnessVersion: first.harnessVersion,
    gitSha: first.gitSha,
    selection: { ...first.selection, shard: null },
    inventory: { file: first.inventory.file, devices: [...devices.values()] },
    jobs: metas.flatMap((m) => m.jobs),
    exitCode: worstExit(metas.map((m) => m.exitCode)),
    interrupted: metas.find((m) => m.interrupted !== null)?.interrupted ?? null,
    ...(Object.keys(thresholds).length ? { thresholds } : {}),
    shards,
  };
  return { meta, records };
}

/** Write a merged run to `outDir` (a new or empty folder): results.jsonl, then run.json. */
export function writeMerged(outDir: string, merged: Merged): void {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) throw new MergeError(`${outDir} is not empty: merge into a new folder`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, RESULTS_FILE), merged.records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  writeFileSync(join(outDir, RUN_META_FILE), `${JSON.stringify(merged.meta, null, 2)}\n`);
}
