/**
 * `hil report <run-dir>`: rebuild a run's reports from its results.jsonl.
 * `--format md` and `--reporter tap` print to stdout instead, for CI
 * summaries and TAP consumers. A line that cannot be read (a crash mid-write
 * tears the last one) is named in a warning and left out; the reports are
 * built from the rest. Exit 0 when written, 1 when the Allure report could
 * not be generated (the rest was), 2 on usage errors or when no record of a
 * results file could be read.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../config/diagnostics.ts';
import { NoReadableRecordsError, ResultsFormatError, readResultsTolerant } from '../results/read.ts';
import { loadReportInput, renderMarkdown, renderTap, unreadableWarnings, writeReports } from '../report/index.ts';
import { loadThresholdsFile } from '../config/thresholds.ts';
import { regressionLines, stepSummaryMarkdown, thresholdLines } from '../report/regressions-section.ts';
import type { RunDiff } from '../report/diff.ts';
import { allureVersion, helpText, parseCommand, type CommandSpec } from './args.ts';

const SPEC: CommandSpec = {
  name: 'report',
  summary: 'Rebuild the reports of a run (comparison page, Markdown, JUnit, Allure) from its stored results.',
  usage: 'hil report <run-dir> [--baseline DIR] [--thresholds FILE] [--format html|md] [--reporter tap] [--single-file] [--no-allure] [--allure 2|3]',
  positionals: { min: 1, max: 1, names: 'one run dir, e.g. reports/runs/<run-id>' },
  options: {
    baseline: { type: 'string', arg: 'run-dir', help: 'diff against this earlier run (outcome changes, memory/time regressions)' },
    thresholds: { type: 'string', arg: 'file', help: 'regression thresholds (YAML: memory_pct, memory_min_mb, time_pct, time_min_ms, suites)' },
    format: { type: 'string', arg: 'html|md', help: 'html (default): write all reports; md: print the Markdown summary to stdout' },
    reporter: { type: 'string', arg: 'tap', help: 'tap: print a TAP 14 stream of the results to stdout' },
    'single-file': { type: 'boolean', help: 'make the Allure report one self-contained index.html' },
    'no-allure': { type: 'boolean', help: 'skip the Allure results and report' },
    allure: { type: 'string', arg: '2|3', help: 'Allure 2 (default; Java) or Allure 3 (Node; history in allure-history.jsonl)' },
    'previous-report': { type: 'string', arg: 'dir', help: "an earlier allure-report whose history carries the trend (default: the baseline's)" },
  },
};

function requireRunDir(option: string, dir: string): void {
  if (!existsSync(join(dir, 'results.jsonl'))) throw new UsageError(option, dir, 'a run dir holding results.jsonl', 'not a run dir');
}

export async function reportCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals, help } = parseCommand(SPEC, argv);
    if (help) {
      process.stdout.write(helpText(SPEC));
      return 0;
    }
    const runDir = positionals[0]!;
    const baseline = typeof values.baseline === 'string' ? values.baseline : undefined;
    const format = values.format ?? 'html';
    if (format !== 'html' && format !== 'md') throw new UsageError('--format', String(format), 'html, md');
    if (values.reporter !== undefined && values.reporter !== 'tap') throw new UsageError('--reporter', String(values.reporter), 'tap');
    requireRunDir('<run-dir>', runDir);
    if (baseline) requireRunDir('--baseline', baseline);
    const thresholds = typeof values.thresholds === 'string' ? loadThresholdsFile(values.thresholds) : null;

    // Warnings go to stderr, so stdout stays a clean TAP stream or Markdown document.
    const warn = (w: string) => process.stderr.write(`hil report: warning: ${w}\n`);
    if (values.reporter === 'tap') {
      const { records, bad } = readResultsTolerant(runDir);
      for (const e of bad) warn(`${e.message}; this line is left out of the TAP stream`);
      process.stdout.write(renderTap(records));
      return 0;
    }
    if (format === 'md') {
      const input = loadReportInput(runDir, baseline, thresholds);
      unreadableWarnings(input).forEach(warn);
      process.stdout.write(renderMarkdown(input));
      return 0;
    }
    const summary = await writeReports(runDir, {
      ...(baseline ? { baseline } : {}),
      thresholds,
      singleFile: values['single-file'] === true,
      allure: values['no-allure'] !== true,
      allureVersion: allureVersion(values.allure),
      ...(typeof values['previous-report'] === 'string' ? { previousReport: values['previous-report'] } : {}),
    });
    summary.warnings.forEach(warn);
    const s = summary.statuses;
    process.stderr.write(`hil report ${summary.runId}: ${summary.records} jobs: ${s.passed} passed, ${s.failed} failed, ${s.broken} broken, ${s.skipped} skipped\n`);
    if (summary.diff) {
      printRegressions(summary.diff);
      writeStepSummary(summary.runId, summary.diff);
    }
    for (const p of Object.values(summary.paths)) if (p) process.stdout.write(`${p}\n`);
    if (summary.allureError) {
      process.stderr.write(`hil report: the Allure report was not generated: ${summary.allureError}\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`hil report: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ResultsFormatError || err instanceof NoReadableRecordsError) {
      process.stderr.write(`hil report: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** The regressions and the thresholds they were held to, on stderr (stdout lists the written files). */
export function printRegressions(diff: RunDiff, out: NodeJS.WritableStream = process.stderr): void {
  const n = diff.regressions.length;
  out.write(`hil report: ${n} regression${n === 1 ? '' : 's'} against ${diff.baselineRunId}${n ? ':' : ''}\n`);
  for (const line of regressionLines(diff)) out.write(`  ${line}\n`);
  out.write(`hil report: thresholds: ${thresholdLines(diff).join('; ')}\n`);
}

/** GitHub Actions shows $GITHUB_STEP_SUMMARY on the run's page; appended, as other steps may write to it too. */
export function writeStepSummary(runId: string, diff: RunDiff, env: NodeJS.ProcessEnv = process.env): void {
  const file = env['GITHUB_STEP_SUMMARY'];
  if (file) appendFileSync(file, stepSummaryMarkdown(runId, diff));
}
