/**
 * Device leases: never two controllers on one device. Before its first job on
 * a device a controller takes a lease, held where the device is (on the Pi
 * itself over SSH; on this host for QEMU and local devices), so controllers on
 * any machines agree without a server. A lease cannot go stale: it expires
 * `ttl` after its last renewal, the holder renews it every ttl/3 while it
 * runs, and a controller that finds an expired lease takes it over, killing
 * what is left of the dead holder's jobs (harness/rack/lease.py).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { shellJoin } from '../transport/quote.ts';
import type { Transport } from '../transport/transport.ts';

/** A dead holder's lease is free again after this long (≤ 2 minutes, as a rack needs). */
export const DEFAULT_LEASE_TTL_MS = 60_000;

const SCRIPT = readFileSync(fileURLToPath(new URL('./lease.py', import.meta.url)), 'utf8');

/** Who holds a lease: enough for a person at the rack to find the run. */
export interface LeaseHolder {
  /** A CI job ("github run 123 job build") or user@host. */
  who: string;
  host: string;
  pid: number;
  runId: string;
  /** Where the holder's job workdirs live on the device, so a successor can clean up after it. */
  workdirRoot: string;
}

export interface LeaseRecord extends LeaseHolder {
  id: string;
  /** Epoch seconds, by the clock of the machine that holds the lease. */
  acquiredAt: number;
  expiresAt: number;
}

interface LeaseReply {
  ok: boolean;
  now: number;
  live: boolean;
  holder: LeaseRecord | null;
  lease?: LeaseRecord;
  tookOver?: LeaseRecord;
  retaken?: boolean;
  killed?: { job: string; pid: number; group: boolean }[];
  swept?: string[];
  error?: string;
}

type LeaseOp = 'acquire' | 'renew' | 'release' | 'show';

/** Where a device's lease lives, and how to run the lease script there. */
export interface LeaseSite {
  readonly describe: string;
  run(op: LeaseOp, arg: object, signal?: AbortSignal): Promise<LeaseReply>;
}

function parseReply(text: string, where: string): LeaseReply {
  const line = text.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as LeaseReply;
  } catch {
    throw new Error(`the lease script on ${where} answered ${JSON.stringify(line.slice(0, 200))}`);
  }
}

/** The lease on the device itself, in `<workdir>/.pi-hil-lease/`, run with the device's python. */
export function deviceLeaseSite(transport: Transport, python: string, workdirRoot: string): LeaseSite {
  const dir = path.posix.join(workdirRoot, '.pi-hil-lease');
  return {
    describe: `${transport.describe}:${dir}`,
    async run(op, arg, signal) {
      await transport.connect(signal);
      const res = await transport.exec(shellJoin([python, '-S', '-c', SCRIPT, op, dir, JSON.stringify(arg)]), signal ? { signal } : {});
      if (res.code !== 0) throw new Error(`lease ${op} failed on ${transport.describe} (exit ${res.code ?? res.signal}): ${res.stderr.trim().slice(-300)}`);
      return parseReply(res.stdout, transport.describe);
    },
  };
}

/** Host-wide (not per checkout): two checkouts on one host share local cgroups and ports. */
export function hostLeaseDir(): string {
  return process.env['PI_HIL_LEASES'] || path.join(os.tmpdir(), `pi-hil-leases-${process.getuid?.() ?? 'user'}`);
}

/** The lease of a QEMU or local device, on this host. */
export function hostLeaseSite(deviceName: string): LeaseSite {
  const dir = path.join(hostLeaseDir(), deviceName);
  return {
    describe: `this host:${dir}`,
    run(op, arg, signal) {
      return new Promise((resolve, reject) => {
        execFile('python3', ['-S', '-c', SCRIPT, op, dir, JSON.stringify(arg)], { encoding: 'utf8', ...(signal ? { signal } : {}) }, (err, stdout, stderr) => {
          if (err) reject(new Error(`lease ${op} failed on this host: ${stderr.trim().slice(-300) || err.message}`));
          else {
            try {
              resolve(parseReply(stdout, 'this host'));
            } catch (e) {
              reject(e);
            }
          }
        });
      });
    },
  };
}

/** "github run 123 (runner@rack-ctl, pid 42, run 20261202-…), expires in 45 s" */
export function describeHolder(h: LeaseRecord, now: number): string {
  const left = Math.round(h.expiresAt - now);
  return `${h.who} (pid ${h.pid} on ${h.host}, run ${h.runId}), ${left > 0 ? `expires in ${left} s unless renewed` : `expired ${-left} s ago`}`;
}

