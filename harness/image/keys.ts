/**
 * The harness's own SSH key pair for emulated Pis: made once in the cache folder and
 * baked into every image as the guest user's authorized key.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../host/paths.ts';

const run = promisify(execFile);

export interface HarnessKey {
  privateKeyFile: string;
  publicKeyFile: string;
  publicKey: string;
}

export function harnessKeyPath(): string {
  return path.join(cacheDir(), 'ssh', 'id_ed25519');
}

export async function ensureHarnessKey(): Promise<HarnessKey> {
  const privateKeyFile = harnessKeyPath();
  const publicKeyFile = `${privateKeyFile}.pub`;
  if (!existsSync(privateKeyFile) || !existsSync(publicKeyFile)) {
    const dir = path.dirname(privateKeyFile);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Made aside and renamed into place, so two processes starting at once never see half a key.
    const tmp = await mkdtemp(path.join(dir, '.new-'));
    try {
      const file = path.join(tmp, 'id_ed25519');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pi-hil-harness', '-f', file]);
      if (!existsSync(privateKeyFile)) {
        await rename(`${file}.pub`, publicKeyFile);
        await rename(file, privateKeyFile);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return { privateKeyFile, publicKeyFile, publicKey: (await readFile(publicKeyFile, 'utf8')).trim() };
}
