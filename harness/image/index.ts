/**
 * The emulated Pis' disk images: build, find, list and prune them, and the harness key
 * baked into them. Build-time tooling in a room of its own: the inventory never loads
 * it, and the qemu transport only reads it (which image to boot, which key logs in).
 * Code outside this folder imports from here.
 */
export {
  buildImage,
  findImage,
  IMAGE_NAMES,
  ImageError,
  listImages,
  pruneImages,
  type BuildOptions,
  type ImageInfo,
  type InitrdGenerator,
  type ListedImage,
  type PruneResult,
} from './image.ts';
export { ensureHarnessKey, type HarnessKey } from './keys.ts';
export { imagesDir } from '../host/paths.ts';
