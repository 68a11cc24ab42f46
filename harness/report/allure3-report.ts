/**
 * A run's Allure 3 report: allure-results as for Allure 2, the previous run's
 * JSONL history carried into this run's file, the known issues derived from
 * the records' expectations, then `allure generate` on Node.
 */
import { copyFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { executorFor, writeAllureResults } from './allure.ts';
import { allure3Generate, historyLength, knownIssueRules } from './allure3.ts';
import type { LoadedInput, ReportOptions } from './index.ts';

/** Beside results.jsonl: the history Allure 3 appends to, and the known issues it wrote. */
export const ALLURE3_HISTORY = 'allure-history.jsonl';
export const ALLURE3_KNOWN_ISSUES = 'allure-known-issues.json';

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** The history file of the latest earlier sibling run (run ids sort by time) that has one. */
export async function findPreviousHistory3(runDir: string): Promise<string | null> {
  const self = basename(runDir);
  const earlier = (await readdir(dirname(runDir)).catch(() => [] as string[])).filter((n) => n < self).sort().reverse();
  for (const name of earlier) {
    const file = join(dirname(runDir), name, ALLURE3_HISTORY);
    if (await isFile(file)) return file;
  }
  return null;
}

/** Start this run's history from the previous one; false when there is none to carry. */
export async function carryHistory3(previous: string, historyFile: string): Promise<boolean> {
  if (!(await isFile(previous))) return false;
  if (resolve(previous) !== resolve(historyFile)) await copyFile(previous, historyFile);
  return true;
}

export async function writeAllure3(
  dir: string,
  input: LoadedInput,
  options: ReportOptions,
  warnings: string[],
): Promise<{ allureError: string | null; results: string; report: string | null }> {
  const env = options.env ?? process.env;
  const results = join(dir, 'allure-results');
  const report = join(dir, 'allure-report');
  const history = join(dir, ALLURE3_HISTORY);
  const previous = options.previousHistory ?? (options.baseline ? join(resolve(options.baseline), ALLURE3_HISTORY) : ((await findPreviousHistory3(dir)) ?? undefined));
  if (previous && !(await carryHistory3(previous, history))) warnings.push(`no Allure 3 history at ${previous}; the trend starts afresh`);
  if (options.singleFile) warnings.push('--single-file applies to Allure 2 only; the Allure 3 report is a folder');
  await writeAllureResults(results, input.meta, input.attempts, executorFor(env, input.meta.runId, (await historyLength(history)) + 1));
  try {
    await allure3Generate(results, report, {
      name: `pi-hil ${input.meta.runId}`,
      historyFile: history,
      knownIssuesFile: join(dir, ALLURE3_KNOWN_ISSUES),
      rules: knownIssueRules(input.records),
      env,
    });
    return { allureError: null, results, report };
  } catch (err) {
    return { allureError: (err as Error).message, results, report: null };
  }
}
