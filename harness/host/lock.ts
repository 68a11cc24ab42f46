/**
 * A cross-process lock file holding the owner's pid: another process building the same
 * image or warm state waits, and a lock left by a dead process is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(file: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  for (;;) {
    signal?.throwIfAborted();
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (pid && !isAlive(pid)) await rm(file, { force: true });
      else await new Promise((r) => setTimeout(r, pid ? 1000 : 200));
    }
  }
}
