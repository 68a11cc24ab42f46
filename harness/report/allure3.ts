/**
 * Allure 3 (npm package `allure`, Node only, no JVM) beside Allure 2. It
 * reads the same allure-results; its history is one JSONL file that each
 * generation appends a line to (config `historyPath`), and its resolution
 * rules mark the jobs our suites expect to fail as known issues, which it
 * lists in a known-issues file (`resolutions.knownIssuesPath`).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ResultRecord } from '../results/record.ts';
import { testCaseIdOf, testKeyOf } from './allure.ts';

/** Allure 3's own cli.js: node_modules/.bin/allure may be either major, so resolve the package itself. */
export function allure3Cli(): string {
  // `allure` exports only its entry (dist/index.js), not package.json.
  const entry = createRequire(import.meta.url).resolve('allure');
  return join(dirname(dirname(entry)), 'cli.js');
}

/** The link type of our known issues; a rule's issue must name one with an http(s) URL. */
const ISSUE_TYPE = 'suite';

/**
 * Where an issue's link points: the suite.yaml holding the claim, in the
 * repository the CI job runs for. Outside CI there is no such URL, and Allure
 * requires an absolute one, so it points at the reserved `.invalid` domain.
 */
export function issueUrlTemplate(env: NodeJS.ProcessEnv): string {
  if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY) return `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/blob/HEAD/suites/%s/suite.yaml`;
  if (env.CI_PROJECT_URL) return `${env.CI_PROJECT_URL}/-/blob/HEAD/suites/%s/suite.yaml`;
  return 'https://pi-hil.invalid/suites/%s/suite.yaml';
}

export interface IssueRule {
  resolution: 'issue';
  issue: { id: string; type: string };
  comment: string;
  testCaseId: string[];
}

export interface Resolutions {
  knownIssuesPath: string;
  links: Record<string, { urlTemplate: string; nameTemplate: string }>;
  rules: IssueRule[];
}

/**
 * One known issue per suite, covering the jobs whose expectation does not
 * allow `passed`: the suite is expected to fail on those devices (32-bit,
 * too little RAM). When such a job fails anyway (its expectation unmet, or
 * broken by infrastructure), Allure 3 files it under that known issue
 * instead of as a new failure; a job that met its expectation is passed.
 */
export function knownIssueRules(records: readonly ResultRecord[]): IssueRule[] {
  const bySuite = new Map<string, { ids: Set<string>; devices: Set<string>; claims: Set<string> }>();
  for (const r of records) {
    if (!r.expectation || r.expectation.allowed.includes('passed')) continue;
    const entry = bySuite.get(r.suite) ?? { ids: new Set(), devices: new Set(), claims: new Set() };
    entry.ids.add(testCaseIdOf(testKeyOf(r)));
    entry.devices.add(r.device.name);
    entry.claims.add(r.expectation.claim.trim().replace(/\s+/g, ' '));
    bySuite.set(r.suite, entry);
  }
  return [...bySuite.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([suite, e]) => ({
      resolution: 'issue' as const,
      issue: { id: suite, type: ISSUE_TYPE },
      comment: `expected to fail on ${[...e.devices].sort().join(', ')}: ${[...e.claims].join(' / ')}`,
      testCaseId: [...e.ids].sort(),
    }));
}

export interface Allure3Options {
  /** The report's title. */
  name: string;
  /** The JSONL history file: read for the trend, then this generation's line is appended. */
  historyFile: string;
  /** Where Allure writes the known issues it found; null for none. */
  knownIssuesFile: string | null;
  /** The rules of those known issues (knownIssueRules). */
  rules: IssueRule[];
  env?: NodeJS.ProcessEnv;
}

/** The allurerc.json for one generation. */
export function allure3Config(reportDir: string, options: Allure3Options): Record<string, unknown> {
  const env = options.env ?? process.env;
  return {
    name: options.name,
    output: resolve(reportDir),
    historyPath: resolve(options.historyFile),
    plugins: { awesome: { options: { reportName: options.name, reportLanguage: 'en' } } },
    ...(options.knownIssuesFile
      ? {
          resolutions: {
            knownIssuesPath: resolve(options.knownIssuesFile),
            links: { [ISSUE_TYPE]: { urlTemplate: issueUrlTemplate(env), nameTemplate: 'suite %s' } },
            rules: options.rules,
          } satisfies Resolutions,
        }
      : {}),
  };
}

export async function allure3Generate(resultsDir: string, reportDir: string, options: Allure3Options): Promise<void> {
  const env = options.env ?? process.env;
  // A config of our own in a folder of our own: Allure would otherwise pick up an allurerc.* from the cwd.
  const work = await mkdtemp(join(tmpdir(), 'pi-hil-allure3-'));
  try {
    const config = join(work, 'allurerc.json');
    await writeFile(config, JSON.stringify(allure3Config(reportDir, options), null, 2));
    await rm(reportDir, { recursive: true, force: true });
    const args = [allure3Cli(), 'generate', resolve(resultsDir), '--config', config, '--cwd', work];
    const output = await new Promise<{ code: number | null; text: string }>((done, reject) => {
      const child = spawn(process.execPath, args, { cwd: work, env: { ...env, ALLURE_NO_ANALYTICS: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => done({ code, text }));
    });
    // Allure 3 can exit 0 having written nothing (no results matched); the page is the proof.
    const page = join(reportDir, 'index.html');
    const html = await readFile(page, 'utf8').catch(() => null);
    if (output.code !== 0 || html === null) {
      throw new Error(`allure 3 generate exited ${output.code}${html === null ? ' without writing index.html' : ''}:\n${output.text.trim().split('\n').slice(-15).join('\n')}`);
    }
    await writeFile(page, withoutAnalytics(html));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The page without Google's gtag: Allure 3's Awesome page always includes it
 * (ALLURE_NO_ANALYTICS is Allure 2's switch only), and a published report
 * must not call out to a tracker. Fails loudly if a new Allure version moves it.
 */
export function withoutAnalytics(html: string): string {
  const out = html.replace(/<script async src="https:\/\/www\.googletagmanager\.com\/gtag\/js[^"]*"><\/script>\s*<script>[^<]*gtag\([\s\S]*?<\/script>/, '');
  if (out.includes('googletagmanager')) throw new Error('the Allure 3 page loads Google Analytics in a form pi-hil cannot remove; refusing to publish it');
  return out;
}

/** Lines (generations) in a JSONL history file; 0 when there is none. */
export async function historyLength(historyFile: string): Promise<number> {
  const text = await readFile(historyFile, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim()).length;
}
