/**
 * The suites for real on local capped devices: the local transport puts each
 * job in a fresh memory cgroup (needs root), the agent runs the suite's
 * requirement probe and main.py and classifies the end, and the suite's
 * expectation judges it. Real TensorFlow from the venv, real Arm NN from
 * Debian's python3.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { DeviceSnapshot, Outcome } from '../harness/results/record.ts';
import { runOnDevice } from '../harness/agent/client.ts';
import { decideOutcome } from '../harness/run/outcome.ts';
import type { DecidedRun } from './agent-fixtures.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import { judgeInDetail } from '../harness/suite/expectation.ts';
import { probeScript } from '../harness/suite/probe.ts';
import { loadSuite } from '../harness/suite/suite.ts';
import { markers, warmVenv } from '../scripts/measure-caps.ts';
import { DEBIAN_PYTHON, tfPython } from './helpers/tf-venv.ts';

const workRoot = mkdtempSync(join(tmpdir(), 'pi-hil-suite-run-'));
t.teardown(() => rmSync(workRoot, { recursive: true, force: true }));

const local = (capMb: number): DeviceSnapshot => ({ name: `local-${capMb}m`, transport: 'local', model: 'host stand-in', ramMb: capMb, arch: 'amd64', tags: [] });

/** One job of `suiteName` on a local device capped at `capMb`, under the suite's own timeout. */
async function run(suiteName: string, python: string, capMb: number): Promise<DecidedRun> {
  const suite = loadSuite(suiteName);
  const transport = new LocalTransport({ name: `suite-run-${capMb}`, capMb });
  try {
    const ran = await runOnDevice(
      transport,
      {
        runId: 'suite-run',
        jobId: `${suiteName}.local-${capMb}m`,
        payloadDir: suite.dir,
        entry: [suite.main],
        probe: { code: probeScript(suite.probe) },
        python,
        workdirRoot: workRoot,
        deadlineMs: suite.timeoutMs,
        intervalMs: 50,
        keep: false,
        standIn: 'local capped host',
      },
      AbortSignal.timeout(suite.timeoutMs + 120_000),
    );
    return { ...ran, ...decideOutcome({ ending: ran.ending, abort: null, deadlineMs: suite.timeoutMs, reattached: ran.reattached }) };
  } finally {
    await transport.close();
  }
}

/** The run ended as `wanted`; its reason and stderr are shown only when it did not. */
function endedAs(t: Test, ran: DecidedRun, wanted: Outcome): void {
  const how = `ended ${ran.outcome}: ${ran.reason}`;
  t.equal(ran.outcome, wanted, ran.outcome === wanted ? how : `${how}\n${ran.logs.stderrTail.slice(-1500)}`);
}

/** The suite's expectation for this device class is met, judged on the agent's own facts. */
function expectMet(t: Test, suiteName: string, capMb: number, ran: DecidedRun): void {
  const j = judgeInDetail(loadSuite(suiteName), { device: local(capMb), facts: ran.facts, outcome: ran.outcome, values: ran.values });
  t.ok(j, `${suiteName} has an expectation for a local ${capMb} MB device`);
  t.same(j?.problems, [], `${suiteName} at ${capMb} MB meets its expectation: ${j?.verdict.claim.slice(0, 70)}...`);
}

t.test('keras-train passes at 2 GB and is OOM-killed at 128 MB', async (t) => {
  const python = tfPython();
  const big = await run('keras-train', python, 2048);
  endedAs(t, big, 'passed');
  t.same(big.probe, { ok: true, message: 'found tensorflow' });
  t.same(big.phases.map((p) => p.name), ['import', 'build', 'compile', 'fit']);
  t.type(big.values.loss, 'number');
  t.equal(big.facts?.emulated, true, 'a local device says it only stands in for a Pi');
  expectMet(t, 'keras-train', 2048, big);

  // TF's libraries charged outside the cap: the cap then binds on anonymous
  // memory and the run dies in seconds instead of thrashing on re-read
  // library pages until the deadline (see scripts/measure-caps.ts).
  warmVenv(python);
  const small = await run('keras-train', python, 128);
  endedAs(t, small, 'oom_killed');
  t.equal(small.exit.signal, 'KILL');
  t.ok(small.evidence.some((e) => ['kernel_log', 'cgroup_oom_kill', 'vmstat_oom_kill'].includes(e.source)), 'OOM evidence kept');
  expectMet(t, 'keras-train', 128, small);
});

