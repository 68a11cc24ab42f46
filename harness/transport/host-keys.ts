/**
 * Host-key pinning, as OpenSSH does it: a SHA256 fingerprint in the
 * inventory, or known_hosts files. `--accept-new` records an unseen key
 * (like StrictHostKeyChecking=accept-new); a changed key is always refused.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** "SHA256:<base64 without padding>", as printed by `ssh-keygen -lf`. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type is the first string inside the SSH wire-format blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** known_hosts names non-22 ports as "[host]:port". */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** One known_hosts host pattern: a hashed name, or a name with OpenSSH's `*` and `?` wildcards. */
function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    // Hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name)).
    const [, , salt, hash] = pattern.split('|');
    if (salt === undefined || hash === undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/** A comma-separated pattern list; a `!` pattern that matches excludes the host, as in OpenSSH. */
function hostMatches(field: string, name: string): boolean {
  const patterns = field.split(',');
  if (patterns.some((p) => p.startsWith('!') && patternMatches(p.slice(1), name))) return false;
  return patterns.some((p) => !p.startsWith('!') && patternMatches(p, name));
}

export type HostKeyCheck =
  | { kind: 'trusted' }
  | { kind: 'unknown'; presented: string }
  /** The host is known, but not with this key: another key of the same type, or only keys of other types. */
  | { kind: 'changed'; presented: string; expected: string }
  /** The presented key is marked @revoked. */
  | { kind: 'revoked'; presented: string };

interface KnownEntry {
  revoked: boolean;
  keyType: string;
  keyB64: string;
}

/** The known_hosts entries (and @revoked lines) that name this host, from the files that exist. */
function knownEntries(files: readonly string[], host: string, port: number): KnownEntry[] {
  const name = knownHostsName(host, port);
  const out: KnownEntry[] = [];
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      let fields = line.split(/\s+/);
      let revoked = false;
      if (fields[0]?.startsWith('@')) {
        // @cert-authority lines sign host certificates, which pi-hil does not use.
        if (fields[0] !== '@revoked') continue;
        revoked = true;
        fields = fields.slice(1);
      }
      const [hosts, keyType, keyB64] = fields;
      if (hosts === undefined || keyType === undefined || keyB64 === undefined || !hostMatches(hosts, name)) continue;
      out.push({ revoked, keyType, keyB64 });
    }
  }
  return out;
}

/**
 * Look the presented key up in the known_hosts files that exist, as OpenSSH
 * does: a revoked key is refused; a host known only with keys of other types
 * counts as changed, not unknown, so --accept-new never adds a second
 * identity to a host it already knows.
 */
export function checkKnownHosts(files: readonly string[], host: string, port: number, keyBlob: Buffer): HostKeyCheck {
  const presentedB64 = keyBlob.toString('base64');
  const presented = fingerprintOf(keyBlob);
  const entries = knownEntries(files, host, port);
  if (entries.some((e) => e.revoked && e.keyB64 === presentedB64)) return { kind: 'revoked', presented };
  const known = entries.filter((e) => !e.revoked);
  if (known.some((e) => e.keyB64 === presentedB64)) return { kind: 'trusted' };
  if (known.length === 0) return { kind: 'unknown', presented };
  const type = keyTypeOf(keyBlob);
  const expected = known.find((e) => e.keyType === type) ?? known[0];
  const label = (e: KnownEntry): string => `${e.keyType} ${fingerprintOf(Buffer.from(e.keyB64, 'base64'))}`;
  return { kind: 'changed', presented: `${type} ${presented}`, expected: expected ? label(expected) : '' };
}

/** ssh2's own default host-key algorithms, in its order of preference. */
const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;
export type HostKeyAlgorithm = (typeof DEFAULT_HOST_KEY_ALGORITHMS)[number];

/** The algorithms that present a key of a known_hosts key type ("ssh-rsa" keys sign with three). */
function algorithmsOfType(keyType: string): HostKeyAlgorithm[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => a === keyType);
}

/**
 * The host-key algorithms to offer, those of the key types known for this host
 * first, so a device with several host keys presents the one we know (OpenSSH
 * orders HostKeyAlgorithms the same way); null when nothing is known. The
 * others stay in the list, so a device that lost its known key presents
 * another and is refused as changed, not failed as "no matching algorithm".
 */
export function preferredHostKeyAlgorithms(files: readonly string[], host: string, port: number): HostKeyAlgorithm[] | null {
  const known = new Set(knownEntries(files, host, port).filter((e) => !e.revoked).flatMap((e) => algorithmsOfType(e.keyType)));
  if (known.size === 0) return null;
  return [...known, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !known.has(a))];
}

/** Record a newly accepted key (the --accept-new path). */
export function recordKnownHost(file: string, host: string, port: number, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${knownHostsName(host, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}
