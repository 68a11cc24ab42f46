/** The outcome table of docs/outcomes.md, rule by rule, on the pure decision. */
import t from 'tap';
import type { EndFacts, OutcomeDecision, OutcomeInput } from '../harness/run/outcome.ts';
import { decideOutcome, lastException, THRASH_MAJFLT_PER_S } from '../harness/run/outcome.ts';

const base: EndFacts = {
  probe: null,
  agentError: null,
  code: 0,
  signal: null,
  killedBy: null,
  killedAtMs: null,
  stderrTail: '',
  oom: { vmstatBefore: 5, vmstatAfter: 5, cgroupBefore: 0, cgroupAfter: 0, kernelLines: [], kernelLogSource: null },
  pressure: { windowMs: 5000, majfltPerS: 0, sysMajfltPerS: 0, psiSome10: 0, psiScope: null },
};
const ev = (over: Partial<EndFacts>): EndFacts => ({ ...base, ...over });
/** The decision for an agent end event, with no controller abort unless given. */
const classify = (end: EndFacts, more: Partial<Omit<OutcomeInput, 'ending'>> = {}): OutcomeDecision =>
  decideOutcome({ ending: { kind: 'agent_end', end }, abort: null, deadlineMs: 10_000, reattached: 0, ...more });
const tb = (last: string): string => `Traceback (most recent call last):\n  File "main.py", line 1, in <module>\n${last}\n`;

t.test('exit codes', async (t) => {
  t.equal(classify(ev({})).outcome, 'passed');
  t.equal(classify(ev({ code: 0, stderrTail: tb('ImportError: x') })).outcome, 'passed', 'exit 0 wins over noise on stderr');
  const failed = classify(ev({ code: 3, stderrTail: 'boom\n' }));
  t.equal(failed.outcome, 'failed');
  t.match(failed.reason, /exit 3/);
  t.ok(failed.evidence.some((e) => e.source === 'stderr' && e.detail.includes('boom')));
  t.equal(classify(ev({ code: null })).outcome, 'failed');
});

t.test('unsupported', async (t) => {
  t.equal(classify(ev({ code: null, signal: 'ILL' })).outcome, 'unsupported');
  const imp = classify(ev({ code: 1, stderrTail: tb("ModuleNotFoundError: No module named 'tensorflow'") }));
  t.equal(imp.outcome, 'unsupported');
  t.match(imp.reason, /No module named 'tensorflow'/);
  t.equal(classify(ev({ code: 1, stderrTail: tb('ImportError: libarmnn.so.22: cannot open shared object file') })).outcome, 'unsupported');
  const abi = 'A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.0.0 as it may crash.\n' + tb('AttributeError: _ARRAY_API not found');
  const a = classify(ev({ code: 1, stderrTail: abi }));
  t.equal(a.outcome, 'unsupported');
  t.match(a.reason, /NumPy ABI/);
  t.equal(classify(ev({ code: 1, stderrTail: tb("ImportError: /lib/arm-linux-gnueabihf/libc.so.6: version `GLIBC_2.34' not found") })).outcome, 'unsupported');
  const probe = classify(ev({ probe: { ok: false, message: 'no tflite runtime', killedBy: null }, code: null }));
  t.equal(probe.outcome, 'unsupported');
  t.match(probe.reason, /no tflite runtime/);
  t.same(probe.evidence, [{ source: 'probe', detail: 'no tflite runtime' }]);
  t.equal(classify(ev({ probe: { ok: true, message: 'ok', killedBy: null } })).outcome, 'passed', 'a passing probe changes nothing');
});

t.test('memory_error', async (t) => {
  t.equal(classify(ev({ code: 1, stderrTail: tb('MemoryError') })).outcome, 'memory_error');
  t.equal(classify(ev({ code: 1, stderrTail: tb('MemoryError: Unable to allocate 3.00 GiB') })).outcome, 'memory_error');
  t.equal(
    classify(ev({ code: null, signal: 'ABRT', stderrTail: "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n" })).outcome,
    'memory_error',
    'std::bad_alloc then abort is an allocation failure, not a crash',
  );
  t.equal(
    classify(ev({ code: 1, stderrTail: tb('ImportError: libtensorflow_framework.so.2: failed to map segment from shared object') })).outcome,
    'memory_error',
  );
});

