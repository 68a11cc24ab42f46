/**
 * The health gate for real: the agent's reading of a capped local device reads its
 * memory under the cap, its disk and clock; a device below what its suites
 * need, or throttled right now, runs no job and every job says why.
 */
import t from 'tap';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkHealth, judgeHealth, type HealthReading } from '../harness/rack/health.ts';
import { describeThrottled, throttledNow, throttledSinceBoot, timingTrust } from '../harness/rack/throttle.ts';
import { LocalTransport } from '../harness/transport/local.ts';
import { hil, onlyRunDir, readRecords, TEST_SUITES } from './helpers/hil.ts';
import { PYTHON } from './agent-fixtures.ts';

t.setTimeout(240_000);

t.test('throttle bits, now and since boot', async (t) => {
  t.same(throttledNow(0x50005), ['under-voltage', 'throttled']);
  t.same(throttledSinceBoot(0x50005), ['under-voltage', 'throttled']);
  t.same(throttledNow(0x80000), []);
  t.same(throttledSinceBoot(0x80000), ['soft temperature limit']);
  t.equal(describeThrottled(0x50005), '0x50005: under-voltage, throttled now');
  t.equal(describeThrottled(0x80000), '0x80000: soft temperature limit since boot, not now');
  t.equal(describeThrottled(0), '0x0: never throttled since boot');
});

t.test('the judgement, line by line', async (t) => {
  const fit: HealthReading = { epochMs: 0, memAvailKb: 600 * 1024, memCapped: true, diskFreeKb: 900 * 1024, diskError: null, throttled: 0x50000, throttledUnavailable: null };
  t.same(judgeHealth(fit, { ramMb: 512, diskMb: 100 }, 1000), { ok: true, problems: [] }, 'throttled since boot only is not a reason to refuse');
  const bad = judgeHealth({ ...fit, memAvailKb: 100 * 1024, diskFreeKb: 10 * 1024, throttled: 0x1 }, { ramMb: 512, diskMb: 100 }, 6 * 60_000);
  t.equal(bad.ok, false);
  t.same(bad.problems, [
    "clock 360 s off the controller's (allowed: within 5 min)",
    '100 MB memory free under its cap, the suites need 512 MB',
    '10 MB disk free in the workdir, the suites need 100 MB',
    'throttled right now (0x1: under-voltage now)',
  ]);
});

t.test("the gate's reading on a real capped device", async (t) => {
  const local = new LocalTransport({ name: 'gate-256', capMb: 256 });
  t.teardown(() => local.close());
  const root = join(t.testdir(), 'work');
  const report = await checkHealth(local, PYTHON, root, { ramMb: 64, diskMb: 1 });
  t.equal(report.ok, true, report.problems.join('; '));
  t.equal(report.reading.memCapped, true, 'the cgroup cap is seen');
  t.ok((report.reading.memAvailKb ?? Infinity) <= 256 * 1024, `memory free under the cap: ${report.reading.memAvailKb} KiB`);
  t.ok(Math.abs(report.clockSkewMs) < 5000, `same clock: ${report.clockSkewMs} ms`);
  t.equal(report.reading.throttled, null, 'no vcgencmd on this machine');
  t.match(report.reading.throttledUnavailable ?? '', /vcgencmd/, 'and it says so instead of guessing');
  const greedy = await checkHealth(local, PYTHON, root, { ramMb: 4096, diskMb: 1 });
  t.equal(greedy.ok, false);
  t.match(greedy.problems.join(), /MB memory free under its cap, the suites need 4096 MB/);
});

