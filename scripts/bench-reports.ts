/**
 * Every report for a 1,000-record run: `hil report --no-allure` (comparison
 * page, Markdown, JUnit) beside the same with Allure 2 (`allure generate`,
 * the Java CLI of allure-commandline) and with Allure 3 (npm package `allure`)
 * generating from the same allure-results, rounds alternating. The records
 * are the fixture run nightly-042's, repeated under new job names. Prints
 * Markdown.
 *
 *   npx tsx scripts/bench-reports.ts [--records 1000] [--rounds 3]
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { projectDir } from '../harness/host/paths.ts';

const { values } = parseArgs({ options: { records: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(values.records);
const ROUNDS = Number(values.rounds);
const root = projectDir();
const fixture = join(root, 'test', 'fixtures', 'runs', 'nightly-042');

/** A run dir holding N records: the fixture's, repeated with suite names numbered. */
function makeRun(dir: string): void {
  const lines = readFileSync(join(fixture, 'results.jsonl'), 'utf8').split('\n').filter(Boolean);
  const meta = JSON.parse(readFileSync(join(fixture, 'run.json'), 'utf8')) as { runId: string; jobs: string[] };
  const out: string[] = [];
  const jobs: string[] = [];
  for (let i = 0; out.length < N; i++) {
    const r = JSON.parse(lines[i % lines.length]!) as { jobId: string; suite: string; device: { name: string } };
    const k = Math.floor(i / lines.length);
    r.suite = `${r.suite}-${k}`;
    r.jobId = `${r.suite}.${r.device.name}`;
    jobs.push(r.jobId);
    out.push(JSON.stringify(r));
  }
  writeFileSync(join(dir, 'results.jsonl'), `${out.join('\n')}\n`);
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...meta, jobs }, null, 2));
}

function wall(argv: string[]): number {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).slice(-1500)}`);
  return performance.now() - t;
}

/** The folder of an installed package, found from its entry point (`allure` exports no ./package.json). */
function packageDir(name: string): string {
  for (let d = dirname(createRequire(import.meta.url).resolve(name)); d !== dirname(d); d = dirname(d)) {
    try {
      if ((JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) as { name?: string }).name === name) return d;
    } catch {
      // not this folder
    }
  }
  throw new Error(`cannot find the ${name} package`);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const base = mkdtempSync(join(tmpdir(), 'pi-hil-bench-reports-'));
try {
  const run = join(base, 'run-1000');
  cpSync(fixture, run, { recursive: true });
  makeRun(run);
  const hil = [process.execPath, join(root, 'bin', 'hil.js'), 'report', run];
  // Allure 3's CLI, wherever npm put it (.bin/allure may be either major).
  const allure3Dir = packageDir('allure');
  const allure3 = join(allure3Dir, 'cli.js');
  const allure3Version = (JSON.parse(readFileSync(join(allure3Dir, 'package.json'), 'utf8')) as { version: string }).version;
  const allure2Version = (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('allure-commandline/package.json'), 'utf8')) as { version: string }).version;
  const plain: number[] = [];
  const with2: number[] = [];
  const gen3: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    plain.push(wall([...hil, '--no-allure']));
    // Allure 2: the whole `hil report` (allure-results written, then the Java CLI's generate).
    with2.push(wall(hil));
    // Allure 3 on the allure-results that round wrote.
    const out3 = join(base, `allure3-${i}`);
    gen3.push(wall([process.execPath, allure3, 'generate', join(run, 'allure-results'), '-o', out3]));
    rmSync(out3, { recursive: true, force: true });
  }
  const p = median(plain);
  const a2 = median(with2);
  const a3 = median(gen3);
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  const out = [
    `Measured ${new Date().toISOString().slice(0, 10)}: a run of ${N} records (nightly-042's repeated), ${ROUNDS} rounds alternating, medians; walls include starting \`hil\` (Node + tsx).`,
    '',
    '| reports of a 1,000-record run | median wall (s) | goal |',
    '|---|---|---|',
    `| \`hil report --no-allure\`: comparison page, Markdown, JUnit | ${s(p)} | ≤ 1 s |`,
    `| \`hil report\` with Allure 2 (allure-commandline ${allure2Version}, Java) | ${s(a2)} | reported |`,
    `| of which Allure 2 (results + \`allure generate\`) | ${s(a2 - p)} | |`,
    `| Allure 3 (\`allure\` ${allure3Version}) \`allure generate\` on the same results | ${s(a3)} | reported |`,
    `| \`hil report\` with Allure 3 instead (no-Allure wall + Allure 3) | ${s(p + a3)} | |`,
    '',
    `Reproduce: \`npx tsx scripts/bench-reports.ts --records ${N}\`.`,
    '',
  ];
  process.stdout.write(out.join('\n'));
} finally {
  rmSync(base, { recursive: true, force: true });
}
