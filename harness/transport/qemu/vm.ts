/**
 * Launch and lifecycle of one emulated Pi.
 *
 * - Each VM writes to its own qcow2 overlay, so N VMs run from one cached base at once.
 * - SSH is forwarded from a free loopback port chosen at launch.
 * - The serial console is captured through node-pty from QEMU's first byte.
 * - Warm start: a per-configuration saved state (see warm.ts) is restored with
 *   `-incoming "exec:cat state"` instead of booting.
 * - Ready means the SSH banner answers. A timeout, a panic or an early exit is a
 *   TransportError carrying the console tail.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pty from 'node-pty';
import { shellQuote } from '../quote.ts';
import { TransportError } from '../transport.ts';
import type { VmConfig } from './config.ts';
import { ConsoleLog, PANIC_RE } from './console-log.ts';
import { serveConsole } from './console-relay.ts';
import { guestExec, guestExecRetry, type GuestLogin } from './guest-ssh.ts';
import {
  ensureStateDirs,
  logsDir,
  sweepStaleVms,
  trackVm,
  trimLogs,
  untrackVm,
  vmsDir,
  writeVmRecord,
} from './pidfiles.ts';
import { freeLoopbackPort, sshBanner } from './ports.ts';
import { Qmp } from './qmp.ts';

const run = promisify(execFile);

export interface LaunchOptions {
  /** Disk this VM writes to; made as an overlay over `backing` when given. */
  overlayBacking?: { file: string; format: 'qcow2' | 'raw' };
  /** Write to this disk directly (the warm template). */
  disk?: string;
  /** Restore from this saved state file instead of booting. */
  incomingState?: string;
  /** Label for folder and log names. */
  label?: string;
}

export interface ReadyOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Where a VM serves its console for `hil console` (see console-relay.ts). */
export function consoleSocketOf(vmDir: string): string {
  return path.join(vmDir, 'console.sock');
}

function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 40);
}

