/**
 * `hil power <device> on|off|cycle|status`: a device's power, by hand, for a
 * person at the rack. It acts through the device's `power:` block, as an
 * unattended run's recovery does. Exit 0 when done, 3 when the power could
 * not be switched or read, 2 on a bad inventory or usage.
 */
import { didYouMean, UsageError } from '../config/diagnostics.ts';
import { knownHostsFile } from '../host/paths.ts';
import { loadInventory } from '../inventory/load.ts';
import { powerControlFor, PowerError, type PowerAction } from '../rack/power.ts';
import { createTransport } from '../transport/factory.ts';
import { DEVICE_OPTIONS, helpText, parseCommand, type CommandSpec } from './args.ts';

const ACTIONS = ['on', 'off', 'cycle', 'status'] as const;

const SPEC: CommandSpec = {
  name: 'power',
  summary:
    "Switch a device's power (on, off, cycle) or read it (status), through the device's `power:` block in the inventory. " +
    "A QEMU device's power is its VM, held by the `hil run` that booted it.",
  usage: 'hil power <device> on|off|cycle|status [-i FILE]',
  options: { inventory: DEVICE_OPTIONS.inventory },
  positionals: { min: 2, max: 2, names: '<device> on|off|cycle|status' },
};

export async function powerCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommand(SPEC, argv);
  if (help) {
    process.stdout.write(helpText(SPEC));
    return 0;
  }
  const [name = '', action = ''] = positionals;
  if (!(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError('hil power', action, ACTIONS.join(' | '), `unknown action${hintFor(action, ACTIONS)}`);
  }
  const inventory = loadInventory(typeof values['inventory'] === 'string' ? values['inventory'] : 'devices.yaml');
  const device = inventory.devices.find((d) => d.name === name);
  const powered = inventory.devices.filter((d) => d.transport === 'ssh' && d.power !== null).map((d) => d.name);
  const allowed = powered.join(', ') || 'no device of the inventory has a `power:` block';
  if (!device) throw new UsageError('hil power', name, allowed, `no device named ${JSON.stringify(name)}${hintFor(name, inventory.devices.map((d) => d.name))}`);
  if (device.transport === 'qemu') {
    // Its VM lives as long as the process that booted it: one started here would die with this command.
    throw new UsageError('hil power', name, allowed, 'a qemu device is powered by the hil run that boots its VM, not from here');
  }
  const control = powerControlFor(device, createTransport(device, { acceptNew: false, knownHostsFile: knownHostsFile() }));
  if (control === null) throw new UsageError('hil power', name, allowed, `device ${name} has no \`power:\` block in ${inventory.file}`);

  const interrupt = new AbortController();
  const stop = (): void => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (action === 'status') {
      process.stdout.write(`${name}: ${await control.status(interrupt.signal)} (${control.describe})\n`);
    } else {
      const started = Date.now();
      await control.run(action as PowerAction, interrupt.signal);
      process.stdout.write(`${name}: ${action} done in ${((Date.now() - started) / 1000).toFixed(1)} s (${control.describe})\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof PowerError) {
      process.stderr.write(`hil power: ${name}: ${err.message}\n`);
      return 3;
    }
    if (interrupt.signal.aborted) {
      process.stderr.write(`hil power: ${name}: ${action} interrupted; the power may be off\n`);
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function hintFor(word: string, candidates: readonly string[]): string {
  const hint = didYouMean(word, candidates);
  return hint === undefined ? '' : ` (${hint})`;
}
