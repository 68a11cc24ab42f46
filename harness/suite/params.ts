/**
 * A suite's parameters (`params:` in suite.yaml): what a run may vary, with
 * a type, a default, a unit and a meaning. A job runs with the defaults
 * unless `hil run --param` or `hil envelope` gives values; the payload reads
 * them from HIL_PARAM_<NAME> (harness/agent/hil_phase.py's `param()` types
 * them by the declaration, which travels in HIL_PARAMS).
 */
import { isMap } from 'yaml';
import type { MappingReader } from '../config/reader.ts';
import { UsageError, type YamlPath } from '../config/diagnostics.ts';
import type { ParamValue } from '../results/record.ts';

export const PARAM_TYPES = ['integer', 'number', 'string'] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

/** Lower case, so its environment variable is its upper-case self. */
export const PARAM_NAME = /^[a-z][a-z0-9_]*$/;
/** String choices stay safe in a job id, a folder name and a shell word. */
const CHOICE = /^[A-Za-z0-9._-]+$/;
const PARAM_KEYS = ['type', 'default', 'unit', 'meaning', 'choices', 'min', 'max'] as const;

export interface ParamDecl {
  name: string;
  type: ParamType;
  default: ParamValue;
  /** e.g. "samples", "MB"; null for a plain count or a choice. */
  unit: string | null;
  /** One line on what it changes in the payload. */
  meaning: string;
  /** type string: the values allowed. */
  choices: string[] | null;
  /** Numeric bounds, inclusive; null where unbounded. */
  min: number | null;
  max: number | null;
}

export type ParamDecls = Record<string, ParamDecl>;

/** What a value of this parameter may be, for messages. */
export function allowedText(d: ParamDecl): string {
  if (d.type === 'string') return `one of ${(d.choices ?? []).join(', ')}`;
  const kind = d.type === 'integer' ? 'an integer' : 'a number';
  if (d.min !== null && d.max !== null) return `${kind} from ${d.min} to ${d.max}`;
  if (d.min !== null) return `${kind} of at least ${d.min}`;
  if (d.max !== null) return `${kind} of at most ${d.max}`;
  return kind;
}

