/**
 * Two pi-hil jobs on one device at once (what leases prevent, and what a dead
 * controller's leftover job would do): each job's record says that another
 * ran beside it, naming its agent, while its outcome stands.
 */
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTransport } from '../harness/transport/local.ts';
import { runPlanted } from './agent-fixtures.ts';

const local = new LocalTransport({ name: 'foreign', capMb: 512 });
t.teardown(() => local.close());

t.test('a job that shared its device with another pi-hil job records it as evidence', async (t) => {
  // Two controllers use the device's one workdir root, each with its own run folder.
  const workdirRoot = mkdtempSync(join(tmpdir(), 'hil-shared-root-'));
  chmodSync(workdirRoot, 0o1777);
  t.teardown(() => rmSync(workdirRoot, { recursive: true, force: true }));
  const payload = 'import time\ntime.sleep(2.5)\n';
  const [a, b] = await Promise.all([runPlanted(local, payload, { workdirRoot, runId: 'run-a' }), runPlanted(local, payload, { workdirRoot, runId: 'run-b' })]);
  for (const [run, other] of [[a, b], [b, a]] as const) {
    t.equal(run.outcome, 'passed', 'the outcome stands');
    const ev = run.evidence.find((e) => e.source === 'foreign_job');
    t.ok(ev, JSON.stringify(run.evidence));
    t.match(ev?.detail ?? '', new RegExp(`another pi-hil job ran on the device at the same time \\(agent pid \\d+ in ${other.workdir}`));
  }
  const alone = await runPlanted(local, 'print(1)\n', { workdirRoot });
  t.notOk(alone.evidence.some((e) => e.source === 'foreign_job'), 'a job alone on its device says nothing');
});
