/**
 * Image build benchmark: both arches built from scratch in parallel, as the first
 * `npm test` of a new machine does it, with the current recipe (tiny-initramfs, root in
 * RAM) against the baseline of Debian's defaults (initramfs-tools, root on disk), in one
 * run and in a throwaway cache. Prints a Markdown table.
 *
 *   npx tsx scripts/bench-image.ts [--rounds N]     (root; about 10 min a round)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage, type InitrdGenerator } from '../harness/image/index.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '1' } } });
const rounds = Math.max(1, Number(values.rounds) || 1);

// A throwaway cache of its own (read at each call), so nothing is taken from an earlier build.
const cache = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-bench-image-'));
process.env['PI_HIL_CACHE'] = cache;
type Variant = { name: string; initrd: InitrdGenerator; rootOnDisk: boolean };
const variants: Variant[] = [
  { name: 'baseline: initramfs-tools, root on disk', initrd: 'initramfs-tools', rootOnDisk: true },
  { name: 'pi-hil: tiny-initramfs, root in RAM', initrd: 'tiny-initramfs', rootOnDisk: false },
];
const arches = ['armhf', 'arm64'] as const;

/** Both arches at once; seconds per arch. */
async function buildPair(v: Variant): Promise<Record<(typeof arches)[number], number>> {
  const secs = await Promise.all(
    arches.map(async (arch) => {
      const t0 = Date.now();
      await buildImage(arch, { initrd: v.initrd, rootOnDisk: v.rootOnDisk, force: true });
      return (Date.now() - t0) / 1000;
    }),
  );
  return { armhf: secs[0] ?? NaN, arm64: secs[1] ?? NaN };
}

const times = new Map<string, { armhf: number[]; arm64: number[] }>(variants.map((v) => [v.name, { armhf: [], arm64: [] }]));
try {
  for (let r = 0; r < rounds; r++) {
    // Alternate the order, so a change in the machine's load hits both sides alike.
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      process.stderr.write(`bench-image: round ${r + 1}, ${v.name}\n`);
      const t = await buildPair(v);
      times.get(v.name)?.armhf.push(t.armhf);
      times.get(v.name)?.arm64.push(t.arm64);
    }
  }
} finally {
  rmSync(cache, { recursive: true, force: true });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const [base, ours] = variants.map((v) => times.get(v.name));
const out = [
  `| both arches built in parallel from an empty cache | armhf (s) | arm64 (s) |`,
  '|---|---|---|',
  ...variants.map((v) => `| ${v.name} | ${median(times.get(v.name)?.armhf ?? []).toFixed(0)} | ${median(times.get(v.name)?.arm64 ?? []).toFixed(0)} |`),
];
if (base && ours) {
  out.push(`| speed-up | ${(median(base.armhf) / median(ours.armhf)).toFixed(2)}× | ${(median(base.arm64) / median(ours.arm64)).toFixed(2)}× |`);
}
out.push(
  '',
  `Target: 300 s per arch. ${rounds} round(s), medians; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end. ` +
    'Reproduce: `sudo npx tsx scripts/bench-image.ts`.',
  '',
);
process.stdout.write(`${out.join('\n')}\n`);
