/**
 * Typed, positioned reads from a parsed YAML mapping. Each read either returns
 * a value of the asked type or records a diagnostic (and returns undefined),
 * so a loader can walk the whole file and report every problem at once.
 */
import { isMap, isSeq, isScalar } from 'yaml';
import { didYouMean, type Diagnostic, type PositionedYaml, type YamlPath } from './diagnostics.ts';

export type Plain = string | number | boolean | null | Plain[] | { [key: string]: Plain };

export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '(nothing)';
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Seconds as a number, or a string like "90s", "15m", "500ms", "2h". */
export function parseDurationMs(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.round(value * 1000);
  if (typeof value !== 'string') return null;
  const m = DURATION.exec(value.trim());
  if (!m) return null;
  const ms = Number(m[1]) * DURATION_UNIT_MS[m[2] ?? 's']!;
  return ms > 0 ? Math.round(ms) : null;
}

export class MappingReader {
  constructor(
    readonly yaml: PositionedYaml,
    readonly diagnostics: Diagnostic[],
  ) {}

  /** The plain JS value at `path` (with `${ENV}` already interpolated by the loader). */
  get(path: YamlPath): unknown {
    const node = this.yaml.doc.getIn(path, true);
    if (node === undefined) return undefined;
    if (isScalar(node)) return node.value;
    if (isMap(node) || isSeq(node)) return node.toJSON();
    return undefined;
  }

  has(path: YamlPath): boolean {
    return this.yaml.doc.hasIn(path);
  }

  error(path: YamlPath, message: string, value: unknown, allowed?: string, hint?: string): undefined {
    const d = this.yaml.at(path, message, { value: show(value) });
    if (allowed !== undefined) d.allowed = allowed;
    if (hint !== undefined) d.hint = hint;
    this.diagnostics.push(d);
    return undefined;
  }

  /** Report keys of the mapping at `path` that are not in `known`, with a did-you-mean. */
  checkKeys(path: YamlPath, known: readonly string[], what: string, reportedElsewhere: readonly string[] = []): void {
    const node = this.yaml.doc.getIn(path, true);
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : show(pair.key);
      if (known.includes(key) || reportedElsewhere.includes(key)) continue;
      const d = this.yaml.at([...path, key], `unknown key \`${key}\` in ${what}`, { value: key, allowed: known.join(', ') }, true);
      const hint = didYouMean(key, known);
      if (hint !== undefined) d.hint = hint;
      this.diagnostics.push(d);
    }
  }

  /** `redact`: the value may be a secret (a password typed where its variable's name belongs); never echo it. */
  string(path: YamlPath, opts: { required?: boolean; pattern?: RegExp; allowed?: string; redact?: boolean } = {}): string | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) {
      if (opts.required) this.error(path, `missing required key \`${String(path[path.length - 1])}\``, v, opts.allowed ?? 'a string');
      return undefined;
    }
    const shown = opts.redact ? '(redacted)' : v;
    if (typeof v !== 'string' || v.trim() === '') return this.error(path, 'expected a non-empty string', shown, opts.allowed ?? 'a string');
    if (opts.pattern && !opts.pattern.test(v)) return this.error(path, 'invalid value', shown, opts.allowed ?? String(opts.pattern));
    return v;
  }

  oneOf<T extends string>(path: YamlPath, choices: readonly T[], opts: { required?: boolean } = {}): T | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) {
      if (opts.required) this.error(path, `missing required key \`${String(path[path.length - 1])}\``, v, choices.join(' | '));
      return undefined;
    }
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    return this.error(path, `unknown ${String(path[path.length - 1])}`, v, choices.join(' | '), typeof v === 'string' ? didYouMean(v, choices) : undefined);
  }

  int(path: YamlPath, min: number, max: number, opts: { required?: boolean } = {}): number | undefined {
    const v = this.get(path);
    const allowed = `an integer from ${min} to ${max}`;
    if (v === undefined || v === null) {
      if (opts.required) this.error(path, `missing required key \`${String(path[path.length - 1])}\``, v, allowed);
      return undefined;
    }
    // `${PORT}` interpolation yields strings; accept digit strings there.
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) return this.error(path, 'expected an integer', v, allowed);
    if (n < min || n > max) return this.error(path, 'out of range', v, allowed);
    return n;
  }

  bool(path: YamlPath): boolean | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    return this.error(path, 'expected true or false', v, 'true | false');
  }

  stringList(path: YamlPath, pattern?: RegExp): string[] | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) return this.error(path, 'expected a list of strings', v, 'e.g. [rack-a, nightly]');
    const out: string[] = [];
    v.forEach((item: unknown, i: number) => {
      if (typeof item !== 'string' || (pattern && !pattern.test(item))) {
        this.error([...path, i], 'invalid list item', item, pattern ? `a string matching ${pattern}` : 'a string');
      } else out.push(item);
    });
    return out;
  }

  duration(path: YamlPath): number | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    const ms = parseDurationMs(v);
    if (ms === null) return this.error(path, 'invalid duration', v, 'seconds as a number, or "500ms", "90s", "15m", "2h"');
    return ms;
  }
}
