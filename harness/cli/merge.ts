/**
 * `hil merge <run-dir>... --out <dir>`: join the shards of one night into one
 * run folder and rebuild its reports from the joined results. Exit 0 when
 * merged, 2 when the shards do not make one night (a job twice, a shard
 * missing) or on usage errors; the shard folders are never changed.
 */
import { resolve } from 'node:path';
import { UsageError } from '../config/diagnostics.ts';
import { MergeError, mergeRuns, readShardRun, writeMerged } from '../results/merge.ts';
import { ResultsFormatError } from '../results/read.ts';
import { newRunId } from '../results/store.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';

export const MERGE_SPEC: CommandSpec = {
  name: 'merge',
  summary: 'Join the shard runs of one night into one run folder (one results.jsonl, one run.json listing the shards) and rebuild its reports.',
  usage: 'hil merge <run-dir>... --out <dir> [--no-allure] [--no-report]',
  positionals: { min: 1, max: 1000, names: 'the run folders of the shards, e.g. shard-1/<run-id> shard-2/<run-id>' },
  options: {
    out: { type: 'string', short: 'o', arg: 'dir', help: 'the merged run folder (new or empty)' },
    'run-id': { type: 'string', arg: 'id', help: 'the merged run id (default: a new one)' },
    'no-allure': { type: 'boolean', help: 'skip the Allure results and report' },
    'no-report': { type: 'boolean', help: 'write the merged results only' },
  },
};

/** Merge and write; returns the merged run folder. Throws MergeError or ResultsFormatError. */
export function mergeInto(dirs: readonly string[], out: string, runId: string = newRunId()): string {
  const merged = mergeRuns(dirs.map(readShardRun), runId);
  const dir = resolve(out);
  writeMerged(dir, merged);
  process.stderr.write(`hil merge: ${merged.records.length} record(s) from ${dirs.length} run(s) (${merged.meta.shards?.map((s) => s.shard ?? s.runId).join(', ')}) → ${dir}\n`);
  return dir;
}

export async function mergeCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommand(MERGE_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(MERGE_SPEC));
    return 0;
  }
  const out = values['out'];
  if (typeof out !== 'string') throw new UsageError('--out', '(nothing)', 'the merged run folder, e.g. --out reports/nights/2026-11-24');
  let dir: string;
  try {
    dir = mergeInto(positionals, out, typeof values['run-id'] === 'string' ? values['run-id'] : undefined);
  } catch (err) {
    if (err instanceof MergeError || err instanceof ResultsFormatError) {
      process.stderr.write(`hil merge: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (values['no-report'] === true) return 0;
  const { writeReports } = await import('../report/index.ts');
  const summary = await writeReports(dir, { allure: values['no-allure'] !== true });
  for (const w of summary.warnings) process.stderr.write(`hil merge: warning: ${w}\n`);
  for (const p of Object.values(summary.paths)) if (p) process.stdout.write(`${p}\n`);
  if (summary.allureError) {
    process.stderr.write(`hil merge: the Allure report was not generated: ${summary.allureError}\n`);
    return 1;
  }
  return 0;
}
