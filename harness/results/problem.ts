/**
 * What was wrong with a value that failed one of the record's schemas, in
 * words both readers share: the path to the field, what the schema wanted
 * there, and what was there instead. The agent's event parser and the
 * results.jsonl reader each phrase it in their own sentence.
 */
import type { z } from 'zod';

/** The first problem of a value that failed its schema. */
export interface Problem {
  /** Path to the field, e.g. "memory.samples[3].rssKb"; '' for the value itself. */
  field: string;
  /** What the schema wanted there, e.g. "a number", "one of ssh, qemu, local". */
  expected: string;
  /** What was there instead; undefined for a missing field. */
  found: unknown;
  /** The issue as the schema library reported it, for callers that single out a kind. */
  issue: z.core.$ZodIssue;
}

const ARTICLE: Record<string, string> = {
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
  int: 'a whole number',
};

/** "a, b or c". */
function either(items: string[]): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

function literal(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

function expectedOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return ARTICLE[issue.expected] ?? `a ${issue.expected}`;
    case 'invalid_value':
      return issue.values.length === 1 ? literal(issue.values[0]) : `one of ${issue.values.map(literal).join(', ')}`;
    case 'invalid_union': {
      // A discriminated union names its options; a plain one, what each branch wanted of the value itself.
      if ('options' in issue && Array.isArray(issue.options)) return `one of ${issue.options.map(literal).join(', ')}`;
      const wanted = issue.errors.flatMap((branch) => branch.filter((i) => i.path.length === 0).map(expectedOf));
      return wanted.length ? either([...new Set(wanted)]) : 'a valid value';
    }
    case 'too_small':
    case 'too_big':
      return bound(issue);
    case 'not_multiple_of':
      return `a multiple of ${issue.divisor}`;
    case 'invalid_format':
      return issue.format === 'regex' && 'pattern' in issue ? `a string matching ${String(issue.pattern)}` : `a valid ${issue.format}`;
    case 'unrecognized_keys':
      return `no key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    default:
      // Refinements in the record's schemas word their message as what they expect, e.g. "an ISO-8601 instant".
      return issue.message;
  }
}

/** "a number of at least 1", "at most 3 items", "a number below 5". */
function bound(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const small = issue.code === 'too_small';
  const limit = Number(small ? issue.minimum : issue.maximum);
  const edge = issue.inclusive ? (small ? 'at least' : 'at most') : small ? 'more than' : 'fewer than';
  switch (issue.origin) {
    case 'number':
    case 'int':
    case 'bigint':
      return issue.inclusive ? `a number of ${edge} ${limit}` : `a number ${small ? 'above' : 'below'} ${limit}`;
    case 'array':
    case 'set':
      return `${edge} ${limit} item${limit === 1 ? '' : 's'}`;
    case 'string':
      return `${edge} ${limit} character${limit === 1 ? '' : 's'}`;
    default:
      return issue.message;
  }
}

/** "memory.samples[3].rssKb" from ['memory', 'samples', 3, 'rssKb']. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * The first problem the schema found in `input` (the value as it was given
 * to it). `base` is where `input` sits in a larger document, for the field's path.
 */
export function firstProblem(error: z.ZodError, input: unknown, base: readonly PropertyKey[] = []): Problem {
  const issue = error.issues[0];
  if (!issue) throw new Error('a schema error without an issue');
  return { field: fieldPath([...base, ...issue.path]), expected: expectedOf(issue), found: at(input, issue.path), issue };
}

/** A found value in a few words: "nothing" (missing), "null", "the number 16", "a string ("12")", "an object". */
export function describeFound(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `a string (${JSON.stringify(v.length > 60 ? `${v.slice(0, 59)}…` : v)})`;
    case 'number':
      return `the number ${v}`;
    case 'boolean':
      return String(v);
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}
