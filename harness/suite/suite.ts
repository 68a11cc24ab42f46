/**
 * suites/<name>/suite.yaml → Suite. Every problem in every suite file is
 * reported at once, each with file:line:col, the value and what is allowed.
 * The format is described in suites/README.md.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { isMap, isSeq } from 'yaml';
import { ARCHES, OUTCOMES, TRANSPORT_KINDS, type Arch, type Outcome } from '../results/record.ts';
import type { SourcePosition, TransportKind } from '../inventory/device.ts';
import { ConfigError, PositionedYaml, didYouMean, type Diagnostic, type YamlPath } from '../config/diagnostics.ts';
import { MappingReader, show } from '../config/reader.ts';
import { readThresholdOverride, type ThresholdOverride } from '../config/thresholds.ts';
import { RANGE_SYNTAX, WORD_SIZES, parseCondition, parseRange, parseWordSize, type Condition, type NumRange, type WordSize } from './condition.ts';
import { readParams, type ParamDecls } from './params.ts';

export const SUITE_FILE = 'suite.yaml';
export const DEFAULT_SUITES_DIR = 'suites';
const NAME = /^[a-z0-9][a-z0-9-]*$/;
const MODULE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const VALUE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Python modules the payload needs, checked on the device without importing them. */
export interface Probe {
  /** Every one of these must be findable. */
  allOf: string[];
  /** At least one of these must be findable (when the list is not empty). */
  anyOf: string[];
  /** Why it matters, shown when the probe fails, e.g. "no TensorFlow wheel for this platform". */
  why: string;
}

export interface SuiteNeeds {
  ramMb: number;
  diskMb: number;
}

/** Without `needs:` a suite asks for room to start Python and unpack a small payload. */
export const DEFAULT_NEEDS: SuiteNeeds = { ramMb: 32, diskMb: 16 };

/** What a device needs for all of these suites: the largest of each. */
export function needsOf(suites: readonly Pick<Suite, 'needs'>[]): SuiteNeeds {
  return {
    ramMb: Math.max(0, ...suites.map((s) => s.needs.ramMb)),
    diskMb: Math.max(0, ...suites.map((s) => s.needs.diskMb)),
  };
}

/** The devices an expectation is about. An absent field matches any device. */
export interface DeviceClass {
  arch: Arch[] | null;
  ramMb: NumRange | null;
  transport: TransportKind[] | null;
  emulated: boolean | null;
  longBit: 32 | 64 | null;
  /** The kernel's word size: 32-bit userland on a 64-bit kernel is its own setup. */
  kernelBits: 32 | 64 | null;
  /** The device must carry every one of these tags. */
  tags: string[];
}

export interface Expectation {
  when: DeviceClass;
  allow: Outcome[];
  /** The article's claim that this expectation tests, in its own words where possible. */
  claim: string;
  /** Conditions on reported values; see expectation.ts for when they apply. */
  check: Record<string, Condition>;
  source: SourcePosition;
}

export interface Suite {
  name: string;
  /** The suite's folder: main.py and the assets are deployed from here. */
  dir: string;
  /** suite.yaml as shown in messages. */
  file: string;
  description: string;
  /** Which part of the article the suite deploys, e.g. "example 1". */
  article: string | null;
  main: string;
  /** Files beside main.py that the payload needs on the device. */
  assets: string[];
  timeoutMs: number;
  /** The phases main.py marks, in order. */
  phases: string[];
  /** The values main.py reports, with what each means. */
  values: Record<string, string>;
  /** What a run may vary (`hil run --param`, `hil envelope`); see params.ts. */
  params: ParamDecls;
  probe: Probe;
  /**
   * What a device must have free before its first job of this suite (the
   * health gate): enough to start the payload, not to succeed, since whether
   * it fits in memory is what the suite measures.
   */
  needs: SuiteNeeds;
  /** First match wins; a device no entry matches gets no verdict. */
  expectations: Expectation[];
  /** The suite's own regression thresholds (`thresholds:`); empty: the night's. */
  thresholds: ThresholdOverride;
}

const TOP_KEYS = ['description', 'article', 'main', 'assets', 'timeout', 'phases', 'values', 'params', 'probe', 'needs', 'expectations', 'thresholds'] as const;
const NEEDS_KEYS = ['ram_mb', 'disk_mb'] as const;
const PROBE_KEYS = ['all_of', 'any_of', 'why'] as const;
const EXPECTATION_KEYS = ['when', 'allow', 'claim', 'check'] as const;
const WHEN_KEYS = ['arch', 'ram_mb', 'transport', 'emulated', 'long_bit', 'kernel_bits', 'tags'] as const;
/** A suite may not run longer than this: a stuck job must not hold a device all night. */
const MAX_TIMEOUT_MS = 2 * 3_600_000;

