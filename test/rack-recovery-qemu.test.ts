/**
 * Recovery of an emulated Pi, end to end through `hil run`: the guest's
 * userland hangs in the middle of a job (every process but init stopped: the
 * kernel still accepts connections, nothing answers, as on a wedged Pi); the
 * controller loses the job, power-cycles the guest (QMP system_reset), finds
 * it healthy again, and retries the job, which passes. Both attempts are
 * stored. (A guest with its CPUs stopped through QMP is cycled back in
 * test/power-qemu.test.ts.)
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ensureImage } from './qemu-fixtures.ts';
import { onlyRunDir, readRecords, startHil, TEST_SUITES } from './helpers/hil.ts';

t.setTimeout(900_000);

t.before(async () => {
  await ensureImage('arm64');
});

t.test('a hung guest is power-cycled and its job retried once; both attempts stored', async (t) => {
  const dir = t.testdir();
  const state = mkdtempSync(join(os.tmpdir(), 'pi-hil-recovery-qemu-'));
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(inventory, 'devices:\n  - { name: wedge-arm64, transport: qemu, profile: pi3b-1g-arm64, timeouts: { connect: 20s, boot: 10m } }\n');
  const out = join(dir, 'runs');
  const run = startHil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'wedge', '--out', out, '--no-report'], { PI_HIL_STATE: state });
  const { code } = await run.done;
  t.equal(code, 0, `the retry passed, so every expectation is met\n${run.stderr()}`);
  const [first, second] = readRecords(onlyRunDir(out));
  t.equal(first?.outcome, 'infra_error', first?.reason ?? 'no record');
  t.equal(second?.outcome, 'passed', second?.reason ?? 'no retry record');
  t.same(second?.attempt, { n: 2, previous: { outcome: 'infra_error', reason: first?.reason } });
  t.match(run.stderr(), /wedge-arm64 .*stopped answering: power-cycling it \(QEMU: system_reset/);
  t.match(run.stderr(), /wedge-arm64 .*recovered/);
});
