/**
 * `hil publish`: add one night to a static site of nights that any web server
 * serves as plain files (GitHub Pages, GitLab Pages, nginx):
 *
 *   <site>/index.html           every night, newest first, with a trend chart
 *   <site>/nights.json          the list the index is drawn from
 *   <site>/nights/<night-id>/   results.jsonl, run.json, compare.html/.md, allure/
 *   <site>/latest/              a copy of the newest night (Pages serves no symlinks)
 *
 * The night's reports are rebuilt from its records against the previous
 * published night, whose Allure history carries the trend on. A night is
 * built beside the site and moved in whole, so a failure leaves the site as
 * it was; publishing the same run again replaces its night.
 */
import { cp, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../config/diagnostics.ts';
import { acquireLock } from '../host/lock.ts';
import { writeReports } from '../report/index.ts';
import { ALLURE3_HISTORY } from '../report/allure3-report.ts';
import { nightRedirect, renderIndex } from './index-page.ts';
import { nightFromRun, readNights, writeNights, type Night } from './nights.ts';

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

/** Copy a file if the run has it. */
async function copyIfThere(from: string, to: string): Promise<void> {
  if (await exists(from)) await cp(from, to);
}

/** Replace `target` with `staged` (a sibling folder), never leaving neither in place for long. */
async function swapIn(staged: string, target: string): Promise<void> {
  const old = `${target}.old`;
  await rm(old, { recursive: true, force: true });
  if (await exists(target)) await rename(target, old);
  await rename(staged, target);
  await rm(old, { recursive: true, force: true });
}

/** Build one night's folder at `dir` from the run, against the previous published night. */
async function buildNight(runDir: string, dir: string, allure: 2 | 3, previous: string | null): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const name of ['results.jsonl', 'run.json']) await cp(join(runDir, name), join(dir, name));
  await copyIfThere(join(runDir, 'regressions.json'), join(dir, 'regressions.json'));
  const summary = await writeReports(dir, {
    allureVersion: allure,
    ...(previous ? { baseline: previous, previousReport: join(previous, 'allure'), previousHistory: join(previous, ALLURE3_HISTORY) } : {}),
  });
  if (summary.allureError) throw new Error(`the Allure ${allure} report of ${runDir} could not be generated, so nothing was published:\n${summary.allureError}`);
  await rename(join(dir, 'allure-report'), join(dir, 'allure'));
  // Rebuildable from results.jsonl, and the bulk of a night: not served.
  await rm(join(dir, 'allure-results'), { recursive: true, force: true });
  // A comparison the run already made (the nightly decision, with its thresholds) is the night's own word.
  await copyIfThere(join(runDir, 'compare.html'), join(dir, 'compare.html'));
  await copyIfThere(join(runDir, 'compare.md'), join(dir, 'compare.md'));
  await writeFile(join(dir, 'index.html'), nightRedirect());
  return summary.warnings;
}

export async function publishNight(runDir: string, options: { site: string; keep?: number; allure?: 2 | 3 }): Promise<{ nightDir: string; indexPath: string }> {
  const allure = options.allure ?? 2;
  if (allure !== 2 && allure !== 3) throw new UsageError('--allure', String(allure), '2 (Allure 2, Java; the default) or 3 (Allure 3, Node)');
  if (options.keep !== undefined && (!Number.isInteger(options.keep) || options.keep < 1)) throw new UsageError('--keep', String(options.keep), 'a whole number of 1 or more');
  const run = resolve(runDir);
  for (const name of ['results.jsonl', 'run.json']) {
    if (!(await exists(join(run, name)))) throw new UsageError('<run-dir>', runDir, `a run dir holding results.jsonl and run.json`, `no ${name} in it`);
  }
  const site = resolve(options.site);
  await mkdir(join(site, 'nights'), { recursive: true });
  const release = await acquireLock(join(site, '.publish.lock'));
  let staging: string | null = null;
  try {
    const night = nightFromRun(run, allure);
    const others = (await readNights(site)).filter((n) => n.id !== night.id);
    const prior = others.find((n) => n.id < night.id);
    const previous = prior && (await exists(join(site, 'nights', prior.id, 'results.jsonl'))) ? join(site, 'nights', prior.id) : null;

    // Hidden names: a half-built night is never listed, and a rerun clears it.
    staging = join(site, 'nights', `.${night.id}.building`);
    await rm(staging, { recursive: true, force: true });
    const warnings = await buildNight(run, staging, allure, previous);
    for (const w of warnings) process.stderr.write(`hil publish: warning: ${w}\n`);
    const nightDir = join(site, 'nights', night.id);
    await swapIn(staging, nightDir);
    staging = null;

    const all: Night[] = [night, ...others].sort((a, b) => b.id.localeCompare(a.id));
    const kept = options.keep === undefined ? all : all.slice(0, options.keep);
    for (const gone of all.slice(kept.length)) await rm(join(site, 'nights', gone.id), { recursive: true, force: true });
    await writeNights(site, kept);

    const newest = kept[0]!;
    const latest = join(site, '.latest.building');
    await rm(latest, { recursive: true, force: true });
    await cp(join(site, 'nights', newest.id), latest, { recursive: true });
    await swapIn(latest, join(site, 'latest'));

    const indexPath = join(site, 'index.html');
    await writeFile(`${indexPath}.tmp`, renderIndex(kept));
    await rename(`${indexPath}.tmp`, indexPath);
    return { nightDir, indexPath };
  } finally {
    if (staging) await rm(staging, { recursive: true, force: true });
    await release();
  }
}
