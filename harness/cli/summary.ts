/**
 * The few lines that end `hil run` and `hil nightly`, for a person or a CI
 * log to read at a glance: how the jobs ended, what needs a look, what got
 * worse since the baseline, the slowest job, the exit code and what it
 * means, and where the comparison page is.
 */
import { OUTCOMES, type ResultRecord } from '../results/record.ts';
import { verdictLabel } from '../report/cell.ts';
import type { RunDiff } from '../report/diff.ts';
import { formatMs } from '../report/format.ts';

/** What `hil run`'s exit codes mean (`hil nightly` passes its own). */
export const RUN_EXIT_MEANINGS: Record<number, string> = {
  0: 'every job met its expectation',
  1: 'a job did not meet its expectation',
  2: 'bad configuration or usage',
  3: 'only infrastructure failed',
  4: 'the harness itself failed',
  130: 'interrupted (SIGINT); finished results are kept',
  143: 'interrupted (SIGTERM); finished results are kept',
};

export interface SummaryInput {
  /** "hil run 20261124-…" or "hil nightly finish": what the summary is of. */
  title: string;
  /** The last attempt of each job. */
  records: readonly ResultRecord[];
  /** Planned jobs, when known: those without a record are said. */
  planned?: number;
  diff: RunDiff | null;
  exitCode: number;
  meanings?: Record<number, string>;
  /** compare.html, or null when no report was written. */
  compareHtml: string | null;
}

/** At most this many regressions by name; the page has them all. */
const LISTED = 5;

export function renderSummary(s: SummaryInput): string {
  const lines: string[] = [`── ${s.title}: summary ──`];
  const outcomes = OUTCOMES.map((o) => [o, s.records.filter((r) => r.outcome === o).length] as const).filter(([, n]) => n > 0);
  const missing = s.planned !== undefined && s.planned > s.records.length ? `; ${s.planned - s.records.length} planned job(s) without a record` : '';
  lines.push(`outcomes:    ${outcomes.map(([o, n]) => `${n} ${o}`).join(', ') || 'no job recorded'}${missing}`);
  const v = { expected: 0, unexpected: 0, infra: 0, other: 0 };
  for (const r of s.records) {
    const key = verdictLabel(r).key;
    if (key === 'expected' || key === 'unexpected' || key === 'infra') v[key] += 1;
    else v.other += 1;
  }
  lines.push(`verdicts:    ${v.expected} as expected, ${v.unexpected} unexpected, ${v.infra} infrastructure${v.other ? `, ${v.other} other (never probed, not installed or no expectation)` : ''}`);
  if (s.diff) {
    const n = s.diff.regressions.length;
    lines.push(`regressions: ${n} against ${s.diff.baselineRunId}${n ? ':' : ''}`);
    for (const r of s.diff.regressions.slice(0, LISTED)) lines.push(`  - ${r.jobId}: ${r.why}`);
    if (n > LISTED) lines.push(`  … and ${n - LISTED} more on the comparison page`);
  }
  const slowest = [...s.records].sort((a, b) => b.timing.wallMs - a.timing.wallMs)[0];
  if (slowest) lines.push(`slowest:     ${slowest.jobId} ${formatMs(slowest.timing.wallMs)} (${slowest.outcome})`);
  const meaning = (s.meanings ?? RUN_EXIT_MEANINGS)[s.exitCode] ?? 'see the documentation';
  lines.push(`exit ${s.exitCode}:      ${meaning}`);
  lines.push(`report:      ${s.compareHtml ?? 'not written (rebuild it with `hil report <run-dir>`)'}`);
  return `${lines.join('\n')}\n`;
}
