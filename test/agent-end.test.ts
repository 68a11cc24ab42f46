/**
 * The agent's end event holds facts, not decisions: who killed the probe or
 * the payload and when, the kernel's OOM lines for any SIGKILL, and how much
 * the payload wrote against how much the event keeps. Real agent, real
 * processes, inside a real memory cgroup.
 */
import t from 'tap';
import type { AgentEvent, EndEvent, ProbeEvent } from '../harness/agent/protocol.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import { runPlanted, survivors, type DecidedRun } from './agent-fixtures.ts';

const local = new LocalTransport({ name: 'end-facts', capMb: 256 });
t.teardown(() => local.close());

function endOf(run: DecidedRun): EndEvent {
  if (run.ending.kind !== 'agent_end') throw new Error(`no end event: ${run.ending.stage}: ${run.ending.detail}`);
  return run.ending.end;
}

const SLOW_PROBE = { code: 'import time\ntime.sleep(30)\n' };

t.test('a probe still running at the deadline: killedBy deadline, not a failed requirement', async (t) => {
  const probes: ProbeEvent[] = [];
  const run = await runPlanted(local, 'print("never runs")\n', {
    deadlineMs: 1500,
    probe: SLOW_PROBE,
    onEvent: (e: AgentEvent) => {
      if (e.type === 'probe') probes.push(e);
    },
  });
  const end = endOf(run);
  t.equal(end.probe?.ok, false);
  t.equal(end.probe?.killedBy, 'deadline', JSON.stringify(end.probe));
  t.match(end.probe?.message ?? '', /deadline/);
  t.equal(probes[0]?.killedBy, 'deadline', 'the probe event says so too');
  t.equal(end.started, false, 'the payload never started');
  t.equal(end.killedBy, null, 'so nothing of it was killed');
  t.equal(end.output, null);
  t.not(run.outcome, 'unsupported', `a killed probe says nothing about the device: ${run.outcome}, ${run.reason}`);
});

t.test('a probe killed on the controller request (monitor.py kill): killedBy controller', async (t) => {
  const ac = new AbortController();
  const run = await runPlanted(local, 'print("never runs")\n', {
    probe: SLOW_PROBE,
    signal: ac.signal,
    onEvent: (e) => {
      // The probe starts right after hello; abort once it is surely running.
      if (e.type === 'hello') setTimeout(() => ac.abort(new Error('SIGINT')), 500);
    },
  });
  const end = endOf(run);
  t.equal(end.probe?.killedBy, 'controller', JSON.stringify(end.probe));
  t.equal(end.started, false);
  t.not(run.outcome, 'unsupported', `${run.outcome}: ${run.reason}`);
});

t.test('a deadline kill: who and when, and the kernel log is still read', async (t) => {
  const run = await runPlanted(local, 'import time\ntime.sleep(60)\n', { deadlineMs: 1500 });
  const end = endOf(run);
  t.equal(end.killedBy, 'deadline');
  t.equal(end.signal, 'KILL');
  const at = end.killedAtMs ?? NaN;
  // The deadline runs from the agent's start, a little before the payload's.
  t.ok(at > 1000 && at <= 1500 && at <= (end.payloadMs ?? -1), `killed at ${at} ms, ended at ${end.payloadMs} ms`);
  const read = end.oom?.kernelLogSource !== null || end.unavailable.some((u) => u.source === 'dmesg');
  t.ok(read, `SIGKILL, so the kernel log was read (or why not is recorded): ${JSON.stringify(end.oom)} ${JSON.stringify(end.unavailable)}`);
  t.same(survivors(run.pid, run.workdir), []);
});

t.test('a controller kill of the payload: who and when', async (t) => {
  const ac = new AbortController();
  const run = await runPlanted(local, 'import time\ntime.sleep(60)\n', {
    signal: ac.signal,
    onEvent: (e) => {
      if (e.type === 'start') setTimeout(() => ac.abort(new Error('SIGINT')), 400);
    },
  });
  const end = endOf(run);
  t.equal(end.killedBy, 'controller');
  t.equal(end.signal, 'KILL');
  const at = end.killedAtMs ?? NaN;
  t.ok(at >= 300 && at <= (end.payloadMs ?? -1), `killed at ${at} ms, ended at ${end.payloadMs} ms`);
  t.equal(end.deadlineFired, false);
  t.same(survivors(run.pid, run.workdir), []);
});

t.test('a kill request after the payload ended by itself is not a kill of it', async (t) => {
  // The payload exits at once, but a background child holds its output open, so the job is still
  // running when the request comes; the agent kills the child, and the payload's exit 0 stands.
  const ac = new AbortController();
  const run = await runPlanted(
    local,
    'import subprocess\nsubprocess.Popen(["sleep", "30"])\nprint("@@hil phase gone", flush=True)\n',
    {
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'phase') ac.abort(new Error('SIGINT'));
      },
    },
  );
  const end = endOf(run);
  t.equal(end.code, 0);
  t.equal(end.signal, null);
  t.equal(end.killedBy, null, 'the payload had ended before the request');
  t.equal(end.killedAtMs, null);
  t.same(survivors(run.pid, run.workdir), [], 'the background child did not outlive the job');
});

t.test('output past the tail is counted, not cut silently', async (t) => {
  const head = '@@hil phase spam\n';
  const line = 'x'.repeat(1023) + '\n';
  const lines = 3 * 1024; // 3 MiB, far past the 8 KiB tail and the markers' line buffer
  const last = '@@hil value done 1\n';
  const run = await runPlanted(
    local,
    [
      'import sys',
      `sys.stdout.write(${JSON.stringify(head)})`,
      `line = ${JSON.stringify(line)}`,
      `for _ in range(${lines}): sys.stdout.write(line)`,
      `sys.stdout.write(${JSON.stringify(last)})`,
      'sys.stdout.flush()',
      // Two-byte characters: the kept tail must not begin with half of one.
      'sys.stderr.write("\\u00e9" * 10000)',
    ].join('\n'),
  );
  const end = endOf(run);
  t.equal(run.outcome, 'passed', run.reason);
  const stdoutBytes = Buffer.byteLength(head) + lines * line.length + Buffer.byteLength(last);
  t.equal(end.output?.stdout.written, stdoutBytes, 'every stdout byte counted');
  t.equal(end.output?.stdout.kept, 8192);
  t.equal(Buffer.byteLength(end.stdoutTail), end.output?.stdout.kept, 'kept is the tail as carried');
  t.ok(end.stdoutTail.endsWith(last), 'the tail is the end of the stream');
  t.same(end.values, { done: 1 }, 'a marker after 3 MiB of output still counts');
  t.equal(end.output?.stderr.written, 20_000);
  const kept = end.output?.stderr.kept ?? NaN;
  t.ok(kept === 8191 || kept === 8192, `stderr kept ${kept} bytes`);
  t.equal(Buffer.byteLength(end.stderrTail), kept);
  t.notOk(end.stderrTail.includes('\uFFFD'), 'no character cut in half');
});

t.test('output within the tail is kept whole', async (t) => {
  const run = await runPlanted(local, 'import sys\nprint("hello")\nsys.stderr.write("warn\\n")\n');
  const end = endOf(run);
  t.same(end.output, { stdout: { written: 6, kept: 6 }, stderr: { written: 5, kept: 5 } });
  t.equal(end.stdoutTail, 'hello\n');
  t.equal(end.stderrTail, 'warn\n');
});
