/**
 * `hil run` against a rack of real OpenSSH servers on loopback: parallelism,
 * a device that dies mid-run, a changed host key, and Ctrl-C.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalSshd } from '../scripts/lib/local-sshd.ts';
import { descendantsOf, processesUnder } from '../scripts/lib/proc.ts';
import { hil, onlyRunDir, readMeta, readRecords, startHil, TEST_SUITES, waitFor } from './helpers/hil.ts';

t.setTimeout(600_000);

const common = (inventory: string, out: string): string[] => ['run', '-i', inventory, '--suites', TEST_SUITES, '--out', out, '--no-report'];

t.test('4 devices run in parallel and store 4 results', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 4 });
  t.teardown(() => rack.stop());
  const out = join(rack.dir, 'runs');
  const r = await hil([...common(rack.inventoryFile, out), '--suite', 'sleepy', '--concurrency', '4']);
  t.equal(r.code, 0, r.stderr);
  const runDir = onlyRunDir(out);
  const records = readRecords(runDir);
  t.equal(records.length, 4);
  t.same(records.map((x) => x.outcome), ['passed', 'passed', 'passed', 'passed']);
  t.same(new Set(records.map((x) => x.device.name)), new Set(['sshd-1', 'sshd-2', 'sshd-3', 'sshd-4']));
  // Parallel means every job was running at one shared instant...
  const latestStart = Math.max(...records.map((x) => Date.parse(x.timing.startedAt)));
  const earliestEnd = Math.min(...records.map((x) => Date.parse(x.timing.endedAt)));
  t.ok(latestStart < earliestEnd, 'all four jobs overlapped');
  // ...and the run took about one job's time, not the sum of four (a ratio in one run, not a timing target).
  const meta = readMeta(runDir);
  const runWall = Date.parse(meta.endedAt!) - Date.parse(meta.startedAt);
  const sum = records.reduce((s, x) => s + x.timing.wallMs, 0);
  t.ok(runWall < 0.6 * sum, `run wall ${runWall} ms vs sum of jobs ${sum} ms`);
  t.equal(meta.exitCode, 0);
  t.same(meta.jobs.sort(), records.map((x) => x.jobId).sort());
  for (const x of records) {
    t.equal(x.exit.code, 0);
    t.ok(x.memory.peakRssKb !== null && x.memory.peakRssKb > 1000, 'a peak was measured');
    t.same(x.phases.map((p) => p.name), ['sleep']);
    t.equal(x.expectation?.verdict, 'met');
  }
  // Workdirs are removed after each job unless --keep.
  for (const d of rack.devices) {
    const work = join(rack.workRoot, d.name, meta.runId);
    t.same(existsSync(work) ? readdirSync(work) : [], [], `${d.name} workdir cleaned`);
  }
});

t.test('a device that dies mid-run is infra_error; the other three pass', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 4, defaults: { timeouts: { connect: '3s' } } });
  t.teardown(() => rack.stop());
  const out = join(rack.dir, 'runs');
  const run = startHil([...common(rack.inventoryFile, out), '--suite', 'medium']);
  await waitFor('sshd-2 to start its payload', () => /sshd-2 medium\.sshd-2: phase sleep/.test(run.stderr()));
  rack.kill('sshd-2');
  const { code } = await run.done;
  t.equal(code, 3, 'exit 3: infrastructure failed, no product regression');
  const records = readRecords(onlyRunDir(out));
  t.equal(records.length, 4);
  const byDevice = Object.fromEntries(records.map((x) => [x.device.name, x]));
  t.equal(byDevice['sshd-2']?.outcome, 'infra_error', byDevice['sshd-2']?.reason ?? 'no record');
  t.equal(byDevice['sshd-2']?.expectation?.verdict, 'infra');
  for (const name of ['sshd-1', 'sshd-3', 'sshd-4']) t.equal(byDevice[name]?.outcome, 'passed', name);
});

t.test('a device whose sshd refuses connections is given up after its connect timeout, not the job deadline', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1, defaults: { timeouts: { connect: '3s' } } });
  t.teardown(() => rack.stop());
  const out = join(rack.dir, 'runs');
  // `long` sleeps two minutes under a 5-minute deadline: only a give-up on refusal ends it early.
  const run = startHil([...common(rack.inventoryFile, out), '--suite', 'long']);
  await waitFor('sshd-1 to start its payload', () => /sshd-1 long\.sshd-1: phase sleep/.test(run.stderr()));
  rack.kill('sshd-1');
  const { code } = await run.done;
  t.equal(code, 3, 'exit 3: only infrastructure failed');
  const [record] = readRecords(onlyRunDir(out));
  t.equal(record?.outcome, 'infra_error', record?.reason ?? 'no record');
  t.match(record?.reason ?? '', /refused/);
  t.ok((record?.timing.wallMs ?? Infinity) < 60_000, `given up after ${record?.timing.wallMs} ms, far inside the 5-minute deadline`);
  t.notMatch(run.stderr(), /MaxListenersExceededWarning/, 'retries leave no abort listeners behind');
});

t.test('an unknown key is refused, --accept-new records it, a changed key is always refused', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 1, pinHostKeys: false });
  t.teardown(() => rack.stop());
  const env = { PI_HIL_STATE: join(rack.dir, 'state') };
  const check = (...extra: string[]) => hil(['check', '-i', rack.inventoryFile, ...extra], env);

  const unknown = await check();
  t.equal(unknown.code, 3, 'an unknown key is refused');
  t.match(unknown.stdout, /unknown host key/);

  const accepted = await check('--accept-new');
  t.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
  t.match(readFileSync(join(env.PI_HIL_STATE, 'known_hosts'), 'utf8'), /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /);
  t.match(accepted.stdout, /sshd-1\s+yes/);

  const old = rack.devices[0]!.hostKeyFingerprint;
  await rack.restart('sshd-1', { newHostKey: true });
  const fresh = rack.devices[0]!.hostKeyFingerprint;
  t.not(fresh, old, 'the device has a new host key');
  for (const extra of [[], ['--accept-new']]) {
    const changed = await check(...extra);
    t.equal(changed.code, 3, `changed key refused ${extra.join(' ')}`);
    t.match(changed.stdout, /HOST KEY CHANGED/);
    t.ok(changed.stdout.includes(fresh) && changed.stdout.includes(old), 'both fingerprints are printed');
  }
});

t.test('SIGINT: no new jobs, remote jobs killed, finished results kept, exit 130', async (t) => {
  const rack = await startLocalSshd({ dir: t.testdir(), count: 2 });
  t.teardown(() => rack.stop());
  const out = join(rack.dir, 'runs');
  const run = startHil([...common(rack.inventoryFile, out), '--suite', 'quick,long,sleepy']);
  const runDir = (): string | null => (existsSync(out) && readdirSync(out).length === 1 ? onlyRunDir(out) : null);
  await waitFor('both quick jobs to finish and both long jobs to start', () => {
    const dir = runDir();
    return dir !== null && readRecords(dir).length === 2 && (run.stderr().match(/long\.sshd-\d: phase sleep/g) ?? []).length === 2;
  });
  const payloads = rack.devices.flatMap((d) => processesUnder(join(rack.workRoot, d.name)));
  t.ok(payloads.length > 0, 'the long payloads are running on the devices');
  const controllerChildren = descendantsOf(run.child.pid!);
  run.child.kill('SIGINT');
  const { code } = await run.done;
  t.equal(code, 130);
  const dir = runDir()!;
  const records = readRecords(dir);
  const outcomes = Object.fromEntries(records.map((x) => [x.jobId, x.outcome]));
  t.equal(outcomes['quick.sshd-1'], 'passed');
  t.equal(outcomes['quick.sshd-2'], 'passed');
  t.notOk('sleepy.sshd-1' in outcomes || 'sleepy.sshd-2' in outcomes, 'no job started after the interrupt');
  for (const x of records.filter((r) => r.suite === 'long')) t.match(x.reason, /interrupted|SIGINT/);
  t.equal(readMeta(dir).interrupted, 'SIGINT');
  t.equal(readMeta(dir).exitCode, 130);
  // Nothing of the run is left: no payload on the devices, no child of the controller.
  const left = rack.devices.flatMap((d) => processesUnder(join(rack.workRoot, d.name)));
  t.same(left, [], 'no remote process left');
  t.same(processesUnder(readMeta(dir).runId), [], 'no process mentions the run id');
  t.same(controllerChildren.filter((pid) => existsSync(`/proc/${pid}`)), [], 'no child process of the controller is left');
});
