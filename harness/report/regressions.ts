/**
 * The nightly decision: what got worse since the baseline. A pure function of
 * two record lists and the thresholds, so a page, a summary and an exit code
 * all read the same answer.
 *
 * - An outcome that got worse is a regression: an expectation met before and
 *   unmet now, or a job that passed and now ends another product outcome
 *   (infra_error is never one: it says nothing about the product).
 * - Peak memory that rose above the threshold (percent AND at least a floor)
 *   on the same device and suite, with the same outcome on both nights.
 * - Time that rose above the threshold, only where both nights ran on a real
 *   device with trusted (unthrottled) timings. Emulated timings compare only
 *   with emulated ones, and are shown, never counted: a busy CI host is not
 *   a slower TensorFlow.
 */
import { jobIdOf, type Outcome, type ResultRecord, type Verdict } from '../results/record.ts';
import { resolvePolicy, thresholdsFor, type ThresholdPolicy, type Thresholds } from '../config/thresholds.ts';

interface RegressionBase {
  /** What the two nights are matched on (comparisonKey). */
  key: string;
  jobId: string;
  device: string;
  suite: string;
  /** One sentence for a log line or a table cell. */
  why: string;
}

export interface OutcomeRegression extends RegressionBase {
  rule: 'outcome';
  before: Outcome;
  after: Outcome;
  verdictBefore: Verdict | null;
  verdictAfter: Verdict | null;
}

export interface MetricRegression extends RegressionBase {
  rule: 'memory' | 'time';
  metric: 'peak memory' | 'payload time' | 'wall time';
  before: number;
  after: number;
  unit: 'kb' | 'ms';
  /** The thresholds this job was held to. */
  thresholds: Thresholds;
}

export type Regression = OutcomeRegression | MetricRegression;

export interface RegressionReport {
  regressions: Regression[];
  /** Time rises over the threshold between two emulated runs: shown, never a regression. */
  emulatedTime: MetricRegression[];
  policy: ThresholdPolicy;
}

/**
 * What makes two records the same measurement on two nights: the device, the
 * suite and the params it was given. Every match goes through here, so a new
 * dimension is added once.
 */
export function comparisonKey(r: Pick<ResultRecord, 'suite' | 'device' | 'params'>): string {
  return jobIdOf(r.suite, r.device.name, r.params);
}

/** A QEMU guest or a capped host stands in for a Pi; the agent's facts say so, else the transport does. */
export function isEmulated(r: ResultRecord): boolean {
  return r.facts?.emulated ?? r.device.transport !== 'ssh';
}

/** Above `pct` percent and above (memory: at least) the floor. */
export function risesOver(before: number, after: number, pct: number, floor: number, floorInclusive: boolean): boolean {
  const rise = after - before;
  return (floorInclusive ? rise >= floor : rise > floor) && rise > 0 && after > before * (1 + pct / 100);
}

function outcomeRegression(b: ResultRecord, r: ResultRecord): string | null {
  if (b.outcome === 'infra_error' || r.outcome === 'infra_error') return null;
  const vb = b.expectation?.verdict ?? null;
  const va = r.expectation?.verdict ?? null;
  if (vb === 'met' && va === 'unmet') return `expected before, unexpected now: ${b.outcome} → ${r.outcome}`;
  if (b.outcome === 'passed' && r.outcome !== 'passed') return `passed before, ${r.outcome} now`;
  return null;
}

function pct(before: number, after: number): string {
  return before === 0 ? '+∞%' : `+${(((after - before) / before) * 100).toFixed(1)}%`;
}

export function findRegressions(current: readonly ResultRecord[], baseline: readonly ResultRecord[], policy: ThresholdPolicy = resolvePolicy(null)): RegressionReport {
  const base = new Map(baseline.map((r) => [comparisonKey(r), r]));
  const report: RegressionReport = { regressions: [], emulatedTime: [], policy };
  for (const r of current) {
    const key = comparisonKey(r);
    const b = base.get(key);
    if (!b) continue;
    const who = { key, jobId: r.jobId, device: r.device.name, suite: r.suite };
    const worse = outcomeRegression(b, r);
    if (worse) {
      report.regressions.push({ ...who, rule: 'outcome', before: b.outcome, after: r.outcome, verdictBefore: b.expectation?.verdict ?? null, verdictAfter: r.expectation?.verdict ?? null, why: worse });
      continue;
    }
    // Memory and time of different outcomes measure different things.
    if (b.outcome !== r.outcome) continue;
    const t = thresholdsFor(policy, r.suite);
    const [bm, am] = [b.memory.peakRssKb, r.memory.peakRssKb];
    if (bm !== null && am !== null && risesOver(bm, am, t.memoryPct, t.memoryFloorKb, true)) {
      const mb = (am - bm) / 1024;
      report.regressions.push({ ...who, rule: 'memory', metric: 'peak memory', before: bm, after: am, unit: 'kb', thresholds: t, why: `peak memory ${pct(bm, am)} (+${mb.toFixed(1)} MB), above +${t.memoryPct}% and ${t.memoryFloorKb / 1024} MB` });
    }
    const [eb, ea] = [isEmulated(b), isEmulated(r)];
    // An emulated timing says nothing about a Pi's; a throttled Pi's says nothing about the code.
    if (eb !== ea || !b.timing.trusted || !r.timing.trusted) continue;
    const payload = b.timing.payloadMs !== null && r.timing.payloadMs !== null;
    const [bt, at] = payload ? [b.timing.payloadMs!, r.timing.payloadMs!] : [b.timing.wallMs, r.timing.wallMs];
    if (!risesOver(bt, at, t.timePct, t.timeFloorMs, false)) continue;
    const metric = payload ? 'payload time' : 'wall time';
    const entry: MetricRegression = { ...who, rule: 'time', metric, before: bt, after: at, unit: 'ms', thresholds: t, why: `${metric} ${pct(bt, at)} (${(bt / 1000).toFixed(1)} s → ${(at / 1000).toFixed(1)} s), above +${t.timePct}%` };
    if (ea) report.emulatedTime.push({ ...entry, why: `${entry.why}; emulated, so shown and not counted` });
    else report.regressions.push(entry);
  }
  return report;
}
