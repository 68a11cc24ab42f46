/**
 * Pi-model profiles for emulated Pis, and the one fixed place in their images that a
 * device's settings depend on. Plain data: the inventory (what a `profile:` implies),
 * the qemu transport (how to launch it) and the image builder (what to put in it) all
 * read it, and it reads none of them.
 *
 * Why `-M virt` and not QEMU's raspi2b/raspi3b/raspi4b boards:
 * - the raspi boards have fixed RAM (1 GiB for raspi2b/3b, 2 GiB for raspi4b), so a
 *   512 MB Zero 2 W or an 8 GB Pi 4 cannot be modelled, and RAM is what this harness measures;
 * - their only network is USB (usb-net), which blocks savevm/migration, so no warm start;
 * - they need the Pi firmware's device tree and a Pi kernel, while virt boots Debian's
 *   stock kernels with virtio disk and net.
 * So a profile is virt + `-m` = the Pi's RAM + the closest `-cpu` QEMU offers.
 *
 * CPU choices:
 * - arm64 profiles use the Pi's own core: cortex-a53 (Zero 2 W, 3B) or cortex-a72 (4B).
 * - armhf profiles run qemu-system-arm, which has no A53/A72; the 32-bit cores closest to
 *   them are cortex-a7 (in-order like the A53: Zero 2 W, 3B) and cortex-a15 (out-of-order
 *   like the A72: 4B). Both have NEON/VFPv4 and LPAE, so ARMv7 userland behaves the same.
 *   (aarch64=off, i.e. an A53 in 32-bit mode, exists only under KVM.)
 * - The plain armhf profiles boot a 32-bit kernel (armmp, or armmp-lpae above 3 GB): a Pi 3,
 *   or an older 32-bit install, where `uname -m` says armv7l and a 32-bit process gets
 *   about 3 GB of address space.
 * - Since 2023 the firmware boots a 64-bit kernel on a Pi 4 or 5 even under 32-bit Raspberry
 *   Pi OS (`arm_64bit=1`): armhf userland, `uname -m` aarch64, and a 32-bit process gets
 *   nearly all of its 4 GB (a compat task's TASK_SIZE). The `-armhf-k64` profiles are that
 *   setup: qemu-system-aarch64 with the Pi's own core, Debian's arm64 kernel and initrd,
 *   and the armhf root with that kernel's modules added (image `armhf-k64`, layered on the
 *   armhf image: see harness/image/layer-k64.sh).
 * - Pi 5 profiles use cortex-a76, its core; 16 GB of guest RAM is only declared: QEMU
 *   allocates guest pages as the guest touches them.
 * - RAM above 3 GB on 32-bit needs LPAE: virt puts RAM at 1 GiB, so 4 GB ends above
 *   the 4 GiB physical line that a non-LPAE kernel can address.
 * - Under QEMU 7.2's TCG, an LPAE guest cannot walk page tables that lie above that
 *   line: Debian's kernel puts user page tables in highmem, and the first exec dies
 *   ("synchronous abort (translation table walk)" on a table at 0x1_3fa2_c000). So these
 *   profiles boot with `movablecore=` covering the RAM above 4 GiB: page tables are never
 *   movable, so they stay below it, while user pages, which are, still get all the RAM.
 *
 * What emulation does NOT reproduce (results carry `emulated: true`):
 * - speed: TCG is one to two orders of magnitude slower than the real core and has no
 *   cache or memory-bandwidth model, so timings compare emulated runs with each other only;
 * - the GPU/VideoCore, the camera, vcgencmd and the Pi firmware;
 * - thermal throttling and under-voltage (`vcgencmd get_throttled` is absent);
 * - SD-card I/O characteristics (the disk is a qcow2 on the host's disk);
 * - the core count may be lower than the Pi's 4: see `guestCpus()`.
 * What it does reproduce: the arch, word size, instruction set (SIGILL on a wheel built
 * for a newer CPU), the RAM size and therefore the kernel's OOM killer.
 */
