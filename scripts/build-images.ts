/**
 * Build (or find in the cache) the armhf and arm64 images of the emulated Pis.
 * Idempotent: an image whose recipe is unchanged is not rebuilt. Used by the test
 * set-up and CI. Needs root the first time.
 *
 *   npx tsx scripts/build-images.ts [--sequential] [--force] [armhf] [arm64]
 */
import { buildImage, type ImageInfo } from '../harness/image/index.ts';
import type { QemuArch } from '../harness/pi/profiles.ts';

const args = process.argv.slice(2);
const arches = args.filter((a): a is QemuArch => a === 'armhf' || a === 'arm64');
const wanted: QemuArch[] = arches.length ? arches : ['armhf', 'arm64'];
const force = args.includes('--force');

async function one(arch: QemuArch): Promise<ImageInfo> {
  const started = Date.now();
  const img = await buildImage(arch, { force, onLog: (l) => process.stderr.write(`[${arch}] ${l}\n`) });
  const s = Math.round((Date.now() - started) / 1000);
  process.stdout.write(`${arch}: ${img.key} ${s > 5 ? `built in ${s} s` : 'cached'}\n`);
  return img;
}

try {
  if (args.includes('--sequential')) for (const a of wanted) await one(a);
  // Two builds at once: each is mostly one qemu-user process, so two cores halve the wall time.
  else await Promise.all(wanted.map(one));
} catch (e) {
  process.stderr.write(`build-images: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
