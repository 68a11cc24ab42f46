/**
 * Admission of a device to a run, once, before its first job: take its lease,
 * reach it, and pass the health gate. A device that is refused runs no job;
 * each of its jobs is recorded with the refusal, so the run's totals stay
 * whole, and a dead device costs one connect timeout per run, not one per job.
 * The lease is released when the device's last job has ended.
 */
import type { Device } from '../inventory/device.ts';
import type { Transport } from '../transport/transport.ts';
import { checkHealth, type HealthNeeds } from './health.ts';
import type { QuarantineBook } from './quarantine.ts';
import { powerControlFor } from './power.ts';
import { shellJoin } from '../transport/quote.ts';
import { acquireLease, deviceLeaseSite, hostLeaseSite, LeaseBusyError, thisHolder, type Lease, type LeaseSite } from './lease.ts';

/** Why a device runs no job in this run. */
export interface DeviceRefusal {
  why: 'quarantined' | 'lease' | 'unreachable' | 'health' | 'down';
  detail: string;
}

export type Admission = { admitted: true } | { admitted: false; refusal: DeviceRefusal };

export interface AdmissionOptions {
  runId: string;
  leaseTtlMs: number;
  /** How long to wait for a device another controller holds (0: skip it at once). */
  leaseWaitMs: number;
  /** What the jobs planned for this device need (the largest of their suites' `needs:`). */
  needsFor(device: Device): HealthNeeds;
  /** Jobs planned per device, so the lease goes back after the last one. */
  jobsPerDevice: ReadonlyMap<string, number>;
  /** Told what a person should know: a dead holder's lease taken over, a device refused. */
  log(device: string, message: string): void;
  /** Where devices that keep failing are set aside across runs. */
  quarantine: QuarantineBook;
}

/** Where a device's lease is held: on the Pi itself, or on this host for devices this host provides. */
export function leaseSiteFor(device: Device, transport: Transport): LeaseSite {
  return device.transport === 'ssh' ? deviceLeaseSite(transport, device.python, device.workdir) : hostLeaseSite(device.name);
}

export class DeviceAdmissions {
  private readonly decided = new Map<string, Promise<Admission>>();
  private readonly leases = new Map<string, Lease>();
  private readonly left = new Map<string, number>();

  constructor(private readonly options: AdmissionOptions) {
    for (const [name, n] of options.jobsPerDevice) this.left.set(name, n);
  }

  /** Decided once per device; later jobs of the device get the same answer at once. */
  admit(device: Device, transport: Transport, signal: AbortSignal): Promise<Admission> {
    let decision = this.decided.get(device.name);
    if (!decision) this.decided.set(device.name, (decision = this.decide(device, transport, signal)));
    return decision;
  }

  private async decide(device: Device, transport: Transport, signal: AbortSignal): Promise<Admission> {
    const o = this.options;
    const refuse = (why: DeviceRefusal['why'], detail: string): Admission => ({ admitted: false, refusal: { why, detail } });
    const reach = AbortSignal.any([signal, AbortSignal.timeout(device.timeouts.connectMs + device.timeouts.bootMs)]);
    const standing = o.quarantine.standing(device.name);
    if (standing.quarantined) {
      const q = standing.quarantined;
      return this.refused(device, refuse('quarantined', `quarantined since ${q.since}: ${q.reason}; \`hil check --device ${device.name}\` or \`hil quarantine release ${device.name}\` lets it run again`));
    }
    try {
      const lease = await acquireLease(device.name, leaseSiteFor(device, transport), thisHolder(o.runId, device.workdir), {
        ttlMs: o.leaseTtlMs,
        waitMs: o.leaseWaitMs,
        signal: AbortSignal.any([signal, AbortSignal.timeout(o.leaseWaitMs + device.timeouts.connectMs + device.timeouts.bootMs)]),
        log: (m) => o.log(device.name, m),
      });
      this.leases.set(device.name, lease);
    } catch (err) {
      signal.throwIfAborted();
      if (err instanceof LeaseBusyError) return this.refused(device, refuse('lease', err.message));
      return this.failed(device, refuse('unreachable', message(err)));
    }
    try {
      await transport.connect(reach);
      const health = await checkHealth(transport, device.python, device.workdir, o.needsFor(device), reach);
      if (!health.ok) {
        await this.release(device.name);
        return this.failed(device, refuse('health', health.problems.join('; ')));
      }
    } catch (err) {
      await this.release(device.name);
      signal.throwIfAborted();
      return this.failed(device, refuse('unreachable', message(err)));
    }
    o.quarantine.recordPass(device.name);
    return { admitted: true };
  }

