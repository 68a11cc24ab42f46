/**
 * How the controller talks to a device. A transport knows nothing of suites:
 * it runs shell commands and moves files, and that is all.
 *
 * Implementations: ssh.ts (ssh2), local.ts (this machine, optionally under a
 * memory cgroup), qemu.ts (boots a VM, then talks SSH to it).
 */

export interface ExecOptions {
  /** Aborting kills the remote command (best effort) and rejects with the signal's reason. */
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Bytes for the command's stdin, which is closed after them (or after `stdinMore`). Without it stdin stays as the transport has it. */
  stdin?: Buffer;
  /** Written to stdin once it settles, and then stdin is closed: an answer to what the command said on stdout. */
  stdinMore?: Promise<Buffer>;
}

export interface ExecResult {
  /** Exit code, or null when the command died of a signal. */
  code: number | null;
  /** Signal name without the SIG prefix as reported by the server ("KILL"), or null. */
  signal: string | null;
  /** Both streams are always drained; these hold what was read (bounded by the caller's needs). */
  stdout: string;
  stderr: string;
}

export interface Transport {
  /** Human-readable target, safe for logs: never contains a secret. */
  readonly describe: string;
  /** Open the connection (retrying while the device boots). Idempotent. */
  connect(signal?: AbortSignal): Promise<void>;
  /**
   * Run one shell command line on the device. Build it with `shellJoin` from
   * harness/transport/quote.ts so no value can inject shell.
   */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Write a file, creating it with `mode` (e.g. 0o600). Parent must exist. */
  writeFile(remotePath: string, data: Buffer | string, mode?: number): Promise<void>;
  readFile(remotePath: string): Promise<Buffer>;
  /** Create a directory (and parents) with `mode`. */
  mkdir(remotePath: string, mode?: number): Promise<void>;
  /** Close the connection. Safe to call twice. */
  close(): Promise<void>;
  /**
   * The device's serial console, or null where it has none (ssh, local).
   * Required, so a transport without a console says so rather than silently
   * leaving every job without its excerpt.
   */
  readonly console: SerialConsole | null;
  /**
   * The last boot this transport performed (QEMU: cold boot or warm start),
   * or null where the harness boots nothing. A new object per boot, so a job
   * can tell whether its own connect() booted the device.
   */
  readonly boot: BootReport | null;
}

/** A growing console log; a job takes a mark at its start and reads what came after. */
export interface SerialConsole {
  mark(): number;
  since(mark: number): string;
}

export interface BootReport {
  mode: 'warm' | 'cold';
  /** Launch until the device answered. */
  readyMs: number;
}

/** A transport failure: the harness could not do its job. Becomes `infra_error`. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    message: string,
    readonly target: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Every connect attempt was refused (nothing listened on the port) for the
 * whole connect timeout: a fact about the device, not a slow network, so
 * nobody should wait longer for it.
 */
export class ConnectionRefusedError extends TransportError {}

/** The host key was unknown (and --accept-new not given) or changed. Never retried. */
export class HostKeyError extends TransportError {
  constructor(
    message: string,
    target: string,
    readonly presented: string,
    readonly expected: string | null,
  ) {
    super(message, target);
  }
}
