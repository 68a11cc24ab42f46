/**
 * Running one power command on this host: bounded output, a timeout, abort,
 * and failures as PowerErrors that name the command as it may be shown.
 */
import { spawn } from 'node:child_process';
import { PowerError, redact, seconds } from './types.ts';

export interface ExecSpec {
  argv: readonly string[];
  /** The command as an error may show it: no secret. */
  shown: string;
  timeoutMs: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Values that must not appear in an error even if the tool prints them. */
  secrets?: readonly string[];
}

export interface ExecOutput {
  stdout: string;
  stderr: string;
}

/** Enough of a tool's output to say why it failed. */
const KEEP_CHARS = 4000;

/**
 * Run `argv`; resolve with its output when it exits 0. A non-zero exit, a
 * signal, a missing program or the timeout is a PowerError. The command runs
 * in its own process group, so a timeout or an abort also ends what a shell
 * command started (a `sleep` between off and on).
 */
export function execPower(spec: ExecSpec): Promise<ExecOutput> {
  const secrets = spec.secrets ?? [];
  const [file, ...args] = spec.argv;
  if (file === undefined) return Promise.reject(new PowerError('empty power command'));
  spec.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: spec.env ?? process.env });
    let stdout = '';
    let stderr = '';
    const keep = (text: string, chunk: Buffer): string => (text + chunk.toString('utf8')).slice(-KEEP_CHARS);
    child.stdout.on('data', (c: Buffer) => (stdout = keep(stdout, c)));
    child.stderr.on('data', (c: Buffer) => (stderr = keep(stderr, c)));
    let ended: Error | null = null;
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      ended = new PowerError(`${spec.shown}: no answer within ${seconds(spec.timeoutMs)}${tail(stdout, stderr, secrets)}`);
      killGroup();
    }, spec.timeoutMs);
    const onAbort = (): void => {
      ended = spec.signal?.reason instanceof Error ? spec.signal.reason : new Error('aborted');
      killGroup();
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      done();
      const why = err.code === 'ENOENT' ? `${file} is not installed (not found on PATH)` : err.message;
      reject(new PowerError(`${spec.shown}: ${why}`));
    });
    child.once('close', (code, sig) => {
      done();
      if (ended) return reject(ended);
      if (code === 0) return resolve({ stdout, stderr });
      const how = code !== null ? `exit code ${code}` : `killed by ${sig ?? 'a signal'}`;
      reject(new PowerError(`${spec.shown} failed (${how})${tail(stdout, stderr, secrets)}`));
    });
  });
}

function tail(stdout: string, stderr: string, secrets: readonly string[]): string {
  const parts = [
    stderr.trim() ? `\n    stderr: ${redact(stderr.trim(), secrets)}` : '',
    stdout.trim() ? `\n    stdout: ${redact(stdout.trim(), secrets)}` : '',
  ];
  return parts.join('');
}
