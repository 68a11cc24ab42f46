/** The order devices and suites appear in every report: 32-bit first, small RAM first, the article's examples first. */
import type { ResultRecord } from '../results/record.ts';
import { bitness } from './test-status.ts';

/** The article's three examples, in its order; calibration suites follow. */
export const ARTICLE_SUITES = ['keras-train', 'device-listing', 'tflite-inference'] as const;

/**
 * A report column: the suite, and the params its jobs were given, as
 * "keras-train samples=1000 units=64"; jobs without params are the suite's
 * name alone, so an ordinary run reads as it always did.
 */
export function columnOf(r: Pick<ResultRecord, 'suite' | 'params'>): string {
  const keys = Object.keys(r.params).sort();
  return keys.length === 0 ? r.suite : `${r.suite} ${keys.map((k) => `${k}=${r.params[k]}`).join(' ')}`;
}

/** The columns of the reports: the article's suites first, then by parameter values (numbers by size). */
export function suiteOrder(records: ResultRecord[]): string[] {
  const columns = new Map<string, ResultRecord>();
  for (const r of records) if (!columns.has(columnOf(r))) columns.set(columnOf(r), r);
  const rank = (s: string) => {
    const i = (ARTICLE_SUITES as readonly string[]).indexOf(s);
    return i === -1 ? ARTICLE_SUITES.length : i;
  };
  const byParams = (a: ResultRecord, b: ResultRecord): number => {
    for (const k of [...new Set([...Object.keys(a.params), ...Object.keys(b.params)])].sort()) {
      const [x, y] = [a.params[k], b.params[k]];
      if (x === y) continue;
      if (x === undefined) return -1;
      if (y === undefined) return 1;
      return typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    }
    return 0;
  };
  return [...columns.entries()]
    .sort(([, a], [, b]) => rank(a.suite) - rank(b.suite) || a.suite.localeCompare(b.suite) || byParams(a, b))
    .map(([column]) => column);
}

/**
 * The size of a run for its headline: distinct devices and suites among all
 * its records (a capacity search's probes too; params do not make a suite).
 */
export function runSize(records: readonly ResultRecord[]): { devices: number; suites: number; jobs: number } {
  return { devices: new Set(records.map((r) => r.device.name)).size, suites: new Set(records.map((r) => r.suite)).size, jobs: records.length };
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

/** Each records array's cells, indexed once: a page asks for every device × column. */
const cellIndexes = new WeakMap<readonly ResultRecord[], Map<string, ResultRecord>>();

/** The job of `device` in `column` (a suite, with its params when it has any; see columnOf): the first such record. */
export function cellOf(records: readonly ResultRecord[], device: string, column: string): ResultRecord | undefined {
  let index = cellIndexes.get(records);
  if (!index) {
    index = new Map();
    for (const r of records) {
      const key = `${r.device.name}\n${columnOf(r)}`;
      if (!index.has(key)) index.set(key, r);
    }
    cellIndexes.set(records, index);
  }
  return index.get(`${device}\n${column}`);
}