import os from 'node:os';

/**
 * Where in the guest a wheelhouse is installed: the image builder puts the wheels there,
 * and a device that names a wheelhouse runs its jobs with that venv's python.
 */
export const WHEELHOUSE_VENV = '/opt/pi-hil/venv';

/** The userland's arch. */
export type QemuArch = 'armhf' | 'arm64';
/** Which image a profile boots: one per arch, plus the armhf root carrying the arm64 kernel's modules. */
export type ImageName = QemuArch | 'armhf-k64';
/** Debian kernel flavour: armmp (ARMv7, up to 3 GB), armmp-lpae (ARMv7 with LPAE), arm64. */
export type KernelFlavour = 'armmp' | 'armmp-lpae' | 'arm64';

export interface PiProfile {
  name: string;
  /** The Pi this stands in for, as it appears in results. */
  model: string;
  arch: QemuArch;
  ramMb: number;
  cpu: string;
  machine: string;
  binary: string;
  kernel: KernelFlavour;
  /** The kernel's word size: 64 for an arm64 kernel, whatever the userland. */
  kernelBits: 32 | 64;
  image: ImageName;
  /** Cores on the real Pi. */
  piCores: number;
  /** Why this CPU, in one line (printed by `hil image list --profiles`). */
  note: string;
  /** Added to the kernel command line (see the LPAE note above). */
  extraAppend: string | null;
}

const ARM = 'qemu-system-arm';
const ARM64 = 'qemu-system-aarch64';

function armhf(name: string, model: string, ramMb: number, cpu: string, note: string): PiProfile {
  // Above 3 GB a 32-bit kernel needs LPAE to reach the RAM (see the header).
  const kernel: KernelFlavour = ramMb > 3072 ? 'armmp-lpae' : 'armmp';
  const extraAppend = ramMb > 3072 ? lpaeMovableCore(ramMb) : null;
  return { name, model, arch: 'armhf', ramMb, cpu, machine: 'virt', binary: ARM, kernel, kernelBits: 32, image: 'armhf', piCores: 4, note, extraAppend };
}
function arm64(name: string, model: string, ramMb: number, cpu: string, note: string): PiProfile {
  return { name, model, arch: 'arm64', ramMb, cpu, machine: 'virt', binary: ARM64, kernel: 'arm64', kernelBits: 64, image: 'arm64', piCores: 4, note, extraAppend: null };
}
/** 32-bit Raspberry Pi OS on a Pi 4 or 5 today: armhf userland under the arm64 kernel, on the Pi's own core. */
function armhfK64(name: string, model: string, ramMb: number, cpu: string, note: string): PiProfile {
  return { name, model, arch: 'armhf', ramMb, cpu, machine: 'virt', binary: ARM64, kernel: 'arm64', kernelBits: 64, image: 'armhf-k64', piCores: 4, note, extraAppend: null };
}

/** RAM starts at 1 GiB on virt, so what lies above 4 GiB is all but the first 3 GB; plus a margin. */
export function lpaeMovableCore(ramMb: number): string {
  return `movablecore=${ramMb - 3072 + 256}M`;
}

