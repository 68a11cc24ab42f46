/**
 * `npm run bench`: every benchmark, each measured side by side against its
 * baseline in the same run, written to BENCHMARKS.md.
 *
 *   npx tsx scripts/bench.ts [--only harness,agent,image,qemu] [--out BENCHMARKS.md]
 *
 * - harness: `hil run` of a 3 s payload on 4 real sshd devices, concurrency 4
 *   against concurrency 1 (the baseline), alternated.
 * - agent: scripts/bench-agent.ts (CPU overhead at 50 ms sampling, peak error).
 * - image: scripts/bench-image.ts (image build from scratch, against Debian's defaults).
 * - qemu: scripts/bench-qemu.ts (cold boot, warm start, 2 VMs vs 1).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalSshd } from './lib/local-sshd.ts';
import { projectDir } from '../harness/host/paths.ts';

const { values } = parseArgs({ options: { only: { type: 'string' }, out: { type: 'string', default: 'BENCHMARKS.md' } } });
const only = new Set((values.only ?? 'harness,agent,image,qemu').split(','));
const root = projectDir();

function tsx(script: string, args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', script), ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) return `_${script} failed (exit ${String(r.status)}); see its output above._\n`;
  return r.stdout;
}

async function harnessBench(rounds = 3): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-hil-bench-'));
  const rack = await startLocalSshd({ dir, count: 4 });
  try {
    const wall = (concurrency: number): number => {
      const started = Date.now();
      const r = spawnSync(
        process.execPath,
        [join(root, 'bin', 'hil.js'), 'run', '-i', rack.inventoryFile, '--suites', join(root, 'test', 'fixtures', 'suites'), '--suite', 'sleepy', '--concurrency', String(concurrency), '--out', join(dir, 'runs'), '--no-report'],
        { cwd: root, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`hil run failed: ${r.stderr}`);
      return Date.now() - started;
    };
    const parallel: number[] = [];
    const serial: number[] = [];
    // Alternate, so drift in the machine's load hits both sides alike.
    for (let i = 0; i < rounds; i++) {
      serial.push(wall(1));
      parallel.push(wall(4));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const s = median(serial);
    const p = median(parallel);
    return [
      '| `hil run`, 4 sshd devices × a 3 s payload | median wall (s) |',
      '|---|---|',
      `| concurrency 1 (baseline) | ${(s / 1000).toFixed(1)} |`,
      `| concurrency 4 | ${(p / 1000).toFixed(1)} |`,
      `| speed-up | ${(s / p).toFixed(2)}× (ideal 4×) |`,
      '',
      `${rounds} alternating rounds each. Reproduce: \`npx tsx scripts/bench.ts --only harness\`.`,
      '',
    ].join('\n');
  } finally {
    rack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sections: string[] = [
  '# Benchmarks',
  '',
  `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, load average at start ${loadavg()[0]?.toFixed(2)}. ` +
    'Every figure is measured beside its baseline in the same run; machines here are shared, so compare ratios, not absolute times.',
  '',
];
if (only.has('harness')) sections.push('## Parallel jobs across devices', '', await harnessBench());
if (only.has('agent')) sections.push('## On-device agent', '', tsx('bench-agent.ts', ['--python', '/usr/bin/python3']));
if (only.has('image')) sections.push('## Image build', '', tsx('bench-image.ts', []));
if (only.has('qemu')) sections.push('## Emulated Pis (QEMU)', '', tsx('bench-qemu.ts', []));
writeFileSync(values.out, `${sections.join('\n').trimEnd()}\n`);
process.stdout.write(`wrote ${values.out}\n`);
