/**
 * The few commands the VM layer itself runs in a guest (settle before saving state, set
 * the clock after a restore), over ssh2 with the image's pinned host key. Jobs go
 * through the SSH transport instead.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';

export interface GuestLogin {
  port: number;
  user: string;
  privateKeyFile: string;
  /** "SHA256:base64" of the guest's host key. */
  hostKeyFingerprint: string;
}

export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

export interface GuestResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run one command; rejects on connection, host-key or auth failure. */
export function guestExec(login: GuestLogin, command: string, timeoutMs = 30_000): Promise<GuestResult> {
  return new Promise((resolve, reject) => {
    const conn = new ssh2.Client();
    let settled = false;
    const finish = (err: Error | null, res?: GuestResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.end();
      if (err) reject(err);
      else if (res) resolve(res);
    };
    const timer = setTimeout(() => finish(new Error(`ssh to port ${login.port} timed out`)), timeoutMs);
    conn.on('error', (e) => finish(e));
    conn.on('ready', () => {
      conn.exec(command, (err, stream) => {
        if (err) return finish(err);
        let stdout = '';
        let stderr = '';
        stream.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        stream.on('close', (code: number | null) => finish(null, { code: code ?? null, stdout, stderr }));
      });
    });
    conn.connect({
      host: '127.0.0.1',
      port: login.port,
      username: login.user,
      privateKey: readFileSync(login.privateKeyFile),
      readyTimeout: Math.min(timeoutMs, 20_000),
      hostVerifier: (key: Buffer) => sha256Fingerprint(key) === login.hostKeyFingerprint,
    });
  });
}

/**
 * Retry `guestExec` until it works or the deadline passes: sshd can answer its banner and
 * still refuse the key for a few seconds while the guest boots.
 */
export async function guestExecRetry(
  login: GuestLogin,
  command: string,
  deadline: number,
  signal?: AbortSignal,
): Promise<GuestResult> {
  let last: unknown;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      return await guestExec(login, command, Math.max(1000, Math.min(30_000, deadline - Date.now())));
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(`ssh to port ${login.port} never worked: ${(last as Error | undefined)?.message ?? 'no attempt'}`);
}