export const PROFILES: readonly PiProfile[] = [
  armhf('zero2w-512-armhf', 'Raspberry Pi Zero 2 W (emulated)', 512, 'cortex-a7', 'A53 in 32-bit mode ~ cortex-a7'),
  arm64('zero2w-512-arm64', 'Raspberry Pi Zero 2 W (emulated)', 512, 'cortex-a53', 'the Zero 2 W core'),
  armhf('pi3b-1g-armhf', 'Raspberry Pi 3 Model B (emulated)', 1024, 'cortex-a7', 'A53 in 32-bit mode ~ cortex-a7'),
  arm64('pi3b-1g-arm64', 'Raspberry Pi 3 Model B (emulated)', 1024, 'cortex-a53', 'the Pi 3 core'),
  armhf('pi4b-2g-armhf', 'Raspberry Pi 4 Model B 2GB (emulated)', 2048, 'cortex-a15', 'A72 in 32-bit mode ~ cortex-a15'),
  arm64('pi4b-2g-arm64', 'Raspberry Pi 4 Model B 2GB (emulated)', 2048, 'cortex-a72', 'the Pi 4 core'),
  armhf('pi4b-4g-armhf', 'Raspberry Pi 4 Model B 4GB (emulated)', 4096, 'cortex-a15', 'cortex-a15 + LPAE kernel for 4 GB'),
  // The 64-bit twin of pi4b-4g-armhf: same RAM, so memory-ladder shows the 32-bit address-space ceiling.
  arm64('pi4b-4g-arm64', 'Raspberry Pi 4 Model B 4GB (emulated)', 4096, 'cortex-a72', 'the Pi 4 core'),
  arm64('pi4b-8g-arm64', 'Raspberry Pi 4 Model B 8GB (emulated)', 8192, 'cortex-a72', 'the Pi 4 core'),
  // 32-bit Pi OS on a Pi 4 as it boots since 2023: the third 4 GB setup beside the two above.
  armhfK64('pi4b-2g-armhf-k64', 'Raspberry Pi 4 Model B 2GB (emulated)', 2048, 'cortex-a72', 'armhf userland on the arm64 kernel, Pi 4 core'),
  armhfK64('pi4b-4g-armhf-k64', 'Raspberry Pi 4 Model B 4GB (emulated)', 4096, 'cortex-a72', 'armhf userland on the arm64 kernel, Pi 4 core'),
  armhfK64('pi4b-8g-armhf-k64', 'Raspberry Pi 4 Model B 8GB (emulated)', 8192, 'cortex-a72', 'armhf userland on the arm64 kernel, Pi 4 core'),
  arm64('pi5-4g-arm64', 'Raspberry Pi 5 4GB (emulated)', 4096, 'cortex-a76', 'the Pi 5 core'),
  arm64('pi5-8g-arm64', 'Raspberry Pi 5 8GB (emulated)', 8192, 'cortex-a76', 'the Pi 5 core'),
  arm64('pi5-16g-arm64', 'Raspberry Pi 5 16GB (emulated)', 16384, 'cortex-a76', 'the Pi 5 core; 16 GB declared, touched only as used'),
  armhfK64('pi5-4g-armhf-k64', 'Raspberry Pi 5 4GB (emulated)', 4096, 'cortex-a76', 'armhf userland on the arm64 kernel, Pi 5 core'),
  armhfK64('pi5-8g-armhf-k64', 'Raspberry Pi 5 8GB (emulated)', 8192, 'cortex-a76', 'armhf userland on the arm64 kernel, Pi 5 core'),
  armhfK64('pi5-16g-armhf-k64', 'Raspberry Pi 5 16GB (emulated)', 16384, 'cortex-a76', 'armhf userland on the arm64 kernel, Pi 5 core; 16 GB declared'),
  // Not a Pi: a deliberately tiny guest for OOM tests.
  armhf('tiny-256-armhf', 'OOM test guest, 256 MB (emulated)', 256, 'cortex-a7', 'test profile'),
  arm64('tiny-256-arm64', 'OOM test guest, 256 MB (emulated)', 256, 'cortex-a53', 'test profile'),
];

export function findProfile(name: string): PiProfile | undefined {
  return PROFILES.find((p) => p.name === name);
}

export function profileNames(): string[] {
  return PROFILES.map((p) => p.name);
}

/**
 * vCPUs for a guest: the Pi's 4 cores, but never more than the host has, because
 * TCG runs one host thread per vCPU and oversubscription only adds contention.
 * Part of the warm-state key (a saved state restores only with the same count).
 */
export function guestCpus(profile: Pick<PiProfile, 'piCores'>, hostCpus = os.cpus().length): number {
  return Math.max(1, Math.min(profile.piCores, hostCpus));
}