/** Load every suite under `dir` (each folder holding a suite.yaml), sorted by name. */
export function loadSuites(dir: string = DEFAULT_SUITES_DIR): Suite[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError([{ file: display(dir), line: 1, col: 1, message: 'suites folder not found', allowed: 'a folder of suites/<name>/suite.yaml' }]);
  }
  const names = readdirSync(dir)
    .filter((n) => existsSync(join(dir, n, SUITE_FILE)))
    .sort();
  const diagnostics: Diagnostic[] = [];
  const suites: Suite[] = [];
  for (const name of names) {
    const suite = parseSuite(join(dir, name), diagnostics);
    if (suite) suites.push(suite);
  }
  if (diagnostics.length) throw new ConfigError(sorted(diagnostics));
  return suites;
}

/** Load one suite by name; an unknown name says which exist. */
export function loadSuite(name: string, dir: string = DEFAULT_SUITES_DIR): Suite {
  const folder = join(dir, name);
  if (!existsSync(join(folder, SUITE_FILE))) {
    const known = existsSync(dir) ? readdirSync(dir).filter((n) => existsSync(join(dir, n, SUITE_FILE))) : [];
    const d: Diagnostic = { file: display(join(folder, SUITE_FILE)), line: 1, col: 1, message: `no suite named ${name}`, value: name, allowed: known.join(', ') || '(none)' };
    const hint = didYouMean(name, known);
    if (hint !== undefined) d.hint = hint;
    throw new ConfigError([d]);
  }
  const diagnostics: Diagnostic[] = [];
  const suite = parseSuite(folder, diagnostics);
  if (diagnostics.length || !suite) throw new ConfigError(sorted(diagnostics));
  return suite;
}

/** Parse one suite folder; problems go to `diagnostics`, and null comes back when any were found. */
export function parseSuite(folder: string, diagnostics: Diagnostic[]): Suite | null {
  const file = join(folder, SUITE_FILE);
  const { yaml, diagnostics: syntax } = PositionedYaml.read(file, display(file));
  return parseSuiteYaml(yaml, folder, syntax, diagnostics);
}

/** Parse suite.yaml text (exported for tests that plant broken files). */
export function parseSuiteText(text: string, folder: string, diagnostics: Diagnostic[]): Suite | null {
  const { yaml, diagnostics: syntax } = PositionedYaml.parse(display(join(folder, SUITE_FILE)), text);
  return parseSuiteYaml(yaml, folder, syntax, diagnostics);
}

function parseSuiteYaml(yaml: PositionedYaml, folder: string, syntax: Diagnostic[], out: Diagnostic[]): Suite | null {
  const before = out.length;
  out.push(...syntax);
  if (syntax.length) return null;
  if (!isMap(yaml.doc.contents)) {
    out.push(yaml.at([], 'a suite file must be a mapping', { allowed: TOP_KEYS.join(', ') }));
    return null;
  }
  const r = new MappingReader(yaml, out);
  const name = folder.split(/[\\/]/).filter(Boolean).pop() ?? '';
  if (!NAME.test(name)) out.push(yaml.at([], 'invalid suite folder name', { value: show(name), allowed: String(NAME) }));
  r.checkKeys([], TOP_KEYS, 'a suite');

  const description = r.string(['description'], { required: true, allowed: 'one or two sentences on what the suite runs' });
  const article = r.string(['article']) ?? null;
  const main = r.string(['main']) ?? 'main.py';
  const assets = r.stringList(['assets']) ?? [];
  for (const [i, f] of [main, ...assets].entries()) {
    const path: YamlPath = i === 0 ? ['main'] : ['assets', i - 1];
    if (isAbsolute(f) || f.split(/[\\/]/).includes('..')) r.error(path, 'must be a file inside the suite folder', f, 'a relative path without ..');
    else if (!existsSync(join(folder, f))) r.error(path, `file not found in ${display(folder)}`, f, 'a file that exists beside suite.yaml');
  }
  const timeoutMs = r.duration(['timeout']);
  if (timeoutMs === undefined && !r.has(['timeout'])) r.error(['timeout'], 'missing required key `timeout`', undefined, 'a duration, e.g. "240s" or "10m"');
  if (timeoutMs !== undefined && timeoutMs > MAX_TIMEOUT_MS) r.error(['timeout'], 'timeout too long', r.get(['timeout']), 'at most 2h');
  const phases = r.stringList(['phases'], /^\S+$/) ?? [];
  const values = readValues(r);
  const params = readParams(r);
  const probe = readProbe(r);
  const needs = readNeeds(r);
  const expectations = readExpectations(r, yaml, Object.keys(values));
  const thresholds = readThresholdOverride(r, ['thresholds']);

  if (out.length > before || description === undefined || timeoutMs === undefined || probe === null) return null;
  return { name, dir: folder, file: yaml.file, description: description.trim(), article, main, assets, timeoutMs, phases, values, params, probe, needs, expectations, thresholds };
}

