/**
 * Quarantine: a device that fails its health gate (or its recovery) in N runs
 * in a row is set aside, with the reason and the date, in the state folder.
 * Later runs skip it with that reason, at no cost, until a person sees it pass
 * `hil check --device X` or releases it with `hil quarantine release X`.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stateDir } from '../host/paths.ts';

/** Runs in a row a device may fail before it is quarantined. */
export const DEFAULT_QUARANTINE_AFTER = 3;

export interface DeviceStanding {
  /** Runs in a row whose gate or recovery this device failed; 0 after a run it passed. */
  failuresInARow: number;
  lastFailure: { reason: string; at: string; runId: string } | null;
  quarantined: { reason: string; since: string } | null;
}

interface QuarantineFile {
  devices: Record<string, DeviceStanding>;
}

export function quarantineFile(): string {
  return path.join(stateDir(), 'quarantine.json');
}

const fresh = (): DeviceStanding => ({ failuresInARow: 0, lastFailure: null, quarantined: null });

export class QuarantineBook {
  constructor(
    private readonly file: string = quarantineFile(),
    private readonly after: number = DEFAULT_QUARANTINE_AFTER,
  ) {}

  private read(): QuarantineFile {
    if (!existsSync(this.file)) return { devices: {} };
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<QuarantineFile>;
      return { devices: parsed.devices ?? {} };
    } catch (err) {
      throw new Error(`${this.file} is not readable JSON (${err instanceof Error ? err.message : String(err)}); fix or remove it`);
    }
  }

  /** Written whole and renamed into place: a crash never leaves half a file. */
  private write(data: QuarantineFile): void {
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  standing(device: string): DeviceStanding {
    return this.read().devices[device] ?? fresh();
  }

  /** The quarantined devices, with why and since when. */
  list(): { device: string; reason: string; since: string; failuresInARow: number }[] {
    return Object.entries(this.read().devices)
      .filter(([, s]) => s.quarantined !== null)
      .map(([device, s]) => ({ device, reason: s.quarantined!.reason, since: s.quarantined!.since, failuresInARow: s.failuresInARow }));
  }

  /** The device failed its gate or recovery in this run. Returns true when that puts it in quarantine. */
  recordFailure(device: string, runId: string, reason: string, now = new Date()): boolean {
    const data = this.read();
    const s = data.devices[device] ?? fresh();
    s.failuresInARow += 1;
    s.lastFailure = { reason, at: now.toISOString(), runId };
    let quarantinedNow = false;
    if (s.quarantined === null && s.failuresInARow >= this.after) {
      s.quarantined = { reason: `failed ${s.failuresInARow} runs in a row; last: ${reason}`, since: now.toISOString() };
      quarantinedNow = true;
    }
    data.devices[device] = s;
    this.write(data);
    return quarantinedNow;
  }

  /** The device passed its gate: its run of failures ends (quarantine, if any, stays until released). */
  recordPass(device: string): void {
    const data = this.read();
    const s = data.devices[device];
    if (!s || s.failuresInARow === 0) return;
    s.failuresInARow = 0;
    this.write(data);
  }

  /** Let the device run again. Returns what its quarantine said, or null when it was not quarantined. */
  release(device: string): { reason: string; since: string } | null {
    const data = this.read();
    const s = data.devices[device];
    if (!s?.quarantined) return null;
    const was = s.quarantined;
    data.devices[device] = fresh();
    this.write(data);
    return was;
  }
}
