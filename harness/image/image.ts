/**
 * Emulated-Pi disk images: built once with build-image.sh (debootstrap + qemu-user-static),
 * cached outside the repository under `<cache>/images/<arch>-<recipe-hash>/`.
 *
 * The hash covers everything that decides the image's content: the package list, the
 * kernels, the build script's text, the guest user, the harness's public key and the
 * wheelhouse's content. Same recipe, same folder: no rebuild.
 *
 * One image is a layer rather than a build: `armhf-k64`, the armhf root with the arm64
 * image's kernel and modules (layer-k64.sh). Its recipe is the armhf one plus the keys of
 * both images it is made from and the layer script's hash, so a change to either image
 * makes a new layer too.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock, isAlive } from '../host/lock.ts';
import { imagesDir, warmDir } from '../host/paths.ts';
import { WHEELHOUSE_VENV, type ImageName, type KernelFlavour, type QemuArch } from '../pi/profiles.ts';
import { ensureHarnessKey } from './keys.ts';
import { hostMirrors } from './mirror.ts';

export const SUITE = 'bookworm';
export const GUEST_USER = 'pi';

/** What goes into every image. The Arm NN backend and parser are explicit: they are only Recommends. */
export const PACKAGES = [
  'python3',
  'python3-numpy',
  'python3-pyarmnn',
  'libarmnn-cpuref-backend22',
  'libarmnntfliteparser22',
  'openssh-server',
  'sudo',
  'procps',
  'iproute2',
  'kmod',
] as const;
/** Only with a wheelhouse: the venv its wheels go into (at WHEELHOUSE_VENV). */
const WHEELHOUSE_PACKAGES = ['python3-venv', 'python3-pip'] as const;

/**
 * What makes the initrds. tiny-initramfs builds in seconds under emulation; Debian's
 * initramfs-tools takes minutes there, and is kept as the benchmark's baseline.
 */
export type InitrdGenerator = 'tiny-initramfs' | 'initramfs-tools';

export const KERNELS: Record<QemuArch, KernelFlavour[]> = {
  armhf: ['armmp', 'armmp-lpae'],
  arm64: ['arm64'],
};

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build-image.sh');
const LAYER_K64_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'layer-k64.sh');

export const IMAGE_NAMES: readonly ImageName[] = ['armhf', 'arm64', 'armhf-k64'];

export class ImageError extends Error {
  override readonly name = 'ImageError';
}

export interface Recipe {
  arch: QemuArch;
  suite: string;
  packages: string[];
  kernels: KernelFlavour[];
  guestUser: string;
  initrd: InitrdGenerator;
  /** Of the build script's text, not its path: moving the script keeps every cached image current. */
  scriptSha256: string;
  harnessPublicKey: string;
  /** sha256 over the wheelhouse's file names and contents; null without one. */
  wheelhouseSha256: string | null;
  /** Only for a layered image (absent otherwise, so the base images' keys are unchanged). */
  layer?: LayerRecipe;
}

export interface LayerRecipe {
  name: 'armhf-k64';
  /** Key of the image whose root it takes (armhf, with the wheelhouse if any). */
  userland: string;
  /** Key of the image whose kernel, initrd and modules it adds (arm64, never a wheelhouse). */
  kernelImage: string;
  scriptSha256: string;
}

export interface ImageInfo {
  key: string;
  arch: QemuArch;
  dir: string;
  disk: string;
  /** Kernel and initrd per flavour, for direct boot. */
  kernels: Partial<Record<KernelFlavour, { kernel: string; initrd: string; version: string }>>;
  hostKeyFingerprint: string;
  hostKeyLine: string;
  recipe: Recipe;
  /** Key of the same recipe without a wheelhouse: what `prune` compares with the current one. */
  baseKey: string;
  builtAt: string;
  buildSeconds: number;
  sizeBytes: number;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hash a wheelhouse by relative path and content, so renaming or changing a wheel rebuilds. */
export async function hashTree(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const r = path.posix.join(rel, e.name);
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) h.update(`${r}\0${sha256(await readFile(path.join(dir, r)))}\0`);
    }
  };
  await walk('');
  return h.digest('hex');
}

