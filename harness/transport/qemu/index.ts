/**
 * The emulated Pis for code outside the transport (the `hil console` command): turn a
 * device into a VM configuration, start the VM, or reach the console of the VM that a
 * running `hil run` holds. The files beside this one are the transport's internals;
 * the transport itself is ../qemu.ts.
 */
import type { Socket } from 'node:net';
import { attachConsole } from './console-relay.ts';
import { liveVmDirsOf } from './pidfiles.ts';
import { consoleSocketOf } from './vm.ts';

export { resolveVmConfig, VmConfigError, type DeviceLike, type VmConfig } from './config.ts';
export { startVm, type BootInfo, type StartOptions } from './start.ts';
export type { QemuVm } from './vm.ts';

/**
 * The console of this device's VM that a live controller (a running `hil run`) holds,
 * or null when there is none. A VM that is shutting down still has its record for a
 * moment, so each candidate is tried in turn.
 */
export async function attachHeldConsole(deviceName: string): Promise<Socket | null> {
  for (const dir of liveVmDirsOf(deviceName)) {
    try {
      return await attachConsole(consoleSocketOf(dir));
    } catch {
      /* that VM is going away; try the next */
    }
  }
  return null;
}