  /** Refused through the device's own fault: it counts towards quarantine. */
  private failed(device: Device, admission: Admission): Admission {
    if (!admission.admitted && this.options.quarantine.recordFailure(device.name, this.options.runId, admission.refusal.detail)) {
      const s = this.options.quarantine.standing(device.name);
      this.options.log(device.name, `quarantined after ${s.failuresInARow} failed runs in a row; later runs skip it until \`hil check --device ${device.name}\` passes or \`hil quarantine release ${device.name}\``);
    }
    return this.refused(device, admission);
  }

  private refused(device: Device, admission: Admission): Admission {
    if (!admission.admitted) this.options.log(device.name, `runs no job in this run: ${admission.refusal.detail}`);
    return admission;
  }

  /**
   * After a job that left its device in doubt (lost, OOM-killed, timed out):
   * does it still answer? If not, power-cycle it, wait for SSH within its boot
   * time and pass the health gate again. A device that cannot be brought back
   * (or has no power control) is down for the rest of the run: its later jobs
   * are refused at once, and the failure counts towards quarantine.
   */
  async recover(device: Device, transport: Transport, signal: AbortSignal): Promise<'answering' | 'recovered' | 'down'> {
    const o = this.options;
    if (await answers(device, transport, signal)) return 'answering';
    signal.throwIfAborted();
    const power = powerControlFor(device, transport);
    const down = (why: string): 'down' => {
      const refusal: DeviceRefusal = { why: 'down', detail: why };
      this.decided.set(device.name, Promise.resolve(this.failed(device, { admitted: false, refusal })));
      return 'down';
    };
    if (power === null) return down('it stopped answering, and it has no power: block to cycle it with');
    o.log(device.name, `stopped answering: power-cycling it (${power.describe})`);
    try {
      await power.run('cycle', AbortSignal.any([signal, AbortSignal.timeout(device.timeouts.bootMs)]));
      // The old session died with the device: reconnect from scratch, waiting for it to boot.
      if (device.transport !== 'qemu') await transport.close();
      const boot = AbortSignal.any([signal, AbortSignal.timeout(device.timeouts.bootMs + device.timeouts.connectMs)]);
      await transport.connect(boot);
      const health = await checkHealth(transport, device.python, device.workdir, o.needsFor(device), boot);
      if (!health.ok) return down(`power-cycled, but it failed the health gate: ${health.problems.join('; ')}`);
    } catch (err) {
      signal.throwIfAborted();
      return down(`power-cycled, but it did not come back: ${message(err)}`);
    }
    // A Pi's lease lives in its /tmp, which a power cycle may have wiped: hold it again now.
    await this.leases.get(device.name)?.renewNow();
    o.log(device.name, 'recovered: answering and healthy after the power cycle');
    return 'recovered';
  }

  /** A job of the device has ended; after its last, the device's lease goes back. */
  async jobEnded(device: string): Promise<void> {
    const n = (this.left.get(device) ?? 1) - 1;
    this.left.set(device, n);
    if (n <= 0) await this.release(device);
  }

  /** The lease of one device, if held, is given back. */
  private async release(device: string): Promise<void> {
    const lease = this.leases.get(device);
    this.leases.delete(device);
    await lease?.release();
  }

  /** Give back every lease still held (the end of a run, or Ctrl-C). */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.leases.keys()].map((d) => this.release(d)));
  }
}

/** A trivial command answered within the connect timeout. */
async function answers(device: Device, transport: Transport, signal: AbortSignal): Promise<boolean> {
  const probe = AbortSignal.any([signal, AbortSignal.timeout(device.timeouts.connectMs + 10_000)]);
  try {
    await transport.connect(probe);
    return (await transport.exec(shellJoin(['true']), { signal: probe })).code === 0;
  } catch {
    return false;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
