/**
 * devices.yaml → Inventory. Validates everything and reports every problem at
 * once as positioned diagnostics (file:line:col, the value, what is allowed).
 *
 * Layout of the file:
 *   defaults: { <any device key> }       merged under each device
 *   groups:   { <group>: [device, ...] } selection by --tag accepts group names too
 *   devices:  [ { name, transport, ... } ]
 * String values may use ${VAR} or ${VAR:-fallback}; a password only ever comes
 * from an environment variable named by `password_env`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, visit } from 'yaml';
import { ARCHES, TRANSPORT_KINDS, type Arch } from '../results/record.ts';
import { ConfigError, didYouMean, PositionedYaml, type Diagnostic, type YamlPath } from '../config/diagnostics.ts';
import { MappingReader } from '../config/reader.ts';
import type { Device, HttpPowerKind, Inventory, PowerAdapterKind, PowerSpec, Timeouts, TransportKind } from './device.ts';
import { WHEELHOUSE_VENV } from '../pi/profiles.ts';
import { profileDefaults } from './profile-defaults.ts';

const COMMON_KEYS = ['name', 'transport', 'model', 'ram_mb', 'arch', 'tags', 'shard_group', 'workdir', 'python', 'timeouts'] as const;
const SSH_KEYS = ['host', 'port', 'user', 'identity_file', 'agent', 'password_env', 'host_key', 'known_hosts', 'power'] as const;
const QEMU_KEYS = ['profile', 'image', 'kernel', 'initrd', 'dtb', 'machine', 'cpu', 'append', 'wheelhouse', 'user'] as const;
const LOCAL_KEYS = ['cap_mb'] as const;
const KEYS_BY_TRANSPORT: Record<TransportKind, readonly string[]> = {
  ssh: [...COMMON_KEYS, ...SSH_KEYS],
  qemu: [...COMMON_KEYS, ...QEMU_KEYS],
  local: [...COMMON_KEYS, ...LOCAL_KEYS],
};
const ALL_DEVICE_KEYS = [...new Set([...COMMON_KEYS, ...SSH_KEYS, ...QEMU_KEYS, ...LOCAL_KEYS])];
const TIMEOUT_KEYS = ['connect', 'job', 'boot'] as const;

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const TAG = /^[A-Za-z0-9._:-]+$/;

const WHEELHOUSE_ALLOWED = 'a folder of .whl files, relative to this file or absolute';

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 60_000, jobMs: null, bootMs: 300_000 };


/** Load and validate an inventory file. Throws ConfigError with every problem found. */
export function loadInventory(file: string, env: NodeJS.ProcessEnv = process.env): Inventory {
  if (!existsSync(file)) {
    throw new ConfigError([{ file, line: 1, col: 1, message: 'inventory file not found', allowed: 'a devices.yaml path (see --inventory)' }]);
  }
  return parseInventory(file, readFileSync(file, 'utf8'), env);
}

export function parseInventory(file: string, text: string, env: NodeJS.ProcessEnv = process.env): Inventory {
  const { yaml, diagnostics } = PositionedYaml.parse(file, text);
  if (diagnostics.length > 0) throw new ConfigError(diagnostics);
  const contents = yaml.doc.contents;
  if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === ''))) {
    throw new ConfigError([{ file, line: 1, col: 1, message: 'inventory is empty', allowed: 'a mapping with a `devices:` list' }]);
  }
  interpolateEnv(yaml, env, diagnostics);
  const r = new MappingReader(yaml, diagnostics);
  if (!isMap(contents)) {
    r.error([], 'inventory must be a mapping', r.get([]), 'keys: defaults, groups, devices');
    throw new ConfigError(diagnostics);
  }
  r.checkKeys([], ['defaults', 'groups', 'devices'], 'the inventory');
  validateDefaults(r);

  const devicesNode = yaml.doc.get('devices', true);
  const devices: Device[] = [];
  if (!isSeq(devicesNode) || devicesNode.items.length === 0) {
    r.error(['devices'], '`devices` must be a non-empty list', r.get(['devices']), 'a list of device mappings');
  } else {
    const seen = new Map<string, number>();
    devicesNode.items.forEach((_, i) => {
      // Duplicates are checked on the raw names, so they are reported even when a device has other problems.
      const raw = r.get(['devices', i, 'name']);
      if (typeof raw === 'string') {
        const first = seen.get(raw);
        if (first === undefined) seen.set(raw, i);
        else {
          const at = yaml.position(['devices', first, 'name']);
          r.error(['devices', i, 'name'], `duplicate device name \`${raw}\` (first defined at ${file}:${at.line}:${at.col})`, raw, 'a name used once');
        }
      }
      const device = readDevice(r, i, file);
      if (device !== undefined) devices.push(device);
    });
  }
  const groups = readGroups(r, new Set(devices.map((d) => d.name)));
  if (diagnostics.length > 0) throw new ConfigError(sortByPosition(diagnostics));
  return { file, devices, groups };
}

