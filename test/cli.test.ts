import t from 'tap';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hil, onlyRunDir, PROJECT, readMeta, readRecords, startHil, TEST_SUITES, waitFor, type HilProcess } from './helpers/hil.ts';
import { createProgress } from '../harness/cli/progress.ts';
import { table } from '../harness/cli/table.ts';
import { exitCodeFor } from '../harness/cli/run.ts';
import { DEVICES, makeRecord } from './fixtures/records.ts';

const inventory = (dir: string, text: string): string => {
  const file = join(dir, 'devices.yaml');
  writeFileSync(file, text);
  return file;
};

const LOCAL = `defaults: { transport: local, ram_mb: 512, arch: amd64 }
groups: { small: [cap-a] }
devices:
  - { name: cap-a, cap_mb: 256, tags: [tiny] }
  - { name: cap-b }
`;

t.test('every command has --help; no command and unknown commands are usage errors', async (t) => {
  for (const command of ['run', 'check', 'list', 'report', 'image', 'console']) {
    const r = await hil([command, '--help']);
    t.equal(r.code, 0, `${command} --help`);
    t.match(r.stdout, /Usage: hil /, `${command} --help prints usage`);
  }
  const top = await hil(['--help']);
  t.equal(top.code, 0);
  t.match(top.stdout, /run\s+run suites on devices/);
  t.equal((await hil([])).code, 2);
  const bad = await hil(['rnu']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown command "rnu"[\s\S]*allowed: run, check/);
});

