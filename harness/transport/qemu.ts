/**
 * The qemu transport: boot (or warm-start) an emulated Pi, then talk SSH to it.
 * Everything after the boot is the SSH transport's job; this class adds the VM's
 * lifecycle and its serial console, whose excerpts go into each job's result.
 */
import type { QemuDevice } from '../inventory/device.ts';
import { knownHostsFile } from '../host/paths.ts';
import { resolveVmConfig, type VmConfig } from './qemu/config.ts';
import { startVm, type BootInfo } from './qemu/start.ts';
import type { QemuVm } from './qemu/vm.ts';
import { sshBanner } from './qemu/ports.ts';
import { SshTransport } from './ssh.ts';
import { TransportError, type ExecOptions, type ExecResult, type SerialConsole, type Transport } from './transport.ts';

export interface QemuTransportOptions {
  /** Restore a saved state instead of booting (made on first use). Default true. */
  warm?: boolean;
  /** For a user image whose host key is not known in advance. */
  acceptNew?: boolean;
  knownHostsFile?: string;
  /** How long the guest may take to power off cleanly at close(). Default 0: quit at once. */
  shutdownGraceMs?: number;
  onProgress?: (message: string) => void;
}

export type { BootInfo };

export type QemuTarget = Pick<QemuDevice, 'name' | 'ramMb' | 'qemu' | 'timeouts'>;

export class QemuTransport implements Transport {
  readonly describe: string;
  private vm: QemuVm | null = null;
  private ssh: SshTransport | null = null;
  private connecting: Promise<void> | null = null;
  boot: BootInfo | null = null;

  constructor(
    private readonly device: QemuTarget,
    private readonly options: QemuTransportOptions = {},
  ) {
    this.describe = `${device.name} (qemu ${device.qemu.profile ?? 'custom'})`;
  }

  /** True while an SSH connection to the booted guest is open. */
  get linkUp(): boolean {
    return this.ssh?.connected ?? false;
  }

  /** The running VM (null before connect and after close). */
  get machine(): QemuVm | null {
    return this.vm;
  }

  connect(signal?: AbortSignal): Promise<void> {
    // Booted already: only the SSH link may need to come back (it drops when the guest
    // stalls, e.g. under its own OOM killer); the SSH transport reconnects when it has to.
    if (this.ssh && this.vm && !this.vm.hasExited) return this.ssh.connect(signal);
    if (this.ssh) return Promise.resolve();
    this.connecting ??= this.bootAndConnect(signal).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async bootAndConnect(signal?: AbortSignal): Promise<void> {
    let cfg: VmConfig;
    try {
      cfg = await resolveVmConfig(this.device);
    } catch (e) {
      throw new TransportError((e as Error).message, this.describe, { cause: e });
    }
    const started = Date.now();
    const bootMs = this.device.timeouts.bootMs;
    try {
      const booted = await startVm(cfg, {
        deadline: started + bootMs,
        warm: this.options.warm !== false,
        ...(signal ? { signal } : {}),
        ...(this.options.onProgress ? { onProgress: this.options.onProgress } : {}),
      });
      this.vm = booted.vm;
      this.boot = booted.boot;
      this.ssh = new SshTransport(
        {
          name: this.device.name,
          host: '127.0.0.1',
          port: this.vm.port,
          user: cfg.user,
          auth: { identityFile: cfg.privateKeyFile, useAgent: false, passwordEnv: null },
          hostKey: { fingerprint: cfg.hostKeyFingerprint, knownHosts: null },
        },
        {
          acceptNew: this.options.acceptNew ?? false,
          knownHostsFile: this.options.knownHostsFile ?? knownHostsFile(),
          connectTimeoutMs: Math.max(10_000, this.device.timeouts.connectMs),
          // sshd can answer and still refuse the key for a moment while a guest boots.
          retryAuthFailures: true,
        },
      );
      await this.ssh.connect(signal);
    } catch (e) {
      await this.close();
      if (e instanceof TransportError) throw e;
      throw new TransportError(`${this.describe}: ${(e as Error).message}`, this.describe, { cause: e });
    }
  }

  /**
   * Power-cycle the emulated Pi, as a person pulls a hung Pi's plug (harness/rack/power.ts):
   * a QMP system_reset of the running VM, resumed if its CPUs were stopped, or a fresh start
   * when the VM is gone. Returns once the guest answers SSH again, within its boot timeout:
   * a reset guest boots from cold, and its old SSH link died with its kernel, so a new one is made.
   */
  async powerCycle(signal?: AbortSignal): Promise<void> {
    const vm = this.vm;
    const ssh = this.ssh;
    if (!vm || vm.hasExited || !ssh) {
      await this.close();
      return this.connect(signal);
    }
    const qmp = await vm.qmpClient();
    // QEMU runs with -no-reboot, so that a guest's own reboot (a panic) ends it; that setting
    // would turn this reset into an exit too. Lift it for this one reset only: QEMU decides
    // reset or exit when the request is made.
    await qmp.execute('set-action', { reboot: 'reset' });
    try {
      await qmp.execute('system_reset');
    } finally {
      await qmp.execute('set-action', { reboot: 'shutdown' });
    }
    const { status } = ((await qmp.execute('query-status')) ?? {}) as { status?: string };
    if (status !== 'running') await qmp.execute('cont');
    await ssh.close();
    const deadline = Date.now() + this.device.timeouts.bootMs;
    for (;;) {
      signal?.throwIfAborted();
      if (vm.hasExited) throw new TransportError(`${this.describe}: QEMU exited after the reset`, this.describe);
      if (await sshBanner(vm.port, 2000)) break;
      if (Date.now() > deadline) {
        throw new TransportError(`${this.describe}: no SSH banner within ${Math.round(this.device.timeouts.bootMs / 1000)} s of the reset`, this.describe);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await ssh.connect(signal);
  }

  private connected(): SshTransport {
    if (!this.ssh) throw new TransportError('not connected', this.describe);
    return this.ssh;
  }

  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    return this.connected().exec(command, options);
  }

  writeFile(remotePath: string, data: Buffer | string, mode?: number): Promise<void> {
    return this.connected().writeFile(remotePath, data, mode);
  }

  readFile(remotePath: string): Promise<Buffer> {
    return this.connected().readFile(remotePath);
  }

  mkdir(remotePath: string, mode?: number): Promise<void> {
    return this.connected().mkdir(remotePath, mode);
  }

  /**
   * The serial console of the VM this transport runs. Marks are positions in
   * the VM's whole console log; before a boot there is nothing to read.
   */
  readonly console: SerialConsole = {
    mark: () => this.vm?.console.mark() ?? 0,
    since: (mark) => this.vm?.console.since(mark) ?? '',
  };

  consoleTail(chars = 4000): string {
    return this.vm?.console.tail(chars) ?? '';
  }

  /** The console log file on the host, kept after the VM stops. */
  get consoleFile(): string | null {
    return this.vm?.console.file ?? null;
  }

  async close(): Promise<void> {
    const ssh = this.ssh;
    const vm = this.vm;
    this.ssh = null;
    this.vm = null;
    await ssh?.close().catch(() => undefined);
    await vm?.stop(this.options.shutdownGraceMs ?? 0);
  }
}
