/**
 * The local transport: this machine stands in for a device. Commands run with
 * `sh -c`; with a cap, each one is first moved into a fresh memory cgroup
 * limited to capMb (cgroup v2 where its memory controller is available, else
 * v1), so the kernel's OOM killer acts as it would on a Pi with that much RAM.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createMemoryCgroup, type MemoryCgroup } from '../host/cgroup.ts';
import type { ExecOptions, ExecResult, Transport } from './transport.ts';
import { TransportError } from './transport.ts';
import { shellJoin, shellQuote } from './quote.ts';

export interface LocalTransportOptions {
  /** Device name, for describe and the cgroup's name. */
  name: string;
  /** Memory cap in MB; null runs uncapped in the caller's own cgroup. */
  capMb: number | null;
}

/** Memory cgroups are not usable here (not mounted, no memory controller, no permission). */
export class CgroupError extends Error {
  override readonly name = 'CgroupError';
}

export class LocalTransport implements Transport {
  /** This host: no serial console, and nothing for the harness to boot. */
  readonly console = null;
  readonly boot = null;
  readonly describe: string;
  private cgroup: MemoryCgroup | null = null;
  private connecting: Promise<void> | null = null;
  private closed = false;

  constructor(readonly options: LocalTransportOptions) {
    this.describe = `local:${options.name}` + (options.capMb === null ? '' : ` (cap ${options.capMb} MB)`);
  }

  /** The group every exec is placed in; null when uncapped or not yet connected. */
  get memoryCgroup(): MemoryCgroup | null {
    return this.cgroup;
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('transport is closed', this.describe));
    const cap = this.options.capMb;
    if (cap === null) return Promise.resolve();
    this.connecting ??= (async () => {
      const safe = this.options.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
      try {
        this.cgroup = createMemoryCgroup(`pi-hil-${safe}-${process.pid}-${randomBytes(3).toString('hex')}`, cap);
      } catch (err) {
        throw new CgroupError(`cannot cap ${this.describe} at ${cap} MB: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    })();
    return this.connecting;
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    await this.connect();
    // Join the cgroup first, then exec, so the command and all it forks are inside.
    const line = this.cgroup
      ? `echo $$ > ${shellQuote(join(this.cgroup.path, 'cgroup.procs'))} && exec ${shellJoin(['sh', '-c', command])}`
      : command;
    const { signal } = options;
    signal?.throwIfAborted();
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn('sh', ['-c', line], { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
      if (options.stdin && child.stdin) {
        const stdin = child.stdin;
        stdin.on('error', () => undefined); // the command may exit without reading it all
        stdin.write(options.stdin);
        if (options.stdinMore) void options.stdinMore.then((more) => stdin.end(more));
        else stdin.end();
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => {
        out.push(c);
        options.onStdout?.(c);
      });
      child.stderr.on('data', (c: Buffer) => {
        err.push(c);
        options.onStderr?.(c);
      });
      const onAbort = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => {
        signal?.removeEventListener('abort', onAbort);
        reject(new TransportError(`cannot run sh: ${e.message}`, this.describe, { cause: e }));
      });
      child.on('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        resolve({
          code,
          signal: sig ? sig.replace(/^SIG/, '') : null,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
    });
  }

  async writeFile(remotePath: string, data: Buffer | string, mode = 0o600): Promise<void> {
    await writeFile(remotePath, data, { mode });
    await chmod(remotePath, mode); // mode applies only at creation; make it exact
  }

  readFile(remotePath: string): Promise<Buffer> {
    return readFile(remotePath);
  }

  async mkdir(remotePath: string, mode = 0o700): Promise<void> {
    await mkdir(remotePath, { recursive: true, mode });
    await chmod(remotePath, mode);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    const cg = this.cgroup;
    this.cgroup = null;
    cg?.remove();
  }
}
