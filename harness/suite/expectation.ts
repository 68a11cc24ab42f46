/**
 * Suite expectation × a finished job → a verdict. The device class is matched
 * against what the agent found on the device where it could (its facts), and
 * against the inventory's snapshot otherwise: an armhf userland on a 64-bit
 * Pi kernel must count as armhf, whatever the inventory said.
 */
import { ARCHES, kernelBitsOf, type Arch, type DeviceFacts, type ExpectationCheck, type ResultRecord } from '../results/record.ts';
import { describeCondition, inRange, satisfies } from './condition.ts';
import type { DeviceClass, Expectation, Suite } from './suite.ts';

/** The parts of a result record that judging reads. */
export type JudgeSubject = Pick<ResultRecord, 'device' | 'facts' | 'outcome' | 'values'>;

/** The userland arch: dpkg's word when it is one of ours, else derived from uname and LONG_BIT. */
export function effectiveArch(subject: Pick<ResultRecord, 'device' | 'facts'>): Arch {
  const f = subject.facts;
  if (!f) return subject.device.arch;
  if (f.dpkgArch && (ARCHES as readonly string[]).includes(f.dpkgArch)) return f.dpkgArch as Arch;
  if (/^armv[78]/.test(f.machine) || (f.machine === 'aarch64' && f.longBit === 32)) return 'armhf';
  if (/^armv[56]/.test(f.machine)) return 'armel';
  if (f.machine === 'aarch64') return 'arm64';
  if (f.machine === 'x86_64' && f.longBit !== 32) return 'amd64';
  return subject.device.arch;
}

function longBit(arch: Arch, facts: DeviceFacts | null): 32 | 64 {
  return facts?.longBit ?? (arch === 'armhf' || arch === 'armel' ? 32 : 64);
}

/** Does the device belong to the class? RAM is the inventory's (a local device's cap stands in for a Pi's RAM). */
export function matchesClass(c: DeviceClass, subject: Pick<ResultRecord, 'device' | 'facts'>): boolean {
  const arch = effectiveArch(subject);
  const { device, facts } = subject;
  const emulated = facts?.emulated ?? device.transport !== 'ssh';
  if (c.arch && !c.arch.includes(arch)) return false;
  if (c.ramMb && !inRange(device.ramMb, c.ramMb)) return false;
  if (c.transport && !c.transport.includes(device.transport)) return false;
  if (c.emulated !== null && c.emulated !== emulated) return false;
  if (c.longBit !== null && c.longBit !== longBit(arch, facts)) return false;
  // Without facts the kernel is unknown, so a kernel_bits class does not claim the device.
  if (c.kernelBits !== null && c.kernelBits !== kernelBitsOf(facts)) return false;
  return c.tags.every((t) => device.tags.includes(t));
}

/** The first expectation whose class the device is in, or null. */
export function expectationFor(suite: Suite, subject: Pick<ResultRecord, 'device' | 'facts'>): Expectation | null {
  return suite.expectations.find((e) => matchesClass(e.when, subject)) ?? null;
}

export interface Judgement {
  verdict: ExpectationCheck;
  expectation: Expectation;
  /** Why the verdict is unmet, one line each; empty when met. */
  problems: string[];
}

/**
 * Judge in full. Value checks apply to a value the run reported; a value that
 * is missing fails its check only when the run passed (a run that was
 * OOM-killed or unsupported may never get to report it).
 */
export function judgeInDetail(suite: Suite, subject: JudgeSubject): Judgement | null {
  const expectation = expectationFor(suite, subject);
  if (!expectation) return null;
  const base = { allowed: [...expectation.allow], claim: expectation.claim };
  if (subject.outcome === 'infra_error') return { verdict: { ...base, verdict: 'infra' }, expectation, problems: [] };
  const problems: string[] = [];
  if (!expectation.allow.includes(subject.outcome)) {
    problems.push(`outcome ${subject.outcome}, expected ${expectation.allow.join(' or ')}`);
  }
  for (const [key, condition] of Object.entries(expectation.check)) {
    const reported = Object.hasOwn(subject.values, key);
    const value = reported ? subject.values[key] ?? null : null;
    if (!reported) {
      if (subject.outcome === 'passed') problems.push(`${key} not reported, expected ${describeCondition(condition)}`);
    } else if (!satisfies(value, condition)) {
      problems.push(`${key} = ${JSON.stringify(value)}, expected ${describeCondition(condition)}`);
    }
  }
  return { verdict: { ...base, verdict: problems.length ? 'unmet' : 'met' }, expectation, problems };
}

/** The verdict that goes into the result record, or null when no expectation covers the device. */
export function judge(suite: Suite, subject: JudgeSubject): ExpectationCheck | null {
  return judgeInDetail(suite, subject)?.verdict ?? null;
}
