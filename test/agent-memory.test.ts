/**
 * Peak memory is measured, not guessed: a payload that allocates and touches
 * exactly N MiB peaks at N plus the interpreter's baseline (measured in the
 * same run), a short spike between two samples is still caught, and a payload
 * smaller than the agent is not given the agent's peak.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { EndEvent } from '../harness/agent/protocol.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import { allocSource, MONITOR, PYTHON, runPlanted } from './agent-fixtures.ts';

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

t.test('a payload smaller than the agent: its peak is its own, not the agent\'s high-water mark (the ru_maxrss trap)', async (t) => {
  // The payload is the agent's child; the kernel carries the parent's high-water mark into the
  // child's ru_maxrss across fork and exec. `sleep` needs about 1 MB; the agent about ten.
  const workdir = mkdtempSync(join(tmpdir(), 'hil-trap-'));
  t.teardown(() => rmSync(workdir, { recursive: true, force: true }));
  const r = spawnSync(PYTHON, ['-S', MONITOR, 'start', '--workdir', workdir, '--deadline-s', '20', '--no-facts', '--', 'sleep', '0.5'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const end = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string }).find((e): e is EndEvent => e.type === 'end');
  if (!end) return t.fail(`no end event in ${r.stdout}`);
  t.equal(end.code, 0);
  const raw = end.rusage?.maxrssKb ?? 0;
  const peak = end.memory?.peakRssKb ?? Infinity;
  t.ok(raw > 4096, `the raw ru_maxrss (${raw} KiB) is the agent's, inherited`);
  t.ok(peak < 4096, `the recorded peak (${peak} KiB, by ${end.memory?.peakMethod}) is sleep's own`);
  t.equal(end.memory?.rusageMaxrssKb, null, 'the inherited figure is not counted as the payload\'s');
});
