/**
 * Positioned configuration errors, in the manner of the yaml package: every
 * problem names file:line:col, the offending value and what is allowed, and
 * a loader reports all problems at once rather than stopping at the first.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, Parser, parseDocument, isNode, isPair, isScalar, type Document, type Node, type YAMLError } from 'yaml';

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
    return { yaml, diagnostics: syntaxDiagnostics(file, text, doc.errors, lines) };
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

const WELL_FORMED = 'well-formed YAML (see https://yaml.org/spec/1.2.2/)';

/**
 * Diagnostics for YAML syntax errors, each at the mistake. The yaml package
 * positions an error where its parser gave up, which for an unclosed `[`, `{`
 * or quote is the line after the mistake, or the end of the file. So each such
 * construct is found in the concrete syntax tree and reported at its opening
 * character. Its consequences (the parser read the following lines as part of
 * it, and then complains about them) are told apart from independent mistakes
 * by parsing again with the closers put in: an error that survives that repair
 * is reported where yaml puts it; one that does not was only a consequence.
 */
function syntaxDiagnostics(file: string, text: string, errors: readonly YAMLError[], lines: LineCounter): Diagnostic[] {
  if (errors.length === 0) return [];
  const sourceLines = text.split('\n');
  const lineAt = (line: number): string => JSON.stringify(sourceLines[line - 1] ?? '');
  const plain = (err: YAMLError): Diagnostic => {
    const pos = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
    return { file, line: pos.line, col: pos.col, message: `invalid YAML: ${parserMessage(err)}`, value: lineAt(pos.line), allowed: WELL_FORMED };
  };
  // yaml reports a missing closer inside the construct's span (where it gave up), so an
  // unclosed construct with no error in its span is not one (e.g. a quote that ends the file).
  const inSpan = (u: Unclosed, err: YAMLError): boolean => u.start <= err.pos[0] && err.pos[0] <= u.end;
  const unclosed = unclosedConstructs(text).filter((u) => errors.some((err) => inSpan(u, err)));
  if (unclosed.length === 0) return errors.map(plain);

  const survivors = errorsAfterRepair(text, unclosed);
  const out: Diagnostic[] = errors.filter((err) => !unclosed.some((u) => inSpan(u, err)) && survivors.has(errorKey(err.code, err.pos[0]))).map(plain);
  for (const u of unclosed) {
    const pos = lines.linePos(u.start);
    const d: Diagnostic = { file, line: pos.line, col: pos.col, message: `invalid YAML: ${u.what} opened here is never closed`, value: lineAt(pos.line), allowed: `a closing ${u.closer}` };
    const gaveUp = errors.find((err) => inSpan(u, err));
    if (gaveUp) {
      const at = gaveUp.linePos?.[0] ?? lines.linePos(gaveUp.pos[0]);
      d.hint = `the parser read on to ${at.line}:${at.col} before giving up: ${parserMessage(gaveUp)}`;
    }
    out.push(d);
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** yaml's message repeats the position and a code frame; we give both our own way. */
function parserMessage(err: YAMLError): string {
  return (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

const errorKey = (code: string, offset: number): string => `${code}@${offset}`;

/** The errors (as code@offset in `text`) left when every unclosed construct gets its closer. */
function errorsAfterRepair(text: string, unclosed: readonly Unclosed[]): Set<string> {
  // Innermost first where closers meet at one point: `[a, {b: 1` becomes `[a, {b: 1}]`.
  const inserts = [...unclosed].sort((a, b) => a.closeAt - b.closeAt || b.start - a.start);
  let repaired = '';
  let from = 0;
  const insertedAt: number[] = [];
  for (const u of inserts) {
    repaired += text.slice(from, u.closeAt);
    insertedAt.push(repaired.length);
    repaired += u.closerChar;
    from = u.closeAt;
  }
  repaired += text.slice(from);
  const back = (offset: number): number => offset - insertedAt.filter((i) => i < offset).length;
  return new Set(parseDocument(repaired).errors.map((err) => errorKey(err.code, back(err.pos[0]))));
}

interface Unclosed {
  /** Offset of the opening `[`, `{`, `"` or `'`. */
  start: number;
  /** Offset just past the last character the parser took as part of it. */
  end: number;
  /** Where the closer most likely belongs: after its last item, or at the end of a quote's first line. */
  closeAt: number;
  closerChar: string;
  what: string;
  closer: string;
}

/** Flow collections and quoted scalars that the source opens and never closes. */
function unclosedConstructs(text: string): Unclosed[] {
  const found: Unclosed[] = [];
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const token = node as { type?: unknown; offset?: unknown; source?: unknown; start?: unknown; end?: unknown };
    if (token.type === 'flow-collection' && typeof token.offset === 'number') {
      const opener = (token.start as { source?: string } | undefined)?.source === '{' ? '{' : '[';
      const closer = opener === '{' ? '}' : ']';
      const closed = Array.isArray(token.end) && token.end.some((t: { source?: string }) => t.source === closer);
      if (!closed) {
        const what = `\`${opener}\` (a flow ${opener === '{' ? 'mapping' : 'sequence'})`;
        found.push({ start: token.offset, end: tokenEnd(token, true), closeAt: tokenEnd(token, false), closerChar: closer, what, closer: `\`${closer}\`` });
      }
    }
    if ((token.type === 'double-quoted-scalar' || token.type === 'single-quoted-scalar') && typeof token.offset === 'number' && typeof token.source === 'string') {
      const quote = token.type === 'double-quoted-scalar' ? '"' : "'";
      if (!quotedIsClosed(token.source, quote)) {
        const newline = token.source.indexOf('\n');
        const closeAt = token.offset + (newline < 0 ? token.source.length : newline);
        found.push({ start: token.offset, end: tokenEnd(token, true), closeAt, closerChar: quote, what: `the quote ${quote}`, closer: quote });
      }
    }
    for (const value of Object.values(node)) walk(value);
  };
  for (const token of new Parser().parse(text)) walk(token);
  return found;
}

/** Whether a quoted scalar's source ends with its closing quote rather than with an escaped one. */
function quotedIsClosed(source: string, quote: '"' | "'"): boolean {
  const body = source.slice(1);
  if (!body.endsWith(quote)) return false;
  if (quote === '"') {
    // `\"` is an escaped quote: the closer is preceded by an even number of backslashes.
    const backslashes = /\\*$/.exec(body.slice(0, -1))?.[0].length ?? 0;
    return backslashes % 2 === 0;
  }
  // In single quotes `''` is an escaped quote: the closer ends an odd run of quotes.
  const run = /'*$/.exec(body)?.[0].length ?? 0;
  return run % 2 === 1;
}

const BLANK_TOKENS = new Set(['space', 'newline', 'comment']);

/**
 * Offset just past the last source character of a CST token and everything in
 * it; with `blanks` false, past its last character that is not space, a line
 * break or a comment.
 */
function tokenEnd(node: unknown, blanks: boolean): number {
  if (node === null || typeof node !== 'object') return -1;
  let end = -1;
  const token = node as { type?: unknown; offset?: unknown; source?: unknown };
  if (typeof token.offset === 'number') {
    // A collection token has no source of its own; its opening `[` or `{` is a child.
    if (typeof token.source !== 'string') end = token.offset;
    else if (blanks || !BLANK_TOKENS.has(String(token.type))) end = token.offset + token.source.length;
  }
  for (const value of Object.values(node)) end = Math.max(end, tokenEnd(value, blanks));
  return end;
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
