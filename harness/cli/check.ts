/**
 * `hil check`: validate the inventory, then probe each selected device:
 * reachable, host key, python3, free memory and disk, and a one-line summary
 * of its facts. Exit 0 when every device is ready, 3 when one is not, 2 on a
 * bad inventory or usage.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DeviceFacts } from '../results/record.ts';
import { toFacts } from '../agent/protocol.ts';
import { knownHostsFile } from '../host/paths.ts';
import type { Device } from '../inventory/device.ts';
import { loadInventory } from '../inventory/load.ts';
import { parseShard, selectDevices } from '../run/plan.ts';
import { createTransport } from '../transport/factory.ts';
import { shellJoin } from '../transport/quote.ts';
import type { Transport } from '../transport/transport.ts';
import { DEVICE_OPTIONS, helpText, parseCommand, stringList, type CommandSpec } from './args.ts';
import { table } from './table.ts';
import { leaseSiteFor } from '../rack/admission.ts';
import { describeHolder } from '../rack/lease.ts';
import { QuarantineBook } from '../rack/quarantine.ts';

export const CHECK_SPEC: CommandSpec = {
  name: 'check',
  summary: 'Validate the inventory, then probe each selected device: reachable, host key, python3, free memory and disk, facts.',
  usage: 'hil check [options]',
  options: {
    ...DEVICE_OPTIONS,
    'inventory-only': { type: 'boolean', help: 'validate the inventory and stop' },
  },
};

const MONITOR = fileURLToPath(new URL('../agent/monitor.py', import.meta.url));

export interface DeviceCheck {
  device: string;
  ok: boolean;
  connectMs: number | null;
  python: string | null;
  /** What a job can still get: MemAvailable, or what is free under the cgroup cap when that is less. */
  memAvailableMb: number | null;
  /** The memory cap of the cgroup jobs run in (a capped local device, a container); null when uncapped. */
  memoryLimitMb: number | null;
  diskFreeMb: number | null;
  facts: string | null;
  /** Another controller's live lease on the device, described; null when it is free. */
  lease: string | null;
  problem: string | null;
}

export async function checkCommand(argv: string[]): Promise<number> {
  const { values, help } = parseCommand(CHECK_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(CHECK_SPEC));
    return 0;
  }
  const inventory = loadInventory(String(values['inventory'] ?? 'devices.yaml'));
  process.stdout.write(`${inventory.file}: ${inventory.devices.length} device(s), valid\n`);
  if (values['inventory-only'] === true) return 0;
  const devices = selectDevices(inventory, {
    devices: stringList(values['device']),
    tags: stringList(values['tag']),
    shard: typeof values['shard'] === 'string' ? parseShard(values['shard']) : null,
  });
  const acceptNew = values['accept-new'] === true;
  const checks = await Promise.all(devices.map((d) => checkDevice(d, createTransport(d, { acceptNew, knownHostsFile: knownHostsFile() }))));
  process.stdout.write(
    table(
      ['device', 'ready', 'connect', 'python', 'mem avail', 'disk free', 'lease', 'facts / problem'],
      checks.map((c) => [
        c.device,
        c.ok ? 'yes' : 'NO',
        c.connectMs === null ? '-' : `${(c.connectMs / 1000).toFixed(1)} s`,
        c.python ?? '-',
        c.memAvailableMb === null ? '-' : `${c.memAvailableMb} MB`,
        c.diskFreeMb === null ? '-' : `${c.diskFreeMb} MB`,
        c.lease ?? (c.ok ? 'free' : '-'),
        c.problem ?? c.facts ?? '',
      ]),
    ),
  );
  // A person saw the device pass: that ends its quarantine.
  const book = new QuarantineBook();
  for (const c of checks) {
    const was = c.ok ? book.release(c.device) : null;
    if (was) process.stdout.write(`${c.device}: passed, released from quarantine (since ${was.since}: ${was.reason})\n`);
    else if (!c.ok && book.standing(c.device).quarantined) process.stdout.write(`${c.device}: still quarantined\n`);
  }
  return checks.every((c) => c.ok) ? 0 : 3;
}

