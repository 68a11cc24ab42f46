/**
 * `vcgencmd get_throttled`, decoded. Bits 0–3 say what is happening now
 * (under-voltage, ARM frequency capped, throttled, soft temperature limit);
 * bits 16–19 say the same since boot. A Pi in any of these states runs slower,
 * so its timings are not comparable with an unthrottled run.
 */

const CONDITIONS = ['under-voltage', 'ARM frequency capped', 'throttled', 'soft temperature limit'] as const;
export type ThrottleCondition = (typeof CONDITIONS)[number];

/** The conditions whose bit is set at `shift` (0: now, 16: since boot). */
function conditionsAt(value: number, shift: 0 | 16): ThrottleCondition[] {
  return CONDITIONS.filter((_, bit) => (value >>> (shift + bit)) & 1);
}

export function throttledNow(value: number): ThrottleCondition[] {
  return conditionsAt(value, 0);
}

export function throttledSinceBoot(value: number): ThrottleCondition[] {
  return conditionsAt(value, 16);
}

/** "0x50005: under-voltage, throttled now" */
export function describeThrottled(value: number): string {
  const now = throttledNow(value);
  const boot = throttledSinceBoot(value);
  if (now.length) return `${hex(value)}: ${now.join(', ')} now`;
  if (boot.length) return `${hex(value)}: ${boot.join(', ')} since boot, not now`;
  return `${hex(value)}: never throttled since boot`;
}

/** The times of a job are comparable only if the Pi ran at full speed throughout. */
export interface TimingTrust {
  trusted: boolean;
  untrustedBecause: string | null;
}

/**
 * Judged from the readings before and after the payload: throttled at either
 * end, or a since-boot bit that appeared during the job (it came and went).
 * No reading (vcgencmd absent or not permitted) is not a reason to distrust:
 * the record lists the source as unavailable instead of guessing.
 */
export function timingTrust(before: number | null, after: number | null): TimingTrust {
  if (before === null || after === null) return { trusted: true, untrustedBecause: null };
  const during = throttledSinceBoot(after).filter((c) => !throttledSinceBoot(before).includes(c));
  const now = [...new Set([...throttledNow(before), ...throttledNow(after), ...during])];
  if (now.length === 0) return { trusted: true, untrustedBecause: null };
  return { trusted: false, untrustedBecause: `${now.join(', ')} during the job (before ${hex(before)}, after ${hex(after)})` };
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