export async function recipeFor(
  arch: QemuArch,
  wheelhouse?: string,
  initrd: InitrdGenerator = 'tiny-initramfs',
): Promise<Recipe> {
  const key = await ensureHarnessKey();
  const packages: string[] = [...PACKAGES];
  if (wheelhouse) packages.push(...WHEELHOUSE_PACKAGES);
  return {
    arch,
    suite: SUITE,
    packages,
    kernels: KERNELS[arch],
    guestUser: GUEST_USER,
    initrd,
    scriptSha256: sha256(await readFile(SCRIPT)),
    harnessPublicKey: key.publicKey,
    wheelhouseSha256: wheelhouse ? await hashTree(wheelhouse) : null,
  };
}

/** The recipe of any image: a built one, or the armhf-k64 layer over two of them. */
export async function recipeForImage(
  name: ImageName,
  wheelhouse?: string,
  initrd: InitrdGenerator = 'tiny-initramfs',
): Promise<Recipe> {
  if (name !== 'armhf-k64') return recipeFor(name, wheelhouse, initrd);
  const userland = await recipeFor('armhf', wheelhouse, initrd);
  const kernelImage = await recipeFor('arm64', undefined, initrd);
  return {
    ...userland,
    kernels: ['arm64'],
    layer: {
      name,
      userland: recipeKey(userland),
      kernelImage: recipeKey(kernelImage),
      scriptSha256: sha256(await readFile(LAYER_K64_SCRIPT)),
    },
  };
}

export function recipeKey(recipe: Recipe): string {
  return `${imageNameOf(recipe)}-${sha256(JSON.stringify(recipe)).slice(0, 16)}`;
}

export function imageNameOf(recipe: Pick<Recipe, 'arch' | 'layer'>): ImageName {
  return recipe.layer?.name ?? recipe.arch;
}

async function baseKeyOf(recipe: Recipe): Promise<string> {
  if (recipe.layer) return recipeKey(await recipeForImage(recipe.layer.name, undefined, recipe.initrd));
  return recipeKey({ ...recipe, packages: [...PACKAGES], wheelhouseSha256: null });
}

async function readImage(dir: string): Promise<ImageInfo | null> {
  try {
    const info = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as ImageInfo;
    // Paths are stored relative so the cache folder can move.
    info.dir = dir;
    info.disk = path.join(dir, 'disk.qcow2');
    for (const [flavour, k] of Object.entries(info.kernels)) {
      info.kernels[flavour as KernelFlavour] = {
        kernel: path.join(dir, `vmlinuz-${flavour}`),
        initrd: path.join(dir, `initrd-${flavour}`),
        version: k.version,
      };
    }
    return existsSync(info.disk) ? info : null;
  } catch {
    return null;
  }
}

/** The current image of that name (and wheelhouse), or null when it is not built. */
export async function findImage(name: ImageName, wheelhouse?: string): Promise<ImageInfo | null> {
  return readImage(path.join(imagesDir(), recipeKey(await recipeForImage(name, wheelhouse))));
}

