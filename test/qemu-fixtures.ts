/**
 * Shared set-up of the QEMU tests: the images (built once, cached), devices made from
 * profiles, and a look at which QEMU processes are still alive.
 */
import { DEFAULT_TIMEOUTS } from '../harness/inventory/load.ts';
import { buildImage, type ImageInfo } from '../harness/image/index.ts';
import type { ImageName } from '../harness/pi/profiles.ts';
import type { QemuTarget } from '../harness/transport/qemu.ts';
import { processes } from '../scripts/lib/proc.ts';

/** Build both images (in parallel) or take them from the cache. A failure is thrown, never skipped. */
export async function ensureImages(): Promise<Record<'armhf' | 'arm64', ImageInfo>> {
  const [armhf, arm64] = await Promise.all([buildImage('armhf'), buildImage('arm64')]);
  return { armhf, arm64 };
}

export function ensureImage(name: ImageName): Promise<ImageInfo> {
  return buildImage(name);
}

export function qemuDevice(name: string, profile: string, ramMb = 0, extra: Partial<QemuTarget['qemu']> = {}): QemuTarget {
  return {
    name,
    ramMb,
    timeouts: { ...DEFAULT_TIMEOUTS, bootMs: 600_000, connectMs: 120_000 },
    qemu: {
      profile,
      image: null,
      kernel: null,
      initrd: null,
      dtb: null,
      machine: null,
      cpu: null,
      append: null,
      wheelhouse: null,
      user: 'pi',
      ...extra,
    },
  };
}

/** Pids of live qemu-system processes whose command line mentions `needle` (e.g. a state folder). */
export function qemuPidsMentioning(needle: string): number[] {
  return processes()
    .filter((p) => p.cmdline.includes('qemu-system-') && p.cmdline.includes(needle))
    .map((p) => p.pid);
}
