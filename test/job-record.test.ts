/**
 * One job, end to end through executeJob on a real capped local device: the
 * record keeps what the agent session went through (payload pid, re-attach
 * count, leftovers), its times leave out the wait for the device, and an
 * interrupted job is never a product result.
 */
import t from 'tap';
import { parseInventory } from '../harness/inventory/load.ts';
import type { Device } from '../harness/inventory/device.ts';
import type { ResultRecord } from '../harness/results/record.ts';
import { executeJob, type JobContext } from '../harness/run/job.ts';
import type { RunEvent } from '../harness/run/events.ts';
import { loadSuite } from '../harness/suite/suite.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import { agentForegrounds, PYTHON, survivors } from './agent-fixtures.ts';
import { TEST_SUITES } from './helpers/hil.ts';
import { processes } from '../scripts/lib/proc.ts';

t.setTimeout(180_000);

const inventory = parseInventory(
  'devices.yaml',
  `devices:\n  - { name: job-local, transport: local, cap_mb: 256, ram_mb: 256, arch: amd64, python: ${PYTHON} }\n`,
);
const device = inventory.devices[0] as Device;
const transport = new LocalTransport({ name: device.name, capMb: 256 });
t.teardown(() => transport.close());

function context(observe: (e: RunEvent) => void = () => undefined): JobContext {
  return {
    runId: `job-record-${process.pid}`,
    transportFor: () => transport,
    judge: () => null,
    admit: async () => ({ admitted: true }),
    keep: false,
    sampleIntervalMs: 50,
    observe,
  };
}

async function runSuite(name: string, signal: AbortSignal, observe?: (e: RunEvent) => void): Promise<ResultRecord> {
  const suite = loadSuite(name, TEST_SUITES);
  return (await executeJob({ id: `${suite.name}.${device.name}`, device, suite }, signal, context(observe))).record;
}

t.test('a job that survived a dropped stream says so in its record', async (t) => {
  let cut: number[] = [];
  const record = await runSuite('sleepy', new AbortController().signal, (e) => {
    if (e.kind === 'phase' && cut.length === 0) {
      // The worker shares the foreground's argv; where it is still the foreground's child, spare it.
      const agents = agentForegrounds(-1);
      const parent = new Map(processes().map((p) => [p.pid, p.ppid]));
      cut = agents.filter((pid) => !agents.includes(parent.get(pid) ?? 0));
      for (const pid of cut) process.kill(pid, 'SIGKILL');
    }
  });
  t.ok(cut.length >= 1, `cut the stream by killing foreground pid(s) ${cut.join(',')}`);
  t.equal(record.outcome, 'passed', record.reason);
  t.ok(record.agent.reattached >= 1, `record.agent.reattached = ${record.agent.reattached}`);
  t.ok(record.agent.payloadPid !== null && record.agent.payloadPid > 1, `payload pid ${record.agent.payloadPid}`);
  t.same(record.agent.leftPids, [], 'nothing of the job outlived it');
  t.ok(record.evidence.some((e) => e.source === 'transport' && /re-attached/.test(e.detail)), JSON.stringify(record.evidence));
});

t.test("job time leaves out the wait for the device; a local device boots nothing and has no console", async (t) => {
  const record = await runSuite('sleepy', new AbortController().signal);
  t.equal(record.outcome, 'passed', record.reason);
  t.equal(record.timing.bootMs, null);
  t.equal(record.logs.console, null, 'no serial console on a local device');
  const whole = Date.parse(record.timing.endedAt) - Date.parse(record.timing.startedAt);
  t.equal(record.timing.wallMs + (record.timing.connectMs ?? 0), whole, 'wall + connect is the whole job');
  t.ok(record.timing.wallMs >= 3000, `the 3 s payload is in the wall time (${record.timing.wallMs} ms)`);
});

t.test('Ctrl-C during a job is infra_error, and nothing of the job is left', async (t) => {
  const ac = new AbortController();
  const record = await runSuite('medium', ac.signal, (e) => {
    if (e.kind === 'phase') setTimeout(() => ac.abort(new Error('SIGINT')), 200);
  });
  t.equal(record.outcome, 'infra_error', record.reason);
  t.match(record.reason, /interrupted \(SIGINT\)/);
  t.same(survivors(record.agent.payloadPid, `job-record-${process.pid}`), [], 'the payload was killed');
});
