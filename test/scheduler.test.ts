import t from 'tap';
import { schedule } from '../harness/run/scheduler.ts';

interface FakeJob {
  id: string;
  device: { name: string };
  ms: number;
}

const job = (device: string, id: string, ms = 30): FakeJob => ({ id, device: { name: device }, ms });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('never two jobs on one device, never more than the global cap', async (t) => {
  const running = new Map<string, number>();
  let globalNow = 0;
  let globalMax = 0;
  let overlapOnDevice = false;
  const jobs = ['a', 'b', 'c', 'd'].flatMap((d) => [job(d, `${d}1`), job(d, `${d}2`), job(d, `${d}3`)]);
  const { finished, notStarted } = await schedule(
    jobs,
    async (j) => {
      const n = (running.get(j.device.name) ?? 0) + 1;
      running.set(j.device.name, n);
      if (n > 1) overlapOnDevice = true;
      globalMax = Math.max(globalMax, ++globalNow);
      await sleep(j.ms);
      running.set(j.device.name, n - 1);
      globalNow--;
      return j.id;
    },
    { concurrency: 3, signal: new AbortController().signal },
  );
  t.equal(finished.length, 12);
  t.same(notStarted, []);
  t.notOk(overlapOnDevice, 'one job at a time per device');
  t.equal(globalMax, 3, 'the global cap was reached and held');
});

t.test('a job waiting for a busy device holds no global slot', async (t) => {
  // Device a has two slow jobs; device b's job must not wait behind a's second one.
  const order: string[] = [];
  await schedule(
    [job('a', 'a1', 80), job('a', 'a2', 80), job('b', 'b1', 10)],
    async (j) => {
      await sleep(j.ms);
      order.push(j.id);
    },
    { concurrency: 2, signal: new AbortController().signal },
  );
  t.same(order, ['b1', 'a1', 'a2']);
});

t.test('abort: no new job starts, running jobs see the signal', async (t) => {
  const controller = new AbortController();
  const sawAbort: string[] = [];
  const result = await schedule(
    [job('a', 'a1'), job('a', 'a2'), job('b', 'b1'), job('b', 'b2')],
    async (j, signal) => {
      // Interrupt once a1 and b1 are both running.
      if (j.id === 'a1') setTimeout(() => controller.abort(new Error('SIGINT received')), 5);
      await sleep(20);
      if (signal.aborted) sawAbort.push(j.id);
      return j.id;
    },
    { concurrency: 4, signal: controller.signal },
  );
  t.same(result.finished.sort(), ['a1', 'b1']);
  t.same(result.notStarted.sort(), ['a2', 'b2']);
  t.same(sawAbort.sort(), ['a1', 'b1']);
});

t.test('a job that throws is reported; the other devices carry on', async (t) => {
  const crashes: string[] = [];
  const result = await schedule(
    [job('a', 'a1'), job('b', 'b1'), job('b', 'b2')],
    async (j) => {
      if (j.id === 'a1') throw new Error('disk full');
      await sleep(10);
      return j.id;
    },
    { concurrency: 2, signal: new AbortController().signal, onCrash: (id) => crashes.push(id) },
  );
  t.same(result.finished.sort(), ['b1', 'b2']);
  t.same(result.crashed.map((c) => c.jobId), ['a1']);
  t.match(String(result.crashed[0]?.error), /disk full/);
  t.same(crashes, ['a1']);
});
