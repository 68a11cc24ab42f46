/**
 * The capacity search behind `hil envelope`, as pure functions of what the
 * probes so far ended with: the largest value of one parameter that still
 * ends `passed` on a device. Geometric steps up (× factor) to the first
 * failure, then bisection in log space between the last pass and the first
 * failure until their ratio is at most the resolution.
 *
 * Stateless on purpose: the next probe, and the result, follow from the list
 * of observations alone, so the reports rebuild a search from its records.
 */
import type { Outcome } from '../results/record.ts';

export interface SearchSpec {
  /** The smallest value tried (> 0: the steps are geometric). */
  from: number;
  /** The largest value tried. */
  to: number;
  /** Values are whole numbers (an integer parameter). */
  integer: boolean;
  /** Each step up multiplies by this (> 1). */
  factor: number;
  /** Stop when first failure / last pass <= this (> 1). */
  resolution: number;
}

export interface Observation {
  value: number;
  outcome: Outcome;
}

/** How a probe's outcome counts in a search. */
export type ProbeKind = 'pass' | 'bound' | 'infra' | 'unexpected';

/**
 * A memory outcome or a timeout bounds the envelope; an infra_error says
 * nothing about the device's capacity (retried once, never a boundary); any
 * other end (crashed, failed, unsupported) is not what the search looks for,
 * and stops it with that evidence.
 */
export function kindOf(outcome: Outcome): ProbeKind {
  if (outcome === 'passed') return 'pass';
  if (outcome === 'oom_killed' || outcome === 'memory_error' || outcome === 'timeout') return 'bound';
  if (outcome === 'infra_error') return 'infra';
  return 'unexpected';
}

export type EnvelopeStatus =
  /** A pass and a failure within the resolution of each other: the envelope. */
  | 'bounded'
  /** Everything up to `to` passed: the envelope is beyond the range. */
  | 'beyond-range'
  /** `from` already failed: the envelope is below the range. */
  | 'below-range'
  /** A probe ended crashed, failed or unsupported: the search stopped there. */
  | 'stopped'
  /** A probe ended infra_error twice in a row: the device could not be measured. */
  | 'infra';

export interface EnvelopeResult {
  status: EnvelopeStatus;
  /** The largest value that passed, if any. */
  largestPass: number | null;
  /** The smallest value that failed with a bounding outcome, if any. */
  smallestFail: number | null;
  failOutcome: Outcome | null;
  /** The probe that stopped the search (status stopped or infra). */
  stoppedAt: Observation | null;
  /** Jobs taken, retries included. */
  jobs: number;
}

export type Decision = { kind: 'probe'; value: number; retry: boolean } | { kind: 'done'; result: EnvelopeResult };

/** `x` with `digits` significant digits. */
function significant(x: number, digits: number): number {
  if (x === 0) return 0;
  const scale = 10 ** (digits - Math.ceil(Math.log10(Math.abs(x))));
  return Math.round(x * scale) / scale;
}

/**
 * A readable value strictly between lo and hi, near `target`: as few
 * significant digits as keep it inside (31623 → 32000), whole for an integer
 * parameter; null when none fits (adjacent integers).
 */
export function niceBetween(target: number, lo: number, hi: number, integer: boolean): number | null {
  for (let digits = 1; digits <= 15; digits++) {
    let v = significant(target, digits);
    if (integer) v = Math.round(v);
    if (v > lo && v < hi) return v;
  }
  if (integer) {
    const v = Math.round(target);
    return v > lo && v < hi ? v : null;
  }
  return target > lo && target < hi ? target : null;
}

/** A step up from `last`: last × factor, readable, above last, at most `to`. */
function stepUp(last: number, spec: SearchSpec): number {
  const target = last * spec.factor;
  if (target >= spec.to) return spec.to;
  return niceBetween(target, last, spec.to, spec.integer) ?? spec.to;
}

/** The most jobs a search may take without retries: the steps up, the bisection, and one for rounding. */
export function jobBound(spec: SearchSpec): number {
  const up = Math.ceil(Math.log(spec.to / spec.from) / Math.log(spec.factor) - 1e-9) + 1;
  const bisect = spec.factor > spec.resolution ? Math.ceil(Math.log2(Math.log(spec.factor) / Math.log(spec.resolution)) - 1e-9) : 0;
  return up + bisect + 1;
}

