/**
 * The capacity search against fake oracles, exhaustively: for every
 * threshold in a range (and thresholds spread over six decades) the search
 * brackets it within the resolution, takes no more jobs than its bound, and
 * treats infra errors, crashes and the ends of the range as the issue says.
 */
import t from 'tap';
import type { Outcome } from '../harness/results/record.ts';
import { jobBound, kindOf, niceBetween, nextProbe, runSearch, specProblems, summarize, type SearchSpec } from '../harness/envelope/search.ts';

/** Passes up to `limit`, then ends `fail`. */
const threshold = (limit: number, fail: Outcome = 'oom_killed') => async (v: number): Promise<Outcome> => (v <= limit ? 'passed' : fail);

t.test('every threshold is bracketed within the resolution and the job bound', async (t) => {
  const specs: SearchSpec[] = [
    { from: 10, to: 10_000_000, integer: true, factor: 10, resolution: 1.25 },
    { from: 10, to: 10_000_000, integer: true, factor: 4, resolution: 1.25 },
    { from: 1, to: 300, integer: true, factor: 2, resolution: 1.1 },
    { from: 0.001, to: 50, integer: false, factor: 10, resolution: 1.05 },
  ];
  for (const spec of specs) {
    const bound = jobBound(spec);
    // About log2 of the range plus a few, as the issue promises.
    t.ok(bound <= Math.log2(spec.to / spec.from) + 6, `bound ${bound} for ${JSON.stringify(spec)}`);
    const limits = new Set<number>();
    if (spec.to <= 300) for (let v = 0; v <= spec.to + 1; v++) limits.add(v);
    for (let e = Math.log10(spec.from) - 1; e <= Math.log10(spec.to) + 1; e += 0.01) limits.add(spec.integer ? Math.round(10 ** e) : 10 ** e);
    let checked = 0;
    let worst = 0;
    for (const limit of limits) {
      const { result, seen } = await runSearch(spec, threshold(limit));
      worst = Math.max(worst, result.jobs);
      if (result.jobs > bound) t.fail(`limit ${limit}: ${result.jobs} jobs > bound ${bound}: ${seen.map((s) => s.value).join(' ')}`);
      if (spec.integer && seen.some((s) => !Number.isInteger(s.value))) t.fail(`limit ${limit}: a non-integer probe`);
      if (seen.some((s) => s.value < spec.from || s.value > spec.to)) t.fail(`limit ${limit}: a probe outside the range`);
      if (new Set(seen.map((s) => s.value)).size !== seen.length) t.fail(`limit ${limit}: a value probed twice`);
      if (limit < spec.from) {
        if (result.status !== 'below-range' || result.smallestFail !== spec.from || result.jobs !== 1) t.fail(`limit ${limit}: ${JSON.stringify(result)}`);
      } else if (limit >= spec.to) {
        if (result.status !== 'beyond-range' || result.largestPass !== spec.to) t.fail(`limit ${limit}: ${JSON.stringify(result)}`);
      } else {
        const { largestPass: pass, smallestFail: fail } = result;
        const ok =
          result.status === 'bounded' &&
          pass !== null &&
          fail !== null &&
          pass <= limit &&
          limit < fail &&
          (fail / pass <= spec.resolution || (spec.integer && fail - pass <= 1)) &&
          result.failOutcome === 'oom_killed';
        if (!ok) t.fail(`limit ${limit}: ${JSON.stringify(result)} after ${seen.map((s) => `${s.value}:${s.outcome}`).join(' ')}`);
      }
      checked++;
    }
    t.pass(`${checked} thresholds, at most ${worst} jobs (bound ${bound}) for ${spec.from}..${spec.to} ×${spec.factor} ≤${spec.resolution}`);
  }
});

t.test('geometric steps up, then readable bisection values', async (t) => {
  const spec: SearchSpec = { from: 10, to: 10_000_000, integer: true, factor: 10, resolution: 1.25 };
  const { result, seen } = await runSearch(spec, threshold(45_000));
  t.same(seen.slice(0, 5).map((s) => s.value), [10, 100, 1000, 10_000, 100_000], 'decades up to the first failure');
  t.same(seen[5]?.value, 30_000, 'the geometric midpoint of 10 000 and 100 000 (31 623), with as few digits as keep it between');
  t.equal(result.status, 'bounded');
  t.ok(result.largestPass! <= 45_000 && result.smallestFail! > 45_000);
  t.equal(niceBetween(31_622.7, 10_000, 100_000, true), 30_000);
  t.equal(niceBetween(3.5, 3, 4, true), null, 'adjacent integers have nothing between');
  t.equal(niceBetween(0.0316, 0.01, 0.1, false), 0.03);
});

