/**
 * A job is one exec: the agent and the payload travel on its stdin, the
 * events come back on its stdout, and the agent removes the workdir after the
 * controller's acknowledgement. Facts are gathered once per device and run.
 * Counted at the transport, on a real local device.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runOnDevice } from '../harness/agent/client.ts';
import { parseInventory } from '../harness/inventory/load.ts';
import type { Device } from '../harness/inventory/device.ts';
import type { DeviceFacts } from '../harness/results/record.ts';
import { executeJob, knownFacts, type JobContext } from '../harness/run/job.ts';
import { loadSuite } from '../harness/suite/suite.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import type { ExecOptions, ExecResult, Transport } from '../harness/transport/transport.ts';
import { plant, PYTHON } from './agent-fixtures.ts';
import { TEST_SUITES } from './helpers/hil.ts';

t.setTimeout(180_000);

/** Counts what a job asks of its transport. */
class Counting implements Transport {
  execs: string[] = [];
  uploads = 0;
  constructor(private readonly inner: Transport) {}
  get describe(): string {
    return this.inner.describe;
  }
  readonly console = null;
  readonly boot = null;
  connect(signal?: AbortSignal): Promise<void> {
    return this.inner.connect(signal);
  }
  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    this.execs.push(command);
    return this.inner.exec(command, options);
  }
  writeFile(p: string, data: Buffer | string, mode?: number): Promise<void> {
    this.uploads++;
    return this.inner.writeFile(p, data, mode);
  }
  readFile(p: string): Promise<Buffer> {
    return this.inner.readFile(p);
  }
  mkdir(p: string, mode?: number): Promise<void> {
    this.uploads++;
    return this.inner.mkdir(p, mode);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const local = new LocalTransport({ name: 'one-exec', capMb: null });
t.teardown(() => local.close());

let n = 0;
function job(p: { payloadDir: string; workdirRoot: string }, extra: Partial<Parameters<typeof runOnDevice>[1]> = {}): Parameters<typeof runOnDevice>[1] {
  return {
    runId: `one-exec-${process.pid}`,
    jobId: `j${++n}`,
    payloadDir: p.payloadDir,
    entry: ['main.py'],
    python: PYTHON,
    workdirRoot: p.workdirRoot,
    deadlineMs: 20_000,
    intervalMs: 50,
    keep: false,
    facts: false,
    ...extra,
  };
}

t.test('a passing job is one exec, uploads nothing on its own, and leaves no workdir', async (t) => {
  const p = plant({ 'main.py': 'import os, hil_phase\nhil_phase.phase("one")\nprint("@@hil value sub %s" % open("lib/x.txt").read())\n' });
  t.teardown(() => p.dispose());
  mkdirSync(join(p.payloadDir, 'lib'));
  writeFileSync(join(p.payloadDir, 'lib', 'x.txt'), 'deep');
  const counting = new Counting(local);
  const run = await runOnDevice(counting, job(p, { probe: { code: 'print("found nothing to need")' } }), new AbortController().signal);
  t.equal(run.ending.kind, 'agent_end', JSON.stringify(run.ending));
  t.equal(run.exit.code, 0);
  t.same(run.phases.map((x) => x.name), ['one'], 'hil_phase.py travelled in the bundle');
  t.equal(run.values['sub'], 'deep', 'files in sub-folders travelled too');
  t.same(run.probe, { ok: true, message: 'found nothing to need' }, 'the probe ran (forked in the agent)');
  t.equal(counting.execs.length, 1, `one exec: ${counting.execs.map((c) => c.slice(0, 60)).join(' | ')}`);
  t.equal(counting.uploads, 0, 'no SFTP upload or mkdir');
  t.notOk(existsSync(run.workdir), 'the agent removed the workdir after the acknowledgement');
  t.ok(run.timing.deployMs !== null && run.timing.deployMs >= 0, `deploy = until the agent said hello (${run.timing.deployMs} ms)`);
});

t.test('with keep, the workdir stays and still one exec', async (t) => {
  const p = plant({ 'main.py': 'print("kept")\n' });
  t.teardown(() => p.dispose());
  const counting = new Counting(local);
  const run = await runOnDevice(counting, job(p, { keep: true }), new AbortController().signal);
  t.equal(run.exit.code, 0);
  t.equal(counting.execs.length, 1);
  t.ok(existsSync(join(run.workdir, 'main.py')), 'the payload is still there');
  t.ok(existsSync(join(run.workdir, '.hil', 'events.jsonl')), 'and the events');
});

t.test('the job spec env reaches the payload', async (t) => {
  const p = plant({ 'main.py': 'import os\nprint("@@hil value got %s" % os.environ.get("HIL_PARAM_SIZE", "unset"))\n' });
  t.teardown(() => p.dispose());
  const run = await runOnDevice(local, job(p, { env: { HIL_PARAM_SIZE: '224' } }), new AbortController().signal);
  t.equal(String(run.values['got']), '224');
});

t.test('env values and file names travel byte for byte: line breaks, =, spaces, non-ASCII, empty', async (t) => {
  // The bundle header is lines and lengths (no json on the device): every awkward value must survive it.
  const env = { HIL_A: 'two\nlines', HIL_B: 'x=y z', HIL_C: 'Grüße 🍓', HIL_D: '' };
  const p = plant({
    'main.py': 'import json, os\nprint("@@hil value env " + json.dumps([os.environ.get(k) for k in ("HIL_A", "HIL_B", "HIL_C", "HIL_D")]))\n' +
      'print("@@hil value file " + json.dumps(open("sub dir/naïve file.txt").read()))\n',
  });
  t.teardown(() => p.dispose());
  mkdirSync(join(p.payloadDir, 'sub dir'));
  writeFileSync(join(p.payloadDir, 'sub dir', 'naïve file.txt'), 'über\n');
  const run = await runOnDevice(local, job(p, { env }), new AbortController().signal);
  t.equal(run.exit.code, 0, run.logs.stderrTail);
  t.same(JSON.parse(String(run.values['env'])), ['two\nlines', 'x=y z', 'Grüße 🍓', '']);
  t.equal(run.values['file'], 'über\n');
  const bad = await runOnDevice(local, job(p, { env: { 'BAD NAME': '1' } }), new AbortController().signal);
  t.match(bad.ending, { kind: 'harness_failure', stage: 'deploy', detail: /"BAD NAME"/ }, 'a name the header cannot carry is refused, named');
});

t.test('a probe that fails, and one that exits with a message, are told apart as before', async (t) => {
  const p = plant({ 'main.py': 'print("never")\n' });
  t.teardown(() => p.dispose());
  const failing = await runOnDevice(local, job(p, { probe: { code: 'import sys\nprint("missing numpy")\nsys.exit(1)\n' } }), new AbortController().signal);
  t.same(failing.probe, { ok: false, message: 'missing numpy (exit 1)' });
  t.equal(failing.pid, null, 'the payload never started');
  const raising = await runOnDevice(local, job(p, { probe: { code: 'raise RuntimeError("probe broke")\n' } }), new AbortController().signal);
  t.match(raising.probe?.message ?? `no probe result; the job ended ${JSON.stringify(raising.ending)}`, /RuntimeError: probe broke \(exit 1\)/);
});

t.test('a workdir that cannot be written is a deploy failure', async (t) => {
  const p = plant({ 'main.py': 'print("never")\n' });
  t.teardown(() => p.dispose());
  const root = join(p.workdirRoot, 'not-a-folder');
  writeFileSync(root, 'a file where the workdir root should be');
  const run = await runOnDevice(local, job({ payloadDir: p.payloadDir, workdirRoot: root }), new AbortController().signal);
  t.equal(run.ending.kind, 'harness_failure');
  if (run.ending.kind === 'harness_failure') {
    t.equal(run.ending.stage, 'deploy', run.ending.detail);
    t.match(run.ending.detail, /cannot deploy the agent/);
  }
});

t.test('known facts: the agent sends only the facts that change, laid over them', async (t) => {
  const p = plant({ 'main.py': 'print("x")\n' });
  t.teardown(() => p.dispose());
  const first = await runOnDevice(local, job(p, { facts: true }), new AbortController().signal);
  t.ok(first.facts, 'the first job gathers every fact');
  const sentinel: DeviceFacts = { ...first.facts!, model: 'known from the first job', memoryLimitFreeMb: -1, throttled: 'stale' };
  const events: string[] = [];
  const second = await runOnDevice(local, job(p, { facts: true, knownFacts: sentinel }), new AbortController().signal, (e) => events.push(e.type));
  t.ok(events.includes('factsNow') && !events.includes('facts'), `events: ${events.join(',')}`);
  t.equal(second.facts?.model, 'known from the first job', 'what does not change is taken from the run');
  t.equal(second.facts?.memoryLimitFreeMb, first.facts!.memoryLimitFreeMb, 'what changes is read again');
  t.equal(second.facts?.throttled, first.facts!.throttled, 'the throttle state is read again');
});

t.test('executeJob gathers a device\'s facts on its first job of a run and reuses them after', async (t) => {
  const inventory = parseInventory('devices.yaml', `devices:\n  - { name: facts-local, transport: local, ram_mb: 256, arch: amd64, python: ${PYTHON} }\n`);
  const device = inventory.devices[0] as Device;
  const counting = new Counting(local);
  const ctx = (runId: string): JobContext => ({
    runId,
    transportFor: () => counting,
    judge: () => null,
    admit: async () => ({ admitted: true }),
    keep: false,
    sampleIntervalMs: 50,
    observe: () => undefined,
  });
  const suite = loadSuite('quick', TEST_SUITES);
  const runId = `facts-run-${process.pid}`;
  t.equal(knownFacts(counting, runId), null, 'nothing known before the first job');
  const a = await executeJob({ id: 'quick.a', device, suite }, new AbortController().signal, ctx(runId));
  t.equal(a.record.outcome, 'passed', a.record.reason);
  t.ok(knownFacts(counting, runId), 'known after it');
  t.match(counting.execs[0] ?? '', /--facts full/);
  const b = await executeJob({ id: 'quick.b', device, suite }, new AbortController().signal, ctx(runId));
  t.equal(b.record.outcome, 'passed', b.record.reason);
  t.match(counting.execs[1] ?? '', /--facts now/, 'the second job of the run asks only for what changes');
  t.same(b.record.facts?.versions, a.record.facts?.versions, 'and its record still has every fact');
  t.equal(knownFacts(counting, 'another-run'), null, 'another run gathers its own');
  await executeJob({ id: 'quick.c', device, suite }, new AbortController().signal, ctx('another-run'));
  t.match(counting.execs[2] ?? '', /--facts full/);
});

t.test('the agent is compiled once per device and interpreter; a broken or foreign-writable cache is not run', async (t) => {
  const p = plant({ 'main.py': 'print("cached")\n' });
  t.teardown(() => p.dispose());
  const cacheDir = join(p.workdirRoot, '.hil-agent');
  const first = await runOnDevice(local, job(p), new AbortController().signal);
  t.equal(first.exit.code, 0);
  const cached = readdirSync(cacheDir).filter((f) => /^monitor-[0-9a-f]{16}\.cpython-\d+$/.test(f));
  t.equal(cached.length, 1, `one compiled agent: ${readdirSync(cacheDir).join(', ')}`);
  const file = join(cacheDir, cached[0]!);
  // Garbage in the cache: marshal cannot load it, so the agent compiles afresh and replaces it.
  writeFileSync(file, 'not marshal data');
  const broken = await runOnDevice(local, job(p), new AbortController().signal);
  t.equal(broken.exit.code, 0, 'a broken cache is compiled over');
  t.not(readFileSync(file, 'utf8'), 'not marshal data', 'and replaced');
  // Valid code that would take the job over, in a folder anyone may write to: never run.
  const evil = execFileSync(PYTHON, ['-c', 'import marshal,sys; sys.stdout.buffer.write(marshal.dumps(compile("import sys; sys.exit(42)", "x", "exec")))']);
  writeFileSync(file, evil);
  chmodSync(cacheDir, 0o777);
  const foreign = await runOnDevice(local, job(p), new AbortController().signal);
  t.equal(foreign.ending.kind, 'agent_end', `not the planted code: ${JSON.stringify(foreign.ending)}`);
  t.equal(foreign.exit.code, 0);
  t.equal(readFileSync(file).equals(evil), true, 'nor written over');
  chmodSync(cacheDir, 0o700);
  const planted = await runOnDevice(local, job(p), new AbortController().signal);
  t.equal(planted.ending.kind, 'harness_failure', 'the same code in a private cache is run: the check above is what kept it out');
});