/** What to do next, given every probe so far (a retry after an infra_error is its own observation). */
export function nextProbe(spec: SearchSpec, seen: readonly Observation[]): Decision {
  let lastPass: number | null = null;
  let firstFail: Observation | null = null;
  const done = (status: EnvelopeStatus, stoppedAt: Observation | null = null): Decision => ({
    kind: 'done',
    result: { status, largestPass: lastPass, smallestFail: firstFail?.value ?? null, failOutcome: firstFail?.outcome ?? null, stoppedAt, jobs: seen.length },
  });
  for (const [i, o] of seen.entries()) {
    const kind = kindOf(o.outcome);
    if (kind === 'pass' && (lastPass === null || o.value > lastPass)) lastPass = o.value;
    if (kind === 'bound' && (firstFail === null || o.value < firstFail.value)) firstFail = o;
    if (kind === 'unexpected') return done('stopped', o);
    if (kind === 'infra') {
      const before = seen[i - 1];
      // Twice at the same value: the device cannot be measured, and that is no boundary.
      if (before && before.value === o.value && kindOf(before.outcome) === 'infra') return done('infra', o);
      if (i === seen.length - 1) return { kind: 'probe', value: o.value, retry: true };
    }
  }
  if (seen.length === 0) return { kind: 'probe', value: spec.from, retry: false };
  if (firstFail === null) {
    if (lastPass === null) return { kind: 'probe', value: spec.from, retry: false };
    if (lastPass >= spec.to) return done('beyond-range');
    return { kind: 'probe', value: stepUp(lastPass, spec), retry: false };
  }
  if (lastPass === null) return done('below-range');
  if (firstFail.value / lastPass <= spec.resolution) return done('bounded');
  const mid = niceBetween(Math.sqrt(lastPass * firstFail.value), lastPass, firstFail.value, spec.integer);
  return mid === null ? done('bounded') : { kind: 'probe', value: mid, retry: false };
}

/** Run a whole search against `oracle` (the real one runs a job; tests pass a fake). */
export async function runSearch(
  spec: SearchSpec,
  oracle: (value: number, step: number, retry: boolean) => Promise<Outcome>,
): Promise<{ result: EnvelopeResult; seen: Observation[] }> {
  const seen: Observation[] = [];
  for (;;) {
    const d = nextProbe(spec, seen);
    if (d.kind === 'done') return { result: d.result, seen };
    seen.push({ value: d.value, outcome: await oracle(d.value, seen.length + 1, d.retry) });
  }
}

/** A spec's problems, for a usage error; empty when it is sound. */
export function specProblems(spec: SearchSpec): string[] {
  const p: string[] = [];
  if (!(spec.from > 0)) p.push('--from must be above 0 (the steps are geometric)');
  if (!(spec.to > spec.from)) p.push('--to must be above --from');
  if (!(spec.factor > 1)) p.push('--factor must be above 1');
  if (!(spec.resolution > 1)) p.push('--resolution must be above 1');
  if (spec.integer && (!Number.isInteger(spec.from) || !Number.isInteger(spec.to))) p.push('--from and --to must be integers for an integer parameter');
  return p;
}

/**
 * A finished search read back from its observations alone (the reports have
 * the records, not the command line): what it found, without the range.
 */
export function summarize(seen: readonly Observation[]): EnvelopeResult {
  let lastPass: number | null = null;
  let firstFail: Observation | null = null;
  let stoppedAt: Observation | null = null;
  let status: EnvelopeStatus | null = null;
  for (const [i, o] of seen.entries()) {
    const kind = kindOf(o.outcome);
    if (kind === 'pass' && (lastPass === null || o.value > lastPass)) lastPass = o.value;
    if (kind === 'bound' && (firstFail === null || o.value < firstFail.value)) firstFail = o;
    if (kind === 'unexpected' && stoppedAt === null) [stoppedAt, status] = [o, 'stopped'];
    if (kind === 'infra' && stoppedAt === null && seen[i - 1]?.value === o.value && kindOf(seen[i - 1]!.outcome) === 'infra') [stoppedAt, status] = [o, 'infra'];
  }
  // Nothing passed and nothing failed: only infra errors (or an interrupt) ended it, which measures nothing.
  status ??= firstFail === null ? (lastPass === null ? 'infra' : 'beyond-range') : lastPass === null ? 'below-range' : 'bounded';
  if (status === 'infra' && stoppedAt === null) stoppedAt = seen.at(-1) ?? null;
  return { status, largestPass: lastPass, smallestFail: firstFail?.value ?? null, failOutcome: firstFail?.outcome ?? null, stoppedAt, jobs: seen.length };
}
