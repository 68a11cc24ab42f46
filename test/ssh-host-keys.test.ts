/**
 * Host keys as OpenSSH checks them, against real sshd devices and the real
 * `hil check`: a known host that comes back with a key of another type is
 * "changed" (whatever --accept-new says, pinned or known_hosts alike), a
 * @revoked key is refused, and a device offering several key types is asked
 * for the one we know.
 */
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalSshd } from '../scripts/lib/local-sshd.ts';
import { hil } from './helpers/hil.ts';

t.setTimeout(300_000);

async function rackOf(t: Test, pin: boolean) {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1, pinHostKeys: pin });
  t.teardown(() => rack.stop());
  const env = { PI_HIL_STATE: join(rack.dir, 'state') };
  const check = (...extra: string[]) => hil(['check', '-i', rack.inventoryFile, ...extra], env);
  return { rack, env, check, knownHosts: join(env.PI_HIL_STATE, 'known_hosts') };
}

t.test('a known host that presents only a key of another type is changed, never accepted as new', async (t) => {
  const { rack, check, knownHosts } = await rackOf(t, false);
  t.equal((await check('--accept-new')).code, 0, 'the ed25519 key is recorded');
  const before = readFileSync(knownHosts, 'utf8');
  await rack.restart('sshd-1', { hostKeyTypes: ['rsa'] });
  for (const extra of [['--accept-new'], []]) {
    const r = await check(...extra);
    t.equal(r.code, 3, `refused ${extra.join(' ')}`);
    t.match(r.stdout, /HOST KEY CHANGED/);
    t.match(r.stdout, /presented ssh-rsa SHA256:\S+, expected ssh-ed25519 SHA256:\S+/, 'both fingerprints, with their types');
  }
  t.equal(readFileSync(knownHosts, 'utf8'), before, 'no second identity was appended');
});

t.test('a pinned host key refuses a key of another type', async (t) => {
  const { rack, check } = await rackOf(t, true);
  t.equal((await check()).code, 0);
  await rack.restart('sshd-1', { hostKeyTypes: ['rsa'] });
  const r = await check('--accept-new');
  t.equal(r.code, 3);
  t.match(r.stdout, /HOST KEY CHANGED.*presented ssh-rsa SHA256:\S+, expected SHA256:/s);
});

t.test('a @revoked key is refused', async (t) => {
  const { rack, check, knownHosts } = await rackOf(t, false);
  t.equal((await check('--accept-new')).code, 0);
  const [entry] = readFileSync(knownHosts, 'utf8').trim().split('\n');
  writeFileSync(knownHosts, `${entry}\n@revoked ${entry}\n`);
  const r = await check('--accept-new');
  t.equal(r.code, 3);
  t.match(r.stdout, /REVOKED HOST KEY/);
});

t.test('a device offering several key types is asked for the one we know', async (t) => {
  const { rack, check } = await rackOf(t, false);
  // Known as ecdsa; then sshd offers ed25519 first, which ssh2 would otherwise prefer.
  await rack.restart('sshd-1', { hostKeyTypes: ['ecdsa'] });
  t.equal((await check('--accept-new')).code, 0, 'the ecdsa key is recorded');
  await rack.restart('sshd-1', { hostKeyTypes: ['ed25519', 'ecdsa'] });
  const r = await check();
  t.equal(r.code, 0, `trusted through the known ecdsa key\n${r.stdout}`);
});
