/**
 * The health gate, run before a device's first job: reachable within its
 * connect timeout, its clock within 5 minutes of ours, enough free memory and
 * disk for the suites it is about to run, and not throttled right now. A
 * device that fails it runs no job; the caller records why for each of them.
 */
import { agentExec } from '../agent/client.ts';
import type { Transport } from '../transport/transport.ts';
import { describeThrottled, throttledNow } from './throttle.ts';

/** A device's clock may be this far off ours before its timestamps and lease expiries are not to be trusted. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** What the suites about to run need on the device (the largest of their suite.yaml `needs:`). */
export interface HealthNeeds {
  ramMb: number;
  diskMb: number;
}

/** What the device reported, as `monitor.py health` read it. */
export interface HealthReading {
  epochMs: number;
  /** MemAvailable, or what is free under the device's memory cgroup limit when that is less. */
  memAvailKb: number | null;
  memCapped: boolean;
  diskFreeKb: number | null;
  diskError: string | null;
  /** `vcgencmd get_throttled` as a number; null where vcgencmd is absent or not permitted. */
  throttled: number | null;
  throttledUnavailable: string | null;
}

export interface HealthReport {
  ok: boolean;
  /** One line each; empty when the device is fit. */
  problems: string[];
  reading: HealthReading;
  /** Device clock minus ours, ms. */
  clockSkewMs: number;
}

/** Read the device's state in one exec and judge it against `needs`. */
export async function checkHealth(transport: Transport, python: string, workdirRoot: string, needs: HealthNeeds, signal?: AbortSignal): Promise<HealthReport> {
  await transport.connect(signal);
  const sent = Date.now();
  // The agent answers the gate too (`monitor.py health`: one file knows how to read a device's cgroups
  // and /proc), sent on stdin and written nowhere: the gate runs before anything is deployed.
  const { command, stdin } = agentExec(python, workdirRoot, '-', ['health', '--root', workdirRoot]);
  const res = await transport.exec(command, { stdin, ...(signal ? { signal } : {}) });
  const received = Date.now();
  if (res.code !== 0) throw new Error(`health check failed on ${transport.describe} (exit ${res.code ?? res.signal}): ${res.stderr.trim().slice(-300)}`);
  const reading = JSON.parse(res.stdout.trim().split('\n').pop() ?? '') as HealthReading;
  // The device read its clock somewhere inside the exec's round trip: compare with the middle.
  const clockSkewMs = reading.epochMs - (sent + received) / 2;
  return { ...judgeHealth(reading, needs, clockSkewMs), reading, clockSkewMs };
}

export function judgeHealth(r: HealthReading, needs: HealthNeeds, clockSkewMs: number): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (Math.abs(clockSkewMs) > MAX_CLOCK_SKEW_MS) {
    problems.push(`clock ${Math.round(clockSkewMs / 1000)} s off the controller's (allowed: within ${MAX_CLOCK_SKEW_MS / 60_000} min)`);
  }
  const memMb = r.memAvailKb === null ? null : Math.floor(r.memAvailKb / 1024);
  if (memMb !== null && memMb < needs.ramMb) {
    problems.push(`${memMb} MB memory free${r.memCapped ? ' under its cap' : ''}, the suites need ${needs.ramMb} MB`);
  }
  if (r.diskFreeKb === null) problems.push(`workdir not usable: ${r.diskError ?? 'no free-space figure'}`);
  else if (Math.floor(r.diskFreeKb / 1024) < needs.diskMb) problems.push(`${Math.floor(r.diskFreeKb / 1024)} MB disk free in the workdir, the suites need ${needs.diskMb} MB`);
  if (r.throttled !== null && throttledNow(r.throttled).length > 0) problems.push(`throttled right now (${describeThrottled(r.throttled)})`);
  return { ok: problems.length === 0, problems };
}