/** The QEMU command line; identical for a cold boot and a restore, as migration needs. */
export function qemuArgs(cfg: VmConfig, disk: string, port: number, qmpSocket: string, incoming?: string): string[] {
  const args = [
    '-M', cfg.machine,
    '-cpu', cfg.cpu,
    '-smp', String(cfg.cpus),
    '-m', String(cfg.ramMb),
    '-nodefaults',
    '-display', 'none',
    '-monitor', 'none',
    // signal=off: a ^C typed into `hil console` goes to the guest, not to QEMU.
    '-chardev', 'stdio,id=con0,signal=off',
    '-serial', 'chardev:con0',
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    '-kernel', cfg.kernel,
    ...(cfg.initrd ? ['-initrd', cfg.initrd] : []),
    ...(cfg.dtb ? ['-dtb', cfg.dtb] : []),
    '-append', cfg.append,
    // cache=unsafe: overlays are thrown away after the run, so host fsyncs buy nothing.
    '-drive', `if=none,id=hd0,file=${disk},format=qcow2,cache=unsafe,discard=unmap`,
    '-device', 'virtio-blk-device,drive=hd0',
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22`,
    '-device', 'virtio-net-device,netdev=net0',
    // Host entropy, so clones restored from one saved state do not share an RNG stream for long.
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-device,rng=rng0',
    '-no-reboot',
  ];
  if (incoming) args.push('-incoming', `exec:cat ${shellQuote(incoming)}`);
  return args;
}

export class QemuVm {
  private exited: { code: number; signal?: number } | null = null;
  private exitWaiters: (() => void)[] = [];
  private qmp: Qmp | null = null;
  private stopping: Promise<void> | null = null;
  private readonly relay: Server;
  /** Set once the VM answered SSH: how long it took from launch. */
  readyMs: number | null = null;

  private constructor(
    readonly cfg: VmConfig,
    readonly dir: string,
    readonly port: number,
    readonly console: ConsoleLog,
    private readonly term: pty.IPty,
    readonly restored: boolean,
    readonly launchedAt: number,
  ) {
    term.onData((d) => console.append(d));
    term.onExit((e) => {
      this.exited = { code: e.exitCode, signal: e.signal };
      for (const w of this.exitWaiters.splice(0)) w();
    });
    this.relay = serveConsole(consoleSocketOf(dir), console, (d) => this.write(d));
  }

  get pid(): number {
    return this.term.pid;
  }

  get describe(): string {
    return `qemu:${this.cfg.name} (127.0.0.1:${this.port})`;
  }

  get hasExited(): boolean {
    return this.exited !== null;
  }

  get qmpSocket(): string {
    return path.join(this.dir, 'qmp.sock');
  }

  login(): GuestLogin {
    if (!this.cfg.hostKeyFingerprint) throw new TransportError('guest host key unknown', this.describe);
    return {
      port: this.port,
      user: this.cfg.user,
      privateKeyFile: this.cfg.privateKeyFile,
      hostKeyFingerprint: this.cfg.hostKeyFingerprint,
    };
  }

  /** Write to the serial console (`hil console`). */
  write(data: string | Buffer): void {
    this.term.write(data);
  }

  /**
   * Start QEMU. Stale VMs of dead controllers are ended first. Retries with a new port
   * when another process took the chosen one between our probe and QEMU's bind.
   */
  static async launch(cfg: VmConfig, opts: LaunchOptions): Promise<QemuVm> {
    ensureStateDirs();
    sweepStaleVms();
    trimLogs();
    for (let attempt = 1; ; attempt++) {
      const vm = await QemuVm.launchOnce(cfg, opts);
      // A port clash shows within the first moments as an exit with a hostfwd error.
      await Promise.race([vm.waitExit(), new Promise((r) => setTimeout(r, 400))]);
      if (vm.hasExited && /host forwarding rule|Could not set up host forwarding/i.test(vm.console.tail()) && attempt < 4) {
        await vm.stop();
        continue;
      }
      return vm;
    }
  }

  private static async launchOnce(cfg: VmConfig, opts: LaunchOptions): Promise<QemuVm> {
    const id = `${sanitize(opts.label ?? cfg.name)}-${randomBytes(3).toString('hex')}`;
    const dir = path.join(vmsDir(), id);
    mkdirSync(dir, { recursive: true });
    let disk = opts.disk;
    if (!disk) {
      disk = path.join(dir, 'overlay.qcow2');
      const backing = opts.overlayBacking ?? { file: cfg.disk, format: cfg.diskFormat };
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', backing.format, '-b', backing.file, disk]);
    }
    const port = await freeLoopbackPort();
    const consoleLog = new ConsoleLog(path.join(logsDir(), `${id}.console.log`));
    const qmpSocket = path.join(dir, 'qmp.sock');
    const args = qemuArgs(cfg, disk, port, qmpSocket, opts.incomingState);
    // setpriv execs QEMU in place (same pid) with a parent-death signal: if the controller
    // dies in any way, the kernel kills QEMU.
    const term = pty.spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', cfg.binary, ...args], {
      name: 'xterm',
      cols: 160,
      rows: 48,
      cwd: dir,
      env: { ...process.env, TERM: 'xterm' } as Record<string, string>,
    });
    writeVmRecord(dir, {
      qemuPid: term.pid,
      controllerPid: process.pid,
      binary: cfg.binary,
      name: cfg.name,
      startedAt: new Date().toISOString(),
    });
    trackVm(dir, term.pid);
    return new QemuVm(cfg, dir, port, consoleLog, term, !!opts.incomingState, Date.now());
  }

  waitExit(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  private fail(message: string, cause?: unknown): TransportError {
    const tail = this.console.tail(3000);
    return new TransportError(`${message}\n--- console tail ---\n${tail}`, this.describe, { cause });
  }

  /** Wait until the SSH banner answers; a panic, an exit or the deadline is a TransportError. */
  async waitReady({ timeoutMs, signal }: ReadyOptions): Promise<void> {
    const deadline = this.launchedAt + timeoutMs;
    for (;;) {
      if (signal?.aborted) throw this.fail('aborted while waiting for the guest', signal.reason);
      const panic = PANIC_RE.exec(this.console.tail(20_000));
      if (panic) throw this.fail(`guest kernel panic: ${panic[0].trim()}`);
      if (this.exited) throw this.fail(`QEMU exited (code ${this.exited.code}) before SSH answered`);
      if (Date.now() > deadline) throw this.fail(`no SSH banner within ${Math.round(timeoutMs / 1000)} s`);
      if (await sshBanner(this.port, 2000)) {
        this.readyMs = Date.now() - this.launchedAt;
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async qmpClient(): Promise<Qmp> {
    if (!this.qmp) this.qmp = await Qmp.connect(this.qmpSocket);
    return this.qmp;
  }

  /**
   * Stop the VM and save its whole state to `file` (QEMU migration to a file). The VM is
   * paused first, so its disk stops changing at the same instant.
   */
  async saveState(file: string): Promise<void> {
    const qmp = await this.qmpClient();
    await qmp.execute('stop');
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8_000_000_000 });
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(file)}` });
    for (;;) {
      const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string } | null;
      if (info?.status === 'completed') return;
      if (info?.status === 'failed' || info?.status === 'cancelled') {
        throw this.fail(`saving VM state failed: ${info['error-desc'] ?? info.status}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * A restored VM comes up in the run state it was saved in, and the state is saved
   * paused (so the disk and RAM match): wait for the incoming migration, then resume.
   */
  async resumeAfterIncoming(deadline: number, signal?: AbortSignal): Promise<void> {
    const qmp = await this.qmpClient();
    for (;;) {
      signal?.throwIfAborted();
      if (this.exited) throw this.fail(`QEMU exited (code ${this.exited.code}) while restoring the saved state`);
      const st = (await qmp.execute('query-status')) as { status?: string } | null;
      const status = st?.status ?? '';
      if (status === 'running') return;
      if (status !== 'inmigrate') {
        if (status === 'paused' || status === 'postmigrate' || status === 'prelaunch') await qmp.execute('cont');
        else throw this.fail(`restored VM is in state ${status}`);
        return;
      }
      if (Date.now() > deadline) throw this.fail('restoring the saved state did not finish in time');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * After a restore the guest's clock is where it was when the state was saved: set it
   * from the host. The DHCP lease is renewed in the background (user-mode networking
   * always hands out the same address, so the old one keeps working meanwhile).
   */
  async afterRestore(deadline: number, signal?: AbortSignal): Promise<void> {
    const epoch = (Date.now() / 1000).toFixed(3);
    const cmd =
      `sudo -n date -u -s @${epoch} >/dev/null || exit 1; ` +
      `(for i in $(ls /sys/class/net | grep -v '^lo$'); do sudo -n networkctl renew "$i"; done) >/dev/null 2>&1 </dev/null &`;
    const res = await guestExecRetry(this.login(), cmd, deadline, signal);
    if (res.code !== 0) throw this.fail(`setting the guest clock failed: ${res.stderr.trim()}`);
  }

  /**
   * Stop the VM. With `graceMs` 0 (the default for jobs) QEMU quits cleanly at once: the
   * overlay is thrown away, so a guest shutdown would buy nothing. With `graceMs` > 0 the
   * guest powers off first. Then signals as a last resort. Always removes the VM's folder.
   */
  stop(graceMs = 0): Promise<void> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<void> {
    const exitWithin = (ms: number): Promise<boolean> =>
      Promise.race([this.waitExit().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
    if (!this.exited) {
      try {
        const qmp = await Promise.race([
          this.qmpClient(),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no QMP')), 3000)),
        ]);
        if (graceMs > 0) {
          // The images have no logind (no D-Bus), so the virt board's power button is not
          // heard: ask systemd over SSH instead, and quit if the guest is not down in time.
          const asked = this.cfg.hostKeyFingerprint
            ? await guestExec(this.login(), 'sudo -n systemctl poweroff --no-block', Math.min(graceMs, 15_000)).then(
                (r) => r.code === 0,
                () => false,
              )
            : false;
          if (!asked) await qmp.execute('system_powerdown').catch(() => undefined);
          if (!(await exitWithin(graceMs))) await qmp.execute('quit').catch(() => undefined);
        } else {
          await qmp.execute('quit').catch(() => undefined);
        }
      } catch {
        /* QMP unavailable: fall through to signals */
      }
    }
    if (!(await exitWithin(3000))) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exitWithin(5000);
    }
    this.qmp?.close();
    this.relay.close();
    this.term.kill('SIGKILL');
    // node-pty can report the exit before the last output; give the stream a moment.
    await new Promise((r) => setTimeout(r, 100));
    this.console.close();
    untrackVm(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
