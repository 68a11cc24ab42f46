/**
 * `hil nightly`: the two steps a CI pipeline calls.
 *
 *   hil nightly run --shard i/n --out <dir> [run options]
 *     on each runner: check its shard's devices, run them, write the results
 *     (no reports, no verdict: that is the second step's).
 *   hil nightly finish <shard-dir>... --site <dir> [--keep N] [--allure 2|3]
 *                      [--thresholds f] [--max-infra N]
 *     once, after the shards: merge them, compare with the last published
 *     night, publish the night, and exit with the night's verdict:
 *
 *     0 every expectation held and nothing regressed
 *     1 a regression or an unmet expectation (infrastructure trouble never hides one)
 *     2 inventory or usage error
 *     3 only infrastructure failed, more jobs than --max-infra (default 0)
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../config/diagnostics.ts';
import { loadThresholdsFile } from '../config/thresholds.ts';
import { finalAttempts } from '../results/attempts.ts';
import type { ResultRecord } from '../results/record.ts';
import { MergeError, mergeRuns, readShardRun, writeMerged } from '../results/merge.ts';
import { ResultsFormatError } from '../results/read.ts';
import { newRunId, RunStore } from '../results/store.ts';
import { loadInventory } from '../inventory/load.ts';
import { parseShard, selectDevices } from '../run/plan.ts';
import type { Regression } from '../report/regressions.ts';
import { helpText, parseCommand, positiveInt, stringList, type CommandSpec } from './args.ts';
import { checkCommand } from './check.ts';
import { printRegressions, writeStepSummary } from './report.ts';
import { gitSha, harnessVersion, RUN_SPEC, runCommand } from './run.ts';
import { renderSummary } from './summary.ts';

export const NIGHTLY_EXIT_MEANINGS: Record<number, string> = {
  0: 'every expectation held, no regression',
  1: 'a regression or an unmet expectation',
  2: 'inventory or usage error',
  3: 'only infrastructure failed, above --max-infra',
};

export interface NightlyVerdictInput {
  /** The last attempt of each job of the night. */
  records: readonly ResultRecord[];
  /** Regressions against the previous published night (none without one). */
  regressions: readonly Regression[];
  /** infra_error jobs tolerated before the night fails on them. */
  maxInfra: number;
  /** The inventory or the command line was wrong: nothing else counts. */
  usageError?: boolean;
}

export interface NightlyVerdict {
  code: 0 | 1 | 2 | 3;
  why: string;
}

/** An expectation not met, or (without one) a product outcome other than passed. */
function unmet(r: ResultRecord): boolean {
  return r.expectation?.verdict === 'unmet' || (r.expectation === null && r.outcome !== 'passed' && r.outcome !== 'infra_error');
}

/** The night's exit code, decided in one place. A regression or an unmet expectation outranks infrastructure. */
export function nightlyVerdict(input: NightlyVerdictInput): NightlyVerdict {
  if (input.usageError) return { code: 2, why: NIGHTLY_EXIT_MEANINGS[2]! };
  const unmetJobs = input.records.filter(unmet);
  const infra = input.records.filter((r) => r.outcome === 'infra_error').length;
  const also = infra ? `; ${infra} infrastructure failure(s) besides` : '';
  if (input.regressions.length || unmetJobs.length) {
    const parts = [
      ...(input.regressions.length ? [`${input.regressions.length} regression(s): ${input.regressions.map((r) => r.jobId).join(', ')}`] : []),
      ...(unmetJobs.length ? [`${unmetJobs.length} unmet expectation(s): ${unmetJobs.map((r) => r.jobId).join(', ')}`] : []),
    ];
    return { code: 1, why: `${parts.join('; ')}${also}` };
  }
  if (infra > input.maxInfra) return { code: 3, why: `${infra} infrastructure failure(s), above --max-infra ${input.maxInfra}` };
  return { code: 0, why: infra ? `${NIGHTLY_EXIT_MEANINGS[0]} (${infra} infrastructure failure(s), within --max-infra ${input.maxInfra})` : NIGHTLY_EXIT_MEANINGS[0]! };
}

const RUN_STEP_SPEC: CommandSpec = {
  ...RUN_SPEC,
  name: 'nightly run',
  summary: "One CI runner's share of the night: check its shard's devices, run them, and write the results (the verdict is `hil nightly finish`'s).",
  usage: 'hil nightly run [--inventory FILE] [--shard i/n] --out DIR [run options]',
};

