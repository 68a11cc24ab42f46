/**
 * Positioned configuration errors, in the manner of the yaml package: every
 * problem names file:line:col, the offending value and what is allowed, and
 * a loader reports all problems at once rather than stopping at the first.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode, isPair, isScalar, type Document, type Node } from 'yaml';

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
  /** The offending value as written, when there is one. */
  value?: string;
  /** What would have been accepted. */
  allowed?: string;
  /** A did-you-mean hint. */
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  let out = `${d.file}:${d.line}:${d.col}: ${d.message}`;
  if (d.value !== undefined) out += `\n    got: ${d.value}`;
  if (d.allowed !== undefined) out += `\n    allowed: ${d.allowed}`;
  if (d.hint !== undefined) out += `\n    ${d.hint}`;
  return out;
}

/** A configuration or usage error; the CLI prints every diagnostic and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
  }
}

export type YamlPath = readonly (string | number)[];

/** A parsed YAML file that can say where any path sits in the source. */
export class PositionedYaml {
  private constructor(
    readonly file: string,
    readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Parse a file. YAML syntax errors come back as diagnostics, all of them;
   * the document is still returned so later checks can run where possible.
   */
  static parse(file: string, text: string): { yaml: PositionedYaml; diagnostics: Diagnostic[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines });
    const yaml = new PositionedYaml(file, doc, lines);
    const sourceLines = text.split('\n');
    const diagnostics = doc.errors.map((err): Diagnostic => {
      const pos = err.linePos?.[0] ?? { line: 1, col: 1 };
      // yaml's message repeats the position and a code frame; we give both our own way.
      const message = `invalid YAML: ${(err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
      return { file, line: pos.line, col: pos.col, message, value: JSON.stringify(sourceLines[pos.line - 1] ?? ''), allowed: 'well-formed YAML (see https://yaml.org/spec/1.2.2/)' };
    });
    return { yaml, diagnostics };
  }

  static read(file: string, displayName = file): { yaml: PositionedYaml; diagnostics: Diagnostic[] } {
    return PositionedYaml.parse(displayName, readFileSync(file, 'utf8'));
  }

  /** Position of the value at `path`, or of its key when `key` is true; falls back to the nearest parent. */
  position(path: YamlPath, key = false): { line: number; col: number } {
    for (let depth = path.length; depth >= 0; depth--) {
      const offset = this.offsetOf(path.slice(0, depth), key && depth === path.length);
      if (offset !== null) return this.lines.linePos(offset);
    }
    return { line: 1, col: 1 };
  }

  positionOfOffset(offset: number): { line: number; col: number } {
    return this.lines.linePos(offset);
  }

  /** A diagnostic pinned to `path`. */
  at(path: YamlPath, message: string, extra: Omit<Diagnostic, 'file' | 'line' | 'col' | 'message'> = {}, key = false): Diagnostic {
    return { file: this.file, ...this.position(path, key), message, ...extra };
  }

  private offsetOf(path: YamlPath, key: boolean): number | null {
    if (path.length === 0) return this.doc.contents?.range?.[0] ?? null;
    if (key) {
      const parent = this.doc.getIn(path.slice(0, -1), true);
      const last = path[path.length - 1];
      if (isNode(parent) && 'items' in parent && Array.isArray(parent.items)) {
        for (const item of parent.items as unknown[]) {
          if (isPair(item) && isScalar(item.key) && item.key.value === last) return item.key.range?.[0] ?? null;
        }
      }
      return null;
    }
    const node = this.doc.getIn(path, true);
    return isNode(node) ? ((node as Node).range?.[0] ?? null) : null;
  }
}

/** Levenshtein distance, for did-you-mean suggestions on unknown keys and values. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** "did you mean `x`?" when a candidate is close enough to be a typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? `did you mean \`${best}\`?` : undefined;
}

/** A bad command-line argument: names the option, the value and what is allowed. Exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    readonly option: string,
    readonly value: string,
    readonly allowed: string,
    problem = 'invalid value',
  ) {
    super(`${option}: ${problem}\n    got: ${JSON.stringify(value)}\n    allowed: ${allowed}`);
  }
}
