/**
 * How much worse a measurement may get before the nightly calls it a
 * regression. The defaults are written here once; a suite's `thresholds:`
 * block and a `--thresholds <file>` change them. Read with positioned errors
 * like every other configuration file.
 *
 * Precedence, lowest first: these defaults; the file's top level; the suite's
 * own `thresholds:` block; the file's `suites: { <name>: {...} }`. The suite
 * knows its own noise; the night's file has the last word.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isMap } from 'yaml';
import { ConfigError, PositionedYaml, type Diagnostic, type YamlPath } from './diagnostics.ts';
import { MappingReader } from './reader.ts';

export interface Thresholds {
  /** A peak-memory rise is a regression above this many percent... */
  memoryPct: number;
  /** ...and at least this many KiB: noise on a small payload is not one. */
  memoryFloorKb: number;
  /** A time rise is a regression above this many percent (real, unthrottled devices only)... */
  timePct: number;
  /** ...and more than this many ms. */
  timeFloorMs: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({ memoryPct: 10, memoryFloorKb: 16 * 1024, timePct: 20, timeFloorMs: 1000 });

/** Thresholds for one night: the base for every suite, and the suites that differ. */
export interface ThresholdPolicy {
  base: Thresholds;
  /** Only the suites whose thresholds differ from `base`. */
  suites: Record<string, Thresholds>;
}

/** What a suite.yaml `thresholds:` block or a thresholds file sets; absent keys keep what is below. */
export type ThresholdOverride = Partial<Thresholds>;

export interface ThresholdsFile {
  file: string;
  base: ThresholdOverride;
  suites: Record<string, ThresholdOverride>;
}

export const THRESHOLD_KEYS = ['memory_pct', 'memory_min_mb', 'time_pct', 'time_min_ms'] as const;
const FILE_KEYS = [...THRESHOLD_KEYS, 'suites'] as const;

function number(r: MappingReader, path: YamlPath, max: number): number | undefined {
  const v = r.get(path);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) return r.error(path, 'expected a number', v, `a number from 0 to ${max}`);
  return v;
}

/**
 * Read a thresholds mapping at `path` (a suite's `thresholds:`, or the top of
 * a thresholds file): memory_pct, memory_min_mb, time_pct, time_min_ms.
 * Problems go to the reader's diagnostics.
 */
export function readThresholdOverride(r: MappingReader, path: YamlPath, extraKeys: readonly string[] = []): ThresholdOverride {
  const node = r.yaml.doc.getIn(path, true);
  if (node === undefined) return {};
  if (!isMap(node)) {
    r.error(path, 'expected a mapping', r.get(path), THRESHOLD_KEYS.join(', '));
    return {};
  }
  r.checkKeys(path, [...THRESHOLD_KEYS, ...extraKeys], 'thresholds');
  const out: ThresholdOverride = {};
  const memoryPct = number(r, [...path, 'memory_pct'], 1000);
  const memoryMinMb = number(r, [...path, 'memory_min_mb'], 1_048_576);
  const timePct = number(r, [...path, 'time_pct'], 1000);
  const timeMinMs = number(r, [...path, 'time_min_ms'], 86_400_000);
  if (memoryPct !== undefined) out.memoryPct = memoryPct;
  if (memoryMinMb !== undefined) out.memoryFloorKb = Math.round(memoryMinMb * 1024);
  if (timePct !== undefined) out.timePct = timePct;
  if (timeMinMs !== undefined) out.timeFloorMs = timeMinMs;
  return out;
}

/** Parse a `--thresholds` file; ConfigError with every problem, positioned. */
export function parseThresholdsFile(file: string, text: string): ThresholdsFile {
  const { yaml, diagnostics } = PositionedYaml.parse(file, text);
  if (diagnostics.length) throw new ConfigError(diagnostics);
  const out: Diagnostic[] = [];
  const r = new MappingReader(yaml, out);
  const contents = yaml.doc.contents;
  if (contents !== null && !isMap(contents)) {
    r.error([], 'a thresholds file must be a mapping', r.get([]), FILE_KEYS.join(', '));
    throw new ConfigError(out);
  }
  const base = readThresholdOverride(r, [], ['suites']);
  const suites: Record<string, ThresholdOverride> = {};
  const node = yaml.doc.get('suites', true);
  if (node !== undefined) {
    if (!isMap(node)) r.error(['suites'], 'expected a mapping of suite name to thresholds', r.get(['suites']), 'suites: { keras-train: { memory_pct: 15 } }');
    else for (const name of Object.keys(node.toJSON() as Record<string, unknown>)) suites[name] = readThresholdOverride(r, ['suites', name]);
  }
  if (out.length) throw new ConfigError([...out].sort((a, b) => a.line - b.line || a.col - b.col));
  return { file, base, suites };
}

export function loadThresholdsFile(file: string): ThresholdsFile {
  if (!existsSync(file)) throw new ConfigError([{ file, line: 1, col: 1, message: 'thresholds file not found', allowed: 'a YAML file with memory_pct, memory_min_mb, time_pct, time_min_ms, suites' }]);
  return parseThresholdsFile(file, readFileSync(file, 'utf8'));
}

/**
 * The night's thresholds: the defaults, then the file's top level, then each
 * suite's own block (as run.json recorded it), then the file's word on that suite.
 */
export function resolvePolicy(file: ThresholdsFile | null, suiteBlocks: Record<string, ThresholdOverride> = {}): ThresholdPolicy {
  const base: Thresholds = { ...DEFAULT_THRESHOLDS, ...(file?.base ?? {}) };
  const suites: Record<string, Thresholds> = {};
  for (const name of new Set([...Object.keys(suiteBlocks), ...Object.keys(file?.suites ?? {})])) {
    const t = { ...base, ...(suiteBlocks[name] ?? {}), ...(file?.suites[name] ?? {}) };
    if (!sameThresholds(t, base)) suites[name] = t;
  }
  return { base, suites };
}

export function thresholdsFor(policy: ThresholdPolicy, suite: string): Thresholds {
  return policy.suites[suite] ?? policy.base;
}

function sameThresholds(a: Thresholds, b: Thresholds): boolean {
  return a.memoryPct === b.memoryPct && a.memoryFloorKb === b.memoryFloorKb && a.timePct === b.timePct && a.timeFloorMs === b.timeFloorMs;
}

/** One line for a log or a page: "peak memory +10% and ≥ 16 MB; time +20% and > 1 s (real devices)". */
export function describeThresholds(t: Thresholds): string {
  const mb = t.memoryFloorKb / 1024;
  const ms = t.timeFloorMs >= 1000 ? `${+(t.timeFloorMs / 1000).toFixed(2)} s` : `${t.timeFloorMs} ms`;
  return `peak memory > +${t.memoryPct}% and ≥ +${+mb.toFixed(1)} MB; time > +${t.timePct}% and > +${ms} (real, unthrottled devices)`;
}
