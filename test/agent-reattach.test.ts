/**
 * The agent outlives its controller's stream: killing the foreground end of
 * `monitor.py start` mid-run (what a dropped SSH session does to it) still
 * yields the true outcome after re-attaching, and an abort kills the job.
 */
import t from 'tap';
import { LocalTransport } from '../harness/transport/local.ts';
import { agentForegrounds, runPlanted, survivors } from './agent-fixtures.ts';

const local = new LocalTransport({ name: 'reattach', capMb: 256 });
t.teardown(() => local.close());

t.test('losing the stream mid-run still gives the true outcome', async (t) => {
  let cut: number[] = [];
  let worker = 0;
  const run = await runPlanted(
    local,
    'import time, sys, hil_phase\nhil_phase.phase("work")\ntime.sleep(1.5)\nsys.exit(3)\n',
    {
      onEvent: (e) => {
        if (e.type === 'hello') worker = e.agentPid; // the detached worker shares the foreground's argv
        if (e.type === 'phase' && cut.length === 0) {
          cut = agentForegrounds(worker);
          for (const pid of cut) process.kill(pid, 'SIGKILL');
        }
      },
    },
  );
  t.equal(cut.length, 1, `cut the stream by killing foreground pid ${cut.join(',')}`);
  t.equal(run.reattached >= 1, true, `re-attached ${run.reattached} time(s)`);
  t.equal(run.outcome, 'failed', run.reason);
  t.equal(run.exit.code, 3, 'the true exit code was collected from the device');
  t.same(run.phases.map((p) => p.name), ['work']);
  const ts = run.memory.samples.map((s) => s.t);
  t.same(ts, [...ts].sort((a, b) => a - b), 'samples stay in order across the re-attach');
  t.equal(run.sampleEvents.received, run.sampleEvents.written, `every sample event once: ${JSON.stringify(run.sampleEvents)}`);
});

t.test('an abort kills the job over a fresh exec and reports it', async (t) => {
  const ac = new AbortController();
  const run = await runPlanted(local, 'import time\ntime.sleep(60)\n', {
    signal: ac.signal,
    onEvent: (e) => {
      if (e.type === 'start') setImmediate(() => ac.abort(new DOMException('deadline backstop', 'TimeoutError')));
    },
  });
  t.equal(run.aborted, true);
  t.equal(run.outcome, 'timeout', run.reason);
  t.equal(run.exit.signal, 'KILL');
  t.same(survivors(run.pid, run.workdir), [], 'nothing of the job is left');

  const ac2 = new AbortController();
  const interrupted = await runPlanted(local, 'import time\ntime.sleep(60)\n', {
    signal: ac2.signal,
    onEvent: (e) => {
      if (e.type === 'start') setImmediate(() => ac2.abort(new Error('SIGINT')));
    },
  });
  t.equal(interrupted.outcome, 'infra_error', `an interrupt is not a product result: ${interrupted.reason}`);
  t.same(survivors(interrupted.pid, interrupted.workdir), [], 'nothing of the interrupted job is left');
});