const FINISH_SPEC: CommandSpec = {
  name: 'nightly finish',
  summary: 'After the shards: merge them, compare with the last published night, publish the night, and exit with its verdict.',
  usage: 'hil nightly finish <shard-dir>... --site DIR [--keep N] [--allure 2|3] [--thresholds FILE] [--max-infra N] [--out DIR]',
  positionals: { min: 1, max: 1000, names: "the shards' --out folders (or their run folders)" },
  options: {
    site: { type: 'string', arg: 'dir', help: 'the published site of nights' },
    keep: { type: 'string', arg: 'n', help: 'keep only the newest N nights on the site' },
    allure: { type: 'string', arg: '2|3', help: 'Allure 2 (default; Java) or Allure 3 (Node)' },
    thresholds: { type: 'string', arg: 'file', help: 'regression thresholds (YAML; see docs/regressions.md)' },
    'max-infra': { type: 'string', arg: 'n', help: 'infrastructure failures tolerated before exit 3 (default 0)' },
    out: { type: 'string', arg: 'dir', help: 'where the merged night is written (default: reports/nights/<run-id>)' },
  },
};

const USAGE = `Usage: hil nightly run [options]     check, run and record one shard
       hil nightly finish <shard-dir>... --site DIR
                                     merge, compare with the last night, publish, exit 0/1/2/3

Exit codes of finish: ${Object.entries(NIGHTLY_EXIT_MEANINGS).map(([c, m]) => `${c} ${m}`).join('; ')}.
`;

export async function nightlyCommand(argv: string[]): Promise<number> {
  const [step, ...rest] = argv;
  if (step === 'run') return nightlyRun(rest);
  if (step === 'finish') return nightlyFinish(rest);
  if (step === '--help' || step === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  throw new UsageError('hil nightly', step ?? '(nothing)', 'run, finish');
}

async function nightlyRun(argv: string[]): Promise<number> {
  const { values, help } = parseCommand(RUN_STEP_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(RUN_STEP_SPEC));
    return 0;
  }
  if (typeof values['out'] !== 'string') throw new UsageError('--out', '(nothing)', "the shard's results folder, uploaded as the CI job's artifact");
  const checkArgs = [
    ...(typeof values['inventory'] === 'string' ? ['--inventory', values['inventory']] : []),
    ...stringList(values['device']).flatMap((d) => ['--device', d]),
    ...stringList(values['tag']).flatMap((t) => ['--tag', t]),
    ...(typeof values['shard'] === 'string' ? ['--shard', values['shard']] : []),
    ...(values['accept-new'] === true ? ['--accept-new'] : []),
  ];
  const inventory = loadInventory(String(values['inventory'] ?? 'devices.yaml'));
  const shard = typeof values['shard'] === 'string' ? parseShard(values['shard']) : null;
  const selection = { devices: stringList(values['device']), tags: stringList(values['tag']), shard };
  if (shard && selectDevices(inventory, selection).length === 0) {
    // More runners than devices: this shard's share is nothing, and the merge still needs to see it.
    const runId = newRunId();
    const store = RunStore.create(resolve(values['out']), {
      runId,
      startedAt: new Date().toISOString(),
      endedAt: null,
      harnessVersion: harnessVersion(),
      gitSha: gitSha(),
      selection: { ...selection, suites: stringList(values['suite']), shard: values['shard'] as string, concurrency: 0 },
      inventory: { file: inventory.file, devices: [] },
      jobs: [],
      exitCode: null,
      interrupted: null,
    });
    store.finish({ endedAt: new Date().toISOString(), exitCode: 0, interrupted: null });
    process.stderr.write(`hil nightly run: shard ${shard.index}/${shard.count} gets no device of ${inventory.file}; recorded an empty run in ${store.dir}\n`);
    return 0;
  }
  process.stderr.write('hil nightly run: checking the devices\n');
  const checked = await checkCommand(checkArgs);
  // A device that does not answer is recorded as infra_error by the run, for the verdict to weigh.
  if (checked !== 0) process.stderr.write(`hil nightly run: hil check exited ${checked}; running anyway, its jobs will say what failed\n`);
  const code = await runCommand([...argv.filter((a) => a !== '--no-report'), '--no-report']);
  if (code === 2 || code === 4 || code >= 128) return code;
  process.stderr.write(`hil nightly run: results written under ${resolve(values['out'])}; the verdict is \`hil nightly finish\`'s\n`);
  return 0;
}

