/**
 * `hil clean <device>`: remove pi-hil workdirs older than a day that no live
 * lease holds, as every run does when it takes a device's lease. It takes the
 * lease itself (so it never removes a running job's folder) and gives it back.
 */
import { acquireLease, LeaseBusyError, thisHolder } from '../rack/lease.ts';
import { leaseSiteFor } from '../rack/admission.ts';
import { newRunId } from '../results/store.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';
import { findDevice, transportOf } from './device-ref.ts';

export const CLEAN_SPEC: CommandSpec = {
  name: 'clean',
  summary: 'Remove pi-hil workdirs older than a day that no live lease holds from a device.',
  usage: 'hil clean <device> [--inventory FILE]',
  options: {
    inventory: { type: 'string', short: 'i', arg: 'file', help: 'device inventory (default: devices.yaml)' },
  },
  positionals: { min: 1, max: 1, names: 'a device name' },
};

export async function cleanCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommand(CLEAN_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(CLEAN_SPEC));
    return 0;
  }
  const device = findDevice(String(values['inventory'] ?? 'devices.yaml'), positionals[0] ?? '');
  const transport = transportOf(device);
  const said: string[] = [];
  try {
    const lease = await acquireLease(device.name, leaseSiteFor(device, transport), thisHolder(newRunId(), device.workdir), {
      signal: AbortSignal.timeout(device.timeouts.connectMs + 30_000),
      log: (m) => said.push(m),
    });
    await lease.release();
    for (const line of said) process.stdout.write(`${line}\n`);
    if (said.length === 0) process.stdout.write(`${device.name}: nothing to clean\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`hil clean: ${err instanceof LeaseBusyError ? `${err.message}; try again when it is free` : err instanceof Error ? err.message : String(err)}\n`);
    return 3;
  } finally {
    await transport.close();
  }
}
