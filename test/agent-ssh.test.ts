/**
 * The agent over real SSH: real OpenSSH servers on loopback (one of them
 * memory-capped), the real SshTransport, real processes. Cutting the SSH
 * connection mid-run by killing the session's sshd process still gives the
 * true outcome, collected after reconnecting.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalSshd, type LocalSshdDevice } from '../scripts/lib/local-sshd.ts';
import { descendantsOf } from '../scripts/lib/proc.ts';
import { SshTransport } from '../harness/transport/ssh.ts';
import { runPlanted, survivors } from './agent-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hil-ssh-'));
const rack = await startLocalSshd({ dir, count: 2, prefix: 'agent', capsMb: [null, 160] });
t.teardown(() => {
  rack.stop();
  rmSync(dir, { recursive: true, force: true });
});

function transportFor(d: LocalSshdDevice): SshTransport {
  const ssh = new SshTransport(
    {
      name: d.name,
      host: '127.0.0.1',
      port: d.port,
      user: rack.user,
      auth: { identityFile: rack.identityFile, useAgent: false, passwordEnv: null },
      hostKey: { fingerprint: d.hostKeyFingerprint, knownHosts: null },
    },
    { acceptNew: false, knownHostsFile: join(dir, 'known_hosts'), connectTimeoutMs: 15_000 },
  );
  t.teardown(() => ssh.close());
  return ssh;
}

const [plain, capped] = rack.devices;
if (!plain || !capped) throw new Error('the sshd rack did not start two devices');

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Direct children of the listening sshd: one per live connection. */
function sessionProcesses(listener: number): number[] {
  const out: number[] = [];
  for (const line of readFileSync('/proc/' + listener + '/task/' + listener + '/children', 'utf8').split(/\s+/)) {
    if (/^\d+$/.test(line)) out.push(Number(line));
  }
  return out;
}

t.test('a run over SSH: phases, values, facts', async (t) => {
  const ssh = transportFor(plain);
  const run = await runPlanted(
    ssh,
    'import hil_phase, time\nhil_phase.phase("one")\nhil_phase.value("k", "v")\ntime.sleep(0.2)\n',
    { facts: true },
  );
  t.equal(run.outcome, 'passed', run.reason);
  t.same(run.phases.map((p) => p.name), ['one']);
  t.same(run.values, { k: 'v' });
  t.ok(run.facts && run.facts.machine.length > 0, `facts over SSH: ${run.facts?.machine}, ${run.facts?.kernel}`);
  t.ok((run.memory.peakRssKb ?? 0) > 1000, `peak ${run.memory.peakRssKb} KiB`);
});

t.test('over SSH into a capped device: past the cap → oom_killed', async (t) => {
  const ssh = transportFor(capped);
  const run = await runPlanted(ssh, 'b = bytearray(b"\\x01") * (400 * 1024 * 1024)\n');
  t.equal(run.outcome, 'oom_killed', run.reason);
  // The device user is unprivileged, as a Pi's is: the kernel log may be closed to it (dmesg_restrict),
  // and then the counters carry the proof, and the record says which source was unavailable and why.
  const kernelLine = run.logs.kernelOomLines.some((l) => l.includes(`Killed process ${run.pid}`));
  const counterRise = run.evidence.some((e) => e.source === 'vmstat_oom_kill' || e.source === 'cgroup_oom_kill');
  t.ok(kernelLine || counterRise, `kernel line or counter rise: ${JSON.stringify(run.evidence)}`);
  if (!kernelLine) t.ok(run.unavailable.some((u) => u.source === 'dmesg'), `dmesg unavailability recorded: ${JSON.stringify(run.unavailable)}`);
});

t.test('cutting the SSH connection mid-run still gives the true outcome', async (t) => {
  const before = new Set(sessionProcesses(plain.pid)); // other tests' connections stay up
  const ssh = transportFor(plain);
  let cut: number[] = [];
  const run = await runPlanted(
    ssh,
    'import hil_phase, sys, time\nhil_phase.phase("work")\ntime.sleep(2)\nsys.exit(3)\n',
    {
      onEvent: (e) => {
        if (e.type === 'phase' && cut.length === 0) {
          cut = sessionProcesses(plain.pid).filter((p) => !before.has(p));
          // The session is sshd's privileged monitor plus its unprivileged child that holds the socket: kill both.
          const sshdTree = cut.flatMap((p) => [p, ...descendantsOf(p).filter((d) => comm(d) === 'sshd')]);
          for (const pid of sshdTree) process.kill(pid, 'SIGKILL');
        }
      },
    },
  );
  t.equal(cut.length, 1, `killed this connection's sshd process ${cut.join(',')}`);
  t.ok(run.reattached >= 1, `re-attached ${run.reattached} time(s)`);
  t.equal(run.outcome, 'failed', run.reason);
  t.equal(run.exit.code, 3, 'the true exit code, collected after reconnecting');
  t.same(run.phases.map((p) => p.name), ['work']);
  t.equal(run.sampleEvents.received, run.sampleEvents.written, `every sample event once: ${JSON.stringify(run.sampleEvents)}`);
  t.same(survivors(run.pid, run.workdir), [], 'nothing of the job is left');
});