t.test('linked with npm link, `hil` runs from a folder outside the project', async (t) => {
  // A throwaway global prefix, so no link is left behind on this machine.
  const prefix = mkdtempSync(join(tmpdir(), 'pi-hil-prefix-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'pi-hil-elsewhere-'));
  t.teardown(() => {
    rmSync(prefix, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, NPM_CONFIG_PREFIX: prefix, PATH: `${join(prefix, 'bin')}:${process.env['PATH'] ?? ''}` };
  delete env['PI_HIL_TS_LOADER'];
  const link = spawnSync('npm', ['link', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: PROJECT, env, encoding: 'utf8', timeout: 120_000 });
  t.equal(link.status, 0, `npm link: ${link.stderr}`);
  t.ok(lstatSync(join(prefix, 'bin', 'hil')).isSymbolicLink(), 'npm link put a `hil` on the PATH');

  const help = spawnSync('hil', ['--help'], { cwd: elsewhere, env, encoding: 'utf8', timeout: 60_000 });
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /Usage: hil <command> \[options\]/);
  // The inventory is read from the folder it runs in, the suites from the project.
  writeFileSync(join(elsewhere, 'devices.yaml'), LOCAL);
  const list = spawnSync('hil', ['list'], { cwd: elsewhere, env, encoding: 'utf8', timeout: 60_000 });
  t.equal(list.status, 0, list.stderr);
  t.match(list.stdout, /cap-a\s+local/);
  t.match(list.stdout, /keras-train/);
});

t.test('no README example can run a stranger\'s package: every npx is --no-install', async (t) => {
  const readme = readFileSync(join(PROJECT, 'README.md'), 'utf8');
  // The commands a reader copies: fenced blocks and inline code.
  const code = [...readme.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  code.push(...[...readme.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? ''));
  const bare = code.flatMap((c) => [...c.matchAll(/\bnpx\b(?! --no-install)[^\n]*/g)].map((m) => m[0]));
  t.same(bare, [], 'bare npx asks the npm registry when the command is not installed where it runs');
  t.match(readme, /npm link/, 'the README says how to put `hil` on the PATH');
});

t.test('hil list prints devices, groups and suites', async (t) => {
  const r = await hil(['list', '-i', inventory(t.testdir(), LOCAL), '--suites', TEST_SUITES]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /cap-a\s+local\s+local capped host\s+512 MB\s+amd64\s+tiny\s+this host, memory cap 256 MB/);
  t.match(r.stdout, /small\s+cap-a/);
  t.match(r.stdout, /sleepy\s+60 s\s+1\s+Sleeps 3 s/);
});

t.test("hil list shows each suite's parameters at their defaults, with their units or choices", async (t) => {
  const dir = t.testdir({
    'devices.yaml': LOCAL,
    suites: { knobs: {
      'suite.yaml': `description: Has one parameter of each type.
timeout: 60s
phases: [run]
params:
  rows: {type: integer, default: 10, unit: samples, meaning: rows of data}
  scale: {type: number, default: 0.5, meaning: a factor}
  mode: {type: string, default: fast, choices: [fast, slow], meaning: which path}
probe: {}
expectations:
  - when: {}
    allow: [passed]
    claim: none
`,
      'main.py': 'pass\n',
    } },
  });
  const r = await hil(['list', '-i', join(dir, 'devices.yaml'), '--suites', join(dir, 'suites')]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /name\s+timeout\s+expectations\s+params \(default\)\s+description/);
  t.match(r.stdout, /knobs\s+60 s\s+1\s+rows=10 samples, scale=0\.5, mode=fast \(fast\|slow\)\s+Has one parameter/);
  // The project's suites: a suite without params: leaves the column empty.
  const project = await hil(['list', '-i', join(dir, 'devices.yaml')]);
  t.equal(project.code, 0, project.stderr);
  t.match(project.stdout, /memory-ladder\s+300 s\s+\d+\s+step_mb=16 MB, limit_mb=8192 MB\s+Allocates/);
  t.match(project.stdout, /keras-train\s+\d+ s\s+\d+\s+samples=10 samples, units=10 units\s+Trains/);
  t.match(project.stdout, /device-listing\s+\d+ s\s+\d+\s+Prints the TensorFlow version/);
});

t.test('configuration and usage errors exit 2 with positions', async (t) => {
  const dir = t.testdir();
  const broken = inventory(dir, 'devices:\n  - name: x\n    transport: serial\n');
  const r = await hil(['run', '-i', broken]);
  t.equal(r.code, 2);
  t.match(r.stderr, /devices\.yaml:3:16: unknown transport/);
  // A syntax error is shown at the unclosed `[` (5:11), not where the parser gave up (6:1).
  const unclosed = join(t.testdir(), 'devices.yaml');
  writeFileSync(unclosed, 'devices:\n  - name: cap-a\n    transport: local\n    ram_mb: 512\n    tags: [tiny, nightly\narch: amd64\n');
  const syntax = await hil(['run', '-i', unclosed]);
  t.equal(syntax.code, 2);
  t.match(syntax.stderr, /devices\.yaml:5:11: invalid YAML: `\[` \(a flow sequence\) opened here is never closed\n\s+got: "    tags: \[tiny, nightly"/);
  t.notMatch(syntax.stderr, /devices\.yaml:6:1:/);
  const good = inventory(t.testdir(), LOCAL);
  const usage = [
    [['run', '-i', good, '--shard', '3/2'], /--shard[\s\S]*"i\/n"/],
    [['run', '-i', good, '--device', 'nope'], /no device named nope/],
    [['run', '-i', good, '--suites', TEST_SUITES, '--suite', 'nope'], /no suite named nope/],
    [['run', '-i', good, '--concurrency', '0'], /--concurrency[\s\S]*whole number/],
    [['run', '-i', good, '--bogus'], /Unknown option '--bogus'/],
    [['run', '-i', good, '--reporter', 'xml'], /--reporter[\s\S]*allowed: tap/],
    [['list', 'extra'], /unexpected argument/],
    [['check', '-i', join(dir, 'missing.yaml')], /inventory file not found/],
  ] as const;
  for (const [args, message] of usage) {
    const u = await hil([...args]);
    t.equal(u.code, 2, args.join(' '));
    t.match(u.stderr, message, args.join(' '));
  }
});

/** Live processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) found.push(Number(p));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

/**
 * A local capped device running the two-minute `long` suite. Its python is a wrapper
 * that, once `stuck` exists, hangs before starting Python, as a device that stops
 * answering does: the harness's clean-up of the job (which runs the agent's python)
 * then cannot finish.
 */
function hangingDevice(dir: string): { inventory: string; stuck: string; python: string } {
  const stuck = join(dir, 'stuck');
  const python = join(dir, 'python');
  writeFileSync(python, `#!/bin/sh\nif [ -e '${stuck}' ]; then sleep 300; fi\nexec python3 "$@"\n`, { mode: 0o755 });
  const file = inventory(dir, `devices:\n  - { name: cap-a, transport: local, cap_mb: 256, ram_mb: 512, arch: amd64, python: ${JSON.stringify(python)} }\n`);
  return { inventory: file, stuck, python };
}

/** Wait until the `long` job sleeps on cap-a; a run that ends first fails at once, with its output. */
async function untilSleeping(run: HilProcess): Promise<void> {
  // Generous: on a busy machine, starting the controller, the device's checks and the agent can take minutes.
  await waitFor(
    'the long job to start sleeping',
    () => {
      if (run.child.exitCode !== null) throw new Error(`hil run ended (${run.child.exitCode}) before the job slept:\n${run.stderr()}`);
      return /long\.cap-a: phase sleep/.test(run.stderr());
    },
    300_000,
  );
}

t.test('one Ctrl-C: the running job is stopped and recorded, run.json says the clean-up was waited for', async (t) => {
  const dir = t.testdir();
  const device = hangingDevice(dir);
  const out = join(dir, 'runs');
  // Leases of this test's devices only, so runs elsewhere on this host holding a `cap-a` do not interfere.
  const leases = { PI_HIL_LEASES: join(dir, 'leases') };
  const run = startHil(['run', '-i', device.inventory, '--suites', TEST_SUITES, '--suite', 'long', '--out', out, '--no-report'], leases);
  t.teardown(() => void run.child.kill('SIGKILL'));
  await untilSleeping(run);
  run.child.kill('SIGINT');
  const { code } = await run.done;
  t.equal(code, 130, run.stderr());
  const runDir = onlyRunDir(out);
  const meta = readMeta(runDir);
  t.equal(meta.exitCode, 130);
  t.equal(meta.interrupted, 'SIGINT');
  t.type(meta.endedAt, 'string');
  t.same(meta.interruption, { signals: ['SIGINT'], remoteCleanup: 'waited', unfinishedJobs: [] });
  const records = readRecords(runDir);
  t.same(records.map((r) => r.jobId), ['long.cap-a'], 'the stopped job has its record');
  t.match(records[0]?.reason, /interrupted|SIGINT/);
});

t.test('a second Ctrl-C exits at once, and run.json says what happened', async (t) => {
  const dir = t.testdir();
  const device = hangingDevice(dir);
  const out = join(dir, 'runs');
  const leases = { PI_HIL_LEASES: join(dir, 'leases') };
  const run = startHil(['run', '-i', device.inventory, '--suites', TEST_SUITES, '--suite', 'long', '--out', out, '--no-report'], leases);
  t.teardown(() => {
    run.child.kill('SIGKILL');
    for (const pid of processesMentioning(device.python)) process.kill(pid, 'SIGKILL');
  });
  await untilSleeping(run);
  writeFileSync(device.stuck, '');
  run.child.kill('SIGINT');
  await waitFor('the first SIGINT to be taken', () => /SIGINT: starting no new jobs/.test(run.stderr()), 10_000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(run.child.exitCode, null, 'after one Ctrl-C the controller still waits for the clean-up on the device');

  const sent = Date.now();
  run.child.kill('SIGINT');
  const { code } = await run.done;
  const tookMs = Date.now() - sent;
  t.equal(code, 130, run.stderr());
  t.ok(tookMs < 10_000, `exited ${tookMs} ms after the second SIGINT, without waiting for the device`);
  t.match(run.stderr(), /second SIGINT: abandoning the clean-up on the devices; 1 running job\(s\) left without a record \(long\.cap-a\)/);

  const runDir = onlyRunDir(out);
  const meta = readMeta(runDir);
  t.equal(meta.exitCode, 130);
  t.equal(meta.interrupted, 'SIGINT');
  t.type(meta.endedAt, 'string');
  t.same(meta.interruption, { signals: ['SIGINT', 'SIGINT'], remoteCleanup: 'abandoned', unfinishedJobs: ['long.cap-a'] });
  t.same(readRecords(runDir), [], 'the abandoned job has no record, as run.json says');
  // Closing the connection still ran: the device's cgroup, with the payload and the hung python, is gone.
  t.same(processesMentioning(device.python), [], 'no process of the hung clean-up is left');

  // The device's lease went back too: the next run gets the device at once, not after the lease's ttl.
  rmSync(device.stuck);
  const next = await hil(['run', '-i', device.inventory, '--suites', TEST_SUITES, '--suite', 'quick', '--out', join(dir, 'next'), '--no-report'], leases);
  t.equal(next.code, 0, next.stderr);
  t.equal(readRecords(onlyRunDir(join(dir, 'next')))[0]?.outcome, 'passed', 'the next run had the device');
});

t.test('hil check --inventory-only validates without touching devices', async (t) => {
  const r = await hil(['check', '-i', inventory(t.testdir(), LOCAL), '--inventory-only']);
  t.equal(r.code, 0);
  t.match(r.stdout, /2 device\(s\), valid/);
});

t.test('hil check on a local capped device reports its facts', async (t) => {
  const r = await hil(['check', '-i', inventory(t.testdir(), LOCAL), '--device', 'cap-a']);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /cap-a\s+yes\s+[\d.]+ s\s+3\.\d+\.\d+\s+\d+ MB\s+\d+ MB\s+.*x86_64 64-bit amd64.*emulated/);
});

t.test('plain progress prints one line per event', async (t) => {
  const lines: string[] = [];
  const out = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  const p = createProgress(['pi'], out);
  p.observe({ kind: 'job-start', device: 'pi', jobId: 'keras-train.pi' });
  p.observe({ kind: 'phase', device: 'pi', jobId: 'keras-train.pi', phase: 'fit' });
  p.observe({ kind: 'job-end', device: 'pi', jobId: 'keras-train.pi', outcome: 'oom_killed', reason: 'SIGKILL with kernel OOM line', wallMs: 1500, peakRssKb: 204800 });
  p.stop();
  t.equal(lines.length, 3);
  t.match(lines[2], /pi keras-train\.pi: oom_killed in 1\.5 s, peak 200 MB \(SIGKILL with kernel OOM line\)\n$/);
});

t.test('live progress redraws one line per device on a terminal', async (t) => {
  let screen = '';
  const out = { isTTY: true, columns: 80, write: (s: string) => (screen += s) } as unknown as NodeJS.WriteStream;
  const p = createProgress(['pi-a', 'pi-b'], out);
  p.observe({ kind: 'job-start', device: 'pi-a', jobId: 'keras-train.pi-a' });
  p.observe({ kind: 'job-end', device: 'pi-a', jobId: 'keras-train.pi-a', outcome: 'passed', reason: 'exit 0', wallMs: 1000, peakRssKb: null });
  p.stop();
  t.match(screen, /\x1b\[2A\x1b\[0J/, 'moves up over the live block to redraw it');
  t.match(screen, /pi-a  keras-train\.pi-a: passed in 1\.0 s \(exit 0\)/);
  t.match(screen, /pi-b\s+waiting/);
});

t.test('tables pad columns to the widest cell', async (t) => {
  t.equal(table(['a', 'bb'], [['xxx', 'y']]), 'a    bb\n---  --\nxxx  y\n');
});

t.test('exit codes: unmet expectation 1, infra only 3, all met 0', async (t) => {
  const base = { device: DEVICES.pi4b4g, suite: 'keras-train', reason: 'r', peakMb: 1, payloadMs: 1, startMin: 0 } as const;
  const met = makeRecord('r', { ...base, outcome: 'passed', allowed: ['passed'] });
  const unmet = makeRecord('r', { ...base, outcome: 'oom_killed', allowed: ['passed'] });
  const infra = makeRecord('r', { ...base, outcome: 'infra_error', allowed: ['passed'] });
  t.equal(exitCodeFor([met]), 0);
  t.equal(exitCodeFor([met, infra]), 3);
  t.equal(exitCodeFor([met, infra, unmet]), 1);
});
