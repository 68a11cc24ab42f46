/**
 * Evidence sources that are missing are recorded with the reason, and the
 * outcome still rests on what remains: here dmesg is refused (as for a user
 * under dmesg_restrict=1), so the OOM kill is proven by the cgroup counter.
 */
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTransport } from '../harness/transport/local.ts';
import { runPlanted } from './agent-fixtures.ts';

const stubs = mkdtempSync(join(tmpdir(), 'hil-stubs-'));
writeFileSync(join(stubs, 'dmesg'), '#!/bin/sh\necho "dmesg: read kernel buffer failed: Operation not permitted" >&2\nexit 1\n');
chmodSync(join(stubs, 'dmesg'), 0o755);
// Every process this test starts (and so the agent) finds the refusing dmesg first.
process.env.PATH = `${stubs}:${process.env.PATH ?? ''}`;

const local = new LocalTransport({ name: 'evidence', capMb: 128 });
t.teardown(async () => {
  await local.close();
  rmSync(stubs, { recursive: true, force: true });
});

t.test('dmesg refused: recorded as unavailable, OOM proven by the cgroup counter', async (t) => {
  const run = await runPlanted(local, 'b = bytearray(b"\\x01") * (300 * 1024 * 1024)\n');
  t.equal(run.outcome, 'oom_killed', run.reason);
  const dmesg = run.unavailable.find((u) => u.source === 'dmesg');
  t.ok(dmesg, `unavailable: ${JSON.stringify(run.unavailable)}`);
  t.match(dmesg?.why ?? '', /dmesg_restrict=\d.*Operation not permitted/);
  t.ok(run.evidence.some((e) => e.source === 'cgroup_oom_kill'), JSON.stringify(run.evidence));
});
