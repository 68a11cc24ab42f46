/**
 * nights.json: the published site's list of nights, newest first, and the
 * one source the index page is drawn from. A night's entry is made from its
 * run folder alone (run.json, results.jsonl and, when the nightly decision
 * wrote it, regressions.json), so re-publishing a night gives the same entry.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { finalAttempts } from '../results/attempts.ts';
import { readResultsTolerant, readRunMeta } from '../results/read.ts';
import { verdictLabel } from '../report/cell.ts';

export const NIGHTS_FILE = 'nights.json';

const CountsSchema = z.object({
  expected: z.number().int().min(0),
  unexpected: z.number().int().min(0),
  infra: z.number().int().min(0),
  skipped: z.number().int().min(0),
  notinstalled: z.number().int().min(0),
  none: z.number().int().min(0),
});
export type Counts = z.infer<typeof CountsSchema>;

export const NightSchema = z.object({
  /** Folder name under nights/: start time, then a short hash of the run id; sorts by time. */
  id: z.string().regex(/^\d{8}-\d{6}-[0-9a-f]{6}$/),
  runId: z.string(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  /** The commit tested: run.json's gitSha, else GITHUB_SHA or CI_COMMIT_SHA when published. */
  commit: z.string().nullable(),
  devices: z.array(z.string()),
  jobs: z.number().int().min(0),
  counts: CountsSchema,
  /** Regressions against the night before, when the run folder records them; null when it does not. */
  regressions: z.number().int().min(0).nullable(),
  allure: z.union([z.literal(2), z.literal(3)]),
  /** The run's own exit code from run.json, when it has one. */
  exitCode: z.number().int().nullable(),
});
export type Night = z.infer<typeof NightSchema>;

export const NightsFileSchema = z.object({
  schema: z.literal(1),
  nights: z.array(NightSchema),
});

/** A site file that is not what this version writes: named, with the field and what was there. */
export class SiteFormatError extends Error {
  override readonly name = 'SiteFormatError';
}

/** 2026-11-23T02:00:00.123Z + run id -> 20261123-020000-4f6c2a: sortable by start, stable per run. */
export function nightId(startedAt: string, runId: string): string {
  const t = new Date(startedAt);
  if (Number.isNaN(t.getTime())) throw new SiteFormatError(`run.json: startedAt: expected an ISO date, got ${JSON.stringify(startedAt)}`);
  const stamp = t.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${createHash('sha256').update(runId).digest('hex').slice(0, 6)}`;
}

/**
 * How many regressions the run folder records: regressions.json as an array,
 * or an object with a `regressions` array or a `count`; else run.json's
 * `regressions` (array or count). null when neither says.
 */
export function recordedRegressions(runDir: string): number | null {
  const count = (v: unknown): number | null => {
    if (Array.isArray(v)) return v.length;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return count(o['regressions'] ?? o['count']);
    }
    return null;
  };
  const file = join(runDir, 'regressions.json');
  if (existsSync(file)) {
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new SiteFormatError(`${file}: not JSON (${(err as Error).message})`);
    }
    const n = count(value);
    if (n === null) throw new SiteFormatError(`${file}: expected an array of regressions, or {"regressions": [...]}, got ${JSON.stringify(value).slice(0, 80)}`);
    return n;
  }
  const meta: unknown = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
  return count((meta as Record<string, unknown>)['regressions']);
}

/** A night's entry from its run folder. */
export function nightFromRun(runDir: string, allure: 2 | 3, env: NodeJS.ProcessEnv = process.env): Night {
  const meta = readRunMeta(runDir);
  const records = finalAttempts(readResultsTolerant(runDir).records);
  const counts: Counts = { expected: 0, unexpected: 0, infra: 0, skipped: 0, notinstalled: 0, none: 0 };
  for (const r of records) counts[verdictLabel(r).key] += 1;
  return {
    id: nightId(meta.startedAt, meta.runId),
    runId: meta.runId,
    startedAt: meta.startedAt,
    endedAt: meta.endedAt,
    commit: meta.gitSha ?? env.GITHUB_SHA ?? env.CI_COMMIT_SHA ?? null,
    devices: [...new Set(records.map((r) => r.device.name))].sort(),
    jobs: records.length,
    counts,
    regressions: recordedRegressions(runDir),
    allure,
    exitCode: typeof meta.exitCode === 'number' ? meta.exitCode : null,
  };
}

/** The site's nights, newest first; none for a new site. */
export async function readNights(site: string): Promise<Night[]> {
  const file = join(site, NIGHTS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SiteFormatError(`${file}: not JSON (${(err as Error).message}); move it away to start the site afresh`);
  }
  const parsed = NightsFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SiteFormatError(`${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return sortNights(parsed.data.nights);
}

export function sortNights(nights: Night[]): Night[] {
  return [...nights].sort((a, b) => b.id.localeCompare(a.id));
}

/** Write nights.json whole, then move it into place: a reader never sees half a list. */
export async function writeNights(site: string, nights: Night[]): Promise<void> {
  const file = join(site, NIGHTS_FILE);
  await writeFile(`${file}.tmp`, `${JSON.stringify({ schema: 1, nights: sortNights(nights) }, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}
