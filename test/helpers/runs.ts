/** Fresh, writable copies of the fixture run dirs: reports are written into the run dir. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE_RUNS = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'runs');

/** Copy the named fixture runs into one temp dir; returns their paths by run id. */
export async function copyRuns(t: { teardown: (fn: () => unknown) => void }, ...runIds: string[]): Promise<Record<string, string>> {
  const root = await mkdtemp(join(tmpdir(), 'pi-hil-report-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const out: Record<string, string> = {};
  for (const id of runIds) {
    out[id] = join(root, id);
    await cp(join(FIXTURE_RUNS, id), out[id], { recursive: true });
  }
  return out;
}
