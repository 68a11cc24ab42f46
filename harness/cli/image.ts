/**
 * `hil image build <arch> [--wheelhouse DIR] [--force]`, `hil image list`, `hil image prune`:
 * the emulated Pis' disk images, cached outside the repository.
 */
import { UsageError } from '../config/diagnostics.ts';
import { buildImage, IMAGE_NAMES, ImageError, imagesDir, listImages, pruneImages } from '../image/index.ts';
import { PROFILES, WHEELHOUSE_VENV, type ImageName } from '../pi/profiles.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';

const SPEC: CommandSpec = {
  name: 'image',
  summary: 'Build, list and prune the disk images of the emulated (QEMU) Pis.',
  usage:
    'hil image build <armhf|arm64|armhf-k64> [--wheelhouse DIR] [--force]\n' +
    '       hil image list [--profiles]\n' +
    '       hil image prune [--all]\n\n' +
    'Images are cached in ${PI_HIL_CACHE:-~/.cache/pi-hil}/images, keyed by a hash of their\n' +
    'recipe, and rebuilt only when it changes. Building needs root (debootstrap, chroot).\n' +
    'armhf-k64 is the armhf root with the arm64 kernel and its modules, layered in seconds\n' +
    'over the other two (which it builds first when they are missing).',
  options: {
    wheelhouse: { type: 'string', arg: 'DIR', help: `build: install these wheels offline into ${WHEELHOUSE_VENV}` },
    force: { type: 'boolean', help: 'build: rebuild even when the cached image is current' },
    profiles: { type: 'boolean', help: 'list: also list the Pi-model profiles' },
    all: { type: 'boolean', help: 'prune: remove every image, not only stale ones' },
  },
  positionals: { min: 0, max: 2, names: 'build <arch> | list | prune' },
};

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

export async function imageCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommand(SPEC, argv);
  if (help) {
    process.stdout.write(helpText(SPEC));
    return 0;
  }
  const [sub, arg] = positionals;
  switch (sub) {
    case 'build': {
      if (!arg || !(IMAGE_NAMES as readonly string[]).includes(arg)) {
        throw new UsageError('hil image build', arg ?? '', IMAGE_NAMES.join(', '), 'which image?');
      }
      const wheelhouse = typeof values['wheelhouse'] === 'string' ? values['wheelhouse'] : undefined;
      const started = Date.now();
      try {
        const img = await buildImage(arg as ImageName, {
          ...(wheelhouse ? { wheelhouse } : {}),
          force: values['force'] === true,
          onLog: (line) => process.stderr.write(`${line}\n`),
        });
        const fresh = Date.now() - started > 5000;
        process.stdout.write(
          `${img.key}: ${fresh ? `built in ${img.buildSeconds} s` : 'cached, recipe unchanged'}\n` +
            `  disk ${img.disk} (${gib(img.sizeBytes)})\n  host key ${img.hostKeyFingerprint}\n`,
        );
        return 0;
      } catch (e) {
        if (e instanceof ImageError) {
          process.stderr.write(`hil image build: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
    }
    case 'list': {
      if (arg) throw new UsageError('hil image list', arg, 'no argument', 'unexpected argument');
      const images = await listImages();
      if (images.length === 0) process.stdout.write(`no images in ${imagesDir()}\n`);
      for (const img of images) {
        const kernels = Object.entries(img.kernels).map(([f, k]) => `${f} ${k.version}`).join(', ');
        process.stdout.write(
          `${img.key.padEnd(24)} ${img.current ? 'current' : 'stale  '} ${gib(img.sizeBytes).padStart(10)}  built ${img.builtAt} in ${img.buildSeconds} s` +
            `${img.recipe.wheelhouseSha256 ? '  +wheelhouse' : ''}\n    kernels: ${kernels}\n    host key: ${img.hostKeyFingerprint}\n`,
        );
      }
      if (values['profiles'] === true) {
        process.stdout.write('\nprofiles:\n');
        for (const p of PROFILES) {
          process.stdout.write(
            `  ${p.name.padEnd(18)} ${p.image.padEnd(9)} ${String(p.ramMb).padStart(5)} MB  ${p.binary} -M ${p.machine} -cpu ${p.cpu}  kernel ${p.kernel} (${p.kernelBits}-bit)  (${p.note})\n`,
          );
        }
      }
      return 0;
    }
    case 'prune': {
      if (arg) throw new UsageError('hil image prune', arg, 'no argument', 'unexpected argument');
      const { removed, kept } = await pruneImages({ all: values['all'] === true });
      for (const r of removed) process.stdout.write(`removed ${r}\n`);
      process.stdout.write(`${removed.length} removed, ${kept.length} kept\n`);
      return 0;
    }
    default:
      throw new UsageError('hil image', sub ?? '', 'build, list, prune', 'which subcommand?');
  }
}
