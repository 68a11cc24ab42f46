/**
 * known_hosts lookups as OpenSSH makes them. The same checks run against a
 * real sshd in test/ssh-host-keys.test.ts; these pin the file format's cases.
 */
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { checkKnownHosts, fingerprintOf, keyTypeOf, knownHostsName, preferredHostKeyAlgorithms, recordKnownHost } from '../harness/transport/host-keys.ts';

t.test('known_hosts: trusted, unknown, changed, hashed entries', async (t) => {
  const dir = t.testdir();
  const keyA = sshKeyBlob('ssh-ed25519', 1);
  const keyB = sshKeyBlob('ssh-ed25519', 2);
  const file = join(dir, 'known_hosts');
  t.equal(keyTypeOf(keyA), 'ssh-ed25519');
  t.equal(knownHostsName('pi', 22), 'pi');
  t.equal(knownHostsName('127.0.0.1', 2222), '[127.0.0.1]:2222');
  t.same(checkKnownHosts([file], '127.0.0.1', 2222, keyA), { kind: 'unknown', presented: fingerprintOf(keyA) });
  recordKnownHost(file, '127.0.0.1', 2222, keyA);
  t.same(checkKnownHosts([file], '127.0.0.1', 2222, keyA), { kind: 'trusted' });
  t.same(checkKnownHosts([file], '127.0.0.1', 2222, keyB), { kind: 'changed', presented: `ssh-ed25519 ${fingerprintOf(keyB)}`, expected: `ssh-ed25519 ${fingerprintOf(keyA)}` });
  t.same(checkKnownHosts([file], '127.0.0.1', 2223, keyB).kind, 'unknown', 'another port is another host');
  // ssh-keygen -H style hashed entry for "pi".
  const hashed = join(dir, 'hashed');
  const { createHmac } = await import('node:crypto');
  const salt = Buffer.from('0123456789abcdef0123');
  const hash = createHmac('sha1', salt).update('pi').digest('base64');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(hashed, `# comment\n|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${keyA.toString('base64')}\n`);
  t.same(checkKnownHosts([hashed], 'pi', 22, keyA), { kind: 'trusted' });
  t.equal(checkKnownHosts([hashed], 'pi', 22, keyB).kind, 'changed');
  t.match(fingerprintOf(keyA), /^SHA256:[A-Za-z0-9+/]{43}$/);
});

/** A well-formed SSH wire-format key blob: string type, string key. */
function sshKeyBlob(type: string, seed: number): Buffer {
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from(type)), str(Buffer.alloc(32, seed))]);
}

t.test('a known host presenting a key of another type is changed, never unknown', async (t) => {
  const file = join(t.testdir(), 'known_hosts');
  const ed = sshKeyBlob('ssh-ed25519', 1);
  const rsa = sshKeyBlob('ssh-rsa', 3);
  recordKnownHost(file, '127.0.0.1', 2222, ed);
  const check = checkKnownHosts([file], '127.0.0.1', 2222, rsa);
  t.same(check, { kind: 'changed', presented: `ssh-rsa ${fingerprintOf(rsa)}`, expected: `ssh-ed25519 ${fingerprintOf(ed)}` }, 'both fingerprints, with their types');
  recordKnownHost(file, '127.0.0.1', 2222, rsa);
  t.same(checkKnownHosts([file], '127.0.0.1', 2222, rsa), { kind: 'trusted' }, 'a host may be known with keys of several types');
});

t.test('@revoked keys are refused; @cert-authority lines are not host keys', async (t) => {
  const file = join(t.testdir(), 'known_hosts');
  const key = sshKeyBlob('ssh-ed25519', 4);
  const b64 = key.toString('base64');
  writeFileSync(file, `[127.0.0.1]:2222 ssh-ed25519 ${b64}\n@revoked * ssh-ed25519 ${b64}\n`);
  t.same(checkKnownHosts([file], '127.0.0.1', 2222, key), { kind: 'revoked', presented: fingerprintOf(key) });
  writeFileSync(file, `@cert-authority * ssh-ed25519 ${b64}\n`);
  t.equal(checkKnownHosts([file], '127.0.0.1', 2222, key).kind, 'unknown');
});

t.test('the known key types are asked for first', async (t) => {
  const file = join(t.testdir(), 'known_hosts');
  t.equal(preferredHostKeyAlgorithms([file], '127.0.0.1', 2222), null, 'nothing known: ssh2 keeps its own order');
  recordKnownHost(file, '127.0.0.1', 2222, sshKeyBlob('ssh-rsa', 5));
  const order = preferredHostKeyAlgorithms([file], '127.0.0.1', 2222) ?? [];
  t.same(order.slice(0, 3), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  t.ok(order.includes('ssh-ed25519'), 'other types stay offered, so a lost key reads as changed');
  t.equal(new Set(order).size, order.length, 'no algorithm twice');
});

t.test('host patterns: wildcards and negation, as OpenSSH reads them', async (t) => {
  const file = join(t.testdir(), 'known_hosts');
  const key = sshKeyBlob('ssh-ed25519', 6);
  writeFileSync(file, `pi-rack-?.lab,!pi-rack-9.lab,[10.0.0.*]:2222 ssh-ed25519 ${key.toString('base64')}\n`);
  t.equal(checkKnownHosts([file], 'pi-rack-1.lab', 22, key).kind, 'trusted');
  t.equal(checkKnownHosts([file], 'pi-rack-9.lab', 22, key).kind, 'unknown', 'a negated pattern excludes');
  t.equal(checkKnownHosts([file], 'pi-rack-10.lab', 22, key).kind, 'unknown', '? is one character');
  t.equal(checkKnownHosts([file], '10.0.0.7', 2222, key).kind, 'trusted');
  t.equal(checkKnownHosts([file], 'pi-rackX1.lab', 22, key).kind, 'unknown', 'a dot is literal');
});