function sortByPosition(diagnostics: Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Replace ${VAR} and ${VAR:-fallback} in every string scalar; an unset variable is a diagnostic. */
function interpolateEnv(yaml: PositionedYaml, env: NodeJS.ProcessEnv, diagnostics: Diagnostic[]): void {
  visit(yaml.doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      node.value = original.replace(/\$\{([^}:]*)(?::-([^}]*))?\}/g, (whole, name: string, fallback: string | undefined) => {
        if (!ENV_NAME.test(name)) {
          diagnostics.push(positionedAt(yaml, node.range?.[0], `invalid variable reference ${whole}`, original, '${NAME} or ${NAME:-fallback}'));
          return whole;
        }
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        diagnostics.push(positionedAt(yaml, node.range?.[0], `environment variable ${name} is not set`, original, `set ${name}, or write \${${name}:-fallback}`));
        return whole;
      });
    },
  });
}

function positionedAt(yaml: PositionedYaml, offset: number | undefined, message: string, value: string, allowed: string): Diagnostic {
  // A scalar's own offset is exact; a path-based lookup would only find its parent.
  const pos = offset === undefined ? { line: 1, col: 1 } : yaml.positionOfOffset(offset);
  return { file: yaml.file, ...pos, message, value: JSON.stringify(value), allowed };
}

type FieldReader = (rd: MappingReader, path: YamlPath) => unknown;

/**
 * How each device key is read and checked: one table, used to validate
 * `defaults:` once and to read every device.
 */
const FIELDS = {
  transport: (rd, p) => rd.oneOf(p, TRANSPORT_KINDS),
  model: (rd, p) => rd.string(p),
  ram_mb: (rd, p) => rd.int(p, 128, 65536),
  arch: (rd, p) => rd.oneOf<Arch>(p, ARCHES),
  tags: (rd, p) => rd.stringList(p, TAG),
  shard_group: (rd, p) => rd.string(p, { pattern: TAG, allowed: 'a group name: letters, digits, ".", "_", ":", "-"' }),
  workdir: (rd, p) => rd.string(p, { pattern: /^\/[^\0]*$/, allowed: 'an absolute path' }),
  python: (rd, p) => rd.string(p),
  host: (rd, p) => rd.string(p, { allowed: 'a hostname or IP address of the ssh device' }),
  port: (rd, p) => rd.int(p, 1, 65535),
  user: (rd, p) => rd.string(p),
  identity_file: (rd, p) => rd.string(p),
  agent: (rd, p) => rd.bool(p),
  // The value may be mistaken for the password itself: never echo it.
  password_env: (rd, p) => rd.string(p, { pattern: ENV_NAME, allowed: 'the NAME of an environment variable', redact: true }),
  host_key: (rd, p) => rd.string(p, { pattern: FINGERPRINT, allowed: 'SHA256:<43 base64 chars>, as printed by `ssh-keygen -lf`' }),
  known_hosts: (rd, p) => rd.string(p),
  profile: (rd, p) => rd.string(p),
  image: (rd, p) => rd.string(p),
  kernel: (rd, p) => rd.string(p),
  initrd: (rd, p) => rd.string(p),
  dtb: (rd, p) => rd.string(p),
  machine: (rd, p) => rd.string(p),
  cpu: (rd, p) => rd.string(p),
  append: (rd, p) => rd.string(p),
  wheelhouse: (rd, p) => rd.string(p, { allowed: WHEELHOUSE_ALLOWED }),
  cap_mb: (rd, p) => rd.int(p, 32, 65536),
} satisfies Record<string, FieldReader>;
type FieldKey = keyof typeof FIELDS;
type FieldValue<K extends FieldKey> = Exclude<ReturnType<(typeof FIELDS)[K]>, undefined>;

