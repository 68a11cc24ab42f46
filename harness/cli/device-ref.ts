/**
 * One device of the inventory, named on the command line, with the transport
 * that reaches it: for the commands that act on a single device.
 */
import { UsageError } from '../config/diagnostics.ts';
import { knownHostsFile } from '../host/paths.ts';
import type { Device } from '../inventory/device.ts';
import { loadInventory } from '../inventory/load.ts';
import { createTransport } from '../transport/factory.ts';
import type { Transport } from '../transport/transport.ts';

export function findDevice(inventoryFile: string, name: string): Device {
  const inventory = loadInventory(inventoryFile);
  const device = inventory.devices.find((d) => d.name === name);
  if (!device) throw new UsageError('<device>', name, `a device of ${inventory.file}: ${inventory.devices.map((d) => d.name).join(', ')}`);
  return device;
}

export function transportOf(device: Device): Transport {
  return createTransport(device, { acceptNew: false, knownHostsFile: knownHostsFile() });
}
