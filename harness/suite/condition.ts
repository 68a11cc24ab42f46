/**
 * The small condition language of suite.yaml, readable by a person:
 * numbers as `"<= 1024"`, `"> 3072"`, `"512..1024"` (inclusive) or exact;
 * strings and booleans as themselves, or a list meaning "any of".
 */

export interface NumRange {
  /** Inclusive bounds; null is open. */
  min: number | null;
  max: number | null;
  /** Exclusive bounds need a strict comparison. */
  minExclusive: boolean;
  maxExclusive: boolean;
  /** As written, for messages. */
  text: string;
}

export type Condition =
  | { kind: 'range'; range: NumRange }
  | { kind: 'equals'; any: (string | number | boolean)[]; text: string };

export const RANGE_SYNTAX = 'a number, or "<= N", "< N", ">= N", "> N", "A..B"';

const NUM = String.raw`(-?\d+(?:\.\d+)?)`;
const COMPARE = new RegExp(String.raw`^(<=|<|>=|>|==)\s*${NUM}$`);
const BETWEEN = new RegExp(String.raw`^${NUM}\s*\.\.\s*${NUM}$`);

/** Parse a numeric range; null when the text is not one. */
export function parseRange(value: unknown): NumRange | null {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return { min: value, max: value, minExclusive: false, maxExclusive: false, text: String(value) };
  }
  if (typeof value !== 'string') return null;
  const text = value.trim();
  const cmp = COMPARE.exec(text);
  if (cmp) {
    const n = Number(cmp[2]);
    switch (cmp[1]) {
      case '<=': return { min: null, max: n, minExclusive: false, maxExclusive: false, text };
      case '<': return { min: null, max: n, minExclusive: false, maxExclusive: true, text };
      case '>=': return { min: n, max: null, minExclusive: false, maxExclusive: false, text };
      case '>': return { min: n, max: null, minExclusive: true, maxExclusive: false, text };
      default: return { min: n, max: n, minExclusive: false, maxExclusive: false, text };
    }
  }
  const between = BETWEEN.exec(text);
  if (between) {
    const [lo, hi] = [Number(between[1]), Number(between[2])];
    return lo <= hi ? { min: lo, max: hi, minExclusive: false, maxExclusive: false, text } : null;
  }
  return null;
}

export function inRange(n: number, r: NumRange): boolean {
  if (r.min !== null && (r.minExclusive ? n <= r.min : n < r.min)) return false;
  if (r.max !== null && (r.maxExclusive ? n >= r.max : n > r.max)) return false;
  return true;
}

/** A value condition: a range for comparison strings, else equality with one or any of a list. */
export function parseCondition(value: unknown): Condition | null {
  if (typeof value === 'string') {
    const range = parseRange(value);
    if (range) return { kind: 'range', range };
    // A comparison that did not parse is a typo, not a string to match.
    if (/^\s*(<|>|==)/.test(value)) return null;
  }
  const scalar = (v: unknown): v is string | number | boolean =>
    typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  if (scalar(value)) return { kind: 'equals', any: [value], text: JSON.stringify(value) };
  if (Array.isArray(value) && value.length > 0 && value.every(scalar)) {
    return { kind: 'equals', any: value, text: `one of ${JSON.stringify(value)}` };
  }
  return null;
}

export function satisfies(value: string | number | boolean | null, c: Condition): boolean {
  if (c.kind === 'range') return typeof value === 'number' && inRange(value, c.range);
  return value !== null && c.any.includes(value);
}

/** A word size in `when:` (long_bit, kernel_bits): exactly 32 or 64, nothing else. */
export const WORD_SIZES = [32, 64] as const;
export type WordSize = (typeof WORD_SIZES)[number];

export function parseWordSize(value: unknown): WordSize | null {
  return value === 32 || value === 64 ? value : null;
}

export function describeCondition(c: Condition): string {
  return c.kind === 'range' ? c.range.text : c.text;
}
