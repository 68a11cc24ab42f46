/**
 * Running `allure generate` (the Java CLI bundled by allure-commandline),
 * and carrying the previous report's history over so trends span runs.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, cp, readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, delimiter, dirname, join } from 'node:path';

export class JavaMissingError extends Error {
  override readonly name = 'JavaMissingError';
  constructor() {
    super(
      'allure generate needs Java (8 or newer) and none was found in JAVA_HOME or on PATH.\n' +
        '    install it: sudo apt-get install openjdk-17-jre-headless   (Debian, Ubuntu, Raspberry Pi OS)\n' +
        '    then rerun: hil report <run-dir>\n' +
        '    The comparison page, Markdown, JUnit and Allure results were still written.',
    );
  }
}

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The java binary Allure's launcher will use: $JAVA_HOME/bin/java, else the first on PATH. */
export async function findJava(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.JAVA_HOME && (await executable(join(env.JAVA_HOME, 'bin', 'java')))) return join(env.JAVA_HOME, 'bin', 'java');
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (await executable(join(dir, 'java'))) return join(dir, 'java');
  }
  throw new JavaMissingError();
}

export function allureBin(): string {
  const pkg = createRequire(import.meta.url).resolve('allure-commandline/package.json');
  return join(dirname(pkg), 'dist', 'bin', 'allure');
}

/** Number of points in a report's trend, so a local executor can number the next one. */
export async function trendLength(reportDir: string): Promise<number> {
  try {
    const trend: unknown = JSON.parse(await readFile(join(reportDir, 'history', 'history-trend.json'), 'utf8'));
    return Array.isArray(trend) ? trend.length : 0;
  } catch {
    return 0;
  }
}

/**
 * The report of the run before this one: among the sibling run dirs (run ids
 * sort by time), the latest earlier one whose allure-report has a history.
 */
export async function findPreviousReport(runDir: string): Promise<string | null> {
  const parent = dirname(runDir);
  const self = basename(runDir);
  const earlier = (await readdir(parent).catch(() => [] as string[])).filter((name) => name < self).sort().reverse();
  for (const name of earlier) {
    const report = join(parent, name, 'allure-report');
    if ((await stat(join(report, 'history')).catch(() => null))?.isDirectory()) return report;
  }
  return null;
}

/** Copy <previous report>/history into <results>/history; false when there is none. */
export async function carryHistory(previousReport: string, resultsDir: string): Promise<boolean> {
  const from = join(previousReport, 'history');
  try {
    if (!(await stat(from)).isDirectory()) return false;
  } catch {
    return false;
  }
  await cp(from, join(resultsDir, 'history'), { recursive: true });
  return true;
}

export interface GenerateOptions {
  singleFile?: boolean;
  env?: NodeJS.ProcessEnv;
}

export async function allureGenerate(resultsDir: string, reportDir: string, options: GenerateOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  // A missing results folder only earns a warning from Allure, and an empty report.
  if (!(await stat(resultsDir).catch(() => null))?.isDirectory()) throw new Error(`allure results folder ${resultsDir} does not exist`);
  const java = await findJava(env);
  const args = ['generate', resultsDir, '-o', reportDir, '--clean', ...(options.singleFile ? ['--single-file'] : [])];
  // ALLURE_NO_ANALYTICS: otherwise the page pulls Google's gtag from the network, in every published report.
  const childEnv = { ...env, PATH: `${dirname(java)}${delimiter}${env.PATH ?? ''}`, ALLURE_NO_ANALYTICS: 'true' };
  const output = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
    const child = spawn(allureBin(), args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, text }));
  });
  if (output.code !== 0) {
    throw new Error(`allure generate exited ${output.code}:\n${output.text.trim().split('\n').slice(-15).join('\n')}`);
  }
}