/** A shard's --out folder holds its run folder; a run folder may be given directly too. */
function runDirsIn(dir: string): string[] {
  if (existsSync(join(dir, 'results.jsonl'))) return [dir];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError('<shard-dir>', dir, 'a folder a `hil nightly run --out` wrote, or a run folder', 'no such folder');
  const runs = readdirSync(dir)
    .map((n) => join(dir, n))
    .filter((p) => existsSync(join(p, 'results.jsonl')));
  if (runs.length === 0) throw new UsageError('<shard-dir>', dir, 'a folder a `hil nightly run --out` wrote, or a run folder', 'no run folder in it');
  return runs;
}

/** The last published night's folder, whose results are tonight's baseline; null on a new site. */
export function previousNight(site: string): string | null {
  const latest = join(site, 'latest');
  if (existsSync(join(latest, 'results.jsonl'))) return latest;
  const nights = join(site, 'nights');
  if (!existsSync(nights)) return null;
  const newest = readdirSync(nights)
    .filter((n) => !n.startsWith('.') && existsSync(join(nights, n, 'results.jsonl')))
    .sort()
    .at(-1);
  return newest === undefined ? null : join(nights, newest);
}

function allureVersionOf(value: unknown): 2 | 3 {
  if (value === undefined || value === '2') return 2;
  if (value === '3') return 3;
  throw new UsageError('--allure', String(value), '2 (Allure 2, Java; the default) or 3 (Allure 3, Node)');
}

function nonNegativeInt(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(option, String(value), 'a whole number of 0 or more');
  return n;
}

async function nightlyFinish(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommand(FINISH_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(FINISH_SPEC));
    return 0;
  }
  if (typeof values['site'] !== 'string') throw new UsageError('--site', '(nothing)', 'the folder of the published site, e.g. --site public');
  const site = resolve(values['site']);
  const keep = values['keep'] === undefined ? undefined : positiveInt('--keep', values['keep'], 1);
  const allure = allureVersionOf(values['allure']);
  const maxInfra = nonNegativeInt('--max-infra', values['max-infra'], 0);
  const thresholds = typeof values['thresholds'] === 'string' ? loadThresholdsFile(values['thresholds']) : null;

  const runId = newRunId();
  const out = resolve(typeof values['out'] === 'string' ? values['out'] : join('reports', 'nights', runId));
  try {
    const merged = mergeRuns(positionals.flatMap(runDirsIn).map(readShardRun), runId);
    writeMerged(out, merged);
  } catch (err) {
    if (err instanceof MergeError || err instanceof ResultsFormatError) throw new UsageError('<shard-dir>', positionals.join(' '), 'the shards of one night, each once', err.message);
    throw err;
  }
  process.stderr.write(`hil nightly finish: merged ${positionals.length} shard folder(s) into ${out}\n`);

  const previous = previousNight(site);
  const { writeReports } = await import('../report/index.ts');
  // The comparison with the previous night and its thresholds; publishing keeps this page as the night's word.
  const report = await writeReports(out, { ...(previous ? { baseline: previous } : {}), thresholds, allure: false });
  for (const w of report.warnings) process.stderr.write(`hil nightly finish: warning: ${w}\n`);
  const regressions = report.diff?.regressions ?? [];
  writeFileSync(join(out, 'regressions.json'), `${JSON.stringify({ baseline: report.diff?.baselineRunId ?? null, regressions, thresholds: report.diff?.policy ?? null }, null, 2)}\n`);
  if (report.diff) {
    printRegressions(report.diff);
    writeStepSummary(report.runId, report.diff);
  } else process.stderr.write('hil nightly finish: no published night to compare with; this is the first\n');

  const { readResults } = await import('../results/read.ts');
  const records = finalAttempts(readResults(out));
  const verdict = nightlyVerdict({ records, regressions, maxInfra });
  // The night's run.json carries the night's verdict, which the site lists.
  const metaFile = join(out, 'run.json');
  writeFileSync(metaFile, `${JSON.stringify({ ...(JSON.parse(readFileSync(metaFile, 'utf8')) as object), exitCode: verdict.code }, null, 2)}\n`);
  const { publishNight } = await import('../publish/site.ts');
  const published = await publishNight(out, { site, ...(keep !== undefined ? { keep } : {}), allure });
  process.stderr.write(`hil nightly finish: published ${published.nightDir}; site index ${published.indexPath}\n`);
  process.stderr.write(
    renderSummary({
      title: `hil nightly ${runId}`,
      records,
      diff: report.diff,
      exitCode: verdict.code,
      meanings: { ...NIGHTLY_EXIT_MEANINGS, [verdict.code]: verdict.why },
      compareHtml: join(published.nightDir, 'compare.html'),
    }),
  );
  return verdict.code;
}
