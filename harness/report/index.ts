/**
 * Rebuilds every report of a run from its stored records: compare.html,
 * compare.md, junit.xml, allure-results/ and allure-report/. A failing Allure
 * step (no Java, say) never stops the other reports from being written.
 */
import { stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { ResultRecord } from '../results/record.ts';
import { finalAttempts } from '../results/attempts.ts';
import { readResultsTolerant, readRunMeta, type ResultsFormatError } from '../results/read.ts';
import { renderCompareHtml, type ReportInput, type UnreadableLine } from './compare.ts';
import { diffRuns, type RunDiff } from './diff.ts';
import { resolvePolicy, type ThresholdsFile } from '../config/thresholds.ts';
import { renderJunit } from './junit.ts';
import { renderMarkdown } from './markdown.ts';
import { testStatus, type TestStatus } from './test-status.ts';

export { renderTap } from './tap.ts';
export { renderMarkdown } from './markdown.ts';
export { renderCompareHtml, type ReportInput, type UnreadableLine } from './compare.ts';
export { renderJunit } from './junit.ts';

export interface ReportOptions {
  /** A previous run dir to diff against. */
  baseline?: string;
  /** `allure generate --single-file`: one self-contained index.html. */
  singleFile?: boolean;
  /** Write Allure results and generate the report (default true). */
  allure?: boolean;
  /**
   * The previous allure-report folder, whose history/ carries the trend on.
   * Default: <baseline>/allure-report, else the latest earlier sibling run's report.
   */
  previousReport?: string;
  /** 2 (default): allure-commandline, Java. 3: the `allure` package on Node, history in a JSONL file. */
  allureVersion?: 2 | 3;
  /**
   * Allure 3: the previous run's JSONL history file, copied to this run's
   * before generating. Default: the baseline's, else the latest earlier sibling run's.
   */
  previousHistory?: string;
  /** A `--thresholds` file, over the defaults and the suites' own blocks. */
  thresholds?: ThresholdsFile | null;
  /** Environment for executor.json and Java lookup (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ReportSummary {
  runId: string;
  records: number;
  statuses: Record<TestStatus, number>;
  diff: RunDiff | null;
  paths: {
    compareHtml: string;
    compareMd: string;
    junit: string;
    allureResults: string | null;
    allureReport: string | null;
  };
  /** Set when the Allure report could not be generated; the other reports were written. */
  allureError: string | null;
  warnings: string[];
}

export interface LoadedInput extends ReportInput {
  /** Every attempt, retries' first tries included (Allure shows them as retries); `records` holds the last of each job. */
  attempts: ResultRecord[];
  unreadable: UnreadableLine[];
  /** The same lines as errors naming the file as given, for warnings on a terminal. */
  bad: ResultsFormatError[];
}

/**
 * Read a run dir (and its baseline) into what the page and the Markdown
 * render. Unreadable lines are left out and named, so a run that crashed
 * mid-write still gets its reports; NoReadableRecordsError when no line of a
 * results file reads.
 */
export function loadReportInput(runDir: string, baseline?: string, thresholds: ThresholdsFile | null = null): LoadedInput {
  const own = readResultsTolerant(runDir);
  const meta = readRunMeta(runDir);
  const base = baseline ? readResultsTolerant(baseline) : null;
  const records = finalAttempts(own.records);
  // The suites' thresholds are this run's, as run.json recorded them.
  const diff = base ? diffRuns(records, finalAttempts(base.records), resolvePolicy(thresholds, meta.thresholds ?? {})) : null;
  // The page lives in the run dir: name a file by its run, never by where this machine keeps it.
  const shown = (dir: string, errors: ResultsFormatError[]) =>
    errors.map((e) => ({ file: `${basename(resolve(dir))}/results.jsonl`, line: e.line, why: e.field ? `${e.field}: ${e.problem}` : e.problem }));
  const unreadable = [...shown(runDir, own.bad), ...(base && baseline ? shown(baseline, base.bad) : [])];
  return { meta, records, attempts: own.records, diff, unreadable, bad: [...own.bad, ...(base?.bad ?? [])] };
}

/** One warning per unreadable line: "<file>:<line>: <why>; left out of the reports". */
export function unreadableWarnings(input: LoadedInput): string[] {
  return input.bad.map((e) => `${e.message}; this line is left out of the reports`);
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

export async function writeReports(runDir: string, options: ReportOptions = {}): Promise<ReportSummary> {
  const dir = resolve(runDir);
  const input = loadReportInput(dir, options.baseline, options.thresholds);
  const warnings: string[] = unreadableWarnings(input);
  if (input.records.length === 0) warnings.push(`${join(dir, 'results.jsonl')} holds no records`);
  const recorded = new Set(input.records.map((r) => r.jobId));
  const missing = input.meta.jobs.filter((j) => !recorded.has(j));
  if (missing.length) warnings.push(`${missing.length} planned job(s) have no record: ${missing.join(', ')}`);

  const paths: ReportSummary['paths'] = {
    compareHtml: join(dir, 'compare.html'),
    compareMd: join(dir, 'compare.md'),
    junit: join(dir, 'junit.xml'),
    allureResults: null,
    allureReport: null,
  };
  await writeFile(paths.compareHtml, renderCompareHtml(input));
  await writeFile(paths.compareMd, renderMarkdown(input));
  await writeFile(paths.junit, renderJunit(input.records, input.meta.runId));

  let allureError: string | null = null;
  // The Allure writers load only when asked for: a report without Allure starts that much sooner.
  if (options.allure !== false && options.allureVersion === 3) {
    const { writeAllure3 } = await import('./allure3-report.ts');
    ({ allureError, results: paths.allureResults, report: paths.allureReport } = await writeAllure3(dir, input, options, warnings));
  } else if (options.allure !== false) {
    const { writeAllureResults, executorFor } = await import('./allure.ts');
    const { allureGenerate, carryHistory, findPreviousReport, trendLength } = await import('./allure-generate.ts');
    const env = options.env ?? process.env;
    const results = join(dir, 'allure-results');
    const report = join(dir, 'allure-report');
    const previous =
      options.previousReport ?? (options.baseline ? join(resolve(options.baseline), 'allure-report') : ((await findPreviousReport(dir)) ?? undefined));
    const order = previous ? (await trendLength(previous)) + 1 : 1;
    await writeAllureResults(results, input.meta, input.attempts, executorFor(env, input.meta.runId, order));
    paths.allureResults = results;
    if (previous && !(await carryHistory(previous, results))) {
      warnings.push(`no history in ${previous}; the Allure trend starts afresh`);
    }
    try {
      await allureGenerate(results, report, { singleFile: options.singleFile ?? false, env });
      paths.allureReport = report;
      if (options.singleFile) warnings.push('a --single-file report keeps no history/ folder, so the next run cannot carry this trend on');
    } catch (err) {
      allureError = (err as Error).message;
    }
  }
  const statuses: Record<TestStatus, number> = { passed: 0, failed: 0, broken: 0, skipped: 0 };
  for (const r of input.records) statuses[testStatus(r)] += 1;
  if (options.previousReport && !(await isDir(options.previousReport))) warnings.push(`previous report ${options.previousReport} does not exist`);
  return { runId: input.meta.runId, records: input.records.length, statuses, diff: input.diff, paths, allureError, warnings };
}
