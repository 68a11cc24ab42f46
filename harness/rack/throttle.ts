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
  const hex = `0x${value.toString(16)}`;
  if (now.length) return `${hex}: ${now.join(', ')} now`;
  if (boot.length) return `${hex}: ${boot.join(', ')} since boot, not now`;
  return `${hex}: never throttled since boot`;
}
