/**
 * An emulated Pi set up like a stock Raspberry Pi OS: its kernel boots with
 * `cgroup_disable=memory` (as Pi OS kernels do) and jobs run as the
 * unprivileged login user, who cannot read the kernel log with dmesg. An
 * anonymous-memory runaway on a small guest must still end `oom_killed`, proved
 * by the /proc/vmstat counter (and the journal's kernel lines where the user may
 * read them), with the memory cgroup and dmesg listed as unavailable rather
 * than silently missing. Runs the real `hil run` on a real QEMU guest; a missing
 * QEMU or image fails the test, it never skips.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_APPEND } from '../harness/transport/qemu/config.ts';
import { hil, onlyRunDir, PROJECT, readRecords } from './helpers/hil.ts';
import { ensureImage, qemuPidsMentioning } from './qemu-fixtures.ts';

t.setTimeout(3_600_000);

/** What a Pi OS kernel adds to the command line, and what the README tells users to add. */
const STOCK_PIOS_APPEND = `${DEFAULT_APPEND} cgroup_disable=memory`;

// Plain Python, no NumPy: `b'\x01' * n` writes every byte, so each block is anonymous memory really in use.
const RUNAWAY = `import os
print("@@hil value uid %d" % os.getuid(), flush=True)
print("@@hil phase grow", flush=True)
blocks = []
while True:
    blocks.append(b"\\x01" * (16 * 1024 * 1024))
`;

const SUITE = `description: Allocates anonymous memory until the kernel's OOM killer stops it.
timeout: 10m
phases: [grow]
values:
  uid: the user id the payload ran as
probe: {}
expectations:
  - when: {}
    allow: [oom_killed]
    claim: a runaway on a stock Pi OS setup is OOM-killed, and the harness proves it without a memory cgroup or dmesg
`;

t.test('a stock-Pi-OS-like guest (no memory cgroup, unprivileged user) classifies a runaway as oom_killed', async (t) => {
  const qemu = spawnSync('qemu-system-arm', ['--version'], { encoding: 'utf8' });
  if (qemu.status !== 0) throw new Error(`qemu-system-arm is not runnable here (${qemu.error?.message ?? qemu.stderr}); install QEMU, this test does not skip`);
  await ensureImage('armhf');

  const dir = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-stock-pios-'));
  const state = path.join(dir, 'state');
  mkdirSync(path.join(dir, 'suites', 'runaway'), { recursive: true });
  writeFileSync(path.join(dir, 'suites', 'runaway', 'suite.yaml'), SUITE);
  writeFileSync(path.join(dir, 'suites', 'runaway', 'main.py'), RUNAWAY);
  const inventory = path.join(dir, 'devices.yaml');
  writeFileSync(
    inventory,
    `devices:
  - name: stock-pios
    transport: qemu
    profile: tiny-256-armhf
    append: ${JSON.stringify(STOCK_PIOS_APPEND)}
    user: pi
    timeouts: { boot: 10m, connect: 2m }
`,
  );
  const out = path.join(dir, 'runs');
  t.teardown(() => {
    for (const pid of qemuPidsMentioning(state)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const run = await hil(['run', '-i', inventory, '--suites', path.join(dir, 'suites'), '--out', out, '--no-report'], { PI_HIL_STATE: state });
  const [record] = readRecords(onlyRunDir(out));
  if (!record) throw new Error(`no record was written\n${run.stderr}`);
  t.equal(record.outcome, 'oom_killed', record.outcome === 'oom_killed' ? record.reason : `${record.reason}\n${run.stderr.slice(-3000)}`);
  t.equal(run.code, 0, 'the expectation (oom_killed) is met');
  t.equal(record.exit.signal, 'KILL');
  const uid = record.values['uid'];
  t.ok(typeof uid === 'number' && uid > 0, `the payload ran as an unprivileged user (uid ${String(uid)})`);

  // The guest is what it claims: no memory cgroup, so no cgroup counter to prove the kill.
  t.equal(record.facts?.memoryCgroup, 'none', 'cgroup_disable=memory leaves no memory cgroup');
  t.ok(record.unavailable.some((u) => u.source === 'cgroup'), `the cgroup is listed as unavailable: ${JSON.stringify(record.unavailable)}`);
  t.notOk(record.evidence.some((e) => e.source === 'cgroup_oom_kill'), 'no cgroup counter is claimed');

  const vmstat = record.evidence.find((e) => e.source === 'vmstat_oom_kill');
  t.ok(vmstat, `the /proc/vmstat oom_kill counter is evidence: ${JSON.stringify(record.evidence)}`);
  const counts = (vmstat?.detail.match(/\d+/g) ?? []).map(Number);
  t.ok(counts.length >= 2 && counts[counts.length - 1]! > counts[counts.length - 2]!, `the counter rose: ${vmstat?.detail}`);

  // Debian's kernel, like Pi OS's, restricts dmesg to root: the agent must say it could not read it.
  if (record.facts?.dmesgRestrict === 1) {
    const dmesg = record.unavailable.find((u) => u.source === 'dmesg');
    t.ok(dmesg, 'dmesg is listed as unavailable for the unprivileged user');
    t.match(dmesg?.why ?? '', /dmesg_restrict=1/);
  } else {
    t.comment(`dmesg_restrict is ${String(record.facts?.dmesgRestrict)} on this guest: dmesg was readable`);
  }
  // The login user is in `adm`, as on Pi OS, so the journal may carry the kernel's lines.
  const kernel = record.evidence.filter((e) => e.source === 'kernel_log');
  const pid = record.agent.payloadPid;
  for (const line of kernel) t.match(line.detail, new RegExp(`\\b${pid}\\b`), `the kernel line names the payload's pid ${pid}`);
  if (kernel.length === 0) {
    t.ok(record.unavailable.some((u) => u.source === 'journalctl'), 'without kernel lines, the journal is listed as unavailable');
  } else {
    t.match(record.reason, /kernel OOM line/, 'with a kernel line the reason cites it');
    // Read from the journal (`<host> kernel: …`) where dmesg was closed to the user.
    if (record.unavailable.some((u) => u.source === 'dmesg')) for (const line of kernel) t.match(line.detail, / kernel: /, 'a journal line');
  }

  t.same(qemuPidsMentioning(state), [], 'the VM is gone after the run');
});

t.test('the README tells how to make a QEMU device behave like stock Pi OS, with the line this test boots', async (t) => {
  const readme = readFileSync(path.join(PROJECT, 'README.md'), 'utf8');
  t.ok(readme.includes(`append: "${STOCK_PIOS_APPEND}"`), `the README's append line is the default line plus cgroup_disable=memory: ${STOCK_PIOS_APPEND}`);
  t.match(readme, /user: pi/);
});