t.test('device-listing reports one CPU device and no GPU; without TF the probe says unsupported', async (t) => {
  const ran = await run('device-listing', tfPython(), 2048);
  endedAs(t, ran, 'passed');
  t.equal(ran.values.cpus, 1, 'TF lists one logical CPU device on a 2-core machine');
  t.equal(ran.values.gpus, 0);
  t.match(ran.values.tf_version, /^2\.\d+\.\d+/);
  expectMet(t, 'device-listing', 2048, ran);

  // Debian's python has no TensorFlow: what a QEMU Pi meets.
  const none = await run('device-listing', DEBIAN_PYTHON, 512);
  endedAs(t, none, 'unsupported');
  t.equal(none.probe?.ok, false);
  t.match(none.probe?.message, /missing tensorflow/);
  t.same(none.phases, [], 'main.py never ran');
});

t.test('tflite-inference runs through tf.lite and through Arm NN', async (t) => {
  for (const [python, interpreter, capMb] of [
    [tfPython(), 'tf.lite', 2048],
    [DEBIAN_PYTHON, 'pyarmnn', 128],
  ] as const) {
    const ran = await run('tflite-inference', python, capMb);
    endedAs(t, ran, 'passed');
    t.equal(ran.values.interpreter, interpreter);
    t.equal(ran.values.output_shape, '[1, 1]');
    t.equal(ran.values.n_inferences, 100);
    for (const key of ['first_inference_ms', 'latency_mean_ms', 'latency_p50_ms', 'latency_p90_ms']) {
      t.ok(typeof ran.values[key] === 'number' && ran.values[key] > 0, `${interpreter}: ${key} = ${ran.values[key]}`);
    }
    t.ok(Number(ran.values.latency_p50_ms) <= Number(ran.values.latency_p90_ms), 'p50 <= p90');
    t.same(ran.phases.map((p) => p.name), ['import', 'allocate', 'first_inference', 'invoke']);
    expectMet(t, 'tflite-inference', capMb, ran);
  }
});

t.test('memory-ladder: killed at a cgroup cap, refused at an address-space ceiling', async (t) => {
  const killed = await run('memory-ladder', DEBIAN_PYTHON, 256);
  endedAs(t, killed, 'oom_killed');
  t.equal(killed.values.stopped_by, 'killed');
  t.equal(killed.values.address_bits, 64);
  const usable = Number(killed.values.usable_mb);
  t.ok(usable >= 128 && usable <= 256, `usable ${usable} MB under a 256 MB cap`);
  expectMet(t, 'memory-ladder', 256, killed);

  // RLIMIT_AS stands in for a 32-bit process's address space: allocation is
  // refused (MemoryError), which the ladder must record as such.
  const r = spawnSync('sh', ['-c', 'ulimit -v 400000 && exec "$0" main.py', DEBIAN_PYTHON], { cwd: 'suites/memory-ladder', encoding: 'utf8', timeout: 120_000 });
  const { values } = markers(r.stdout);
  t.equal(r.status, 1, r.status === 1 ? 'exit 1 after the MemoryError' : r.stderr.slice(-500));
  t.match(r.stderr, /MemoryError: refused after \d+ MB/);
  t.equal(values.stopped_by, 'refused');
  t.ok(Number(values.usable_mb) > 200 && Number(values.usable_mb) < 400, `usable ${values.usable_mb} MB under a 400000 KiB address space`);
});