t.test('crashed', async (t) => {
  for (const s of ['SEGV', 'BUS', 'ABRT']) {
    const c = classify(ev({ code: null, signal: s }));
    t.equal(c.outcome, 'crashed', s);
    t.same(c.evidence[0], { source: 'signal', detail: `SIG${s}` });
  }
});

t.test('oom_killed needs OOM evidence', async (t) => {
  const kernel = classify(ev({
    code: null,
    signal: 'KILL',
    oom: { vmstatBefore: 5, vmstatAfter: 5, cgroupBefore: null, cgroupAfter: null, kernelLines: ['Out of memory: Killed process 4242 (python3) total-vm:1kB'], kernelLogSource: 'dmesg' },
  }));
  t.equal(kernel.outcome, 'oom_killed');
  t.match(kernel.reason, /kernel OOM line/);
  t.ok(kernel.evidence.some((e) => e.source === 'kernel_log' && e.detail.includes('4242')));
  const vm = classify(ev({ code: null, signal: 'KILL', oom: { ...base.oom!, vmstatAfter: 6 } }));
  t.equal(vm.outcome, 'oom_killed');
  t.ok(vm.evidence.some((e) => e.source === 'vmstat_oom_kill'));
  const cg = classify(ev({ code: null, signal: 'KILL', oom: { ...base.oom!, cgroupAfter: 1 } }));
  t.equal(cg.outcome, 'oom_killed');
  t.match(cg.reason, /cgroup/);
  const bare = classify(ev({ code: null, signal: 'KILL' }));
  t.not(bare.outcome, 'oom_killed', 'SIGKILL alone is not an OOM kill');
  t.match(bare.reason, /without OOM evidence/);
  t.equal(classify(ev({ code: null, signal: 'KILL', oom: null })).outcome, 'failed');
});

t.test('timeout and thrashing', async (t) => {
  const calm = classify(ev({ code: null, signal: 'KILL', killedBy: 'deadline' }));
  t.equal(calm.outcome, 'timeout');
  t.equal(calm.thrashing, false);
  t.ok(calm.evidence.some((e) => e.source === 'deadline'));
  const faults = classify(ev({
    code: null,
    signal: 'KILL',
    killedBy: 'deadline',
    oom: { ...base.oom!, vmstatAfter: 9 },
    pressure: { windowMs: 5000, majfltPerS: THRASH_MAJFLT_PER_S * 3, sysMajfltPerS: 900, psiSome10: null, psiScope: null },
  }));
  t.equal(faults.outcome, 'timeout', 'our own deadline kill is never an OOM kill');
  t.equal(faults.thrashing, true);
  t.match(faults.reason, /thrashing/);
  const pressure = (majfltPerS: number, psiSome10: number, psiScope: 'cgroup' | 'system') =>
    classify(ev({ killedBy: 'deadline', code: null, signal: 'KILL', pressure: { windowMs: 5000, majfltPerS, sysMajfltPerS: 500, psiSome10, psiScope } }));
  t.equal(pressure(0, 42, 'cgroup').thrashing, true, "the job's own cgroup PSI suffices");
  t.equal(pressure(0, 42, 'system').thrashing, false, 'system PSI from other tenants alone does not');
  t.equal(pressure(20, 42, 'system').thrashing, true, 'system PSI while the job faults does');
  t.equal(pressure(20, 2, 'system').thrashing, false, 'a few faults without pressure do not');
  const backstop = { cause: 'deadline' as const, detail: 'backstop' };
  t.equal(classify(ev({ killedBy: 'controller', code: null, signal: 'KILL' }), { abort: backstop }).outcome, 'timeout', "the controller's deadline backstop is a timeout");
});

t.test('a killed probe is never a product outcome', async (t) => {
  const probeKilled = (killedBy: 'deadline' | 'controller') =>
    ev({ probe: { ok: false, message: 'probe did not finish before the deadline (900 ms)', killedBy }, code: null });
  const byDeadline = classify(probeKilled('deadline'));
  t.equal(byDeadline.outcome, 'timeout', byDeadline.reason);
  t.match(byDeadline.reason, /requirement probe/);
  const interrupt = { cause: 'interrupt' as const, detail: 'SIGINT' };
  const byInterrupt = classify(probeKilled('controller'), { abort: interrupt });
  t.equal(byInterrupt.outcome, 'infra_error', byInterrupt.reason);
  t.match(byInterrupt.reason, /interrupted \(SIGINT\)/);
  t.ok(byInterrupt.evidence.some((e) => e.source === 'interrupt'));
  t.equal(classify(probeKilled('controller')).outcome, 'infra_error', 'a kill nobody here asked for (another controller) is not a product result');
  t.equal(classify(probeKilled('controller'), { abort: { cause: 'deadline', detail: 'backstop' } }).outcome, 'timeout');
});

