/**
 * A run against its baseline: which outcomes changed, and what got worse
 * (regressions.ts decides that). Jobs match by device, suite and params
 * (comparisonKey), stable across runs.
 */
import type { Outcome, ResultRecord } from '../results/record.ts';
import { DEFAULT_THRESHOLDS, type ThresholdPolicy, type Thresholds } from '../config/thresholds.ts';
import { comparisonKey, findRegressions, type MetricRegression, type Regression } from './regressions.ts';

export { DEFAULT_THRESHOLDS, type Thresholds, type ThresholdPolicy };
export type { Regression, MetricRegression };

export interface OutcomeChange {
  jobId: string;
  before: Outcome;
  after: Outcome;
  /** worse: passed before, not now; better: the reverse; infra: either side is infra_error (never a product regression). */
  kind: 'worse' | 'better' | 'changed' | 'infra';
}

export interface RunDiff {
  baselineRunId: string;
  changes: OutcomeChange[];
  /** What got worse, outcome regressions first: the nightly's verdict. */
  regressions: Regression[];
  /** Time rises between emulated runs over the threshold: shown, never counted. */
  emulatedTime: MetricRegression[];
  added: string[];
  removed: string[];
  /** The thresholds for suites without their own. */
  thresholds: Thresholds;
  policy: ThresholdPolicy;
}

function changeKind(before: Outcome, after: Outcome): OutcomeChange['kind'] {
  if (before === 'infra_error' || after === 'infra_error') return 'infra';
  if (before === 'passed') return 'worse';
  if (after === 'passed') return 'better';
  return 'changed';
}

/** `thresholds`: one set for every suite, or a night's policy with per-suite sets. */
export function diffRuns(current: ResultRecord[], baseline: ResultRecord[], thresholds: Thresholds | ThresholdPolicy = DEFAULT_THRESHOLDS): RunDiff {
  const policy: ThresholdPolicy = 'base' in thresholds ? thresholds : { base: thresholds, suites: {} };
  const base = new Map(baseline.map((r) => [comparisonKey(r), r]));
  const now = new Set(current.map(comparisonKey));
  const found = findRegressions(current, baseline, policy);
  const changes: OutcomeChange[] = [];
  for (const r of current) {
    const b = base.get(comparisonKey(r));
    if (b && b.outcome !== r.outcome) changes.push({ jobId: r.jobId, before: b.outcome, after: r.outcome, kind: changeKind(b.outcome, r.outcome) });
  }
  const order = { outcome: 0, memory: 1, time: 2 } as const;
  return {
    baselineRunId: baseline[0]?.runId ?? 'baseline',
    changes,
    regressions: [...found.regressions].sort((a, b) => order[a.rule] - order[b.rule]),
    emulatedTime: found.emulatedTime,
    added: current.filter((r) => !base.has(comparisonKey(r))).map((r) => r.jobId),
    removed: baseline.filter((r) => !now.has(comparisonKey(r))).map((r) => r.jobId),
    thresholds: policy.base,
    policy,
  };
}
