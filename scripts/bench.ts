/**
 * `npm run bench`: every benchmark, each measured side by side against its
 * baseline in the same run, written to BENCHMARKS.md.
 *
 *   npx tsx scripts/bench.ts [--only harness,jobs,agent,reports,image,qemu] [--out BENCHMARKS.md]
 *                            [--devices 16,100] [--rounds 3] [--report-rounds 3]
 *
 * - harness: `hil run` of the suite `quick` on 16 and 100 real sshd devices
 *   against plain OpenSSH and Ansible `-m script` running the same payload,
 *   alternated round by round; the controller's peak RSS.
 * - jobs: scripts/bench-job.ts (one job's steps on sshd and a warm emulated
 *   armhf Pi, against the floor and against the agent before issue 13).
 * - agent: scripts/bench-agent.ts (CPU overhead at 50 ms sampling, peak error).
 * - reports: scripts/bench-reports.ts (a 1,000-record run, without Allure, with Allure 2 and 3).
 * - image: scripts/bench-image.ts (image build from scratch, against Debian's defaults).
 * - qemu: scripts/bench-qemu.ts (cold boot, warm start, 2 VMs vs 1).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalSshd } from './lib/local-sshd.ts';
import { projectDir } from '../harness/host/paths.ts';
import { shellQuote } from '../harness/transport/quote.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    out: { type: 'string', default: 'BENCHMARKS.md' },
    devices: { type: 'string', default: '16,100' },
    rounds: { type: 'string', default: '3' },
    'report-rounds': { type: 'string', default: '3' },
  },
});
const only = new Set((values.only ?? 'harness,jobs,agent,reports,image,qemu').split(','));
/** The commit before issue 13's changes: the per-job breakdown runs its agent beside this one. */
const BEFORE = 'eb3bebc';
const root = projectDir();

function tsx(script: string, args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', script), ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) return `_${script} failed (exit ${String(r.status)}); see its output above._\n`;
  return r.stdout;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number): string => (ms / 1000).toFixed(2);
const today = (): string => new Date().toISOString().slice(0, 10);

/** Run a command, time it, and read its peak RSS (GNU time's %M, KiB) from a file. Throws on failure. */
function timed(argv: string[], env: NodeJS.ProcessEnv = process.env): { ms: number; peakKb: number } {
  const rss = join(tmpdir(), `pi-hil-bench-rss-${process.pid}`);
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', rss, ...argv], { cwd: root, encoding: 'utf8', env, maxBuffer: 64 << 20 });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${argv.slice(0, 3).join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).slice(-1500)}`);
  const peakKb = Number(readFileSync(rss, 'utf8').trim().split('\n').pop());
  rmSync(rss, { force: true });
  return { ms, peakKb };
}

/**
 * `hil run` of the fixture suite `quick` on N real sshd devices against two
 * baselines running the same payload on the same devices with the same
 * concurrency: plain OpenSSH (one `ssh … python3 -c` per device) and Ansible
 * ad-hoc `-m script` (upload and run main.py; forks = concurrency). Sides
 * alternate round by round, so drift in the machine's load hits all alike.
 */