t.test('a throttled device runs no job; each job is infra_error with the reason', async (t) => {
  const dir = t.testdir();
  // No Pi here: a vcgencmd that answers as an under-volted Pi does, found first on PATH.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'vcgencmd'), '#!/bin/sh\n[ "$1" = get_throttled ] && echo throttled=0x50005\n');
  chmodSync(join(bin, 'vcgencmd'), 0o755);
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(inventory, `devices:\n  - { name: gate-local, transport: local, cap_mb: 512, ram_mb: 512, arch: amd64, python: ${PYTHON} }\n`);
  const out = join(dir, 'runs');
  const r = await hil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'quick,sleepy', '--out', out, '--no-report'], {
    PATH: `${bin}:${process.env['PATH'] ?? ''}`,
  });
  t.equal(r.code, 3, `only infrastructure failed\n${r.stderr}`);
  const records = readRecords(onlyRunDir(out));
  t.equal(records.length, 2, 'every planned job has its record');
  for (const x of records) {
    t.equal(x.outcome, 'infra_error', x.jobId);
    t.match(x.reason, /failed the health gate: throttled right now \(0x50005: under-voltage, throttled now\)/);
  }
});

t.test('timing trust from the readings around the payload', async (t) => {
  t.same(timingTrust(null, null), { trusted: true, untrustedBecause: null }, 'no reading is no reason to distrust');
  t.same(timingTrust(0x0, 0x0), { trusted: true, untrustedBecause: null });
  t.same(timingTrust(0x50000, 0x50000), { trusted: true, untrustedBecause: null }, 'throttled before the job, not during it');
  t.same(timingTrust(0x0, 0x50000), { trusted: false, untrustedBecause: 'under-voltage, throttled during the job (before 0x0, after 0x50000)' }, 'it came and went during the job');
  t.equal(timingTrust(0x4, 0x0).trusted, false, 'throttled when the payload started');
});

t.test('a Pi throttled during a job: its record says the times are not to be compared', async (t) => {
  const dir = t.testdir();
  // A vcgencmd that answers as a Pi does that was under-volted while the job ran: clean
  // until the payload has written its stamp (the stamp suite does so as it ends), the
  // since-boot bits set after.
  const bin = join(dir, 'bin');
  const work = join(dir, 'work');
  mkdirSync(bin);
  writeFileSync(join(bin, 'vcgencmd'), `#!/bin/sh\nif [ -e ${work}/stamps.log ]; then echo throttled=0x50000; else echo throttled=0x0; fi\n`);
  chmodSync(join(bin, 'vcgencmd'), 0o755);
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(inventory, `devices:\n  - { name: warm-pi, transport: local, cap_mb: 512, ram_mb: 512, arch: amd64, python: ${PYTHON}, workdir: ${work} }\n`);
  const out = join(dir, 'runs');
  const r = await hil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'stamp', '--out', out], { PATH: `${bin}:${process.env['PATH'] ?? ''}` });
  t.equal(r.code, 0, r.stderr);
  const [x] = readRecords(onlyRunDir(out));
  t.equal(x?.outcome, 'passed', 'throttling changes no outcome');
  t.equal(x?.timing.trusted, false);
  t.equal(x?.timing.untrustedBecause, 'under-voltage, throttled during the job (before 0x0, after 0x50000)');
  t.same(x?.throttle?.before.throttled, 0);
  t.same(x?.throttle?.after.throttled, 0x50000);
  const allure = readdirSync(join(onlyRunDir(out), 'allure-results')).filter((f) => f.endsWith('-result.json'));
  const result = JSON.parse(readFileSync(join(onlyRunDir(out), 'allure-results', allure[0]!), 'utf8')) as { labels: { name: string; value: string }[]; description: string };
  t.ok(result.labels.some((l) => l.name === 'tag' && l.value === 'throttled'), 'Allure tags the job');
  t.match(result.description, /Times not comparable: under-voltage, throttled during the job/);
});

t.test('off a Pi, vcgencmd is listed as unavailable, never guessed', async (t) => {
  const dir = t.testdir();
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(inventory, `devices:\n  - { name: plain-host, transport: local, cap_mb: 512, ram_mb: 512, arch: amd64, python: ${PYTHON} }\n`);
  const out = join(dir, 'runs');
  const r = await hil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'quick', '--out', out, '--no-report']);
  t.equal(r.code, 0, r.stderr);
  const [x] = readRecords(onlyRunDir(out));
  t.equal(x?.timing.trusted, true);
  t.equal(x?.throttle?.before.throttled, null);
  t.match(x?.throttle?.unavailable ?? '', /vcgencmd not found/);
});
