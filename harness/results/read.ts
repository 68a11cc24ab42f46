/**
 * Reads a run dir back: results.jsonl (one record a line) and run.json.
 * Reporters trust what this returns, so every line is checked against the
 * record's schema (harness/results/record.ts) and a bad line is reported
 * with its line number, field and what was there. The schema fills in the
 * fields the record gained later on older lines, so every run ever stored
 * still reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { DeviceSnapshotSchema, ResultRecordSchema, type ResultRecord } from './record.ts';
import { describeFound, firstProblem } from './problem.ts';
import type { RunMeta } from './run-meta.ts';

export type { RunMeta };

export class ResultsFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    /** Why the line is bad, without its place. */
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${field ? `${field}: ` : ''}${problem}`);
    this.name = 'ResultsFormatError';
  }
}

/** Every line of a results file was bad: there is nothing to build a report from. */
export class NoReadableRecordsError extends Error {
  constructor(
    readonly file: string,
    readonly bad: ResultsFormatError[],
  ) {
    super(`${file}: none of its ${bad.length} line${bad.length === 1 ? '' : 's'} could be read\n${bad.map((e) => `  ${e.message}`).join('\n')}`);
    this.name = 'NoReadableRecordsError';
  }
}

type Obj = Record<string, unknown>;

/** Thrown inside the checks; turned into a ResultsFormatError with the line number. */
class FieldError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(problem);
  }
}

/** The first problem a schema found in `input`; `base` is where `input` sits in its file. */
function schemaError(error: z.ZodError, input: unknown, base: PropertyKey[] = []): FieldError {
  const p = firstProblem(error, input, base);
  return new FieldError(p.field, `expected ${p.expected}, got ${describeFound(p.found)}`);
}

/**
 * The record schema compiled to one function on first use: it reads a
 * results.jsonl as fast as the hand-written checks it replaced, where the
 * schema's own parser took up to twice as long. A line that fails goes
 * through that parser for its error.
 */
let recordParser: typeof ResultRecordSchema | null = null;

/** Check one parsed line; returns it typed, with the fields older records lack filled in. */
export function validateRecord(v: unknown): ResultRecord {
  recordParser ??= z.compile(ResultRecordSchema);
  const parsed = recordParser.safeParse(v);
  if (!parsed.success) throw schemaError(parsed.error, v);
  return parsed.data;
}

/** What a results file yielded: the records that read, and every line that did not. */
export interface ResultsRead {
  records: ResultRecord[];
  /** One per unreadable line, in file order; each names its file, line and why. */
  bad: ResultsFormatError[];
}

/**
 * Parse results.jsonl text, keeping every good record and naming every bad
 * line: a crash mid-append leaves a torn last line, and the jobs before it
 * are still worth their reports. A repeated job keeps its first record.
 * `file` names the file in the errors. Blank lines are allowed (editors leave them).
 */
export function parseResultsTolerant(text: string, file = 'results.jsonl'): ResultsRead {
  const records: ResultRecord[] = [];
  const bad: ResultsFormatError[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      bad.push(new ResultsFormatError(file, i + 1, '', `not JSON (${(err as Error).message})`));
      return;
    }
    try {
      const record = validateRecord(value);
      // A job may have one record per attempt (a retry after its device recovered), never two of one attempt.
      const key = `${record.jobId}#${record.attempt.n}`;
      if (seen.has(key)) throw new FieldError('jobId', `duplicate job ${record.jobId}${record.attempt.n > 1 ? ` (attempt ${record.attempt.n})` : ''}`);
      seen.add(key);
      records.push(record);
    } catch (err) {
      if (err instanceof FieldError) bad.push(new ResultsFormatError(file, i + 1, err.field, err.message));
      else throw err;
    }
  });
  return { records, bad };
}

/** Parse results.jsonl text; throws on the first bad line. `file` names it in errors. */
export function parseResults(text: string, file = 'results.jsonl'): ResultRecord[] {
  const { records, bad } = parseResultsTolerant(text, file);
  if (bad[0]) throw bad[0];
  return records;
}

/** Read and check <runDir>/results.jsonl. Synchronous: a run holds tens of records, and callers stay simple. */
export function readResults(runDir: string): ResultRecord[] {
  const file = join(runDir, 'results.jsonl');
  return parseResults(readFileSync(file, 'utf8'), file);
}

/**
 * Read <runDir>/results.jsonl keeping the good records and naming the bad
 * lines (see parseResultsTolerant). Throws NoReadableRecordsError when there
 * were lines and none of them read; an empty file is just an empty run.
 */
export function readResultsTolerant(runDir: string): ResultsRead {
  const file = join(runDir, 'results.jsonl');
  const read = parseResultsTolerant(readFileSync(file, 'utf8'), file);
  if (read.records.length === 0 && read.bad.length > 0) throw new NoReadableRecordsError(file, read.bad);
  return read;
}

// run.json's shape (RunMeta) is still checked by hand; its devices are the record's snapshots.

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new FieldError(path, `expected an object, got ${describeFound(v)}`);
  return v;
}
function str(o: Obj, key: string): void {
  if (typeof o[key] !== 'string') throw new FieldError(key, `expected a string, got ${describeFound(o[key])}`);
}
function strOrNull(o: Obj, key: string): void {
  if (o[key] !== null && typeof o[key] !== 'string') throw new FieldError(key, `expected a string or null, got ${describeFound(o[key])}`);
}
function arr(o: Obj, key: string, path: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new FieldError(`${path}${key}`, `expected an array, got ${describeFound(v)}`);
  return v;
}

/** Read and check <runDir>/run.json. */
export function readRunMeta(runDir: string): RunMeta {
  const file = join(runDir, 'run.json');
  const text = readFileSync(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ResultsFormatError(file, 1, '', `not JSON (${(err as Error).message})`);
  }
  try {
    const m = obj(value, '');
    str(m, 'runId');
    str(m, 'startedAt');
    strOrNull(m, 'endedAt');
    str(m, 'harnessVersion');
    strOrNull(m, 'gitSha');
    const sel = obj(m.selection, 'selection');
    for (const k of ['devices', 'tags', 'suites']) arr(sel, k, 'selection.');
    const inv = obj(m.inventory, 'inventory');
    arr(inv, 'devices', 'inventory.').forEach((d, i) => {
      const parsed = DeviceSnapshotSchema.safeParse(d);
      if (!parsed.success) throw schemaError(parsed.error, d, ['inventory', 'devices', i]);
    });
    arr(m, 'jobs', '');
    return m as unknown as RunMeta;
  } catch (err) {
    if (err instanceof FieldError) throw new ResultsFormatError(file, 1, err.field, err.message);
    throw err;
  }
}
