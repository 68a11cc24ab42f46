/**
 * How a result record becomes a test status. Allure, JUnit and TAP all map
 * records through here so the three never disagree about what failed.
 */
import type { ResultRecord } from '../results/record.ts';

export type TestStatus = 'passed' | 'failed' | 'broken' | 'skipped';

export function testStatus(record: ResultRecord): TestStatus {
  // Infra first: a harness failure is never a product verdict, even when it
  // struck before the probe ran.
  if (record.outcome === 'infra_error' || record.expectation?.verdict === 'infra') return 'broken';
  if (record.probe === null) return 'skipped';
  if (record.expectation) return record.expectation.verdict === 'met' ? 'passed' : 'failed';
  return record.outcome === 'passed' ? 'passed' : 'failed';
}

/**
 * An `unsupported` job whose requirement probe failed: the runtime is not
 * installed on the device, so the suite could not be tried there. Such a job
 * says nothing about memory or word size, only that nothing was measured.
 */
export function notInstalled(record: ResultRecord): boolean {
  return record.outcome === 'unsupported' && record.probe?.ok === false;
}

/** "32-bit" / "64-bit": the userland word size the agent measured, else the inventory arch. */
export function bitness(record: ResultRecord): '32-bit' | '64-bit' {
  const longBit = record.facts?.longBit;
  if (longBit === 32) return '32-bit';
  if (longBit === 64) return '64-bit';
  return record.device.arch === 'armhf' || record.device.arch === 'armel' ? '32-bit' : '64-bit';
}

/**
 * One-line message, "<outcome>: <reason>", then the evidence lines. Allure
 * categories match on the leading outcome word, so keep that shape stable.
 */
export function statusMessage(record: ResultRecord): string {
  const lines = [`${record.outcome}: ${record.reason}`];
  if (record.expectation) {
    lines.push(`expected ${record.expectation.allowed.join(' | ')} (${record.expectation.verdict})`);
  }
  if (record.thrashing) lines.push('thrashing: the deadline fired under memory pressure');
  for (const e of record.evidence) lines.push(`[${e.source}] ${e.detail}`);
  return lines.join('\n');
}

/** Why a record was skipped, for TAP's "# SKIP" and JUnit's <skipped message>. */
export function skipReason(record: ResultRecord): string {
  return record.probe === null ? `never probed: ${record.reason}` : record.reason;
}
