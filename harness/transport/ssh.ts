/**
 * The SSH transport (ssh2): one connection per device, reused for all its
 * jobs. Keepalive on, readyTimeout set, connects retried with backoff because
 * a booting device refuses connections. Host keys are pinned.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import type { SshTarget } from '../inventory/device.ts';
import { checkKnownHosts, fingerprintOf, keyTypeOf, preferredHostKeyAlgorithms, recordKnownHost, type HostKeyCheck } from './host-keys.ts';
import { shellJoin } from './quote.ts';
import { ConnectionRefusedError, HostKeyError, TransportError, type ExecOptions, type ExecResult, type Transport } from './transport.ts';

export interface SshOptions {
  /** Record unseen host keys instead of refusing them. A changed key is refused regardless. */
  acceptNew: boolean;
  /** The project's own known_hosts, where --accept-new records keys. */
  knownHostsFile: string;
  /** Give up connecting after this long (retries included). */
  connectTimeoutMs: number;
  /** Per-attempt handshake timeout. */
  readyTimeoutMs?: number;
  /** Treat authentication failures as "not ready yet" (a booting guest's sshd may refuse keys for a moment). */
  retryAuthFailures?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Keep at most this much of each stream in ExecResult; callers that need all of it use onStdout/onStderr. */
const KEEP_BYTES = 1 << 20;

export class SshTransport implements Transport {
  /** Reached over the network: no serial console, and nothing for the harness to boot. */
  readonly console = null;
  readonly boot = null;
  readonly describe: string;
  private client: ssh2.Client | null = null;
  private sftpSession: Promise<SFTPWrapper> | null = null;
  private connecting: Promise<void> | null = null;
  private lastHostKey: HostKeyCheck | null = null;

  constructor(
    private readonly target: SshTarget & { name: string },
    private readonly options: SshOptions,
  ) {
    this.describe = `${target.name} (ssh ${target.user}@${target.host}:${target.port})`;
  }

  /** True while the connection is open; it goes false when the device drops it. */
  get connected(): boolean {
    return this.client !== null;
  }

