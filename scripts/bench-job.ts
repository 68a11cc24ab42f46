/**
 * Where one job's time goes: every exec, upload and connect of a `quick` job,
 * timed at the transport, on a local sshd device or a warm emulated Pi, beside
 * the floor (`ssh device python3 main.py` on the same connection). On sshd
 * devices the device's sshd is traced (strace -f -e execve), so the processes
 * a job starts are counted, not guessed. Prints Markdown.
 *
 * With --baseline REF, the agent of that git commit (its harness/ exported to
 * a scratch folder) runs beside this one, job by job alternating, so what the
 * changes since bought is measured in the same run.
 *
 *   npx tsx scripts/bench-job.ts [--target sshd|armhf] [--jobs 5] [--baseline REF]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runOnDevice as runNow, type AgentRun } from '../harness/agent/client.ts';
import { execSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { DeviceFacts } from '../harness/results/record.ts';
import { projectDir } from '../harness/host/paths.ts';
import { DEFAULT_TIMEOUTS } from '../harness/inventory/load.ts';
import { checkHealth } from '../harness/rack/health.ts';
import { acquireLease, deviceLeaseSite, hostLeaseSite, thisHolder } from '../harness/rack/lease.ts';
import { probeScript } from '../harness/suite/probe.ts';
import { QemuTransport } from '../harness/transport/qemu.ts';
import { shellJoin } from '../harness/transport/quote.ts';
import { SshTransport } from '../harness/transport/ssh.ts';
import type { ExecOptions, ExecResult, Transport } from '../harness/transport/transport.ts';
import { startLocalSshd } from './lib/local-sshd.ts';
import { descendantsOf } from './lib/proc.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({ options: { target: { type: 'string', default: 'sshd' }, jobs: { type: 'string', default: '5' }, baseline: { type: 'string' } } });
const JOBS = Number(values.jobs);
const root = projectDir();
const SUITE = join(root, 'test', 'fixtures', 'suites', 'quick');

interface Step {
  op: string;
  what: string;
  ms: number;
}

/** A transport that times every call it passes on. */
class Timed implements Transport {
  steps: Step[] = [];
  constructor(private readonly inner: Transport) {}
  get describe(): string {
    return this.inner.describe;
  }
  get console(): Transport['console'] {
    return this.inner.console;
  }
  get boot(): Transport['boot'] {
    return this.inner.boot;
  }
  private async time<T>(op: string, what: string, f: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      this.steps.push({ op, what, ms: performance.now() - t });
    }
  }
  connect(signal?: AbortSignal): Promise<void> {
    return this.time('connect', '', () => this.inner.connect(signal));
  }
  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    return this.time('exec', label(command), () => this.inner.exec(command, options));
  }
  writeFile(p: string, data: Buffer | string, mode?: number): Promise<void> {
    return this.time('upload', p.split('/').pop() ?? p, () => this.inner.writeFile(p, data, mode));
  }
  readFile(p: string): Promise<Buffer> {
    return this.time('download', p, () => this.inner.readFile(p));
  }
  mkdir(p: string, mode?: number): Promise<void> {
    return this.time('mkdir', '', () => this.inner.mkdir(p, mode));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A short name for an exec: the agent's subcommand, or the command's first word. */
function label(command: string): string {
  const m = /(start|attach|kill|health|acquire|release|renew|run)\b/.exec(command.slice(-4000));
  if (command.includes('.hil-monitor.py') || command.includes('hil-agent')) return `agent ${m?.[1] ?? ''}`.trim();
  if (/\bacquire\b|\brelease\b|\brenew\b/.test(command)) return `lease ${m?.[1] ?? ''}`;
  if (command.includes(' health ')) return 'health';
  return command.split(' ')[0]!.replace(/'/g, '').slice(0, 40);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** Trace every process the device's sshd starts, until stop(). */
function traceExecs(pid: number): { stop(): Promise<string[]> } {
  const out = join(mkdtempSync(join(tmpdir(), 'hil-strace-')), 'trace');
  // The session's own sshd processes were forked before the trace: attach to each of them.
  const pids = [pid, ...descendantsOf(pid)].flatMap((p) => ['-p', String(p)]);
  const p: ChildProcess = spawn('strace', ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', out, ...pids], { stdio: 'ignore' });
  return {
    async stop() {
      await sleep(300);
      p.kill('SIGINT');
      await new Promise((r) => p.once('exit', r));
      const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l.includes('execve(') && !l.includes('ENOENT'));
      rmSync(join(out, '..'), { recursive: true, force: true });
      return lines.map((l) => /execve\("([^"]+)"/.exec(l)?.[1] ?? '?');
    },
  };
}

type RunOnDevice = typeof runNow;

/** The agent client of a git commit: its harness/ exported into the project (so its imports resolve), or null. */
async function baselineClient(ref: string): Promise<{ run: RunOnDevice; dispose(): void; sha: string } | null> {
  const sha = execSync(`git rev-parse --short ${ref}`, { cwd: root, encoding: 'utf8' }).trim();
  const dir = join(root, 'scratch', `bench-baseline-${sha}`);
  mkdirSync(dir, { recursive: true });
  execSync(`git archive ${sha} harness | tar -x -C ${dir}`, { cwd: root });
  const mod = (await import(join(dir, 'harness', 'agent', 'client.ts'))) as { runOnDevice: RunOnDevice };
  return { run: mod.runOnDevice, sha, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

async function main(): Promise<void> {
  const baseline = values.baseline ? await baselineClient(values.baseline) : null;
  const dir = mkdtempSync(join(tmpdir(), 'pi-hil-bench-job-'));
  let transport: Transport;
  let python = 'python3';
  let workdirRoot: string;
  let sshdPid: number | null = null;
  let stop = async (): Promise<void> => undefined;
  const standIn = '';
  if (values.target === 'sshd') {
    const rack = await startLocalSshd({ dir, count: 1 });
    const d = rack.devices[0]!;
    sshdPid = d.pid;
    workdirRoot = join(rack.workRoot, d.name);
    python = '/usr/bin/python3';
    transport = new SshTransport(
      {
        name: d.name,
        host: '127.0.0.1',
        port: d.port,
        user: rack.user,
        auth: { identityFile: rack.identityFile, useAgent: false, passwordEnv: null },
        hostKey: { fingerprint: d.hostKeyFingerprint, knownHosts: null },
      },
      { acceptNew: false, knownHostsFile: join(dir, 'known_hosts'), connectTimeoutMs: 10_000 },
    );
    stop = async () => {
      await transport.close();
      rack.stop();
    };
  } else {
    const q = new QemuTransport(
      {
        name: 'bench-job-armhf',
        ramMb: 0,
        timeouts: { ...DEFAULT_TIMEOUTS, bootMs: 600_000, connectMs: 120_000 },
        qemu: { profile: 'pi3b-1g-armhf', image: null, kernel: null, initrd: null, dtb: null, machine: null, cpu: null, append: null, wheelhouse: null, user: 'pi' },
      },
      { warm: true },
    );
    transport = q;
    workdirRoot = '/tmp/pi-hil';
    stop = () => q.close();
  }
  const timed = new Timed(transport);
  const out: string[] = [];
  try {
    let t = performance.now();
    await timed.connect();
    out.push(`connect (first, ${transport.boot ? `${transport.boot.mode} start` : 'TCP + SSH handshake'}): ${(performance.now() - t).toFixed(0)} ms`);
    // Once per device: lease and health gate.
    timed.steps = [];
    t = performance.now();
    const site = values.target === 'sshd' ? deviceLeaseSite(timed, python, workdirRoot) : hostLeaseSite('bench-job-armhf');
    // A long lease: no renewal may run (and be counted) during the jobs.
    const lease = await acquireLease('bench', site, thisHolder('bench-job', workdirRoot), { ttlMs: 3_600_000, waitMs: 0 });
    await checkHealth(timed, python, workdirRoot, { ramMb: 0, diskMb: 0 });
    out.push(`once per device (lease + health): ${(performance.now() - t).toFixed(0)} ms: ${timed.steps.map((s) => `${s.op} ${s.what} ${s.ms.toFixed(0)}`).join(', ')}`);
    // The floor: the payload alone on the same connection.
    const floorDir = `${workdirRoot}/bench-floor`;
    await transport.exec(shellJoin(['mkdir', '-p', floorDir]));
    await transport.writeFile(`${floorDir}/main.py`, readFileSync(join(SUITE, 'main.py')));
    const floors: number[] = [];
    interface Side {
      name: string;
      run: RunOnDevice;
      walls: number[];
      byStep: Map<string, number[]>;
      execs: string[];
      last: AgentRun | null;
      known: DeviceFacts | null;
    }
    const side = (name: string, run: RunOnDevice): Side => ({ name, run, walls: [], byStep: new Map(), execs: [], last: null, known: null });
    const sides: Side[] = [side('now', runNow), ...(baseline ? [side(`before (${baseline.sha})`, baseline.run)] : [])];
    for (let i = 0; i < JOBS; i++) {
      t = performance.now();
      const r = await transport.exec(shellJoin(['sh', '-c', `cd ${floorDir} && exec ${python} main.py`]));
      if (r.code !== 0) throw new Error(`floor failed: ${r.stderr}`);
      floors.push(performance.now() - t);
      for (const sd of sides) {
      const { byStep } = sd;
      timed.steps = [];
      const trace = sshdPid !== null && i === JOBS - 1 ? traceExecs(sshdPid) : null;
      if (trace) await sleep(300);
      t = performance.now();
      // When each event reaches the controller: where inside the one exec the time goes.
      const arrivals = new Map<string, number>();
      const last = await sd.run(
        timed,
        {
          runId: 'bench-job',
          jobId: `j${i}-${sides.indexOf(sd)}`,
          payloadDir: SUITE,
          entry: ['main.py'],
          // `quick` needs nothing: a run since issue 13 sends it no probe; the runs before sent one that found nothing.
          ...(sd.name === 'now' ? {} : { probe: { code: probeScript({ allOf: [], anyOf: [], why: '' }) } }),
          python,
          workdirRoot,
          deadlineMs: 30_000,
          intervalMs: 50,
          keep: false,
          // As a run does: every fact on the device's first job, then only those that change.
          ...(sd.known ? { knownFacts: sd.known } : {}),
          ...(standIn ? { standIn } : {}),
        },
        new AbortController().signal,
        (e) => {
          if (e.type !== 'sample' && !arrivals.has(e.type)) arrivals.set(e.type, performance.now() - t);
        },
      );
      sd.walls.push(performance.now() - t);
      sd.last = last;
      sd.known ??= last.facts;
      if (last.ending.kind !== 'agent_end') throw new Error(`job failed: ${JSON.stringify(last.ending)}`);
      if (trace) sd.execs = await trace.stop();
      const seen = new Map<string, number>();
      for (const s of timed.steps) {
        const k = `${s.op} ${s.what}`.trim();
        const n = (seen.get(k) ?? 0) + 1;
        seen.set(k, n);
        const key = n > 1 ? `${k} #${n}` : k;
        byStep.set(key, [...(byStep.get(key) ?? []), s.ms]);
      }
      for (const [type, ms] of arrivals) {
        const key = `… \`${type}\` event arrives (ms after the job began)`;
        byStep.set(key, [...(byStep.get(key) ?? []), ms]);
      }
      }
    }
    await lease.release();
    await transport.exec(shellJoin(['rm', '-rf', floorDir]));
    const floor = median(floors);
    for (const sd of sides) {
      out.push('');
      out.push(`| ${sd.name}: step of one \`quick\` job (${values.target}) | median ms of ${JOBS} |`, '|---|---|');
      for (const [k, ms] of sd.byStep) out.push(`| ${k} | ${median(ms).toFixed(0)} |`);
      const wall = median(sd.walls);
      out.push(`| **job wall (runOnDevice)** | **${wall.toFixed(0)}** |`);
      out.push(`| floor: \`python3 main.py\` over one exec | ${floor.toFixed(0)} |`);
      out.push(`| **overhead beyond the floor** | **${(wall - floor).toFixed(0)}** |`);
      out.push(`| agent's payloadMs (launch to exit) | ${sd.last?.timing.payloadMs ?? '-'} |`);
      if (sd.execs.length) {
        const py = sd.execs.filter((e) => /python/.test(e));
        out.push('', `Processes the device's sshd started for one later job (strace): ${sd.execs.length} execs, **${py.length} Python starts** (payload included): ${sd.execs.map((e) => e.split('/').pop()).join(', ')}.`);
      }
    }
    if (sides.length === 2) {
      const [a, b] = sides as [Side, Side];
      out.push('', `Job wall now / before: ${(median(a.walls) / median(b.walls)).toFixed(2)} (${median(a.walls).toFixed(0)} / ${median(b.walls).toFixed(0)} ms); overhead beyond the floor ${(median(a.walls) - floor).toFixed(0)} vs ${(median(b.walls) - floor).toFixed(0)} ms.`);
    }
  } finally {
    baseline?.dispose();
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(1, `${out.join('\n')}\n`);
}

await main();