function readValues(r: MappingReader): Record<string, string> {
  const node = r.yaml.doc.get('values', true);
  if (node === undefined) return {};
  if (!isMap(node)) {
    r.error(['values'], 'expected a mapping of value key to its meaning', r.get(['values']), 'e.g. {cpus: "number of CPU devices TF lists"}');
    return {};
  }
  const out: Record<string, string> = {};
  for (const [key, meaning] of Object.entries(node.toJSON() as Record<string, unknown>)) {
    if (!VALUE_KEY.test(key)) r.error(['values', key], 'invalid value key', key, 'one word: letters, digits, _');
    else if (typeof meaning !== 'string' || !meaning.trim()) r.error(['values', key], 'expected what the value means', meaning, 'a string');
    else out[key] = meaning.trim();
  }
  return out;
}

function readNeeds(r: MappingReader): SuiteNeeds {
  if (!r.has(['needs'])) return DEFAULT_NEEDS;
  if (!isMap(r.yaml.doc.get('needs', true))) {
    r.error(['needs'], 'expected a mapping', r.get(['needs']), 'ram_mb, disk_mb (whole MB)');
    return DEFAULT_NEEDS;
  }
  r.checkKeys(['needs'], NEEDS_KEYS, 'needs');
  return {
    ramMb: r.int(['needs', 'ram_mb'], 0, 1_048_576) ?? DEFAULT_NEEDS.ramMb,
    diskMb: r.int(['needs', 'disk_mb'], 0, 1_048_576) ?? DEFAULT_NEEDS.diskMb,
  };
}

function readProbe(r: MappingReader): Probe | null {
  if (!r.has(['probe'])) {
    r.error(['probe'], 'missing required key `probe`', undefined, 'a mapping with all_of, any_of (module names) and why; {} for none');
    return null;
  }
  if (!isMap(r.yaml.doc.get('probe', true))) {
    r.error(['probe'], 'expected a mapping', r.get(['probe']), 'all_of, any_of, why');
    return null;
  }
  r.checkKeys(['probe'], PROBE_KEYS, 'probe');
  const allOf = r.stringList(['probe', 'all_of'], MODULE) ?? [];
  const anyOf = r.stringList(['probe', 'any_of'], MODULE) ?? [];
  const why = r.string(['probe', 'why'], { required: allOf.length + anyOf.length > 0, allowed: 'what is missing when the probe fails' });
  return { allOf, anyOf, why: why?.trim() ?? '' };
}

function readExpectations(r: MappingReader, yaml: PositionedYaml, valueKeys: string[]): Expectation[] {
  const node = yaml.doc.get('expectations', true);
  if (node === undefined) {
    r.error(['expectations'], 'missing required key `expectations`', undefined, 'a list of {when, allow, claim, check}');
    return [];
  }
  if (!isSeq(node)) {
    r.error(['expectations'], 'expected a list', r.get(['expectations']), 'a list of {when, allow, claim, check}');
    return [];
  }
  const out: Expectation[] = [];
  node.items.forEach((_, i) => {
    const at: YamlPath = ['expectations', i];
    if (!isMap(yaml.doc.getIn(at, true))) {
      r.error(at, 'expected a mapping', r.get(at), EXPECTATION_KEYS.join(', '));
      return;
    }
    r.checkKeys(at, EXPECTATION_KEYS, 'an expectation');
    const when = readWhen(r, [...at, 'when']);
    const allow = readOutcomes(r, [...at, 'allow']);
    const claim = r.string([...at, 'claim'], { required: true, allowed: "the article's claim this tests" });
    const check = readCheck(r, [...at, 'check'], valueKeys);
    if (when && allow && claim !== undefined && check) {
      out.push({ when, allow, claim: claim.trim(), check, source: { file: yaml.file, ...yaml.position(at) } });
    }
  });
  return out;
}

