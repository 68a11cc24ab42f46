/** The order devices and suites appear in every report: 32-bit first, small RAM first, the article's examples first. */
import type { ResultRecord } from '../results/record.ts';
import { bitness } from './test-status.ts';

/** The article's three examples, in its order; calibration suites follow. */
export const ARTICLE_SUITES = ['keras-train', 'device-listing', 'tflite-inference'] as const;

export function suiteOrder(records: ResultRecord[]): string[] {
  const all = [...new Set(records.map((r) => r.suite))];
  const rank = (s: string) => {
    const i = (ARTICLE_SUITES as readonly string[]).indexOf(s);
    return i === -1 ? ARTICLE_SUITES.length : i;
  };
  return all.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export interface DeviceRow {
  name: string;
  bits: '32-bit' | '64-bit';
  /** A record of this device, for its snapshot and facts. */
  sample: ResultRecord;
}

export function deviceOrder(records: ResultRecord[]): DeviceRow[] {
  const byName = new Map<string, DeviceRow>();
  for (const r of records) {
    const known = byName.get(r.device.name);
    // Prefer a record that carries facts: it knows the real word size.
    if (!known || (known.sample.facts === null && r.facts !== null)) byName.set(r.device.name, { name: r.device.name, bits: bitness(r), sample: r });
  }
  return [...byName.values()].sort(
    (a, b) => a.bits.localeCompare(b.bits) || a.sample.device.ramMb - b.sample.device.ramMb || a.name.localeCompare(b.name),
  );
}

export function cellOf(records: ResultRecord[], device: string, suite: string): ResultRecord | undefined {
  return records.find((r) => r.device.name === device && r.suite === suite);
}
