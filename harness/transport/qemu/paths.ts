/**
 * Where running VMs keep their files. They are per project, so they sit in its state
 * folder; the images and warm states they start from are in the shared cache
 * (host/paths.ts).
 */
import path from 'node:path';
import { stateDir } from '../../host/paths.ts';

/** `<state>/qemu`: pidfiles, overlays and console logs of running VMs. */
export function vmStateDir(): string {
  return path.join(stateDir(), 'qemu');
}