async function harnessBench(counts: number[], concurrency = 16, rounds = 3): Promise<string> {
  for (const tool of ['ansible', 'ssh']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      return `_${tool} is not installed: run \`bash scripts/setup.sh\` (Debian's ansible-core and openssh-client); the bench installs nothing itself._\n`;
    }
  }
  const ansibleVersion = spawnSync('ansible', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'ansible';
  const sshVersion = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();
  const payloadFile = join(root, 'test', 'fixtures', 'suites', 'quick', 'main.py');
  const payload = readFileSync(payloadFile, 'utf8');
  const out: string[] = [
    `Measured ${today()}: the fixture suite \`quick\` (prints a phase marker and a line, exits 0) on real OpenSSH devices on loopback (scripts/lib/local-sshd.ts), concurrency ${concurrency}, ${rounds} rounds with the three sides alternating; medians. Baselines: ${sshVersion}; ${ansibleVersion}. \`hil run\` does more per job (lease and health gate per device, facts, memory sampling, evidence, one result record each).`,
    '',
    '| devices | side | median wall (s) | ratio to plain ssh | ratio to Ansible `-m script` | controller peak RSS |',
    '|---|---|---|---|---|---|',
  ];
  const ratios: Record<number, { ssh: number; ansible: number; rssMb: number }> = {};
  for (const n of counts) {
    const dir = mkdtempSync(join(tmpdir(), 'pi-hil-bench-'));
    chmodSync(dir, 0o755);
    const rack = await startLocalSshd({ dir, count: n });
    try {
      const opts = ['-i', rack.identityFile, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes'];
      const hosts = rack.devices.map((d) => `${d.name} ansible_host=127.0.0.1 ansible_port=${d.port}`);
      const inventory = join(dir, 'ansible.ini');
      writeFileSync(inventory, ['[rack]', ...hosts, '', '[rack:vars]', `ansible_user=${rack.user}`, `ansible_ssh_private_key_file=${rack.identityFile}`, 'ansible_python_interpreter=/usr/bin/python3', ''].join('\n'));
      // Plain OpenSSH: one ssh per device, `concurrency` at a time (xargs -P), the payload as `python3 -c`.
      const sshList = join(dir, 'ssh-ports');
      writeFileSync(sshList, rack.devices.map((d) => String(d.port)).join('\n') + '\n');
      const sshCmd = `xargs -P ${concurrency} -I{} ssh ${opts.map((o) => `'${o}'`).join(' ')} -p {} ${rack.user}@127.0.0.1 /usr/bin/python3 -c "$PAYLOAD" < ${sshList} > /dev/null`;
      const sides: Record<'hil' | 'ssh' | 'ansible', { ms: number[]; rss: number[] }> = { hil: { ms: [], rss: [] }, ssh: { ms: [], rss: [] }, ansible: { ms: [], rss: [] } };
      for (let i = 0; i < rounds; i++) {
        const h = timed([process.execPath, join(root, 'bin', 'hil.js'), 'run', '-i', rack.inventoryFile, '--suites', join(root, 'test', 'fixtures', 'suites'), '--suite', 'quick', '--concurrency', String(concurrency), '--out', join(dir, 'runs'), '--no-report']);
        sides.hil.ms.push(h.ms);
        sides.hil.rss.push(h.peakKb);
        // Quoted once more for the remote shell, which ssh hands the joined words to.
        sides.ssh.ms.push(timed(['sh', '-c', sshCmd], { ...process.env, PAYLOAD: shellQuote(payload) }).ms);
        // A fresh ControlPath folder each round: no round reuses another's ControlPersist connections.
        const cp = mkdtempSync(join(dir, 'cp-'));
        const env = { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_SSH_CONTROL_PATH_DIR: cp, ANSIBLE_LOCAL_TEMP: join(cp, 'tmp'), ANSIBLE_NOCOLOR: '1' };
        sides.ansible.ms.push(timed(['ansible', 'rack', '-i', inventory, '--forks', String(concurrency), '-m', 'script', '-a', `${payloadFile} executable=/usr/bin/python3`], env).ms);
        spawnSync('sh', ['-c', `for s in ${cp}/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null; done; true`]);
      }
      const hil = median(sides.hil.ms);
      const ssh = median(sides.ssh.ms);
      const ans = median(sides.ansible.ms);
      const rssMb = Math.max(...sides.hil.rss) / 1024;
      ratios[n] = { ssh: hil / ssh, ansible: hil / ans, rssMb };
      out.push(`| ${n} | plain OpenSSH, \`ssh … python3 -c\` | ${secs(ssh)} | 1.00 | ${(ssh / ans).toFixed(2)} | |`);
      out.push(`| ${n} | Ansible \`-m script\` (forks ${concurrency}) | ${secs(ans)} | ${(ans / ssh).toFixed(2)} | 1.00 | |`);
      out.push(`| ${n} | **\`hil run\`** (\`quick\`, \`--no-report\`) | **${secs(hil)}** | **${(hil / ssh).toFixed(2)}** | **${(hil / ans).toFixed(2)}** | ${rssMb.toFixed(0)} MB |`);
    } finally {
      rack.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  harnessRatios = ratios;
  out.push('', `Reproduce: \`npx tsx scripts/bench.ts --only harness\` (devices: ${counts.join(', ')}).`, '');
  return out.join('\n');
}

let harnessRatios: Record<number, { ssh: number; ansible: number; rssMb: number }> = {};

const sections: string[] = [
  '# Benchmarks',
  '',
  `Regenerated by \`npm run bench\` (${values.only ? `\`--only ${values.only}\`` : 'every section'}) on ${today()}: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, load average at start ${loadavg()[0]?.toFixed(2)}. ` +
    'Every figure is measured beside its baseline in the same run; machines here are shared, so compare ratios, not absolute times. Each section says when it was measured; a section not rerun is kept from the previous file as it was.',
  '',
];

/** The previous file's sections by heading, to keep those not rerun. */
function previousSections(): Map<string, string> {
  const out = new Map<string, string>();
  let text = '';
  try {
    text = readFileSync(values.out, 'utf8');
  } catch {
    return out;
  }
  const parts = text.split(/^(?=## )/m).slice(1);
  for (const part of parts) out.set(part.split('\n')[0]!.trim(), part.trimEnd());
  return out;
}
const previous = previousSections();
const measured = new Map<string, string>();
function section(key: string, heading: string, body: () => Promise<string> | string): Promise<void> | void {
  if (!only.has(key)) {
    const kept = previous.get(heading);
    if (kept) sections.push(kept, '');
    return;
  }
  const done = (text: string): void => {
    measured.set(key, text);
    sections.push(heading, '', text.trimEnd(), '');
  };
  const r = body();
  return typeof r === 'string' ? done(r) : r.then(done);
}

const HARNESS_HEADING = '## `hil run` against plain OpenSSH and Ansible';
const JOB_HEADING = '## Where one job\'s time goes';
const BENCH_HEADINGS = [HARNESS_HEADING, JOB_HEADING, '## On-device agent', '## Reports of a 1,000-record run', '## Image build', '## Emulated Pis (QEMU)'];
await section('harness', HARNESS_HEADING, () => harnessBench(values.devices.split(',').map(Number), 16, Number(values.rounds)));
await section('jobs', JOB_HEADING, () =>
  [
    `Measured ${today()} by \`npx tsx scripts/bench-job.ts --target sshd|armhf --baseline ${BEFORE}\`: every exec and upload of one \`quick\` job timed at the transport, this agent and the one before issue 13 (commit ${BEFORE}) alternating job by job on the same connection; the floor is \`python3 main.py\` over one exec on that connection. Facts are gathered on each side's first job and reused after, as a run does.`,
    '',
    '### Local sshd device',
    '',
    tsx('bench-job.ts', ['--target', 'sshd', '--jobs', '5', '--baseline', BEFORE]),
    '',
    '### Emulated Pi 3, armhf (`pi3b-1g-armhf`, warm start, connected)',
    '',
    tsx('bench-job.ts', ['--target', 'armhf', '--jobs', '3', '--baseline', BEFORE]),
  ].join('\n'),
);
await section('agent', '## On-device agent', () => `Measured ${today()} by \`npx tsx scripts/bench-agent.ts --python /usr/bin/python3\`.\n\n${tsx('bench-agent.ts', ['--python', '/usr/bin/python3'])}`);
await section('reports', '## Reports of a 1,000-record run', () => tsx('bench-reports.ts', ['--records', '1000', '--rounds', values['report-rounds']]));
await section('image', '## Image build', () => tsx('bench-image.ts', []));
await section('qemu', '## Emulated Pis (QEMU)', () => `Measured ${today()} by \`npx tsx scripts/bench-qemu.ts\`.\n\n${tsx('bench-qemu.ts', [])}`);
// Sections this script does not write (notes on the figures) stay as they were, after the measured ones.
const written = new Set(['## Goals (issue 13) against this run', ...BENCH_HEADINGS]);
for (const [heading, text] of previous) if (!written.has(heading)) sections.push(text, '');
sections.splice(4, 0, ...goalsTable());
writeFileSync(values.out, `${sections.join('\n').trimEnd()}\n`);
process.stdout.write(`wrote ${values.out}\n`);

