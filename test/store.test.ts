import t from 'tap';
import { tsNodeArgs } from './helpers/hil.ts';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newRunId, RunStore } from '../harness/results/store.ts';
import { readResults, readRunMeta } from '../harness/results/read.ts';
import { DEVICES, makeRecord } from './fixtures/records.ts';

const buildRecord = ({ runId }: { runId: string }) =>
  makeRecord(runId, { device: DEVICES.pi4b4g, suite: 'keras-train', outcome: 'passed', reason: 'exit 0', peakMb: 10, payloadMs: 100, allowed: ['passed'], startMin: 0 });
import type { RunMeta } from '../harness/results/run-meta.ts';

const meta = (runId: string): RunMeta => ({
  runId,
  startedAt: new Date().toISOString(),
  endedAt: null,
  harnessVersion: '0.1.0',
  gitSha: null,
  selection: { devices: [], tags: [], suites: [], shard: null, concurrency: 2 },
  inventory: { file: 'devices.yaml', devices: [] },
  jobs: [],
  exitCode: null,
  interrupted: null,
});

t.test('run ids sort by time and differ', async (t) => {
  const a = newRunId(new Date('2026-01-02T03:04:05Z'));
  t.match(a, /^20260102-030405-[0-9a-f]{4}$/);
  t.not(newRunId(), newRunId());
});

t.test('records are on disk the moment append returns, even if the process dies', async (t) => {
  const root = t.testdir();
  // A child appends one record and then kills itself without any cleanup.
  const script = `
    import { RunStore } from ${JSON.stringify(new URL('../harness/results/store.ts', import.meta.url).href)};
    import { DEVICES, makeRecord } from ${JSON.stringify(new URL('./fixtures/records.ts', import.meta.url).href)};
    const store = RunStore.create(${JSON.stringify(root)}, ${JSON.stringify(meta('crash-1'))});
    store.append(makeRecord('crash-1', { device: DEVICES.pi4b4g, suite: 'keras-train', outcome: 'passed', reason: 'exit 0', peakMb: 10, payloadMs: 100, allowed: ['passed'], startMin: 0 }));
    process.kill(process.pid, 'SIGKILL');
  `;
  const r = spawnSync(process.execPath, [...tsNodeArgs(), '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(r.signal, 'SIGKILL', r.stderr);
  const records = readResults(join(root, 'crash-1'));
  t.equal(records.length, 1, 'the appended record survived the crash');
  t.equal(readRunMeta(join(root, 'crash-1')).endedAt, null, 'run.json says the run never finished');
});

t.test('finish records the end and the exit code', async (t) => {
  const store = RunStore.create(t.testdir(), meta('run-2'));
  store.append(buildRecord({ runId: 'run-2' }));
  t.equal(store.recordCount, 1);
  store.finish({ endedAt: '2026-01-01T00:00:00.000Z', exitCode: 130, interrupted: 'SIGINT' });
  const written = JSON.parse(readFileSync(join(store.dir, 'run.json'), 'utf8')) as RunMeta;
  t.equal(written.exitCode, 130);
  t.equal(written.interrupted, 'SIGINT');
  t.throws(() => store.append(buildRecord({ runId: 'run-2' })), /closed/);
});
