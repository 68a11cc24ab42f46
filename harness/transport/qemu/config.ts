/**
 * Turn a qemu device (a named profile, or the user's own image and boot files) into
 * the concrete launch configuration of a VM.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { QemuSpec } from '../../inventory/device.ts';
import { ensureHarnessKey, findImage, type ImageInfo } from '../../image/index.ts';
import { findProfile, guestCpus, profileNames, type QemuArch } from '../../pi/profiles.ts';

export interface VmConfig {
  /** Device name, for logs and folder names. */
  name: string;
  arch: QemuArch;
  binary: string;
  machine: string;
  cpu: string;
  ramMb: number;
  cpus: number;
  /** Base disk; each VM writes to its own overlay over it. */
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  kernel: string;
  initrd: string | null;
  dtb: string | null;
  append: string;
  user: string;
  privateKeyFile: string;
  /** "SHA256:…" of the guest's host key; null for a user image whose key is unknown. */
  hostKeyFingerprint: string | null;
  /** Identity of the disk and boot files; the warm state is keyed on it. */
  baseId: string;
  /** Profile name, or "custom". */
  profile: string;
}

/**
 * A qemu device that cannot be turned into a VM: no profile, an image not built yet, a
 * missing boot file. Not a ConfigError (config/diagnostics.ts): that is a devices.yaml
 * or suite.yaml that does not validate, reported at its file, line and column.
 */
export class VmConfigError extends Error {
  override readonly name = 'VmConfigError';
}

/**
 * The kernel command line. `panic=1` with QEMU's -no-reboot turns a panic into an exit
 * we can see; console on the virt board's PL011.
 */
export const DEFAULT_APPEND = 'root=/dev/vda rw rootwait console=ttyAMA0 panic=1 fsck.mode=skip';

export interface DeviceLike {
  name: string;
  ramMb: number;
  qemu: QemuSpec;
}

export async function resolveVmConfig(device: DeviceLike, image?: ImageInfo): Promise<VmConfig> {
  const spec = device.qemu;
  const key = await ensureHarnessKey();
  if (spec.image) return customConfig(device, key.privateKeyFile);
  const profile = spec.profile ? findProfile(spec.profile) : undefined;
  if (!profile) {
    throw new VmConfigError(
      `device ${device.name}: qemu needs a profile (${profileNames().join(', ')}) or its own image`,
    );
  }
  const wheelhouse = spec.wheelhouse ?? undefined;
  const img = image ?? (await findImage(profile.image, wheelhouse));
  if (!img) {
    const build = `hil image build ${profile.image}${wheelhouse ? ` --wheelhouse ${wheelhouse}` : ''}`;
    throw new VmConfigError(
      `device ${device.name}: the ${profile.image} image${wheelhouse ? ' with this wheelhouse' : ''} is not built (or the wheels changed); run \`${build}\` (needs root)`,
    );
  }
  if (spec.user !== img.recipe.guestUser) {
    throw new VmConfigError(`device ${device.name}: the ${profile.image} image has the user ${img.recipe.guestUser}, not ${spec.user}`);
  }
  const boot = img.kernels[profile.kernel];
  if (!boot) throw new VmConfigError(`image ${img.key} has no ${profile.kernel} kernel`);
  return {
    name: device.name,
    arch: profile.arch,
    binary: profile.binary,
    machine: spec.machine ?? profile.machine,
    cpu: spec.cpu ?? profile.cpu,
    // The profile's RAM is the Pi's; the device's ram_mb may deliberately differ (e.g. a 256 MB guest).
    ramMb: device.ramMb || profile.ramMb,
    cpus: guestCpus(profile),
    disk: img.disk,
    diskFormat: 'qcow2',
    kernel: spec.kernel ?? boot.kernel,
    initrd: spec.initrd ?? boot.initrd,
    dtb: spec.dtb,
    append: spec.append ?? [DEFAULT_APPEND, profile.extraAppend].filter(Boolean).join(' '),
    user: spec.user,
    privateKeyFile: key.privateKeyFile,
    hostKeyFingerprint: img.hostKeyFingerprint,
    baseId: `${img.key}-${profile.kernel}`,
    profile: profile.name,
  };
}

function fileId(file: string): string {
  const st = statSync(file);
  return `${file}:${st.size}:${st.mtimeMs}`;
}

/** The user's own image (e.g. Raspberry Pi OS): they give the boot files, machine and cpu. */
function customConfig(device: DeviceLike, privateKeyFile: string): VmConfig {
  const spec = device.qemu;
  const profile = spec.profile ? findProfile(spec.profile) : undefined;
  const image = spec.image as string;
  if (!spec.kernel && !profile) throw new VmConfigError(`device ${device.name}: an own image needs a kernel`);
  const kernel = spec.kernel;
  if (!kernel) throw new VmConfigError(`device ${device.name}: an own image needs a kernel`);
  const arch: QemuArch = profile?.arch ?? (spec.cpu && /a5[37]|a72|a76|max/.test(spec.cpu) ? 'arm64' : 'armhf');
  const parts = [image, kernel, spec.initrd, spec.dtb].filter((x): x is string => !!x);
  let baseId: string;
  try {
    baseId = `custom-${createHash('sha256').update(parts.map(fileId).join('|')).digest('hex').slice(0, 16)}`;
  } catch (e) {
    throw new VmConfigError(`device ${device.name}: ${(e as Error).message}`);
  }
  return {
    name: device.name,
    arch,
    binary: profile?.binary ?? (arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-arm'),
    machine: spec.machine ?? 'virt',
    cpu: spec.cpu ?? profile?.cpu ?? (arch === 'arm64' ? 'cortex-a72' : 'cortex-a15'),
    ramMb: device.ramMb || profile?.ramMb || 1024,
    cpus: guestCpus({ piCores: 4 }),
    disk: image,
    diskFormat: /\.qcow2$/i.test(image) ? 'qcow2' : 'raw',
    kernel,
    initrd: spec.initrd,
    dtb: spec.dtb,
    append: spec.append ?? DEFAULT_APPEND,
    user: spec.user,
    privateKeyFile,
    hostKeyFingerprint: null,
    baseId,
    profile: profile?.name ?? 'custom',
  };
}
