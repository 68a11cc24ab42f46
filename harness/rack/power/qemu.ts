/**
 * A QEMU device's own power: the VM. A cycle resets the guest in place (QMP
 * system_reset), which reaches a guest however it is stuck, even with its
 * CPUs stopped; when the VM is gone, it is started again the way a job starts
 * it. Off ends the VM; on starts it.
 */
import type { QemuTransport } from '../../transport/qemu.ts';
import { PowerError, type PowerAction, type PowerControl, type PowerState } from './types.ts';

export class QemuPower implements PowerControl {
  readonly describe = 'QEMU: system_reset over QMP (a VM that is gone is started again)';

  constructor(private readonly transport: QemuTransport) {}

  private get running(): boolean {
    const vm = this.transport.machine;
    return vm !== null && !vm.hasExited;
  }

  async run(action: PowerAction, signal?: AbortSignal): Promise<void> {
    try {
      if (action === 'cycle') await this.transport.powerCycle(signal);
      else if (action === 'off') await this.transport.close();
      else {
        // A VM that exited by itself leaves its transport holding it: let go of it first.
        if (!this.running) await this.transport.close();
        await this.transport.connect(signal);
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new PowerError(`${this.transport.describe}: power ${action} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async status(): Promise<PowerState> {
    return this.running ? 'on' : 'off';
  }
}
