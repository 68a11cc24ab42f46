/**
 * The power-control contract, kept apart from power.ts so the adapters beside
 * this file can use it without importing the module that chooses among them.
 */

export type PowerAction = 'on' | 'off' | 'cycle';
export type PowerState = 'on' | 'off' | 'unknown';

export interface PowerControl {
  /** What acts on the power, safe for logs: never a secret (e.g. "uhubctl hub 1-1 port 2"). */
  readonly describe: string;
  /**
   * Switch the power. Resolves when the adapter says it is done; throws
   * PowerError (with the command or HTTP status and the output) when it is not.
   * Aborting kills a running command or request and rejects with the signal's reason.
   */
  run(action: PowerAction, signal?: AbortSignal): Promise<void>;
  /** What the adapter reports; 'unknown' where it cannot tell (no status command, PDUDaemon). */
  status(signal?: AbortSignal): Promise<PowerState>;
}

/** The power could not be switched or read. Its message names what was tried and never holds a secret. */
export class PowerError extends Error {
  override readonly name = 'PowerError';
}

/** Wait `ms`, or reject with the signal's reason when it is aborted first. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Replace every secret in `text`, so output a tool echoed cannot carry one into an error. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s !== '') out = out.split(s).join('(redacted)');
  return out;
}

/** "2 s", "0.5 s" */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