t.test('memory outcomes and timeouts bound the envelope', async (t) => {
  for (const fail of ['oom_killed', 'memory_error', 'timeout'] as const) {
    t.equal(kindOf(fail), 'bound');
    const { result } = await runSearch({ from: 1, to: 1000, integer: true, factor: 10, resolution: 1.25 }, threshold(70, fail));
    t.equal(result.failOutcome, fail);
    t.equal(result.status, 'bounded');
  }
});

t.test('an infra_error is retried once and never taken as the boundary', async (t) => {
  const spec: SearchSpec = { from: 10, to: 100_000, integer: true, factor: 10, resolution: 1.25 };
  const flaky = new Set([1000, 3000]);
  const calls: string[] = [];
  const { result, seen } = await runSearch(spec, async (v, _step, retry) => {
    calls.push(`${v}${retry ? ' retry' : ''}`);
    if (flaky.delete(v)) return 'infra_error';
    return v <= 2000 ? 'passed' : 'oom_killed';
  });
  t.ok(calls.includes('1000 retry'), 'the value is tried again');
  t.equal(result.status, 'bounded');
  t.ok(result.largestPass! <= 2000 && result.smallestFail! > 2000);
  t.equal(result.jobs, seen.length);
  t.ok(result.jobs <= jobBound(spec) + 2, 'the retries cost one job each');

  const dead = await runSearch(spec, async (v) => (v >= 1000 ? 'infra_error' : 'passed'));
  t.equal(dead.result.status, 'infra', 'twice infra at one value: the search ends without a boundary');
  t.equal(dead.result.smallestFail, null);
  t.equal(dead.result.largestPass, 100);
  t.same(dead.seen.map((s) => s.value), [10, 100, 1000, 1000]);
});

t.test('an unexpected outcome stops the search with its evidence', async (t) => {
  for (const odd of ['crashed', 'failed', 'unsupported'] as const) {
    const { result, seen } = await runSearch({ from: 10, to: 100_000, integer: true, factor: 10, resolution: 1.25 }, async (v) => (v >= 1000 ? odd : 'passed'));
    t.equal(result.status, 'stopped');
    t.same(result.stoppedAt, { value: 1000, outcome: odd });
    t.equal(seen.length, 3);
    t.equal(result.largestPass, 100);
  }
});

t.test('a search read back from its records says what it found', async (t) => {
  t.same(summarize([{ value: 10, outcome: 'passed' }, { value: 100, outcome: 'oom_killed' }, { value: 30, outcome: 'passed' }]), {
    status: 'bounded', largestPass: 30, smallestFail: 100, failOutcome: 'oom_killed', stoppedAt: null, jobs: 3,
  });
  t.equal(summarize([{ value: 10, outcome: 'passed' }, { value: 100, outcome: 'passed' }]).status, 'beyond-range');
  t.equal(summarize([{ value: 10, outcome: 'memory_error' }]).status, 'below-range');
  t.equal(summarize([{ value: 10, outcome: 'passed' }, { value: 100, outcome: 'crashed' }]).status, 'stopped');
  // An interrupted search whose only probe never ran measured nothing.
  t.same(summarize([{ value: 256, outcome: 'infra_error' }]), { status: 'infra', largestPass: null, smallestFail: null, failOutcome: null, stoppedAt: { value: 256, outcome: 'infra_error' }, jobs: 1 });
});

t.test('the next probe follows from the observations alone', async (t) => {
  const spec: SearchSpec = { from: 10, to: 1000, integer: true, factor: 10, resolution: 1.25 };
  t.same(nextProbe(spec, []), { kind: 'probe', value: 10, retry: false });
  t.same(nextProbe(spec, [{ value: 10, outcome: 'passed' }]), { kind: 'probe', value: 100, retry: false });
  t.same(nextProbe(spec, [{ value: 10, outcome: 'passed' }, { value: 100, outcome: 'infra_error' }]), { kind: 'probe', value: 100, retry: true });
  t.same(specProblems({ from: 0, to: 10, integer: true, factor: 1, resolution: 1 }), [
    '--from must be above 0 (the steps are geometric)',
    '--factor must be above 1',
    '--resolution must be above 1',
  ]);
  t.same(specProblems({ from: 1.5, to: 10, integer: true, factor: 2, resolution: 1.25 }), ['--from and --to must be integers for an integer parameter']);
});
