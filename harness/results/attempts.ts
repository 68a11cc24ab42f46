/**
 * A job may have two records: an infra_error attempt and the retry after its
 * device was recovered. Verdicts, exit codes and the comparison page go by
 * the last attempt of each job; Allure gets every attempt (it shows the
 * earlier ones as retries of the same test).
 */
import type { ResultRecord } from './record.ts';

/** The last attempt of each job, in the order the jobs first appear. */
export function finalAttempts(records: readonly ResultRecord[]): ResultRecord[] {
  const last = new Map<string, ResultRecord>();
  for (const r of records) {
    const seen = last.get(r.jobId);
    if (!seen || r.attempt.n >= seen.attempt.n) last.set(r.jobId, r);
  }
  return [...last.values()];
}
