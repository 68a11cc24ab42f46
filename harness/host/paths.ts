/**
 * Where pi-hil keeps things outside the results: the project's state folder
 * (known_hosts recorded by --accept-new, pidfiles of running VMs) and the
 * user's cache (images, virtualenvs), which is shared between checkouts.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: two levels above this file (harness/host). */
export function projectDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** `${PI_HIL_STATE:-<project>/.state}` */
export function stateDir(): string {
  return process.env['PI_HIL_STATE'] || path.join(projectDir(), '.state');
}

/** `${PI_HIL_CACHE:-$HOME/.cache/pi-hil}` */
export function cacheDir(): string {
  return process.env['PI_HIL_CACHE'] || path.join(os.homedir(), '.cache', 'pi-hil');
}

/** `<cache>/images/<arch>-<recipe-hash>/`: the emulated Pis' disk images. */
export function imagesDir(): string {
  return path.join(cacheDir(), 'images');
}

/** Saved VM states for warm start, keyed like the images they were made from (and pruned with them). */
export function warmDir(): string {
  return path.join(cacheDir(), 'warm');
}

/** Host keys accepted with --accept-new. */
export function knownHostsFile(): string {
  return path.join(stateDir(), 'known_hosts');
}
