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

function hostMatches(field: string, name: string): boolean {
  return field.split(',').some((entry) => {
    if (entry.startsWith('|1|')) {
      // Hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name)).
      const [, , salt, hash] = entry.split('|');
      if (salt === undefined || hash === undefined) return false;
      return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
    }
    return entry === name;
  });
}

export type HostKeyVerdict =
  | { kind: 'trusted' }
  | { kind: 'unknown'; presented: string }
  | { kind: 'changed'; presented: string; expected: string };

/** Look the presented key up in the known_hosts files that exist. */
export function checkKnownHosts(files: readonly string[], host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const type = keyTypeOf(keyBlob);
  const presentedB64 = keyBlob.toString('base64');
  let expected: string | null = null;
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith('@')) continue;
      const [hosts, keyType, keyB64] = line.split(/\s+/);
      if (hosts === undefined || keyType === undefined || keyB64 === undefined || !hostMatches(hosts, name)) continue;
      if (keyType !== type) continue;
      if (keyB64 === presentedB64) return { kind: 'trusted' };
      expected ??= fingerprintOf(Buffer.from(keyB64, 'base64'));
    }
  }
  const presented = fingerprintOf(keyBlob);
  return expected === null ? { kind: 'unknown', presented } : { kind: 'changed', presented, expected };
}

/** Record a newly accepted key (the --accept-new path). */
export function recordKnownHost(file: string, host: string, port: number, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${knownHostsName(host, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}