/** Why `value` is not allowed for `d`, or null when it is. */
export function checkValue(d: ParamDecl, value: unknown): string | null {
  if (d.type === 'string') {
    if (typeof value !== 'string') return 'expected a string';
    return (d.choices ?? []).includes(value) ? null : 'not one of the choices';
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return `expected ${d.type === 'integer' ? 'an integer' : 'a number'}`;
  if (d.type === 'integer' && !Number.isSafeInteger(value)) return 'expected an integer';
  if (d.min !== null && value < d.min) return 'below the minimum';
  if (d.max !== null && value > d.max) return 'above the maximum';
  return null;
}

/** A command-line word as a value of `d`, or why not. */
export function parseValue(d: ParamDecl, text: string): { value: ParamValue } | { problem: string } {
  const t = text.trim();
  let value: ParamValue = t;
  if (d.type !== 'string') {
    // Plain decimal or exponent notation; "1e6" is handy for sample counts.
    value = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Number(t) : NaN;
  }
  const problem = checkValue(d, value);
  return problem === null ? { value } : { problem };
}

/** `params:` of a suite file; problems go to the reader's diagnostics. */
export function readParams(r: MappingReader): ParamDecls {
  const node = r.yaml.doc.get('params', true);
  if (node === undefined) return {};
  if (!isMap(node)) {
    r.error(['params'], 'expected a mapping of parameter name to its declaration', r.get(['params']), 'e.g. {samples: {type: integer, default: 10, unit: samples, meaning: "rows of training data"}}');
    return {};
  }
  const out: ParamDecls = {};
  for (const name of Object.keys(node.toJSON() as Record<string, unknown>)) {
    const at: YamlPath = ['params', name];
    if (!PARAM_NAME.test(name)) {
      r.error(at, 'invalid parameter name', name, 'lower case letters, digits and _, starting with a letter');
      continue;
    }
    if (!isMap(r.yaml.doc.getIn(at, true))) {
      r.error(at, 'expected a mapping', r.get(at), PARAM_KEYS.join(', '));
      continue;
    }
    const bad = r.diagnostics.length;
    r.checkKeys(at, PARAM_KEYS, 'a parameter');
    const type = r.oneOf([...at, 'type'], PARAM_TYPES, { required: true });
    const meaning = r.string([...at, 'meaning'], { required: true, allowed: 'one line on what the parameter changes' });
    const unit = r.string([...at, 'unit']) ?? null;
    const choices = r.has([...at, 'choices']) ? (r.stringList([...at, 'choices'], CHOICE) ?? null) : null;
    if (type === 'string' && (choices === null || choices.length === 0) && r.diagnostics.length === bad) {
      r.error([...at, 'choices'], 'a string parameter needs its choices', r.get([...at, 'choices']), 'a list of words, e.g. [fast, small]');
    }
    if (type !== undefined && type !== 'string' && choices !== null) r.error([...at, 'choices'], 'only a string parameter has choices', r.get([...at, 'choices']), 'min and max for numbers');
    const bound = (key: 'min' | 'max'): number | null => {
      const v = r.get([...at, key]);
      if (v === undefined || v === null) return null;
      if (type === 'string') return r.error([...at, key], `a string parameter has no ${key}`, v, 'choices') ?? null;
      if (typeof v !== 'number' || !Number.isFinite(v) || (type === 'integer' && !Number.isSafeInteger(v))) {
        return r.error([...at, key], `expected ${type === 'integer' ? 'an integer' : 'a number'}`, v, 'a number') ?? null;
      }
      return v;
    };
    const min = bound('min');
    const max = bound('max');
    if (min !== null && max !== null && min > max) r.error([...at, 'max'], 'max is below min', max, `at least ${min}`);
    if (r.diagnostics.length > bad || type === undefined || meaning === undefined) continue;
    const decl: ParamDecl = { name, type, default: '', unit, meaning: meaning.trim(), choices, min, max };
    const raw = r.get([...at, 'default']);
    if (raw === undefined || raw === null) {
      r.error([...at, 'default'], 'missing required key `default`', raw, allowedText(decl));
      continue;
    }
    const problem = checkValue(decl, raw);
    if (problem !== null) {
      r.error([...at, 'default'], `invalid default: ${problem}`, raw, allowedText(decl));
      continue;
    }
    out[name] = { ...decl, default: raw as ParamValue };
  }
  return out;
}

/** The environment a payload gets: every declared parameter (given, else its default), and the declarations. */
export function paramEnv(decls: ParamDecls, given: Readonly<Record<string, ParamValue>>): Record<string, string> {
  const names = Object.keys(decls);
  if (names.length === 0) return {};
  const env: Record<string, string> = {};
  for (const name of names) env[`HIL_PARAM_${name.toUpperCase()}`] = String(given[name] ?? decls[name]!.default);
  env['HIL_PARAMS'] = JSON.stringify(Object.fromEntries(names.map((n) => [n, { type: decls[n]!.type, default: decls[n]!.default, choices: decls[n]!.choices }])));
  return env;
}

/** `--param name=v1,v2` options, checked against the suites that declare `name`: name -> the values, in order given. */
export function parseParamOptions(
  option: string,
  specs: readonly string[],
  suites: readonly { name: string; params: ParamDecls }[],
): Record<string, ParamValue[]> {
  const out: Record<string, ParamValue[]> = {};
  const declared = [...new Set(suites.flatMap((s) => Object.keys(s.params)))].sort();
  const known = declared.length ? declared.join(', ') : '(the selected suites declare no params)';
  for (const spec of specs) {
    const m = /^([^=\s]+)=(.+)$/.exec(spec.trim());
    if (!m) throw new UsageError(option, spec, `name=value or name=v1,v2,... with name one of ${known}`, 'expected name=value');
    const name = m[1]!;
    const owners = suites.filter((s) => s.params[name] !== undefined);
    if (owners.length === 0) throw new UsageError(option, spec, known, `no selected suite declares a parameter ${name}`);
    if (out[name]) throw new UsageError(option, spec, 'each parameter once, its values comma-separated', `${name} given twice`);
    const values: ParamValue[] = [];
    for (const word of m[2]!.split(',')) {
      for (const s of owners) {
        const decl = s.params[name]!;
        const parsed = parseValue(decl, word);
        if ('problem' in parsed) throw new UsageError(option, `${name}=${word}`, `${allowedText(decl)}${decl.unit ? ` (${decl.unit})` : ''}`, `${s.name}'s ${name}: ${parsed.problem}`);
        if (s === owners[0] && !values.includes(parsed.value)) values.push(parsed.value);
      }
    }
    out[name] = values;
  }
  return out;
}
