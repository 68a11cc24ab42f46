/**
 * Start or stop a rack of real OpenSSH servers on loopback, for tests and demos.
 *
 *   npx tsx scripts/local-sshd.ts start <count> --dir DIR [--caps 512,1024] [--python PATH]
 *   npx tsx scripts/local-sshd.ts stop --dir DIR
 *
 * `start` writes DIR/devices.yaml describing the devices and DIR/rack.json for `stop`.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { removeCgroup } from '../harness/host/cgroup.ts';
import { startLocalSshd } from './lib/local-sshd.ts';
import { commandLine, descendantsOf, processesUnder } from './lib/proc.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { dir: { type: 'string' }, caps: { type: 'string' }, python: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
const [command, count] = positionals;
const usage = 'usage: local-sshd.ts start <count> --dir DIR [--caps 512,1024] [--python PATH] | stop --dir DIR';

if (values.help || !values.dir || (command !== 'start' && command !== 'stop')) {
  process.stderr.write(`${usage}\n`);
  process.exit(values.help ? 0 : 2);
}
const dir = values.dir;
const state = join(dir, 'rack.json');

if (command === 'start') {
  const n = Number(count);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`local-sshd.ts: <count> must be a whole number of 1 or more, got ${JSON.stringify(count)}\n`);
    process.exit(2);
  }
  const capsMb = values.caps ? values.caps.split(',').map((c) => (c === '' || c === '-' ? null : Number(c))) : [];
  const rack = await startLocalSshd({ dir, count: n, capsMb, ...(values.python ? { python: values.python } : {}) }).catch((e: unknown) => {
    // A refusal says what to change; a stack trace would bury it.
    process.stderr.write(`local-sshd.ts: ${(e as Error).message}\n`);
    process.exit(1);
  });
  writeFileSync(state, JSON.stringify({ workRoot: rack.workRoot, devices: rack.devices.map((d) => ({ name: d.name, pid: d.pid, cgroup: d.cgroup?.path ?? null })) }));
  for (const d of rack.devices) process.stdout.write(`${d.name}  127.0.0.1:${d.port}  ${d.hostKeyFingerprint}${d.capMb ? `  cap ${d.capMb} MB` : ''}\n`);
  process.stdout.write(`inventory: ${rack.inventoryFile}\n`);
} else {
  if (!existsSync(state)) {
    process.stderr.write(`local-sshd.ts: no rack in ${dir} (missing ${state})\n`);
    process.exit(2);
  }
  const { workRoot, devices } = JSON.parse(readFileSync(state, 'utf8')) as { workRoot: string; devices: { name: string; pid: number; cgroup: string | null }[] };
  for (const d of devices) {
    // Only a pid that is still this device's sshd: the number may have been reused since `start`.
    const alive = commandLine(d.pid)?.includes(join(dir, d.name)) ?? false;
    for (const pid of [...(alive ? [d.pid, ...descendantsOf(d.pid)] : []), ...processesUnder(join(workRoot, d.name))]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (d.cgroup !== null) removeCgroup(d.cgroup);
    process.stdout.write(`stopped ${d.name}\n`);
  }
  rmSync(workRoot, { recursive: true, force: true });
  rmSync(state);
}
