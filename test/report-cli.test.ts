/** `hil report`: its options, its stdout formats and its exit codes. */
import t from 'tap';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { reportCommand } from '../harness/cli/report.ts';
import { copyRuns } from './helpers/runs.ts';

/** Run the command with stdout and stderr captured. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await reportCommand(argv), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

const runs = await copyRuns(t, 'nightly-041', 'nightly-042');
const [base, dir] = [runs['nightly-041']!, runs['nightly-042']!];

t.test('help and usage errors', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /Usage: hil report <run-dir>/);
  t.match(help.out, /--single-file/);
  t.equal((await run([])).code, 2, 'no run dir');
  const bad = await run([dir, '--format', 'pdf']);
  t.equal(bad.code, 2);
  t.match(bad.err, /--format[\s\S]*allowed: html, md/);
  t.equal((await run([dir, '--reporter', 'junit'])).code, 2);
  t.equal((await run([dir, '--frobnicate'])).code, 2);
  const missing = await run([join(dir, 'nope')]);
  t.equal(missing.code, 2);
  t.match(missing.err, /not a run dir/);
  t.equal((await run([dir, '--baseline', join(dir, 'nope')])).code, 2);
});

t.test('--format md and --reporter tap print to stdout', async (t) => {
  const md = await run([dir, '--format', 'md', '--baseline', base]);
  t.equal(md.code, 0);
  t.match(md.out, /^# Can TensorFlow run on this Raspberry Pi\?/);
  t.match(md.out, /Against `nightly-041`/);
  const tap = await run([dir, '--reporter', 'tap']);
  t.equal(tap.code, 0);
  t.match(tap.out, /^TAP version 14\n1\.\.21\n/);
  t.notOk(existsSync(join(dir, 'compare.html')), 'printing writes no files');
});

t.test('writing the reports; a missing Java exits 1 with the other reports written', async (t) => {
  const written = await run([dir, '--baseline', base, '--no-allure']);
  t.equal(written.code, 0);
  t.match(written.out, /compare\.html\n.*compare\.md\n.*junit\.xml\n/);
  t.match(written.err, /21 jobs: 15 passed, 4 failed, 1 broken, 1 skipped/);
  const path = process.env.PATH;
  const javaHome = process.env.JAVA_HOME;
  process.env.PATH = '/nonexistent';
  delete process.env.JAVA_HOME;
  try {
    const noJava = await run([dir]);
    t.equal(noJava.code, 1);
    t.match(noJava.err, /apt-get install openjdk-17-jre-headless/);
  } finally {
    process.env.PATH = path;
    if (javaHome !== undefined) process.env.JAVA_HOME = javaHome;
  }
  t.ok(existsSync(join(dir, 'allure-results', 'categories.json')));
});

t.test('a corrupt results file is a usage-level error naming the line', async (t) => {
  await writeFile(join(base, 'results.jsonl'), '{"schema":1}\n');
  const bad = await run([base, '--format', 'md']);
  t.equal(bad.code, 2);
  t.match(bad.err, /results\.jsonl:1: runId: expected a string/);
});
