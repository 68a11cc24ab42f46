/**
 * A VM's serial console: every byte goes to a log file, and the recent part stays in
 * memory so a job's result can carry the excerpt of its own time window (kernel OOM
 * lines, panics) without rereading the file.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const KEEP_CHARS = 2_000_000;

export class ConsoleLog {
  private text = '';
  /** Absolute offset (in chars since the VM started) of `text[0]`. */
  private dropped = 0;
  private fd: number | null;
  private waiters = new Set<() => void>();

  constructor(readonly file: string) {
    this.fd = openSync(file, 'a', 0o600);
  }

  append(chunk: string): void {
    if (this.fd !== null) writeSync(this.fd, chunk);
    this.text += chunk;
    if (this.text.length > KEEP_CHARS) {
      const cut = this.text.length - KEEP_CHARS / 2;
      this.text = this.text.slice(cut);
      this.dropped += cut;
    }
    for (const w of [...this.waiters]) w();
    for (const l of [...this.listeners]) l(chunk);
  }

  private listeners = new Set<(chunk: string) => void>();

  /** Follow the console live (`hil console`); returns the unsubscribe function. */
  subscribe(listener: (chunk: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A position to take an excerpt from later. */
  mark(): number {
    return this.dropped + this.text.length;
  }

  /** Everything since `mark` (or as much as memory still holds). */
  since(mark: number): string {
    return this.text.slice(Math.max(0, mark - this.dropped));
  }

  tail(chars = 4000): string {
    return this.text.slice(-chars);
  }

  /** Resolve with the first match of `re` in the console after `fromMark`; reject on abort. */
  waitFor(re: RegExp, fromMark = 0, signal?: AbortSignal): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(this.since(fromMark));
        if (m) {
          done();
          resolve(m);
        }
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const done = (): void => {
        this.waiters.delete(check);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Kernel lines that mean the boot (or the guest) is dead. */
export const PANIC_RE = /Kernel panic - not syncing[^\r\n]*/;