/**
 * The issue 13 goals against the figures in this file: this run's, or, for a
 * section not rerun, the kept section's (its status then says so).
 */
function goalsTable(): string[] {
  const num = (text: string | undefined, re: RegExp): number | null => {
    const m = text ? re.exec(text) : null;
    return m?.[1] ? Number(m[1]) : null;
  };
  const kept = (key: string): string => (only.has(key) ? '' : ' (section kept, see its date)');
  const ok = (v: number | null, max: number, key: string): string => (v === null ? 'not measured' : (v <= max ? 'met' : 'not met') + kept(key));
  const textOf = (key: string, heading: string): string | undefined => measured.get(key) ?? previous.get(heading);
  // A kept harness section: its `hil run` rows, e.g. "| 16 | **`hil run`** … | **8.21** | **3.27** | **0.67** | 129 MB |".
  const keptRatios = (n: number): { ssh: number; ansible: number; rssMb: number } | undefined => {
    const m = new RegExp(`^\\| ${n} \\| \\*\\*\`hil run\`\\*\\*.*\\| \\*\\*([\\d.]+)\\*\\* \\| \\*\\*([\\d.]+)\\*\\* \\| (\\d+) MB \\|$`, 'm').exec(previous.get(HARNESS_HEADING) ?? '');
    return m ? { ssh: Number(m[1]), ansible: Number(m[2]), rssMb: Number(m[3]) } : undefined;
  };
  const rows: string[] = ['## Goals (issue 13) against this run', '', '| measure | goal | measured | |', '|---|---|---|---|'];
  for (const n of [16, 100]) {
    const r = harnessRatios[n] ?? keptRatios(n);
    const lim = n === 16 ? 1.2 : 1.3;
    rows.push(`| \`hil run\`, ${n} devices, vs plain OpenSSH | ≤ ${lim}× | ${r ? `${r.ssh.toFixed(2)}×` : '-'} | ${ok(r?.ssh ?? null, lim, 'harness')} |`);
    rows.push(`| \`hil run\`, ${n} devices, vs Ansible \`-m script\` | ≤ 1.0× | ${r ? `${r.ansible.toFixed(2)}×` : '-'} | ${ok(r?.ansible ?? null, 1.0, 'harness')} |`);
  }
  const rss = (harnessRatios[100] ?? keptRatios(100))?.rssMb ?? null;
  rows.push(`| controller peak RSS, 100 devices | ≤ 150 MB | ${rss === null ? '-' : `${rss.toFixed(0)} MB`} | ${ok(rss, 150, 'harness')} |`);
  const jobs = textOf('jobs', JOB_HEADING);
  const armhf = jobs?.split('### Emulated Pi 3')[1];
  const over = num(armhf, /\| \*\*overhead beyond the floor\*\* \| \*\*(-?\d+)\*\* \|/);
  const starts = num(jobs?.split('### Emulated Pi 3')[0], /\*\*(\d+) Python starts\*\*/);
  rows.push(`| per-job overhead beyond \`ssh guest python3 main.py\`, emulated armhf Pi 3, warm, connected | ≤ 0.5 s; Python starts per job stated | ${over === null ? '-' : `${(over / 1000).toFixed(2)} s`}; ${starts ?? '?'} Python starts per job, the payload's included (counted on sshd, same agent) | ${ok(over === null ? null : over / 1000, 0.5, 'jobs')} |`);
  const busy = num(textOf('agent', '## On-device agent'), /agent CPU while a CPU-bound payload runs \| ([\d.]+)% of one core/);
  rows.push(`| agent CPU at 50 ms sampling, CPU-bound payload | ≤ 1% of a core | ${busy === null ? '-' : `${busy}%`} | ${ok(busy, 1, 'agent')} |`);
  const rep = num(textOf('reports', '## Reports of a 1,000-record run'), /--no-allure`: comparison page, Markdown, JUnit \| ([\d.]+) \|/);
  rows.push(`| all reports of a 1,000-record run without Allure | ≤ 1 s; Allure 2 and 3 reported | ${rep === null ? '-' : `${rep} s`} (Allure 2 and 3: see below) | ${ok(rep, 1, 'reports')} |`);
  rows.push('| an image for a new wheelhouse | ≤ 60 s | a full build: about 4 min (Image build) | not met: not attempted; a layer over the cached base image, as armhf-k64 is laid over its two (10.6 s), is the way |', '');
  return rows;
}