const LITERAL_PASSWORD = 'a literal password is not allowed in the inventory';
const PASSWORD_ALLOWED = 'password_env: NAME_OF_ENV_VAR holding the password';

/** Check every key of `defaults:` once, so a bad default is reported even if no device uses it. */
function validateDefaults(r: MappingReader): void {
  const node = r.yaml.doc.get('defaults', true);
  if (node === undefined) return;
  if (!isMap(node)) {
    r.error(['defaults'], '`defaults` must be a mapping', r.get(['defaults']), 'any device key except name');
    return;
  }
  r.checkKeys(['defaults'], [...Object.keys(FIELDS), 'timeouts'], '`defaults`', ['password', 'power']);
  if (r.has(['defaults', 'password'])) r.error(['defaults', 'password'], LITERAL_PASSWORD, '(redacted)', PASSWORD_ALLOWED);
  // Each device's block names its own port or outlet: a shared default would power-cycle one outlet for all of them.
  if (r.has(['defaults', 'power'])) r.error(['defaults', 'power'], '`power` is per device, not a default', r.get(['defaults', 'power']), 'a `power:` block in each device that has one');
  for (const key of Object.keys(FIELDS) as FieldKey[]) if (r.has(['defaults', key])) FIELDS[key](r, ['defaults', key]);
  const timeouts: YamlPath = ['defaults', 'timeouts'];
  r.checkKeys(timeouts, TIMEOUT_KEYS, '`timeouts`');
  for (const key of TIMEOUT_KEYS) if (r.has([...timeouts, key])) r.duration([...timeouts, key]);
}

