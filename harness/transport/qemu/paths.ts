/**
 * Where emulated-Pi files live. Images are big and shared between checkouts, so they
 * sit in the user's cache outside the repository; running VMs are per project.
 */
import path from 'node:path';
import { cacheDir, stateDir } from '../../host/paths.ts';

export { cacheDir };

/** `<cache>/images/<arch>-<recipe-hash>/` */
export function imagesDir(): string {
  return path.join(cacheDir(), 'images');
}

/** Saved VM states for warm start, keyed like the images they were made from. */
export function warmDir(): string {
  return path.join(cacheDir(), 'warm');
}

/** `<state>/qemu`: pidfiles, overlays and console logs of running VMs. */
export function vmStateDir(): string {
  return path.join(stateDir(), 'qemu');
}