  connect(signal?: AbortSignal): Promise<void> {
    if (this.client !== null) return Promise.resolve();
    this.connecting ??= this.connectWithRetry(signal).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connectWithRetry(signal?: AbortSignal): Promise<void> {
    const started = Date.now();
    const deadline = started + this.options.connectTimeoutMs;
    // A missing key file or password variable is a configuration error: fail at once, never retry it.
    const config = this.connectConfig();
    let delay = 250;
    let allRefused = true;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        // Each attempt ends by the deadline: none is started that would run past it.
        const readyTimeout = Math.max(1, Math.min(this.options.readyTimeoutMs ?? 20_000, deadline - Date.now()));
        this.client = await this.connectOnce({ ...config, readyTimeout }, signal);
        return;
      } catch (err) {
        allRefused &&= isRefused(err);
        if (err instanceof HostKeyError || signal?.aborted || !this.retryable(err) || Date.now() >= deadline) {
          if (err instanceof TransportError) throw err;
          const message = `cannot connect to ${this.describe} after ${attempt} attempt(s): ${messageOf(err)}`;
          if (allRefused) throw new ConnectionRefusedError(`${message} (refused for ${((Date.now() - started) / 1000).toFixed(1)} s)`, this.describe, { cause: err });
          throw new TransportError(message, this.describe, { cause: err });
        }
        // The last wait ends at the deadline, so a refusing device is tried for its whole connect timeout.
        await sleep(Math.min(delay, deadline - Date.now()), undefined, signal ? { signal } : {}).catch(() => undefined);
      }
      delay = Math.min(delay * 2, 5000);
    }
  }

  private retryable(err: unknown): boolean {
    const msg = messageOf(err);
    if (/authentication methods failed/i.test(msg)) return this.options.retryAuthFailures === true;
    return true;
  }

  private connectOnce(config: ConnectConfig, signal?: AbortSignal): Promise<ssh2.Client> {
    const client = new ssh2.Client();
    this.lastHostKey = null;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        client.removeAllListeners('ready');
        client.end();
        const hk = this.lastHostKey;
        if (hk !== null && hk.kind !== 'trusted') reject(this.hostKeyError(hk));
        else reject(err);
      };
      // An interrupt must not wait out a handshake.
      const onAbort = (): void => fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      client.once('ready', () => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        client.removeListener('error', fail);
        // Keep an error listener for the life of the connection: ssh2 throws on unhandled 'error'.
        client.on('error', () => undefined);
        client.once('close', () => {
          if (this.client === client) {
            this.client = null;
            this.sftpSession = null;
          }
        });
        resolve(client);
      });
      // `on`, not `once`: a failed client can emit a second error, and an unheard one throws.
      client.on('error', fail);
      client.connect(config);
    });
  }

  private connectConfig(): ConnectConfig {
    const { host, port, user, auth } = this.target;
    const env = this.options.env ?? process.env;
    const config: ConnectConfig = {
      host,
      port,
      username: user,
      keepaliveInterval: 5000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => this.verifyHostKey(key),
    };
    if (this.target.hostKey.fingerprint === null) {
      const order = preferredHostKeyAlgorithms(this.knownHostsFiles(), host, port);
      if (order !== null) config.algorithms = { serverHostKey: order };
    }
    const pinned = this.target.hostKey.knownHosts;
    if (pinned !== null && !existsSync(expandHome(pinned, env))) {
      // A pin that points nowhere must not quietly turn into "unknown key" (and --accept-new).
      throw new TransportError(`known_hosts file ${pinned} does not exist`, this.describe);
    }
    if (auth.identityFile !== null) {
      try {
        config.privateKey = readFileSync(expandHome(auth.identityFile, env));
      } catch (err) {
        throw new TransportError(`cannot read identity_file ${auth.identityFile}: ${messageOf(err)}`, this.describe);
      }
    }
    if (auth.useAgent && env['SSH_AUTH_SOCK']) config.agent = env['SSH_AUTH_SOCK'];
    if (auth.passwordEnv !== null) {
      const password = env[auth.passwordEnv];
      if (password === undefined) throw new TransportError(`environment variable ${auth.passwordEnv} (password_env) is not set`, this.describe);
      config.password = password;
    }
    return config;
  }

  private verifyHostKey(key: Buffer): boolean {
    const { host, port, hostKey } = this.target;
    const presented = fingerprintOf(key);
    let check: HostKeyCheck;
    if (hostKey.fingerprint !== null) {
      // A pin names one key: any other key, of whatever type, is a changed identity.
      check = presented === hostKey.fingerprint.replace(/=+$/, '') ? { kind: 'trusted' } : { kind: 'changed', presented: `${keyTypeOf(key)} ${presented}`, expected: hostKey.fingerprint };
    } else {
      check = checkKnownHosts(this.knownHostsFiles(), host, port, key);
      if (check.kind === 'unknown' && this.options.acceptNew) {
        recordKnownHost(this.options.knownHostsFile, host, port, key);
        check = { kind: 'trusted' };
      }
    }
    this.lastHostKey = check;
    return check.kind === 'trusted';
  }

  /** The device's own known_hosts pin (if any), then the harness's file. */
  private knownHostsFiles(): string[] {
    const env = this.options.env ?? process.env;
    const pinned = this.target.hostKey.knownHosts;
    return [...(pinned === null ? [] : [expandHome(pinned, env)]), this.options.knownHostsFile];
  }

  private hostKeyError(check: Exclude<HostKeyCheck, { kind: 'trusted' }>): HostKeyError {
    if (check.kind === 'revoked') {
      return new HostKeyError(
        `REVOKED HOST KEY for ${this.describe}: ${check.presented} is marked @revoked in known_hosts. Refusing to connect.`,
        this.describe,
        check.presented,
        null,
      );
    }
    if (check.kind === 'changed') {
      return new HostKeyError(
        `HOST KEY CHANGED for ${this.describe}: presented ${check.presented}, expected ${check.expected}. ` +
          'Refusing to connect. If the device was re-imaged, remove its old entry from the known_hosts file or update host_key.',
        this.describe,
        check.presented,
        check.expected,
      );
    }
    return new HostKeyError(
      `unknown host key for ${this.describe}: ${check.presented}. Pin it with \`host_key: ${check.presented}\` in the inventory, ` +
        'or run with --accept-new to record it.',
      this.describe,
      check.presented,
      null,
    );
  }

  private requireClient(): ssh2.Client {
    if (this.client === null) throw new TransportError(`not connected to ${this.describe}`, this.describe);
    return this.client;
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const client = this.requireClient();
    const { signal } = options;
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      client.exec(command, (err, channel: ClientChannel) => {
        if (err) return reject(new TransportError(`exec failed on ${this.describe}: ${err.message}`, this.describe, { cause: err }));
        const stdout = new Tail();
        const stderr = new Tail();
        let settled = false;
        const onLost = (): void => finish(new TransportError(`connection to ${this.describe} lost during exec`, this.describe));
        const onAbort = (): void => {
          // OpenSSH honours KILL only while the channel is open; the caller also kills the process group by pid.
          channel.signal('KILL');
          channel.close();
          finish(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
        };
        const finish = (error: Error | null, code: number | null = null, sig: string | null = null): void => {
          if (settled) return;
          settled = true;
          client.removeListener('close', onLost);
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve({ code, signal: sig, stdout: stdout.text(), stderr: stderr.text() });
        };
        // Drain both streams always: an unread stderr stalls the channel window.
        channel.on('data', (chunk: Buffer) => {
          stdout.push(chunk);
          options.onStdout?.(chunk);
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          stderr.push(chunk);
          options.onStderr?.(chunk);
        });
        channel.on('close', (code: number | null, sig?: string) => finish(null, typeof code === 'number' ? code : null, sig ?? null));
        client.once('close', onLost);
        signal?.addEventListener('abort', onAbort, { once: true });
        if (options.stdin) {
          channel.write(options.stdin);
          if (options.stdinMore) {
            void options.stdinMore.then((more) => {
              if (!settled) channel.end(more);
            });
          } else channel.end();
        }
        // The abort may have landed while the channel was opening.
        if (signal?.aborted) onAbort();
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    const client = this.requireClient();
    this.sftpSession ??= new Promise<SFTPWrapper>((resolve, reject) => {
      client.sftp((err, sftp) => (err ? reject(new TransportError(`sftp failed on ${this.describe}: ${err.message}`, this.describe)) : resolve(sftp)));
    }).catch((err: unknown) => {
      this.sftpSession = null;
      throw err;
    });
    return this.sftpSession;
  }

  async writeFile(remotePath: string, data: Buffer | string, mode = 0o600): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile(remotePath, data, { mode }, (err) => (err ? reject(this.fileError('write', remotePath, err)) : resolve())),
    );
  }

  async readFile(remotePath: string): Promise<Buffer> {
    const sftp = await this.sftp();
    return new Promise((resolve, reject) =>
      sftp.readFile(remotePath, (err: Error | undefined, data: Buffer) => (err ? reject(this.fileError('read', remotePath, err)) : resolve(data))),
    );
  }

  async mkdir(remotePath: string, mode = 0o700): Promise<void> {
    const result = await this.exec(shellJoin(['mkdir', '-p', '-m', mode.toString(8), '--', remotePath]));
    if (result.code !== 0) throw new TransportError(`mkdir ${remotePath} failed on ${this.describe}: ${result.stderr.trim()}`, this.describe);
  }

  private fileError(op: string, path: string, err: Error): TransportError {
    return new TransportError(`sftp ${op} ${path} failed on ${this.describe}: ${err.message}`, this.describe, { cause: err });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.sftpSession = null;
    if (client === null) return;
    await new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      client.end();
      setTimeout(resolve, 2000).unref();
    });
  }
}

/** Keeps the last KEEP_BYTES of a stream. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > KEEP_BYTES && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function expandHome(path: string, env: NodeJS.ProcessEnv): string {
  return path.startsWith('~/') ? `${env['HOME'] ?? ''}${path.slice(1)}` : path;
}

/** The device's TCP port answered with a refusal: nothing listens there (sshd down, or the device still booting). */
function isRefused(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED';
}
