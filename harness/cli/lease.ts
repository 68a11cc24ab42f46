/**
 * `hil lease show|release <device> [--force]`: who holds a device, and
 * breaking a lease for a person at the rack (it says whose it was). A lease
 * frees itself when its holder dies; --force is for a holder that is alive
 * but should not be.
 */
import { UsageError } from '../config/diagnostics.ts';
import { leaseSiteFor } from '../rack/admission.ts';
import { describeHolder } from '../rack/lease.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';
import { findDevice, transportOf } from './device-ref.ts';

export const LEASE_SPEC: CommandSpec = {
  name: 'lease',
  summary: "Show a device's lease holder, or release the lease (--force to break another controller's).",
  usage: 'hil lease show|release <device> [--force] [--inventory FILE]',
  options: {
    inventory: { type: 'string', short: 'i', arg: 'file', help: 'device inventory (default: devices.yaml)' },
    force: { type: 'boolean', help: "release the lease whoever holds it" },
  },
  positionals: { min: 2, max: 2, names: 'show|release and a device name' },
};

export async function leaseCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommand(LEASE_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(LEASE_SPEC));
    return 0;
  }
  const [action = '', name = ''] = positionals;
  if (action !== 'show' && action !== 'release') throw new UsageError('hil lease', action, 'show or release');
  if (action === 'release' && values['force'] !== true) {
    throw new UsageError('hil lease release', name, '--force: a lease is released by its own controller, or broken by force', 'nothing released');
  }
  const device = findDevice(String(values['inventory'] ?? 'devices.yaml'), name);
  const transport = transportOf(device);
  try {
    const site = leaseSiteFor(device, transport);
    const reply = await site.run(action, action === 'release' ? { id: 'operator', force: true } : {}, AbortSignal.timeout(device.timeouts.connectMs + 15_000));
    const holder = reply.holder ? describeHolder(reply.holder, reply.now) : null;
    if (action === 'show') process.stdout.write(`${device.name}: ${holder && reply.live ? `leased by ${holder}` : holder ? `free (last lease ${holder})` : 'free'}\n`);
    else process.stdout.write(`${device.name}: ${holder ? `released the lease of ${holder}` : 'no lease to release'}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`hil lease: ${err instanceof Error ? err.message : String(err)}\n`);
    return 3;
  } finally {
    await transport.close();
  }
}
