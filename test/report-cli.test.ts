/** `hil report`: its options, its stdout formats and its exit codes. */
import t from 'tap';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
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

t.test('a torn results file: every report from the good records, each bad line named', async (t) => {
  const { 'nightly-042': torn } = await copyRuns(t, 'nightly-042');
  const file = join(torn!, 'results.jsonl');
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  // Line 3 lost a field to a hand edit; the run crashed while appending line 22.
  const broken = JSON.parse(lines[2]!) as Record<string, unknown>;
  delete broken.outcome;
  lines[2] = JSON.stringify(broken);
  await writeFile(file, [...lines, lines[0]!.slice(0, Math.floor(lines[0]!.length / 2))].join('\n'));

  const written = await run([torn!, '--no-allure']);
  t.equal(written.code, 0, 'reports were built');
  t.match(written.err, new RegExp(`^hil report: warning: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: outcome: expected one of passed, .*; this line is left out of the reports$`, 'm'));
  t.match(written.err, /^hil report: warning: .*results\.jsonl:22: not JSON \(.*\); this line is left out of the reports$/m);
  t.match(written.err, /^hil report: warning: 1 planned job\(s\) have no record: tflite-inference\.zero2w-512-armhf$/m);
  t.match(written.err, /20 jobs: 14 passed, 4 failed, 1 broken, 1 skipped/);
  const html = await readFile(join(torn!, 'compare.html'), 'utf8');
  t.match(html, /<b id="unreadable-h">2 lines of the results could not be read<\/b>; this page is built from the 20 records that could/);
  t.match(html, /<li><code>nightly-042\/results\.jsonl:3<\/code>: outcome: expected one of passed/);
  t.match(html, /<li><code>nightly-042\/results\.jsonl:22<\/code>: not JSON/);
  t.notMatch(html, new RegExp(torn!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), 'the page names the file by its run, not by where it is kept');
  t.ok(existsSync(join(torn!, 'junit.xml')));
  t.match(await readFile(join(torn!, 'compare.md'), 'utf8'), /^> - `nightly-042\/results\.jsonl:22`: not JSON/m);

  const md = await run([torn!, '--format', 'md']);
  t.equal(md.code, 0);
  t.match(md.out, /^> ⚠️ \*\*2 lines of the results could not be read\*\*/m);
  t.match(md.err, /results\.jsonl:22: not JSON/);
  const tap = await run([torn!, '--reporter', 'tap']);
  t.equal(tap.code, 0);
  t.match(tap.out, /^TAP version 14\n1\.\.20\n/, 'stdout stays a clean TAP stream');
  t.match(tap.err, /results\.jsonl:3: outcome: .*; this line is left out of the TAP stream/);

  // A torn baseline is read the same way, and named as the baseline's.
  const withBase = await run([dir, '--baseline', torn!, '--format', 'md']);
  t.equal(withBase.code, 0);
  t.match(withBase.out, /`nightly-042\/results\.jsonl:22`/);
});

t.test('a corrupt results file is a usage-level error naming the line', async (t) => {
  await writeFile(join(base, 'results.jsonl'), '{"schema":1}\n');
  const bad = await run([base, '--format', 'md']);
  t.equal(bad.code, 2);
  t.match(bad.err, /results\.jsonl:1: runId: expected a string/);
  // No line readable: nothing to build from, whatever the output.
  for (const argv of [[base], [base, '--reporter', 'tap'], [dir, '--baseline', base, '--format', 'md']]) {
    const none = await run(argv);
    t.equal(none.code, 2, argv.join(' '));
    t.match(none.err, /results\.jsonl: none of its 1 line could be read\n {2}.*results\.jsonl:1: runId: expected a string/);
  }
  t.notOk(existsSync(join(base, 'compare.html')), 'no empty report replaces a real one');
});
