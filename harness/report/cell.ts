/** What a matrix cell says about one job, shared by the HTML page and its Markdown twin. */
import { kernelBitsOf, type ResultRecord } from '../results/record.ts';
import { bitness, notInstalled, testStatus } from './test-status.ts';

export interface VerdictLabel {
  key: 'expected' | 'unexpected' | 'infra' | 'skipped' | 'notinstalled' | 'none';
  text: string;
  /** Terminal/Markdown marker. */
  mark: string;
}

export function verdictLabel(r: ResultRecord): VerdictLabel {
  const status = testStatus(r);
  if (status === 'broken') return { key: 'infra', text: 'infrastructure', mark: '⚠️' };
  if (status === 'skipped') return { key: 'skipped', text: 'never probed', mark: '⏭️' };
  // Not tried is its own group: "as expected" would read as a result. Where
  // the expectation wanted a result, it stays unexpected, so it still gets a look.
  if (notInstalled(r) && status === 'passed') return { key: 'notinstalled', text: 'not installed', mark: '➖' };
  if (notInstalled(r) && r.expectation) return { key: 'unexpected', text: `not installed, unexpected (expected ${r.expectation.allowed.join(' or ')})`, mark: '❌' };
  if (!r.expectation) return { key: 'none', text: status === 'passed' ? 'no expectation, ran' : 'no expectation', mark: status === 'passed' ? '✅' : '❌' };
  return status === 'passed'
    ? { key: 'expected', text: 'as expected', mark: '✅' }
    : { key: 'unexpected', text: `unexpected (expected ${r.expectation.allowed.join(' or ')})`, mark: '❌' };
}

/** Anchor id of a job's timeline figure; jobIds are safe words, but keep ids strictly safe. */
export function jobAnchor(jobId: string): string {
  return `job-${jobId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/**
 * The three setups the reports set side by side. A 32-bit userland is split by its
 * kernel: a 32-bit kernel leaves a process about 3 GB, the 64-bit kernel that 32-bit
 * Raspberry Pi OS boots on a Pi 4 or 5 since 2023 leaves it nearly 4 GB.
 */
export const SETUPS = [
  { id: 'k32', label: '32-bit userland, 32-bit kernel', short: '32-bit on a 32-bit kernel' },
  { id: 'k64', label: '32-bit userland, 64-bit kernel', short: '32-bit on a 64-bit kernel' },
  { id: '64', label: '64-bit', short: '64-bit' },
] as const;
export type Setup = (typeof SETUPS)[number];
export type SetupId = Setup['id'];

/**
 * The setup of a job's device, from the agent's facts: the userland's word size, then
 * the kernel's (kernelBits, or `uname -m` from an older agent). A 32-bit userland whose
 * kernel is unknown (no facts) counts with the 32-bit kernel.
 */
export function setupOf(r: ResultRecord): Setup {
  const [k32, k64, b64] = SETUPS;
  if (bitness(r) === '64-bit') return b64;
  return kernelBitsOf(r.facts) === 64 ? k64 : k32;
}