function readDevice(r: MappingReader, index: number, file: string): Device | undefined {
  const at = (key: string): YamlPath => ['devices', index, key];
  const node = r.yaml.doc.getIn(['devices', index], true);
  if (!isMap(node)) {
    r.error(['devices', index], 'each device must be a mapping', r.get(['devices', index]), 'name, transport, ... (see README)');
    return undefined;
  }
  const errorsBefore = r.diagnostics.length;
  // A key in the device wins over `defaults`. Defaults were validated once already: read them quietly here.
  const quiet = new MappingReader(r.yaml, []);
  const pick: Pick = (key) =>
    (r.has(at(key)) ? FIELDS[key](r, at(key)) : r.has(['defaults', key]) ? FIELDS[key](quiet, ['defaults', key]) : undefined) as FieldValue<typeof key> | undefined;

  const name = r.string(at('name'), { required: true, pattern: NAME, allowed: 'lower-case letters, digits, ".", "_", "-" (max 63), starting with a letter or digit' });
  const transport = r.has(at('transport')) || r.has(['defaults', 'transport']) ? pick('transport') : r.oneOf(at('transport'), TRANSPORT_KINDS, { required: true });
  if (r.has(at('password'))) r.error(at('password'), LITERAL_PASSWORD, '(redacted)', PASSWORD_ALLOWED);
  if (transport === undefined) {
    r.checkKeys(['devices', index], ALL_DEVICE_KEYS, `device ${name ?? `#${index + 1}`}`, ['password']);
    return undefined;
  }
  r.checkKeys(['devices', index], KEYS_BY_TRANSPORT[transport], `${transport} device \`${name ?? `#${index + 1}`}\``, ['password', 'power']);
  if (transport !== 'ssh' && r.has(at('power'))) {
    r.error(at('power'), NO_POWER_BLOCK[transport], r.get(at('power')), 'a `power:` block on ssh devices only');
  }

  const profile = transport === 'qemu' ? (pick('profile') ?? null) : null;
  const fromProfile = profile !== null ? profileDefaults(profile) : null;
  if (profile !== null && fromProfile === null) {
    r.error(r.has(at('profile')) ? at('profile') : ['defaults', 'profile'], 'unknown QEMU profile', profile, profileDefaults.names().join(', '));
  }
  const model = pick('model') ?? fromProfile?.model ?? (transport === 'local' ? 'local capped host' : undefined);
  const ramMb = pick('ram_mb') ?? fromProfile?.ramMb;
  const arch = pick('arch') ?? fromProfile?.arch;
  if (model === undefined && !r.has(at('model'))) r.error(at('model'), 'missing required key `model`', undefined, 'the Pi model, e.g. "Raspberry Pi 4 Model B"');
  if (ramMb === undefined && !r.has(at('ram_mb'))) r.error(at('ram_mb'), 'missing required key `ram_mb`', undefined, 'an integer from 128 to 65536');
  if (arch === undefined && !r.has(at('arch'))) r.error(at('arch'), 'missing required key `arch`', undefined, ARCHES.join(' | '));

  const tags = pick('tags') ?? [];
  const shardGroup = pick('shard_group') ?? null;
  const workdir = pick('workdir') ?? '/tmp/pi-hil';
  // A device with a wheelhouse runs the venv its wheels went into, unless told otherwise.
  const python = pick('python') ?? (transport === 'qemu' && pick('wheelhouse') !== undefined ? `${WHEELHOUSE_VENV}/bin/python` : 'python3');
  const timeouts = readTimeouts(r, index);
  const pos = r.yaml.position(['devices', index]);
  const source = { file, line: pos.line, col: pos.col };

  // Transport-specific keys are read even when the common ones failed, so their problems are reported too.
  const part = readTransportPart(r, transport, pick, at, path.dirname(path.resolve(file)));
  if (name === undefined || model === undefined || ramMb === undefined || arch === undefined || part === undefined || r.diagnostics.length > errorsBefore) {
    return undefined;
  }
  return { name, model, ramMb, arch, tags, shardGroup, workdir, python, timeouts, source, ...part } as Device;
}

type Pick = <K extends FieldKey>(key: K) => FieldValue<K> | undefined;
type BaseKey = 'name' | 'model' | 'ramMb' | 'arch' | 'tags' | 'shardGroup' | 'workdir' | 'python' | 'timeouts' | 'source';
/** The transport-specific half of a device (Omit distributed over the union). */
type TransportPart = Device extends infer D ? (D extends Device ? Omit<D, BaseKey> : never) : never;

function readTransportPart(
  r: MappingReader,
  transport: TransportKind,
  pick: Pick,
  at: (key: string) => YamlPath,
  inventoryDir: string,
): TransportPart | undefined {
  // The files of a qemu device are relative to the inventory, wherever hil runs from.
  const file = (key: 'image' | 'kernel' | 'initrd' | 'dtb' | 'wheelhouse'): string | null => {
    const v = pick(key);
    return v === undefined ? null : path.resolve(inventoryDir, v);
  };
  switch (transport) {
    case 'ssh': {
      const host = pick('host');
      if (host === undefined && !r.has(at('host')) && !r.has(['defaults', 'host'])) {
        r.error(at('host'), 'missing required key `host`', undefined, 'a hostname or IP address of the ssh device');
      }
      const identityFile = pick('identity_file') ?? null;
      const useAgent = pick('agent') ?? false;
      const passwordEnv = pick('password_env') ?? null;
      const authKeys = ['identity_file', 'agent', 'password_env'];
      if (identityFile === null && !useAgent && passwordEnv === null && !authKeys.some((k) => r.has(at(k)) || r.has(['defaults', k]))) {
        r.error(at('name'), 'no way to authenticate', undefined, 'one of identity_file, agent: true, password_env');
      }
      const power = r.has(at('power')) ? readPower(r, at('power')) : null;
      if (host === undefined || power === undefined) return undefined;
      return {
        transport,
        power,
        host,
        port: pick('port') ?? 22,
        user: pick('user') ?? 'pi',
        auth: { identityFile, useAgent, passwordEnv },
        hostKey: { fingerprint: pick('host_key') ?? null, knownHosts: pick('known_hosts') ?? null },
      };
    }
    case 'qemu': {
      const qemu = {
        profile: pick('profile') ?? null,
        image: file('image'),
        kernel: file('kernel'),
        initrd: file('initrd'),
        dtb: file('dtb'),
        machine: pick('machine') ?? null,
        cpu: pick('cpu') ?? null,
        append: pick('append') ?? null,
        wheelhouse: file('wheelhouse'),
        user: pick('user') ?? 'pi',
      };
      if (qemu.profile === null && (qemu.image === null || qemu.kernel === null)) {
        r.error(at('name'), 'a qemu device needs a profile, or its own image and kernel', undefined, 'profile: <name>, or image: + kernel: (+ initrd, dtb, machine, cpu)');
      }
      if (qemu.wheelhouse !== null) checkWheelhouse(r, r.has(at('wheelhouse')) ? at('wheelhouse') : ['defaults', 'wheelhouse'], qemu.wheelhouse, qemu.image !== null);
      return { transport, qemu };
    }
    case 'local':
      return { transport, capMb: pick('cap_mb') ?? null };
  }
}

const NO_POWER_BLOCK: Record<'qemu' | 'local', string> = {
  qemu: 'a qemu device takes no `power:` block: its power is the VM (a cycle resets it through QMP)',
  local: 'a local device is this host, whose power pi-hil does not cut',
};

/** Keys of a `power:` block: the adapter, its own keys, and the timing every adapter has. */
const POWER_ADAPTERS: readonly PowerAdapterKind[] = ['command', 'uhubctl', 'snmp-poe', 'http'];
const POWER_COMMON_KEYS = ['adapter', 'delay', 'timeout'] as const;
const POWER_KEYS: Record<PowerAdapterKind, readonly string[]> = {
  command: ['on', 'off', 'cycle', 'status'],
  uhubctl: ['location', 'port'],
  'snmp-poe': ['host', 'community_env', 'group', 'port'],
  http: ['kind', 'host', 'port', 'pdu', 'outlet', 'user', 'password_env'],
};
const HTTP_KINDS: readonly HttpPowerKind[] = ['tasmota', 'shelly', 'pdudaemon'];
/** Placeholders of a power command: the device's own fields. */
export const POWER_PLACEHOLDERS = ['name', 'host', 'port', 'user'] as const;
const PLACEHOLDER = /\{([^{}\s]*)\}/g;
/** labgrid's default off time; PDUDaemon's own default delay for a reboot. */
const DEFAULT_POWER_DELAY_MS = 2000;
const PDUDAEMON_DELAY_MS = 5000;
const DEFAULT_POWER_TIMEOUT_MS = 30_000;
const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
const PDUDAEMON_PORT = 16421;
/** A host for a command line or a URL: no scheme, path, spaces, or leading dash that a tool would take for an option. */
const POWER_HOST = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])$/;
const POWER_HOST_ALLOWED = 'a hostname or IP address, without http:// or a path';
const SECRET_KEYS: Record<string, string> = {
  community: 'community_env: NAME_OF_ENV_VAR holding the SNMP community',
  password: 'password_env: NAME_OF_ENV_VAR holding the password',
};

