/**
 * `hil console <device>`: an interactive serial console on an emulated Pi. When a running
 * `hil run` holds the device's VM, it attaches to that VM and detaching (^]) leaves it
 * running. Otherwise it starts the VM itself (warm when it can), and detaching powers it off.
 */
import type { Socket } from 'node:net';
import { UsageError } from '../config/diagnostics.ts';
import { loadInventory } from '../inventory/load.ts';
import { attachHeldConsole, resolveVmConfig, startVm } from '../transport/qemu/index.ts';
import { DEVICE_OPTIONS, helpText, parseCommand, type CommandSpec } from './args.ts';

const DETACH = 0x1d; // ^]

const SPEC: CommandSpec = {
  name: 'console',
  summary:
    "Open an emulated Pi's serial console (ttyAMA0, logged in as root). Attaches to the VM of a running `hil run` if there is one; " +
    'else starts it, and ^] detaching stops it.',
  usage: 'hil console <device> [-i FILE] [--cold]',
  options: {
    inventory: DEVICE_OPTIONS.inventory,
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
  const held = await attachHeldConsole(device.name);
  if (held) return relayTerminal(held);
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
  const unsubscribe = vm.console.subscribe((chunk) => process.stdout.write(chunk));
  await Promise.race([typedUntilDetach((d) => vm.write(d)), vm.waitExit()]);
  unsubscribe();
  endTyping();
  const exitedByItself = vm.hasExited;
  process.stderr.write(`\n${exitedByItself ? 'the VM has exited' : 'detached; stopping the VM'}\n`);
  await vm.stop(exitedByItself ? 0 : 15_000);
  return 0;
}

/** The terminal on a VM held elsewhere: detaching leaves the VM to its owner. */
async function relayTerminal(socket: Socket): Promise<number> {
  process.stderr.write('attached to the VM of a running hil run; ^] detaches and leaves it running\n');
  socket.on('data', (d: Buffer) => process.stdout.write(d));
  let vmGone = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      vmGone = true;
      resolve();
    }),
  );
  await Promise.race([typedUntilDetach((d) => socket.write(d)), closed]);
  endTyping();
  process.stderr.write(`\n${vmGone ? 'the VM went away' : 'detached; the VM keeps running'}\n`);
  socket.destroy();
  return 0;
}

/** Pass what is typed to `write` (raw, on a terminal) until ^] or the end of input. */
function typedUntilDetach(write: (data: Buffer) => void): Promise<void> {
  const stdin = process.stdin;
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  return new Promise<void>((resolve) => {
    stdin.on('data', (d: Buffer) => {
      const i = d.indexOf(DETACH);
      if (i >= 0) {
        if (i > 0) write(d.subarray(0, i));
        resolve();
      } else write(d);
    });
    stdin.on('end', () => resolve());
  });
}

function endTyping(): void {
  const stdin = process.stdin;
  stdin.removeAllListeners('data');
  if (stdin.isTTY) stdin.setRawMode(false);
  stdin.pause();
}
