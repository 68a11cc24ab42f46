/**
 * `hil console <device>`: an interactive serial console on an emulated Pi. It starts the
 * device's VM (warm when it can), attaches this terminal to ttyAMA0, and powers the VM
 * off when you detach with ^].
 */
import { UsageError } from '../config/diagnostics.ts';
import { loadInventory } from '../inventory/load.ts';
import { resolveVmConfig } from '../transport/qemu/config.ts';
import { startVm } from '../transport/qemu/start.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';

const DETACH = 0x1d; // ^]

const SPEC: CommandSpec = {
  name: 'console',
  summary: "Open an emulated Pi's serial console (ttyAMA0, logged in as root). ^] detaches and stops the VM.",
  usage: 'hil console <device> [--inventory FILE] [--cold]',
  options: {
    inventory: { type: 'string', arg: 'FILE', help: 'inventory file (default devices.yaml)' },
    cold: { type: 'boolean', help: 'boot cold instead of restoring the warm state' },
  },
  positionals: { min: 1, max: 1, names: '<device>' },
};

export async function consoleCommand(argv: string[], inventoryFile = 'devices.yaml'): Promise<number> {
  const { values, positionals, help } = parseCommand(SPEC, argv);
  if (help) {
    process.stdout.write(helpText(SPEC));
    return 0;
  }
  const name = positionals[0] ?? '';
  const inventory = loadInventory(typeof values['inventory'] === 'string' ? values['inventory'] : inventoryFile);
  const device = inventory.devices.find((d) => d.name === name);
  const qemuNames = inventory.devices.filter((d) => d.transport === 'qemu').map((d) => d.name);
  if (!device || device.transport !== 'qemu') {
    throw new UsageError('hil console', name, qemuNames.join(', ') || 'no qemu device in the inventory', 'not a qemu device');
  }
  const cfg = await resolveVmConfig(device);
  process.stderr.write(`starting ${device.name} (${cfg.profile}, ${cfg.ramMb} MB)…\n`);
  const { vm, boot } = await startVm(cfg, {
    deadline: Date.now() + device.timeouts.bootMs,
    warm: values['cold'] !== true,
    onProgress: (m) => process.stderr.write(`${m}\n`),
  });
  process.stderr.write(
    `${device.name}: ${boot.mode} start, SSH on 127.0.0.1:${vm.port} after ${(boot.readyMs / 1000).toFixed(1)} s\n` +
      `console log: ${vm.console.file}\nconnected to ttyAMA0; press Enter for a prompt, ^] to detach\n`,
  );
  const stdin = process.stdin;
  const unsubscribe = vm.console.subscribe((chunk) => process.stdout.write(chunk));
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  const detached = new Promise<void>((resolve) => {
    stdin.on('data', (d: Buffer) => {
      const i = d.indexOf(DETACH);
      if (i >= 0) {
        if (i > 0) vm.write(d.subarray(0, i));
        resolve();
      } else vm.write(d);
    });
    stdin.on('end', () => resolve());
  });
  await Promise.race([detached, vm.waitExit()]);
  unsubscribe();
  if (stdin.isTTY) stdin.setRawMode(false);
  stdin.pause();
  const exitedByItself = vm.hasExited;
  process.stderr.write(`\n${exitedByItself ? 'the VM has exited' : 'detached; stopping the VM'}\n`);
  await vm.stop(exitedByItself ? 0 : 15_000);
  return 0;
}