export interface BuildOptions {
  wheelhouse?: string;
  /** Default tiny-initramfs; part of the recipe, so each generator has its own image. */
  initrd?: InitrdGenerator;
  /** Build the root on disk even when it fits in RAM (the benchmark's baseline). */
  rootOnDisk?: boolean;
  force?: boolean;
  /** Build output lines, as they come (the full log is also kept beside the image). */
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

export async function buildImage(name: ImageName, options: BuildOptions = {}): Promise<ImageInfo> {
  if (name === 'armhf-k64') return buildLayerK64(options);
  const arch = name;
  const { wheelhouse, force = false, signal } = options;
  if (wheelhouse && !existsSync(wheelhouse)) throw new ImageError(`wheelhouse ${wheelhouse} does not exist`);
  const recipe = await recipeFor(arch, wheelhouse, options.initrd);
  const key = recipeKey(recipe);
  const dir = path.join(imagesDir(), key);
  if (!force) {
    const existing = await readImage(dir);
    if (existing) return existing;
  }
  if (process.getuid?.() !== 0) {
    throw new ImageError(
      `building the ${arch} image needs root (debootstrap, chroot and binfmt_misc); ` +
        `run the build as root, e.g. \`sudo npx --no-install hil image build ${arch}\`, or \`sudo npx --no-install tsx scripts/build-images.ts\` for both arches`,
    );
  }
  await mkdir(imagesDir(), { recursive: true });
  const unlock = await acquireLock(`${dir}.lock`, signal);
  try {
    if (!force) {
      const built = await readImage(dir); // another process may have built it while we waited
      if (built) return built;
    }
    return await runBuild(recipe, key, dir, { ...options, wheelhouse });
  } finally {
    await unlock();
  }
}

/**
 * The armhf-k64 layer: both images it is made from are built first (or found in the
 * cache), then layer-k64.sh copies the arm64 kernel's modules into the armhf root.
 * Needs no root when both are cached: it only reads and writes files.
 */
async function buildLayerK64(options: BuildOptions): Promise<ImageInfo> {
  const { wheelhouse, force = false, signal } = options;
  const baseOptions = { ...options, force: false };
  const userland = await buildImage('armhf', baseOptions);
  // The kernel comes from the plain arm64 image: a wheelhouse is the userland's business.
  const kernelOptions: BuildOptions = { ...baseOptions };
  delete kernelOptions.wheelhouse;
  const kernelImage = await buildImage('arm64', kernelOptions);
  const recipe = await recipeForImage('armhf-k64', wheelhouse, options.initrd);
  const key = recipeKey(recipe);
  const dir = path.join(imagesDir(), key);
  if (!force) {
    const existing = await readImage(dir);
    if (existing) return existing;
  }
  const unlock = await acquireLock(`${dir}.lock`, signal);
  try {
    if (!force) {
      const built = await readImage(dir);
      if (built) return built;
    }
    return await runScript(recipe, key, dir, LAYER_K64_SCRIPT, { USERLAND: userland.dir, KERNEL_IMG: kernelImage.dir }, options);
  } finally {
    await unlock();
  }
}

async function runBuild(recipe: Recipe, key: string, dir: string, options: BuildOptions): Promise<ImageInfo> {
  const { wheelhouse } = options;
  const keyFiles = await ensureHarnessKey();
  const mirrors = hostMirrors();
  const env: NodeJS.ProcessEnv = {
    ARCH: recipe.arch,
    MIRROR: mirrors.main,
    SECURITY: mirrors.security,
    SUITE: recipe.suite,
    PACKAGES: recipe.packages.join(' '),
    KERNELS: recipe.kernels.join(' '),
    PUBKEY: keyFiles.publicKeyFile,
    GUEST_USER: recipe.guestUser,
    WHEELHOUSE: wheelhouse ? path.resolve(wheelhouse) : '',
    VENV: WHEELHOUSE_VENV,
    INITRD: recipe.initrd,
    ROOT_IN_RAM: options.rootOnDisk ? 'no' : 'auto',
  };
  return runScript(recipe, key, dir, SCRIPT, env, options);
}

/** Run a build script into a fresh folder beside `dir`, then move it into place with its manifest. */
async function runScript(
  recipe: Recipe,
  key: string,
  dir: string,
  script: string,
  vars: NodeJS.ProcessEnv,
  options: BuildOptions,
): Promise<ImageInfo> {
  const { onLog, signal } = options;
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const started = Date.now();
  const logFile = createWriteStream(path.join(tmp, 'build.log'));
  const env: NodeJS.ProcessEnv = { ...process.env, ...vars, OUT: tmp };
  const code = await new Promise<number | null>((resolve, reject) => {
    // Own process group, so an abort ends debootstrap and its qemu-user children too.
    const child = spawn('bash', [script], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const onAbort = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const killOnExit = (): void => onAbort();
    process.once('exit', killOnExit);
    let partial = '';
    const onData = (chunk: Buffer): void => {
      logFile.write(chunk);
      if (!onLog) return;
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) onLog(l);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (c) => {
      signal?.removeEventListener('abort', onAbort);
      process.removeListener('exit', killOnExit);
      if (partial && onLog) onLog(partial);
      resolve(c);
    });
  });
  await new Promise<void>((r) => logFile.end(r));
  if (code !== 0) {
    const log = await readFile(path.join(tmp, 'build.log'), 'utf8').catch(() => '');
    await rm(path.join(tmp, 'rootfs'), { recursive: true, force: true }).catch(() => undefined);
    const tail = log.split('\n').slice(-25).join('\n');
    throw new ImageError(`building the ${imageNameOf(recipe)} image failed (exit ${code}); log tail:\n${tail}`);
  }
  const kernels: ImageInfo['kernels'] = {};
  for (const f of recipe.kernels) {
    const version = (await readFile(path.join(tmp, `kernel-version-${f}`), 'utf8')).trim();
    kernels[f] = { kernel: `vmlinuz-${f}`, initrd: `initrd-${f}`, version };
  }
  const info: ImageInfo = {
    key,
    arch: recipe.arch,
    dir: '',
    disk: 'disk.qcow2',
    kernels,
    hostKeyFingerprint: (await readFile(path.join(tmp, 'host_key.sha256'), 'utf8')).trim(),
    hostKeyLine: (await readFile(path.join(tmp, 'host_key.pub'), 'utf8')).trim(),
    recipe,
    baseKey: await baseKeyOf(recipe),
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((Date.now() - started) / 1000),
    sizeBytes: (await stat(path.join(tmp, 'disk.qcow2'))).size,
  };
  await writeFile(path.join(tmp, 'manifest.json'), `${JSON.stringify(info, null, 2)}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  const done = await readImage(dir);
  if (!done) throw new ImageError(`image ${key} vanished after its build`);
  return done;
}

export interface ListedImage extends ImageInfo {
  /** Built from the current recipe (script, packages, key) of its arch. */
  current: boolean;
}

export async function listImages(): Promise<ListedImage[]> {
  let names: string[];
  try {
    names = await readdir(imagesDir());
  } catch {
    return [];
  }
  const currentBase: Partial<Record<ImageName, string>> = {};
  for (const name of IMAGE_NAMES) currentBase[name] = recipeKey(await recipeForImage(name));
  const out: ListedImage[] = [];
  for (const n of names.sort()) {
    if (n.includes('.')) continue;
    const info = await readImage(path.join(imagesDir(), n));
    if (info) out.push({ ...info, current: info.baseKey === currentBase[imageNameOf(info.recipe)] });
  }
  return out;
}

function readPid(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

export interface PruneResult {
  removed: string[];
  kept: string[];
}

/**
 * Remove images whose recipe is no longer current (and their saved warm states), plus
 * leftovers of interrupted builds. `all` removes every image.
 */
export async function pruneImages(options: { all?: boolean } = {}): Promise<PruneResult> {
  const removed: string[] = [];
  const kept: string[] = [];
  const images = await listImages();
  for (const img of images) {
    if (options.all || !img.current) {
      await rm(img.dir, { recursive: true, force: true });
      removed.push(img.key);
    } else kept.push(img.key);
  }
  let names: string[] = [];
  try {
    names = await readdir(imagesDir());
  } catch {
    /* nothing cached */
  }
  for (const n of names) {
    const m = /\.(?:tmp|lock)-?(\d*)$/.exec(n) ?? /\.lock$/.exec(n);
    if (!m) continue;
    const full = path.join(imagesDir(), n);
    const pid = n.endsWith('.lock') ? Number((await readFile(full, 'utf8').catch(() => '')).trim()) : Number(m[1]);
    if (!pid || !isAlive(pid)) {
      await rm(full, { recursive: true, force: true });
      removed.push(n);
    }
  }
  // Warm states are named `<image key>-<kernel flavour>_…`; drop those whose image is gone.
  // States of users' own images ("custom-…") are left alone, and so are states being made.
  try {
    for (const w of await readdir(warmDir())) {
      const base = w.split('_')[0] ?? '';
      const making = /\.(?:tmp-(\d+)|lock)$/.exec(w);
      if (base.startsWith('custom-') && !making) continue;
      const stale = making
        ? !isAlive(Number(making[1] ?? readPid(path.join(warmDir(), w))))
        : !kept.some((k) => base.startsWith(`${k}-`));
      if (stale) {
        await rm(path.join(warmDir(), w), { recursive: true, force: true });
        removed.push(`warm/${w}`);
      }
    }
  } catch {
    /* no warm states */
  }
  return { removed, kept };
}
