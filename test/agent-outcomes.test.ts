/**
 * Each outcome of DESIGN.md's table from a real, planted payload, run by the
 * real agent through the local transport inside a real memory cgroup.
 */
import t from 'tap';
import { LocalTransport } from '../harness/transport/local.ts';
import { runPlanted, survivors } from './agent-fixtures.ts';

const CAP_MB = 160;
const local = new LocalTransport({ name: 'outcomes', capMb: CAP_MB });
t.teardown(() => local.close());

t.test('the cgroup exists and holds the cap', async (t) => {
  await local.connect();
  const cg = local.memoryCgroup;
  t.ok(cg, 'a memory cgroup was created');
  const { stdout } = await local.exec('cat /proc/self/cgroup');
  t.match(stdout, cg?.path.split('/').pop() ?? '<none>', 'execs run inside it');
});

t.test('exit 0 → passed, with phases and values', async (t) => {
  const run = await runPlanted(
    local,
    [
      'import time, hil_phase',
      'print("@@hil phase import", flush=True)',
      'time.sleep(0.15)',
      'hil_phase.phase("alloc")',
      'b = bytearray(b"\\x01") * (40 * 1024 * 1024)',
      'hil_phase.value("tf_version", "absent")',
      'hil_phase.value("answer", 42)',
      'time.sleep(0.15)',
      'hil_phase.end_phase()',
    ].join('\n'),
    { facts: true, standIn: `cap ${CAP_MB} MB` },
  );
  t.equal(run.outcome, 'passed', run.reason);
  t.same(run.phases.map((p) => p.name), ['import', 'alloc']);
  const [imp, alloc] = run.phases;
  t.ok(imp && alloc && imp.endMs <= alloc.startMs && alloc.endMs > alloc.startMs, 'phases are ordered with times');
  t.ok((alloc?.peakRssKb ?? 0) >= 40 * 1024, `alloc phase peak ${alloc?.peakRssKb} KiB holds the 40 MiB`);
  t.ok((imp?.peakRssKb ?? Infinity) < 40 * 1024, `import phase peak ${imp?.peakRssKb} KiB does not`);
  t.same(run.values, { tf_version: 'absent', answer: 42 });
  t.equal(run.facts?.emulated, true, 'a local stand-in says emulated');
  t.match(run.facts?.emulation ?? '', /local capped host/);
  t.equal(run.facts?.versions.tensorflow, 'absent');
  t.ok(run.memory.samples.length > 3, `timeline has ${run.memory.samples.length} samples`);
  t.ok(run.timing.deployMs !== null && run.timing.payloadMs !== null, 'timings recorded');
});

t.test('allocating past the cgroup cap → oom_killed with kernel evidence', async (t) => {
  const run = await runPlanted(local, 'b = bytearray(b"\\x01") * (400 * 1024 * 1024)\n');
  t.equal(run.outcome, 'oom_killed', run.reason);
  t.equal(run.exit.signal, 'KILL');
  const kernel = run.evidence.filter((e) => e.source === 'kernel_log').map((e) => e.detail);
  const counters = run.evidence.filter((e) => e.source === 'vmstat_oom_kill' || e.source === 'cgroup_oom_kill');
  t.ok(
    kernel.some((l) => l.includes(`Killed process ${run.pid}`)) || counters.length > 0,
    `evidence names pid ${run.pid}: ${JSON.stringify(run.evidence)}`,
  );
  t.ok(kernel.some((l) => l.includes(`Killed process ${run.pid}`)), 'the kernel line "Killed process <pid>" is there');
  t.ok(counters.length > 0, 'and an oom_kill counter rose');
});

t.test('segfault → crashed', async (t) => {
  const run = await runPlanted(local, 'import ctypes\nctypes.string_at(0)\n');
  t.equal(run.outcome, 'crashed', run.reason);
  t.equal(run.exit.signal, 'SEGV');
});

t.test('SIGILL → unsupported', async (t) => {
  const run = await runPlanted(local, 'import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n');
  t.equal(run.outcome, 'unsupported', run.reason);
  t.equal(run.exit.signal, 'ILL');
});

t.test('ImportError → unsupported', async (t) => {
  const run = await runPlanted(local, 'import tensorflow_that_is_not_here\n');
  t.equal(run.outcome, 'unsupported', run.reason);
  t.match(run.reason, /ModuleNotFoundError/);
});

t.test('MemoryError → memory_error', async (t) => {
  const run = await runPlanted(
    local,
    'import resource\nresource.setrlimit(resource.RLIMIT_AS, (200 << 20, 200 << 20))\nb = bytearray(300 << 20)\n',
  );
  t.equal(run.outcome, 'memory_error', run.reason);
  t.match(run.logs.stderrTail, /MemoryError/);
});

t.test('exit 3 → failed', async (t) => {
  const run = await runPlanted(local, 'import sys\nprint("boom", file=sys.stderr)\nsys.exit(3)\n');
  t.equal(run.outcome, 'failed', run.reason);
  t.equal(run.exit.code, 3);
  t.match(run.logs.stderrTail, /boom/);
});

t.test('sleep past the deadline → timeout, and nothing of the job is left', async (t) => {
  let workdir = '';
  const run = await runPlanted(
    local,
    'import subprocess, time\nsubprocess.Popen(["sleep", "60"])\ntime.sleep(60)\n',
    {
      deadlineMs: 1500,
      onEvent: (e) => {
        if (e.type === 'hello') workdir = 'seen';
      },
    },
  );
  t.equal(workdir, 'seen');
  t.equal(run.outcome, 'timeout', run.reason);
  t.equal(run.thrashing, false, 'a sleeping job is not thrashing');
  t.ok(run.evidence.some((e) => e.source === 'deadline'));
  t.ok(run.evidence.some((e) => e.source === 'pressure'), 'the pressure before the deadline is recorded');
  t.same(run.left, [], 'the agent found nothing of the job alive');
  t.same(survivors(run.pid, run.workdir), [], 'no process of the job is left (checked in /proc)');
});

t.test('a failing requirement probe → unsupported with its message', async (t) => {
  const run = await runPlanted(local, 'print("never runs")\n', {
    probe: { code: 'import tensorflow_that_is_not_here\n' },
  });
  t.equal(run.outcome, 'unsupported', run.reason);
  t.equal(run.probe?.ok, false);
  t.match(run.probe?.message ?? '', /No module named/);
  t.equal(run.exit.code, null, 'the payload never ran');
});

t.test('no interpreter on the device → infra_error, not a product result', async (t) => {
  const run = await runPlanted(local, 'print(1)\n', { python: '/nonexistent/python3' });
  t.equal(run.outcome, 'infra_error', run.reason);
  t.match(run.reason, /could not start/);
  t.match(run.evidence[0]?.detail ?? '', /not found|No such file/);
});
