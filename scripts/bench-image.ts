/**
 * Image build benchmark: both arches built from scratch in parallel, as the first
 * `npm test` of a new machine does it, with the current recipe (tiny-initramfs, root in
 * RAM) against the baseline of Debian's defaults (initramfs-tools, root on disk), in one
 * run and in a throwaway cache. Then the armhf-k64 layer (the armhf root with the arm64
 * kernel's modules) over the images just built: cold, and found in the cache. Prints
 * Markdown tables.
 *
 *   npx tsx scripts/bench-image.ts [--rounds N]     (root; about 10 min a round)
 *   npx tsx scripts/bench-image.ts --layer-only     (the layer alone, over the cached
 *                                                    armhf and arm64 images; seconds)
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage, findImage, type InitrdGenerator } from '../harness/image/index.ts';
import { cacheDir } from '../harness/host/paths.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '1' }, 'layer-only': { type: 'boolean', default: false } } });
const rounds = Math.max(1, Number(values.rounds) || 1);
const layerOnly = values['layer-only'] === true;

// Before the cache is switched: where the already built images and the harness key are.
const realCache = cacheDir();
const realBases = layerOnly ? await Promise.all((['armhf', 'arm64'] as const).map((a) => findImage(a))) : [];

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

/** The armhf-k64 layer over the pi-hil images in the cache: built (forced), then found. */
async function layer(): Promise<{ cold: number; cached: number }> {
  const t0 = Date.now();
  await buildImage('armhf-k64', { force: true });
  const t1 = Date.now();
  await buildImage('armhf-k64');
  return { cold: (t1 - t0) / 1000, cached: (Date.now() - t1) / 1000 };
}

const times = new Map<string, { armhf: number[]; arm64: number[] }>(variants.map((v) => [v.name, { armhf: [], arm64: [] }]));
const layers: { cold: number[]; cached: number[] } = { cold: [], cached: [] };
try {
  if (layerOnly) {
    // The cached armhf and arm64 images, linked in (never rebuilt or touched), and the key they were built with.
    if (realBases.some((b) => !b)) throw new Error('--layer-only needs the armhf and arm64 images built (npx tsx scripts/build-images.ts armhf arm64)');
    mkdirSync(path.join(cache, 'images'), { recursive: true });
    symlinkSync(path.join(realCache, 'ssh'), path.join(cache, 'ssh'));
    for (const b of realBases) if (b) symlinkSync(b.dir, path.join(cache, 'images', b.key));
  }
  for (let r = 0; r < rounds; r++) {
    if (!layerOnly) {
      // Alternate the order, so a change in the machine's load hits both sides alike.
      for (const v of r % 2 ? [...variants].reverse() : variants) {
        process.stderr.write(`bench-image: round ${r + 1}, ${v.name}\n`);
        const t = await buildPair(v);
        times.get(v.name)?.armhf.push(t.armhf);
        times.get(v.name)?.arm64.push(t.arm64);
      }
    }
    // Over the pi-hil variant's images (the recipe the profiles use), built last or linked in.
    process.stderr.write(`bench-image: round ${r + 1}, armhf-k64 layer\n`);
    const l = await layer();
    layers.cold.push(l.cold);
    layers.cached.push(l.cached);
  }
} finally {
  // Links are removed, not followed: the cached images stay.
  rmSync(cache, { recursive: true, force: true });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const layerTable = (fromEmpty: number | null): string[] => [
  '| armhf-k64: the armhf root with the arm64 kernel and its modules | seconds |',
  '|---|---|',
  `| layer over the cached armhf and arm64 images (cold) | ${median(layers.cold).toFixed(1)} |`,
  ...(fromEmpty === null ? [] : [`| from an empty cache: both images in parallel, then the layer | ${fromEmpty.toFixed(0)} |`]),
  `| cached, recipe unchanged | ${median(layers.cached).toFixed(3)} |`,
  '',
];
if (layerOnly) {
  process.stdout.write(
    `${[...layerTable(null), `${rounds} round(s), medians; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end. Reproduce: \`npx tsx scripts/bench-image.ts --layer-only\`.`, ''].join('\n')}\n`,
  );
  process.exit(0);
}
const [base, ours] = variants.map((v) => times.get(v.name));
const out = [
  `| both arches built in parallel from an empty cache | armhf (s) | arm64 (s) |`,
  '|---|---|---|',
  ...variants.map((v) => `| ${v.name} | ${median(times.get(v.name)?.armhf ?? []).toFixed(0)} | ${median(times.get(v.name)?.arm64 ?? []).toFixed(0)} |`),
];
if (base && ours) {
  out.push(`| speed-up | ${(median(base.armhf) / median(ours.armhf)).toFixed(2)}× | ${(median(base.arm64) / median(ours.arm64)).toFixed(2)}× |`);
}
const oursTimes = times.get(variants[1]?.name ?? '');
const fromEmpty = oursTimes ? Math.max(median(oursTimes.armhf), median(oursTimes.arm64)) + median(layers.cold) : null;
out.push('', ...layerTable(fromEmpty));
out.push(
  `Target: 300 s per arch, and for armhf-k64 from an empty cache. ${rounds} round(s), medians; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at the end. ` +
    'Reproduce: `sudo npx tsx scripts/bench-image.ts`.',
  '',
);
process.stdout.write(`${out.join('\n')}\n`);
