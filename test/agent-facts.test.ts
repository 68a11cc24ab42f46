/**
 * A device under a memory cap reports the cap, not the machine's RAM: the
 * agent's facts read the limit of the cgroup it runs in, and `hil check`
 * shows it and what is free under it. A real cgroup, as a local device has.
 */
import t from 'tap';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDevice } from '../harness/cli/check.ts';
import { parseInventory } from '../harness/inventory/load.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import { PYTHON, runPlanted } from './agent-fixtures.ts';

const CAP_MB = 192;
const local = new LocalTransport({ name: 'facts', capMb: CAP_MB });
const workdir = mkdtempSync(join(tmpdir(), 'hil-facts-'));
t.teardown(async () => {
  await local.close();
  rmSync(workdir, { recursive: true, force: true });
});

t.test('the facts of a capped device report its cap and what is free under it', async (t) => {
  const run = await runPlanted(local, 'print(1)\n', { facts: true, standIn: `cap ${CAP_MB} MB` });
  t.equal(run.outcome, 'passed', run.reason);
  const f = run.facts;
  t.equal(f?.memoryLimitMb, CAP_MB, `the cgroup's cap, not the machine's ${f?.ramMb} MB`);
  const free = f?.memoryLimitFreeMb ?? NaN;
  // The agent and its interpreter are inside the group, so something is used.
  t.ok(free > 0 && free < CAP_MB, `free under the cap: ${free} MB`);  // The kernel's word size, apart from the userland's: this host's kernel is 64-bit (x86_64 or aarch64).
  const kernel64 = /^(x86_64|aarch64)$/.test(os.machine());
  t.equal(f?.kernelBits, kernel64 ? 64 : 32, `kernelBits of a ${os.machine()} kernel`);
});

t.test('hil check on a capped device shows the cap and the memory free under it', async (t) => {
  const inventory = parseInventory(
    join(workdir, 'devices.yaml'),
    `devices:\n  - { name: cap-check, transport: local, cap_mb: ${CAP_MB}, ram_mb: ${CAP_MB}, arch: amd64, python: ${PYTHON}, workdir: ${workdir} }\n`,
  );
  const device = inventory.devices[0];
  if (!device) throw new Error('the inventory has no device');
  const check = await checkDevice(device, new LocalTransport({ name: device.name, capMb: CAP_MB }));
  t.equal(check.ok, true, check.problem ?? '');
  t.equal(check.memoryLimitMb, CAP_MB);
  const avail = check.memAvailableMb ?? NaN;
  t.ok(avail > 0 && avail < CAP_MB, `mem avail ${avail} MB is what is free under the cap, not the host's`);
  t.match(check.facts ?? '', new RegExp(`${CAP_MB} MB cap \\(\\d+ MB free\\) on \\d+ MB RAM`));
});