t.test('an interrupted payload is infra_error; one that ended first keeps its own outcome', async (t) => {
  const interrupt = { cause: 'interrupt' as const, detail: 'SIGTERM' };
  const killed = classify(ev({ killedBy: 'controller', killedAtMs: 1200, code: null, signal: 'KILL' }), { abort: interrupt });
  t.equal(killed.outcome, 'infra_error');
  t.match(killed.reason, /interrupted \(SIGTERM\)/);
  t.equal(classify(ev({ code: 0 }), { abort: interrupt }).outcome, 'passed', 'the payload finished before the interrupt struck');
  t.equal(classify(ev({ killedBy: 'deadline', code: null, signal: 'KILL' }), { abort: interrupt }).outcome, 'timeout', 'the deadline struck first');
});

t.test('harness failures and agent errors are infra_error', async (t) => {
  for (const stage of ['connect', 'deploy', 'agent_start', 'agent_died', 'protocol', 'lost', 'uncollected'] as const) {
    const d = decideOutcome({ ending: { kind: 'harness_failure', stage, detail: 'ECONNRESET' }, abort: null, deadlineMs: null, reattached: 0 });
    t.equal(d.outcome, 'infra_error', stage);
    t.same(d.evidence, [{ source: 'transport', detail: 'ECONNRESET' }], stage);
  }
  const cut = decideOutcome({
    ending: { kind: 'harness_failure', stage: 'uncollected', detail: 'aborted' },
    abort: { cause: 'interrupt', detail: 'SIGINT' },
    deadlineMs: null,
    reattached: 1,
  });
  t.match(cut.reason, /^interrupted \(SIGINT\)/);
  t.ok(cut.evidence.some((e) => e.source === 'interrupt'));
  const agent = classify(ev({ agentError: 'cannot fork' }));
  t.equal(agent.outcome, 'infra_error');
  t.match(agent.reason, /the agent failed: cannot fork/);
});

t.test('a re-attached job says so in its evidence', async (t) => {
  const d = classify(ev({ code: 0 }), { reattached: 2 });
  t.equal(d.outcome, 'passed');
  t.ok(d.evidence.some((e) => e.source === 'transport' && /lost 2 time\(s\).*re-attached/.test(e.detail)), JSON.stringify(d.evidence));
  t.notOk(classify(ev({ code: 0 })).evidence.some((e) => e.source === 'transport'), 'nothing to say without a re-attach');
});

t.test('other signals and the exception parser', async (t) => {
  t.equal(classify(ev({ code: null, signal: 'TERM' })).outcome, 'failed');
  t.same(lastException(tb('ValueError: bad')), { name: 'ValueError', line: 'ValueError: bad' });
  t.same(lastException(tb('numpy.core._exceptions._ArrayMemoryError: Unable to allocate')), {
    name: '_ArrayMemoryError',
    line: 'numpy.core._exceptions._ArrayMemoryError: Unable to allocate',
  });
  t.equal(lastException('just text\n'), null);
});

t.test('the rules in outcome.ts run in the order of docs/outcomes.md', async (t) => {
  const { readFileSync } = await import('node:fs');
  const doc = readFileSync(new URL('../docs/outcomes.md', import.meta.url), 'utf8');
  const code = readFileSync(new URL('../harness/run/outcome.ts', import.meta.url), 'utf8');
  const table = [...doc.matchAll(/^\| (\d+) \| `(\w+)`/gm)].map((m) => `${m[1]} ${m[2]}`);
  // Each rule in the code is marked "// N. outcome…"; a comment may name two consecutive rules.
  const marked = [...code.matchAll(/\/\/ (\d+)\. (\w+)[^;\n]*(?:; (\d+)\. (\w+))?/g)].flatMap((m) =>
    m[3] ? [`${m[1]} ${m[2]}`, `${m[3]} ${m[4]}`] : [`${m[1]} ${m[2]}`],
  );
  t.equal(table.length, 18, 'the table has its 18 rules');
  t.same(marked, table, 'the code marks the same rules, in the same order');
});