/** A scalar or a list of scalars, each one of `choices`. */
function listOf<T extends string>(r: MappingReader, path: YamlPath, choices: readonly T[]): T[] | null | undefined {
  const v = r.get(path);
  if (v === undefined || v === null) return null;
  const items = Array.isArray(v) ? v : [v];
  const field = String(path[path.length - 1]);
  let ok = items.length > 0;
  if (!ok) r.error(path, `empty ${field} list`, v, choices.join(' | '));
  items.forEach((item: unknown, i) => {
    if (typeof item === 'string' && (choices as readonly string[]).includes(item)) return;
    ok = false;
    const hint = typeof item === 'string' ? didYouMean(item, choices) : undefined;
    r.error(Array.isArray(v) ? [...path, i] : path, `unknown ${field}`, item, choices.join(' | '), hint);
  });
  return ok ? (items as T[]) : undefined;
}

function readOutcomes(r: MappingReader, path: YamlPath): Outcome[] | undefined {
  const list = listOf(r, path, OUTCOMES);
  if (list === null) r.error(path, 'missing required key `allow`', undefined, OUTCOMES.join(' | '));
  return list ?? undefined;
}

function readWhen(r: MappingReader, path: YamlPath): DeviceClass | undefined {
  const raw = r.get(path);
  if (raw === undefined || raw === null) return { arch: null, ramMb: null, transport: null, emulated: null, longBit: null, kernelBits: null, tags: [] };
  if (!isMap(r.yaml.doc.getIn(path, true))) return r.error(path, 'expected a mapping', raw, WHEN_KEYS.join(', '));
  const bad = r.diagnostics.length;
  r.checkKeys(path, WHEN_KEYS, '`when`');
  const arch = listOf(r, [...path, 'arch'], ARCHES);
  const transport = listOf(r, [...path, 'transport'], TRANSPORT_KINDS);
  let ramMb: NumRange | null = null;
  const ramRaw = r.get([...path, 'ram_mb']);
  if (ramRaw !== undefined && ramRaw !== null) {
    ramMb = parseRange(ramRaw);
    if (!ramMb) r.error([...path, 'ram_mb'], 'invalid RAM range', ramRaw, `${RANGE_SYNTAX} (MB)`);
  }
  const emulated = r.bool([...path, 'emulated']) ?? null;
  const wordSize = (key: 'long_bit' | 'kernel_bits', message: string): WordSize | null => {
    const v = r.get([...path, key]);
    if (v === undefined || v === null) return null;
    const bits = parseWordSize(v);
    if (bits === null) r.error([...path, key], message, v, WORD_SIZES.join(' | '));
    return bits;
  };
  const longBit = wordSize('long_bit', 'invalid word size');
  const kernelBits = wordSize('kernel_bits', "invalid kernel word size (the kernel's, from uname -m)");
  const tags = r.stringList([...path, 'tags']) ?? [];
  if (r.diagnostics.length > bad || arch === undefined || transport === undefined) return undefined;
  return { arch, ramMb, transport, emulated, longBit, kernelBits, tags };
}

function readCheck(r: MappingReader, path: YamlPath, valueKeys: string[]): Record<string, Condition> | undefined {
  const node = r.yaml.doc.getIn(path, true);
  if (node === undefined) return {};
  if (!isMap(node)) return r.error(path, 'expected a mapping of value key to condition', r.get(path), 'e.g. {gpus: 0, usable_mb: "< 4096"}');
  const out: Record<string, Condition> = {};
  let ok = true;
  for (const [key, raw] of Object.entries(node.toJSON() as Record<string, unknown>)) {
    if (!valueKeys.includes(key)) {
      ok = false;
      const hint = didYouMean(key, valueKeys);
      r.diagnostics.push(r.yaml.at([...path, key], `check on \`${key}\`, which the suite does not report`, { value: key, allowed: `a key under values: ${valueKeys.join(', ') || '(none)'}`, ...(hint ? { hint } : {}) }, true));
      continue;
    }
    const c = parseCondition(raw);
    if (!c) {
      ok = false;
      r.error([...path, key], 'invalid condition', raw, `${RANGE_SYNTAX}; or a string, true/false, or a list of them`);
    } else out[key] = c;
  }
  return ok ? out : undefined;
}

/** In reading order: by file, then line, then column. */
function sorted(d: Diagnostic[]): Diagnostic[] {
  return [...d].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

/** Paths in messages are relative to the working directory, never absolute. */
function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** The suite's files to deploy, relative to its folder: main.py first. */
export function payloadFiles(suite: Suite): string[] {
  return [suite.main, ...suite.assets];
}

/** Read a payload file's bytes (for deploy and content hashing). */
export function readPayloadFile(suite: Suite, file: string): Buffer {
  return readFileSync(join(suite.dir, file));
}
