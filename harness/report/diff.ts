/**
 * A run against its baseline: which outcomes changed, and which jobs got
 * heavier or slower beyond a threshold. Jobs match by device, suite and
 * params (baselineKey), stable across runs.
 */
import { jobIdOf, type Outcome, type ResultRecord } from '../results/record.ts';

/** What a job is matched on against the baseline: device, suite and the params it was given. */
export function baselineKey(r: Pick<ResultRecord, 'suite' | 'device' | 'params'>): string {
  return jobIdOf(r.suite, r.device.name, r.params);
}

export interface Thresholds {
  /** Flag a peak-memory rise above this many percent (and above `memoryFloorKb`). */
  memoryPct: number;
  /** Flag a time rise above this many percent (and above `timeFloorMs`). */
  timePct: number;
  /** Ignore changes smaller than these: noise on a busy Pi. */
  memoryFloorKb: number;
  timeFloorMs: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { memoryPct: 15, timePct: 25, memoryFloorKb: 8 * 1024, timeFloorMs: 1000 };

export interface OutcomeChange {
  jobId: string;
  before: Outcome;
  after: Outcome;
  /** worse: passed before, not now; better: the reverse; infra: either side is infra_error (never a product regression). */
  kind: 'worse' | 'better' | 'changed' | 'infra';
}

export interface Regression {
  jobId: string;
  metric: 'peak memory' | 'payload time' | 'wall time';
  before: number;
  after: number;
  unit: 'kb' | 'ms';
}

export interface RunDiff {
  baselineRunId: string;
  changes: OutcomeChange[];
  regressions: Regression[];
  added: string[];
  removed: string[];
  thresholds: Thresholds;
}

function changeKind(before: Outcome, after: Outcome): OutcomeChange['kind'] {
  if (before === 'infra_error' || after === 'infra_error') return 'infra';
  if (before === 'passed') return 'worse';
  if (after === 'passed') return 'better';
  return 'changed';
}

function over(before: number, after: number, pct: number, floor: number): boolean {
  return after - before > floor && after > before * (1 + pct / 100);
}

export function diffRuns(current: ResultRecord[], baseline: ResultRecord[], thresholds: Thresholds = DEFAULT_THRESHOLDS): RunDiff {
  const base = new Map(baseline.map((r) => [baselineKey(r), r]));
  const now = new Set(current.map(baselineKey));
  const diff: RunDiff = {
    baselineRunId: baseline[0]?.runId ?? 'baseline',
    changes: [],
    regressions: [],
    added: current.filter((r) => !base.has(baselineKey(r))).map((r) => r.jobId),
    removed: baseline.filter((r) => !now.has(baselineKey(r))).map((r) => r.jobId),
    thresholds,
  };
  for (const r of current) {
    const b = base.get(baselineKey(r));
    if (!b) continue;
    if (b.outcome !== r.outcome) {
      diff.changes.push({ jobId: r.jobId, before: b.outcome, after: r.outcome, kind: changeKind(b.outcome, r.outcome) });
      // Memory and time of different outcomes measure different things.
      continue;
    }
    const [bm, am] = [b.memory.peakRssKb, r.memory.peakRssKb];
    if (bm !== null && am !== null && over(bm, am, thresholds.memoryPct, thresholds.memoryFloorKb)) {
      diff.regressions.push({ jobId: r.jobId, metric: 'peak memory', before: bm, after: am, unit: 'kb' });
    }
    // A throttled Pi ran slower: its times are no regression, nor a baseline for one.
    if (!b.timing.trusted || !r.timing.trusted) continue;
    const [bp, ap] = [b.timing.payloadMs, r.timing.payloadMs];
    const payload = bp !== null && ap !== null;
    const [bt, at] = payload ? [bp, ap] : [b.timing.wallMs, r.timing.wallMs];
    if (over(bt, at, thresholds.timePct, thresholds.timeFloorMs)) {
      diff.regressions.push({ jobId: r.jobId, metric: payload ? 'payload time' : 'wall time', before: bt, after: at, unit: 'ms' });
    }
  }
  return diff;
}
