/**
 * QEMU benchmarks: cold boot to SSH-ready against warm start, and two VMs in parallel
 * against one. Prints a Markdown table. (Image build time: bench-image.ts.)
 *
 *   npx tsx scripts/bench-qemu.ts [--runs N] [armhf] [arm64]
 */
import os from 'node:os';
import { DEFAULT_TIMEOUTS } from '../harness/inventory/load.ts';
import { buildImage } from '../harness/image/index.ts';
import { QemuTransport, type QemuTarget } from '../harness/transport/qemu.ts';

const args = process.argv.slice(2);
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Math.max(1, Number(args[runsArg + 1]) || 1) : 2;
const picked = args.filter((a): a is 'armhf' | 'arm64' => a === 'armhf' || a === 'arm64');
const arches = picked.length ? picked : (['armhf', 'arm64'] as const);
const profileOf = { armhf: 'pi3b-1g-armhf', arm64: 'pi3b-1g-arm64' } as const;

function device(name: string, profile: string): QemuTarget {
  return {
    name,
    ramMb: 0,
    timeouts: { ...DEFAULT_TIMEOUTS, bootMs: 600_000, connectMs: 120_000 },
    qemu: { profile, image: null, kernel: null, initrd: null, dtb: null, machine: null, cpu: null, append: null, wheelhouse: null, user: 'pi' },
  };
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? (v[(v.length - 1) / 2] as number) : ((v[v.length / 2 - 1] as number) + (v[v.length / 2] as number)) / 2;
};

/** Start, run `true` over SSH, stop. Returns ms from start to the command's answer. */
async function startOnce(profile: string, warm: boolean, tag: string): Promise<{ readyMs: number; sshMs: number; mode: string }> {
  const q = new QemuTransport(device(`bench-${tag}`, profile), { warm });
  const t0 = Date.now();
  try {
    await q.connect();
    const r = await q.exec('true');
    if (r.code !== 0) throw new Error(`true exited ${r.code}`);
    return { readyMs: q.boot?.readyMs ?? NaN, sshMs: Date.now() - t0, mode: q.boot?.mode ?? '?' };
  } finally {
    await q.close();
  }
}

const rows: string[][] = [];
// Build times are measured by bench-image.ts; here the images only have to exist.
for (const arch of arches) await buildImage(arch);

for (const profile of arches.map((a) => profileOf[a])) {
  // Make sure the warm state exists before timing restores.
  await startOnce(profile, true, 'prime');
  const cold: number[] = [];
  const coldSsh: number[] = [];
  const warm: number[] = [];
  const warmSsh: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = await startOnce(profile, false, `cold${i}`);
    cold.push(c.readyMs);
    coldSsh.push(c.sshMs);
    const w = await startOnce(profile, true, `warm${i}`);
    if (w.mode !== 'warm') throw new Error(`expected a warm start, got ${w.mode}`);
    warm.push(w.readyMs);
    warmSsh.push(w.sshMs);
  }
  rows.push([`cold boot to SSH banner, ${profile}`, s(median(cold)), `first command answered after ${s(median(coldSsh))}; median of ${runs}`]);
  rows.push([`warm start to SSH banner, ${profile}`, s(median(warm)), `first command answered after ${s(median(warmSsh))} (clock set); median of ${runs}`]);
}

for (const warm of [false, true]) {
  const kind = warm ? 'warm start' : 'cold boot';
  const first = profileOf[arches[0] ?? 'arm64'];
  const second = profileOf[arches[1] ?? arches[0] ?? 'arm64'];
  const t1 = Date.now();
  await startOnce(first, warm, `one-${kind}`);
  const one = Date.now() - t1;
  const t2 = Date.now();
  await Promise.all([startOnce(first, warm, `par-a-${kind}`), startOnce(second, warm, `par-b-${kind}`)]);
  const two = Date.now() - t2;
  rows.push([`${kind}: 2 VMs in parallel vs 1`, `${s(two)} vs ${s(one)}`, `${first} + ${second}, start to first SSH command of both; ${(two / one).toFixed(2)}x`]);
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
const host = `load ${load} at the end, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? '?'}, TCG (no KVM)`;
process.stdout.write(`\n### QEMU Pis (${host})\n\n| measure | result | notes |\n|---|---|---|\n`);
for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
