/** What a matrix cell says about one job, shared by the HTML page and its Markdown twin. */
import type { ResultRecord } from '../results/record.ts';
import { notInstalled, testStatus } from './test-status.ts';

export interface VerdictLabel {
  key: 'expected' | 'unexpected' | 'infra' | 'skipped' | 'notinstalled' | 'none';
  text: string;
  /** Terminal/Markdown marker. */
  mark: string;
}

export function verdictLabel(r: ResultRecord): VerdictLabel {
  const status = testStatus(r);
  if (status === 'broken') return { key: 'infra', text: 'infrastructure', mark: '⚠️' };
  if (status === 'skipped') return { key: 'skipped', text: 'never probed', mark: '⏭️' };
  // Not tried is its own group: "as expected" would read as a result. Where
  // the expectation wanted a result, it stays unexpected, so it still gets a look.
  if (notInstalled(r) && status === 'passed') return { key: 'notinstalled', text: 'not installed', mark: '➖' };
  if (notInstalled(r) && r.expectation) return { key: 'unexpected', text: `not installed, unexpected (expected ${r.expectation.allowed.join(' or ')})`, mark: '❌' };
  if (!r.expectation) return { key: 'none', text: status === 'passed' ? 'no expectation, ran' : 'no expectation', mark: status === 'passed' ? '✅' : '❌' };
  return status === 'passed'
    ? { key: 'expected', text: 'as expected', mark: '✅' }
    : { key: 'unexpected', text: `unexpected (expected ${r.expectation.allowed.join(' or ')})`, mark: '❌' };
}

/** Anchor id of a job's timeline figure; jobIds are safe words, but keep ids strictly safe. */
export function jobAnchor(jobId: string): string {
  return `job-${jobId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}
