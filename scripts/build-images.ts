/**
 * Build (or find in the cache) the images of the emulated Pis: armhf and arm64, then the
 * armhf-k64 layer over both (the armhf root with the arm64 kernel and its modules).
 * Idempotent: an image whose recipe is unchanged is not rebuilt. Used by the test
 * set-up and CI. Needs root the first time.
 *
 *   npx tsx scripts/build-images.ts [--sequential] [--force] [armhf] [arm64] [armhf-k64]
 */
import { buildImage, IMAGE_NAMES, type ImageInfo } from '../harness/image/index.ts';
import type { ImageName } from '../harness/pi/profiles.ts';

const args = process.argv.slice(2);
const named = args.filter((a): a is ImageName => (IMAGE_NAMES as readonly string[]).includes(a));
const wanted: ImageName[] = named.length ? named : [...IMAGE_NAMES];
const force = args.includes('--force');

async function one(name: ImageName): Promise<ImageInfo> {
  const started = Date.now();
  const img = await buildImage(name, { force, onLog: (l) => process.stderr.write(`[${name}] ${l}\n`) });
  const s = Math.round((Date.now() - started) / 1000);
  process.stdout.write(`${name}: ${img.key} ${s > 5 ? `built in ${s} s` : 'cached'}\n`);
  return img;
}

try {
  const bases = wanted.filter((n) => n !== 'armhf-k64');
  if (args.includes('--sequential')) for (const n of bases) await one(n);
  // Two builds at once: each is mostly one qemu-user process, so two cores halve the wall time.
  else await Promise.all(bases.map(one));
  // The layer last: it is made from the other two.
  if (wanted.includes('armhf-k64')) await one('armhf-k64');
} catch (e) {
  process.stderr.write(`build-images: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
