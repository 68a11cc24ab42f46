/**
 * Reads a run dir back: results.jsonl (one record a line) and run.json.
 * Reporters trust what this returns, so every line is checked against the
 * record's shape and a bad line is reported with its line number and field.
 * Fields the record gained later are filled in on older lines, so every
 * run ever stored still reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARCHES, OUTCOMES, RECORD_SCHEMA, isOutcome, type ResultRecord } from './record.ts';
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

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new FieldError(path, 'expected an object');
  return v;
}
function str(o: Obj, key: string, path: string): string {
  if (typeof o[key] !== 'string') throw new FieldError(`${path}${key}`, 'expected a string');
  return o[key];
}
function strOrNull(o: Obj, key: string, path: string): void {
  if (o[key] !== null && typeof o[key] !== 'string') throw new FieldError(`${path}${key}`, 'expected a string or null');
}
function num(o: Obj, key: string, path: string): void {
  if (typeof o[key] !== 'number' || !Number.isFinite(o[key])) throw new FieldError(`${path}${key}`, 'expected a number');
}
function numOrNull(o: Obj, key: string, path: string): void {
  if (o[key] !== null) num(o, key, path);
}
function arr(o: Obj, key: string, path: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new FieldError(`${path}${key}`, 'expected an array');
  return v;
}
function oneOf(o: Obj, key: string, allowed: readonly unknown[], path: string): void {
  if (!allowed.includes(o[key])) throw new FieldError(`${path}${key}`, `expected one of ${allowed.join(', ')}`);
}

function checkDevice(v: unknown, path: string): void {
  const d = obj(v, path);
  str(d, 'name', `${path}.`);
  oneOf(d, 'transport', ['ssh', 'qemu', 'local'], `${path}.`);
  str(d, 'model', `${path}.`);
  num(d, 'ramMb', `${path}.`);
  oneOf(d, 'arch', ARCHES, `${path}.`);
  arr(d, 'tags', `${path}.`).forEach((tag, i) => {
    if (typeof tag !== 'string') throw new FieldError(`${path}.tags[${i}]`, 'expected a string');
  });
}

function checkFacts(v: unknown): void {
  if (v === null) return;
  const f = obj(v, 'facts');
  const p = 'facts.';
  strOrNull(f, 'model', p);
  str(f, 'machine', p);
  oneOf(f, 'longBit', [32, 64, null], p);
  strOrNull(f, 'dpkgArch', p);
  str(f, 'kernel', p);
  num(f, 'ramMb', p);
  num(f, 'swapMb', p);
  oneOf(f, 'memoryCgroup', ['v1', 'v2', 'none'], p);
  // Older agents did not read the cgroup limit: unknown is "no limit seen".
  for (const k of ['memoryLimitMb', 'memoryLimitFreeMb']) {
    if (f[k] === undefined) f[k] = null;
    numOrNull(f, k, p);
  }
  if (typeof f.emulated !== 'boolean') throw new FieldError('facts.emulated', 'expected a boolean');
  obj(f.versions, 'facts.versions');
}

function checkMemory(v: unknown): void {
  const m = obj(v, 'memory');
  const p = 'memory.';
  numOrNull(m, 'peakRssKb', p);
  oneOf(m, 'peakMethod', ['vmhwm', 'launcher_rusage', 'sampled_rss', null], p);
  numOrNull(m, 'peakAnonKb', p);
  numOrNull(m, 'sampledPeakRssKb', p);
  numOrNull(m, 'cgroupPeakKb', p);
  numOrNull(m, 'minAvailKb', p);
  num(m, 'sampleIntervalMs', p);
  arr(m, 'samples', p).forEach((s, i) => {
    const sp = `memory.samples[${i}].`;
    const o = obj(s, sp.slice(0, -1));
    for (const k of ['t', 'rssKb', 'anonKb', 'fileKb', 'hwmKb', 'availKb', 'swapUsedKb', 'majfltPerS']) num(o, k, sp);
  });
}

function checkTiming(v: unknown): void {
  const t = obj(v, 'timing');
  for (const k of ['queuedAt', 'startedAt', 'endedAt']) {
    if (Number.isNaN(Date.parse(str(t, k, 'timing.')))) throw new FieldError(`timing.${k}`, 'expected an ISO-8601 instant');
  }
  num(t, 'wallMs', 'timing.');
  for (const k of ['connectMs', 'deployMs', 'payloadMs']) numOrNull(t, k, 'timing.');
  if (t.bootMs === undefined) {
    // A record from before bootMs existed: its wallMs still held the wait for
    // the device (connectMs, a VM's boot included). Take it out so old and new
    // jobs, and a baseline from before the change, compare like with like.
    // The boot's share of that wait was never recorded, so it stays unknown.
    t.bootMs = null;
    t.wallMs = Math.max(0, (t.wallMs as number) - ((t.connectMs as number | null) ?? 0));
  }
  numOrNull(t, 'bootMs', 'timing.');
}

function checkStream(v: unknown, path: string): void {
  const o = obj(v, path);
  for (const k of ['written', 'kept']) {
    num(o, k, `${path}.`);
    if ((o[k] as number) < 0) throw new FieldError(`${path}.${k}`, 'expected a byte count');
  }
}

function checkLogs(v: unknown): void {
  const logs = obj(v, 'logs');
  str(logs, 'stdoutTail', 'logs.');
  str(logs, 'stderrTail', 'logs.');
  strOrNull(logs, 'console', 'logs.');
  arr(logs, 'kernelOomLines', 'logs.');
  // Older agents counted no bytes: nothing known, nothing said to be cut.
  if (logs.output === undefined) logs.output = null;
  if (logs.output !== null) {
    const out = obj(logs.output, 'logs.output');
    checkStream(out.stdout, 'logs.output.stdout');
    checkStream(out.stderr, 'logs.output.stderr');
  }
  if (logs.truncated === undefined) logs.truncated = false;
  if (typeof logs.truncated !== 'boolean') throw new FieldError('logs.truncated', 'expected a boolean');
}

function checkAgent(r: Obj): void {
  // Older records kept no session: no pid known, no re-attach, nothing left.
  if (r.agent === undefined) r.agent = { payloadPid: null, reattached: 0, leftPids: [] };
  const a = obj(r.agent, 'agent');
  numOrNull(a, 'payloadPid', 'agent.');
  num(a, 'reattached', 'agent.');
  if (!Number.isInteger(a.reattached) || (a.reattached as number) < 0) throw new FieldError('agent.reattached', 'expected a count');
  arr(a, 'leftPids', 'agent.').forEach((pid, i) => {
    if (!Number.isInteger(pid)) throw new FieldError(`agent.leftPids[${i}]`, 'expected a pid');
  });
}

/** Check one parsed line; returns it typed. */
export function validateRecord(v: unknown): ResultRecord {
  const r = obj(v, '');
  if (r.schema !== RECORD_SCHEMA) throw new FieldError('schema', `expected ${RECORD_SCHEMA}, got ${JSON.stringify(r.schema)}`);
  str(r, 'runId', '');
  const jobId = str(r, 'jobId', '');
  const suite = str(r, 'suite', '');
  checkDevice(r.device, 'device');
  if (jobId !== `${suite}.${(r.device as Obj).name as string}`) throw new FieldError('jobId', 'expected <suite>.<device>');
  if (!isOutcome(r.outcome)) throw new FieldError('outcome', `expected one of ${OUTCOMES.join(', ')}`);
  str(r, 'reason', '');
  arr(r, 'evidence', '').forEach((e, i) => {
    const o = obj(e, `evidence[${i}]`);
    str(o, 'source', `evidence[${i}].`);
    str(o, 'detail', `evidence[${i}].`);
  });
  arr(r, 'unavailable', '');
  if (typeof r.thrashing !== 'boolean') throw new FieldError('thrashing', 'expected a boolean');
  const exit = obj(r.exit, 'exit');
  numOrNull(exit, 'code', 'exit.');
  strOrNull(exit, 'signal', 'exit.');
  checkTiming(r.timing);
  checkMemory(r.memory);
  arr(r, 'phases', '').forEach((ph, i) => {
    const o = obj(ph, `phases[${i}]`);
    str(o, 'name', `phases[${i}].`);
    for (const k of ['startMs', 'endMs', 'peakRssKb']) num(o, k, `phases[${i}].`);
  });
  checkFacts(r.facts);
  obj(r.values, 'values');
  if (r.probe !== null) {
    const probe = obj(r.probe, 'probe');
    if (typeof probe.ok !== 'boolean') throw new FieldError('probe.ok', 'expected a boolean');
    str(probe, 'message', 'probe.');
  }
  if (r.expectation !== null) {
    const ex = obj(r.expectation, 'expectation');
    arr(ex, 'allowed', 'expectation.').forEach((o, i) => {
      if (!isOutcome(o)) throw new FieldError(`expectation.allowed[${i}]`, 'expected an outcome');
    });
    str(ex, 'claim', 'expectation.');
    oneOf(ex, 'verdict', ['met', 'unmet', 'infra'], 'expectation.');
  }
  checkLogs(r.logs);
  checkAgent(r);
  return r as unknown as ResultRecord;
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
      if (seen.has(record.jobId)) throw new FieldError('jobId', `duplicate job ${record.jobId}`);
      seen.add(record.jobId);
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
    str(m, 'runId', '');
    str(m, 'startedAt', '');
    strOrNull(m, 'endedAt', '');
    str(m, 'harnessVersion', '');
    strOrNull(m, 'gitSha', '');
    const sel = obj(m.selection, 'selection');
    for (const k of ['devices', 'tags', 'suites']) arr(sel, k, 'selection.');
    const inv = obj(m.inventory, 'inventory');
    arr(inv, 'devices', 'inventory.').forEach((d, i) => checkDevice(d, `inventory.devices[${i}]`));
    arr(m, 'jobs', '');
    return m as unknown as RunMeta;
  } catch (err) {
    if (err instanceof FieldError) throw new ResultsFormatError(file, 1, err.field, err.message);
    throw err;
  }
}
