/**
 * Peak memory is measured, not guessed: a payload that allocates and touches
 * exactly N MiB peaks at N plus the interpreter's baseline (measured in the
 * same run), and a short spike between two samples is still caught.
 */
import t from 'tap';
import { LocalTransport } from '../harness/transport/local.ts';
import { allocSource, runPlanted } from './agent-fixtures.ts';

const local = new LocalTransport({ name: 'memory', capMb: 1024 });
t.teardown(() => local.close());

t.test('peak = N MiB + baseline, within 2%', async (t) => {
  const base = await runPlanted(local, allocSource(0));
  t.equal(base.outcome, 'passed', base.reason);
  const baseline = base.memory.peakRssKb ?? NaN;
  t.ok(baseline > 1000, `interpreter baseline ${baseline} KiB`);
  for (const n of [50, 200, 400]) {
    const run = await runPlanted(local, allocSource(n));
    t.equal(run.outcome, 'passed', run.reason);
    const want = n * 1024 + baseline;
    const got = run.memory.peakRssKb ?? NaN;
    const err = (got - want) / want;
    t.ok(Math.abs(err) <= 0.02, `N=${n}: peak ${got} KiB vs ${want} KiB expected (${(err * 100).toFixed(2)}%, ${run.memory.peakMethod})`);
    t.ok(run.memory.peakMethod !== null, 'the method is recorded');
    t.ok((run.memory.peakAnonKb ?? 0) >= n * 1024, `anon peak ${run.memory.peakAnonKb} KiB holds the allocation`);
  }
});

t.test('a 100 ms spike between two samples is still caught', async (t) => {
  // Samples every 1 s; the spike lives 100 ms, and is then freed before the payload idles.
  const spike = [
    'import time',
    'time.sleep(0.3)',
    'b = bytearray(b"\\x01") * (200 * 1024 * 1024)',
    'time.sleep(0.1)',
    'del b',
    'time.sleep(1.2)',
  ].join('\n');
  const run = await runPlanted(local, spike, { intervalMs: 1000 });
  t.equal(run.outcome, 'passed', run.reason);
  const hwmLate = run.memory.samples.at(-1)?.hwmKb ?? 0;
  const rssLate = run.memory.samples.at(-1)?.rssKb ?? Infinity;
  t.ok(rssLate < 100 * 1024, `after the spike RSS is back to ${rssLate} KiB`);
  t.ok(hwmLate >= 200 * 1024, `VmHWM in the same sample still shows the spike: ${hwmLate} KiB`);
  t.ok((run.memory.peakRssKb ?? 0) >= 200 * 1024, `peak ${run.memory.peakRssKb} KiB includes the spike`);
  t.comment(`sampled RSS alone peaked at ${run.memory.sampledPeakRssKb} KiB over ${run.memory.samples.length} samples`);
});
