/**
 * Command-line parsing on node:util's parseArgs, with our own help text and
 * usage errors that name the option, the value and what is allowed (exit 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDurationMs } from '../config/reader.ts';
import { UsageError } from '../config/diagnostics.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { help: string; arg?: string };

/** Options that pick devices, shared by `run` and `check`, so both read the same way. */
export const DEVICE_OPTIONS = {
  inventory: { type: 'string', short: 'i', arg: 'file', help: 'device inventory (default: devices.yaml)' },
  device: { type: 'string', short: 'd', multiple: true, arg: 'name', help: 'only these devices (repeat or comma-separate)' },
  tag: { type: 'string', short: 't', multiple: true, arg: 'tag', help: 'only devices with this tag or in this group' },
  shard: { type: 'string', arg: 'i/n', help: 'take shard i of n of the selected devices (for parallel CI runners; a device keeps its shard as the inventory grows)' },
  'accept-new': { type: 'boolean', help: 'record unseen host keys (a changed key is always refused)' },
} satisfies Record<string, OptionSpec>;

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  positionals?: { min: number; max: number; names: string };
}

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.arg ?? 'value'}>` : ''}`;
    return `  ${flag.padEnd(30)} ${o.help}`;
  });
  return `${spec.summary}\n\nUsage: ${spec.usage}\n\nOptions:\n${rows.join('\n')}\n  ${'-h, --help'.padEnd(30)} show this help\n`;
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  help: boolean;
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, { help: _help, arg: _arg, ...o }]) => [name, o]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message;
    const option = /'([^']+)'/.exec(message)?.[1] ?? argv.join(' ');
    throw new UsageError(`hil ${spec.name}`, option, `the options listed by \`hil ${spec.name} --help\``, message.split('\n')[0]);
  }
  const help = parsed.values['help'] === true;
  const { positionals } = parsed;
  if (!help && spec.positionals && (positionals.length < spec.positionals.min || positionals.length > spec.positionals.max)) {
    throw new UsageError(`hil ${spec.name}`, positionals.join(' '), spec.positionals.names, 'wrong number of arguments');
  }
  if (!help && !spec.positionals && positionals.length > 0) {
    throw new UsageError(`hil ${spec.name}`, positionals.join(' '), 'no positional arguments', 'unexpected argument');
  }
  return { values: parsed.values as Parsed['values'], positionals, help };
}

export function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap((v: string) => v.split(',')).filter(Boolean);
  return typeof value === 'string' ? value.split(',').filter(Boolean) : [];
}

export function positiveInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(option, String(value), 'a whole number of 1 or more');
  return n;
}

/** A duration option ("90s", "2m", "500ms", or seconds); 0 is allowed where `zero` says so. */
export function durationMs(option: string, value: unknown, fallback: number, zero = false): number {
  if (value === undefined) return fallback;
  if (zero && (value === '0' || value === 0)) return 0;
  const ms = parseDurationMs(value);
  if (ms === null) throw new UsageError(option, String(value), `a duration such as 90s, 2m or 500ms${zero ? ', or 0' : ''}`);
  return ms;
}

/** `--allure 2|3`: which Allure makes a run's report (2, Java, unless told). */
export function allureVersion(value: unknown): 2 | 3 {
  if (value === undefined || value === '2') return 2;
  if (value === '3') return 3;
  throw new UsageError('--allure', String(value), '2 (Allure 2, Java; the default) or 3 (Allure 3, Node)');
}