/** The holder this controller is: a CI job when CI says so, else user@host. */
export function thisHolder(runId: string, workdirRoot: string): LeaseHolder {
  const env = process.env;
  const host = os.hostname();
  const ci =
    (env['GITHUB_RUN_ID'] && `github run ${env['GITHUB_RUN_ID']}${env['GITHUB_JOB'] ? ` job ${env['GITHUB_JOB']}` : ''}`) ||
    (env['CI_JOB_ID'] && `gitlab job ${env['CI_JOB_ID']}`) ||
    null;
  return { who: ci ?? `${os.userInfo().username}@${host}`, host, pid: process.pid, runId, workdirRoot };
}

/** Another live controller holds the device. */
export class LeaseBusyError extends Error {
  override readonly name = 'LeaseBusyError';
  constructor(
    readonly device: string,
    readonly holder: LeaseRecord,
    now: number,
  ) {
    super(`${device} is leased by ${describeHolder(holder, now)}`);
  }
}

export interface AcquireOptions {
  ttlMs?: number;
  /** How long to wait for a busy device before giving up on it (default 0: do not wait). */
  waitMs?: number;
  signal?: AbortSignal;
  /** Told when a dead holder's lease is taken over, and what was cleaned up. */
  log?: (message: string) => void;
}

/** A held lease: renewed in the background until released. */
export class Lease {
  private timer: NodeJS.Timeout | null = null;
  private readonly lostController = new AbortController();
  private released = false;

  constructor(
    readonly device: string,
    private readonly site: LeaseSite,
    readonly record: LeaseRecord,
    private readonly ttlMs: number,
    private readonly log: (message: string) => void,
  ) {
    this.schedule();
  }

  /** Aborts when the lease was lost (another controller broke it, or renewals failed until it expired). */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.renew(), this.ttlMs / 3);
    this.timer.unref();
  }

  /** Renew now rather than at the next tick: after the device was power-cycled, say. */
  async renewNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.renew();
  }

  private async renew(): Promise<void> {
    if (this.released) return;
    try {
      const { id, acquiredAt: _a, expiresAt: _e, ...holder } = this.record;
      const reply = await this.site.run('renew', { id, holder, ttlS: this.ttlMs / 1000 }, AbortSignal.timeout(this.ttlMs / 3));
      if (reply.retaken) this.log(`${this.device}: lease taken again (the device had lost it, e.g. by a reboot)`);
      if (!reply.ok) {
        const by = reply.holder ? describeHolder(reply.holder, reply.now) : 'nobody (it was released by force)';
        this.log(`${this.device}: lease lost; now held by ${by}`);
        this.lostController.abort(new Error(`lease on ${this.device} lost`));
        return;
      }
    } catch (err) {
      // An unreachable device: keep trying; the lease expires on its own if we never get through.
      this.log(`${this.device}: lease renewal failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!this.released) this.schedule();
  }

  /** Give the device back. Safe to call twice; never throws (an expiring lease frees itself anyway). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    try {
      await this.site.run('release', { id: this.record.id }, AbortSignal.timeout(15_000));
    } catch (err) {
      this.log(`${this.device}: lease release failed (it expires within ${this.ttlMs / 1000} s): ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/**
 * Take the device's lease, waiting up to `waitMs` while another live
 * controller holds it. Throws LeaseBusyError naming the holder when the wait
 * runs out.
 */
export async function acquireLease(device: string, site: LeaseSite, holder: LeaseHolder, options: AcquireOptions = {}): Promise<Lease> {
  const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const log = options.log ?? (() => undefined);
  const giveUpAt = Date.now() + (options.waitMs ?? 0);
  const id = `${holder.runId}-${randomBytes(4).toString('hex')}`;
  for (;;) {
    options.signal?.throwIfAborted();
    const reply = await site.run('acquire', { id, holder, ttlS: ttlMs / 1000 }, options.signal);
    if (reply.ok && reply.lease) {
      if (reply.tookOver) {
        const killed = reply.killed ?? [];
        log(
          `${device}: took over the expired lease of ${describeHolder(reply.tookOver, reply.now)}; ` +
            (killed.length ? `killed its leftover processes ${killed.map((k) => (k.group ? `group ${k.pid}` : `pid ${k.pid}`)).join(', ')} and ` : '') +
            `removed its workdir`,
        );
      }
      if (reply.swept?.length) log(`${device}: removed workdirs older than a day: ${reply.swept.join(', ')}`);
      return new Lease(device, site, reply.lease, ttlMs, log);
    }
    if (!reply.holder) throw new Error(`lease acquire on ${site.describe} failed: ${reply.error ?? 'no reason given'}`);
    const remaining = giveUpAt - Date.now();
    if (remaining <= 0) throw new LeaseBusyError(device, reply.holder, reply.now);
    // Poll about as often as the holder renews, never past the wait.
    await sleep(Math.min(remaining, Math.max(1000, Math.min(5000, ttlMs / 6))), undefined, options.signal ? { signal: options.signal } : {});
  }
}