export async function checkDevice(device: Device, transport: Transport): Promise<DeviceCheck> {
  const check: DeviceCheck = {
    device: device.name,
    ok: false,
    connectMs: null,
    python: null,
    memAvailableMb: null,
    memoryLimitMb: null,
    diskFreeMb: null,
    facts: null,
    lease: null,
    problem: null,
  };
  const started = Date.now();
  try {
    // Connecting verifies the host key: an unknown or changed key fails here with both fingerprints.
    await transport.connect(AbortSignal.timeout(device.timeouts.connectMs + (device.transport === 'qemu' ? device.timeouts.bootMs : 0)));
    check.connectMs = Date.now() - started;
    const py = await transport.exec(shellJoin([device.python, '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])']));
    if (py.code !== 0) throw new Error(`${device.python} does not run: ${py.stderr.trim() || `exit ${String(py.code)}`}`);
    check.python = py.stdout.trim();
    await transport.mkdir(device.workdir, 0o700);
    const df = await transport.exec(`${shellJoin(['df', '-Pk', device.workdir])} | tail -n 1; grep MemAvailable /proc/meminfo`);
    const [dfLine = '', memLine = ''] = df.stdout.trim().split('\n');
    check.diskFreeMb = Math.round(Number(dfLine.split(/\s+/)[3]) / 1024) || null;
    const memAvailableMb = Math.round(Number(/(\d+)/.exec(memLine)?.[1]) / 1024) || null;
    const facts = await probeFacts(device, transport);
    // Under a cgroup cap the machine's MemAvailable (a whole host's, for a local device) is not what a job gets.
    check.memoryLimitMb = facts.memoryLimitMb;
    check.memAvailableMb =
      facts.memoryLimitFreeMb === null ? memAvailableMb : Math.min(facts.memoryLimitFreeMb, memAvailableMb ?? Infinity);
    check.facts = summarizeFacts(facts);
    const lease = await leaseSiteFor(device, transport).run('show', {});
    if (lease.live && lease.holder) check.lease = describeHolder(lease.holder, lease.now);
    check.ok = true;
  } catch (err) {
    check.problem = err instanceof Error ? err.message : String(err);
  } finally {
    await transport.close();
  }
  return check;
}

/** Upload the agent, ask it for the device's facts, and clean up. */
async function probeFacts(device: Device, transport: Transport): Promise<DeviceFacts> {
  const dir = `${device.workdir}/check-${process.pid}-${Date.now()}`;
  await transport.mkdir(dir, 0o700);
  try {
    await transport.writeFile(`${dir}/monitor.py`, readFileSync(MONITOR), 0o600);
    const standIn = device.transport === 'local' ? ['--standin', `local host standing in for a ${device.model}`] : [];
    const r = await transport.exec(shellJoin([device.python, `${dir}/monitor.py`, 'facts', ...standIn]));
    if (r.code !== 0) throw new Error(`facts probe failed: ${r.stderr.trim()}`);
    return toFacts(JSON.parse(r.stdout));
  } finally {
    await transport.exec(shellJoin(['rm', '-rf', '--', dir]));
  }
}

export function summarizeFacts(f: DeviceFacts): string {
  const bits = f.longBit === null ? '?' : `${f.longBit}-bit`;
  const tf = f.versions.tensorflow === 'absent' ? 'no TF' : `TF ${f.versions.tensorflow}`;
  const emulated = f.emulated ? ', emulated' : '';
  const memory = f.memoryLimitMb === null ? `${f.ramMb} MB RAM` : `${f.memoryLimitMb} MB cap (${f.memoryLimitFreeMb ?? '?'} MB free) on ${f.ramMb} MB RAM`;
  return `${f.model ?? f.cpuModel ?? 'unknown model'}; ${f.machine} ${bits} ${f.dpkgArch ?? ''}; ${memory}; kernel ${f.kernel}; ${tf}${emulated}`.replace(/\s+;/g, ';');
}