/**
 * A device's `power:` block. Every problem is reported at its key; undefined
 * when there was one. A secret written into the block is refused unechoed.
 */
function readPower(r: MappingReader, at: YamlPath): PowerSpec | undefined {
  const errorsBefore = r.diagnostics.length;
  const key = (k: string): YamlPath => [...at, k];
  if (!isMap(r.yaml.doc.getIn(at, true))) {
    r.error(at, '`power` must be a mapping', r.get(at), `adapter: ${POWER_ADAPTERS.join(' | ')}, and that adapter's keys (see README)`);
    return undefined;
  }
  for (const [secret, allowed] of Object.entries(SECRET_KEYS)) {
    if (r.has(key(secret))) r.error(key(secret), `a literal ${secret} is not allowed in the inventory`, '(redacted)', allowed);
  }
  const adapter = r.oneOf(key('adapter'), POWER_ADAPTERS, { required: true });
  const allKeys = [...POWER_COMMON_KEYS, ...new Set(Object.values(POWER_KEYS).flat())];
  const known = adapter === undefined ? allKeys : [...POWER_COMMON_KEYS, ...POWER_KEYS[adapter]];
  r.checkKeys(at, known, adapter === undefined ? '`power`' : `\`power\` (adapter ${adapter})`, Object.keys(SECRET_KEYS));
  if (adapter === undefined) return undefined;

  const kind = adapter === 'http' ? r.oneOf(key('kind'), HTTP_KINDS, { required: true }) : undefined;
  const delayMs = r.duration(key('delay')) ?? (kind === 'pdudaemon' ? PDUDAEMON_DELAY_MS : DEFAULT_POWER_DELAY_MS);
  const timeoutMs = r.duration(key('timeout')) ?? (adapter === 'http' ? DEFAULT_HTTP_TIMEOUT_MS : DEFAULT_POWER_TIMEOUT_MS);
  const timing = { delayMs, timeoutMs };
  let spec: PowerSpec | undefined;
  switch (adapter) {
    case 'command': {
      const command = (k: 'on' | 'off' | 'cycle' | 'status', required: boolean): string | undefined => {
        const v = r.string(key(k), { required, allowed: `a shell command; ${POWER_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')} are filled in shell-quoted` });
        if (v !== undefined) checkPlaceholders(r, key(k), v);
        return v;
      };
      const on = command('on', true);
      const off = command('off', true);
      const cycle = command('cycle', false) ?? null;
      const status = command('status', false) ?? null;
      if (on !== undefined && off !== undefined) spec = { adapter, on, off, cycle, status, ...timing };
      break;
    }
    case 'uhubctl': {
      const location = r.string(key('location'), { required: true, pattern: /^\d+(?:-\d+(?:\.\d+)*)?$/, allowed: 'a hub location as `uhubctl` lists it, e.g. 1-1 or 2-1.3' });
      const port = r.int(key('port'), 1, 255, { required: true });
      if (location !== undefined && port !== undefined) spec = { adapter, location, port, ...timing };
      break;
    }
    case 'snmp-poe': {
      const host = r.string(key('host'), { required: true, pattern: /^(?:udp6?:)?[A-Za-z0-9_[][A-Za-z0-9_.:[\]-]*$/, allowed: `${POWER_HOST_ALLOWED}; host:port for another UDP port` });
      // The value may be the community itself, typed where its variable's name belongs: never echo it.
      const communityEnv = r.string(key('community_env'), { required: true, pattern: ENV_NAME, allowed: 'the NAME of an environment variable holding the community', redact: true });
      const group = r.int(key('group'), 1, 65535) ?? 1;
      const port = r.int(key('port'), 1, 65535, { required: true });
      if (host !== undefined && communityEnv !== undefined && port !== undefined) spec = { adapter, host, communityEnv, group, port, ...timing };
      break;
    }
    case 'http': {
      const host = r.string(key('host'), { required: true, pattern: POWER_HOST, allowed: `${POWER_HOST_ALLOWED} (the port goes in port:)` });
      const port = r.int(key('port'), 1, 65535) ?? (kind === 'pdudaemon' ? PDUDAEMON_PORT : 80);
      const user = r.string(key('user')) ?? 'admin';
      const passwordEnv = r.string(key('password_env'), { pattern: ENV_NAME, allowed: 'the NAME of an environment variable holding the password', redact: true }) ?? null;
      const pdu = kind === 'pdudaemon' ? r.string(key('pdu'), { required: true, allowed: "the PDU's hostname as PDUDaemon's configuration names it" }) : undefined;
      if (kind !== 'pdudaemon' && r.has(key('pdu'))) r.error(key('pdu'), '`pdu` is for kind: pdudaemon only', r.get(key('pdu')), `no pdu for kind: ${kind ?? '?'}`);
      const outletRange = { tasmota: [1, 32], shelly: [0, 15], pdudaemon: [1, 1024] } as const;
      const [lo, hi] = outletRange[kind ?? 'pdudaemon'];
      const outlet = r.int(key('outlet'), lo, hi, { required: kind === 'pdudaemon' }) ?? (kind === 'shelly' ? 0 : null);
      if (kind !== undefined && host !== undefined && (kind !== 'pdudaemon' || (pdu !== undefined && outlet !== null))) {
        spec = { adapter, kind, host, port, pdu: pdu ?? null, outlet, user, passwordEnv, ...timing };
      }
      break;
    }
  }
  return r.diagnostics.length > errorsBefore ? undefined : spec;
}

/** Every {placeholder} in a power command must be one the device fills in. */
function checkPlaceholders(r: MappingReader, at: YamlPath, command: string): void {
  for (const m of command.matchAll(PLACEHOLDER)) {
    const word = m[1] ?? '';
    if ((POWER_PLACEHOLDERS as readonly string[]).includes(word)) continue;
    r.error(at, `unknown placeholder ${m[0]}`, command, POWER_PLACEHOLDERS.map((p) => `{${p}}`).join(', '), didYouMean(word, POWER_PLACEHOLDERS)?.replace(/`(\w+)`/, '`{$1}`'));
  }
}

/** A wheelhouse must be a folder holding wheels, and goes into an image pi-hil builds. */
function checkWheelhouse(r: MappingReader, at: YamlPath, dir: string, ownImage: boolean): void {
  if (ownImage) {
    r.error(at, 'a wheelhouse goes into an image pi-hil builds, not into your own image', dir, 'wheelhouse with profile:, without image:');
    return;
  }
  let wheels: string[];
  try {
    wheels = statSync(dir).isDirectory() ? readdirSync(dir).filter((f) => f.endsWith('.whl')) : [];
  } catch {
    r.error(at, 'no such folder', dir, WHEELHOUSE_ALLOWED);
    return;
  }
  if (wheels.length === 0) r.error(at, 'no .whl file in this folder', dir, WHEELHOUSE_ALLOWED);
}

/** Timeouts merge key by key: device, then `defaults` (validated once), then the built-in values. */
function readTimeouts(r: MappingReader, index: number): Timeouts {
  const device: YamlPath = ['devices', index, 'timeouts'];
  const defaults = new MappingReader(r.yaml, []);
  r.checkKeys(device, TIMEOUT_KEYS, '`timeouts`');
  const read = (key: (typeof TIMEOUT_KEYS)[number]): number | undefined =>
    r.has([...device, key]) ? r.duration([...device, key]) : defaults.duration(['defaults', 'timeouts', key]);
  return {
    connectMs: read('connect') ?? DEFAULT_TIMEOUTS.connectMs,
    jobMs: read('job') ?? DEFAULT_TIMEOUTS.jobMs,
    bootMs: read('boot') ?? DEFAULT_TIMEOUTS.bootMs,
  };
}

function readGroups(r: MappingReader, names: Set<string>): Record<string, string[]> {
  const groups: Record<string, string[]> = {};
  const node = r.yaml.doc.get('groups', true);
  if (node === undefined) return groups;
  if (!isMap(node)) {
    r.error(['groups'], '`groups` must be a mapping of group name to device names', r.get(['groups']), 'groups: { nightly: [pi4-8g, pi3-1g] }');
    return groups;
  }
  for (const pair of node.items) {
    const group = isScalar(pair.key) ? String(pair.key.value) : '';
    const members = r.stringList(['groups', group]) ?? [];
    members.forEach((member, i) => {
      if (!names.has(member)) r.error(['groups', group, i], `group \`${group}\` names an unknown device`, member, [...names].join(', '));
    });
    groups[group] = members;
  }
  return groups;
}
