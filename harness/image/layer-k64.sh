#!/usr/bin/env bash
# Builds the armhf-k64 image: the armhf image's root with the arm64 image's kernel, its
# initrd and its modules, as 32-bit Raspberry Pi OS boots on a Pi 4 or 5 since 2023
# (armhf userland, 64-bit kernel). A layer over two cached images, not a new debootstrap:
# no package is installed and nothing runs under emulation, so it takes seconds.
#
# The arm64 initrd (tiny-initramfs: virtio disk and ext4) mounts the armhf root; after
# that the armhf udev loads the rest (virtio net and rng) from /lib/modules/<arm64 version>,
# which the armhf root does not have until this adds it. kmod's index files do not depend
# on the word size, so the armhf modprobe reads the arm64 kernel's.
#
# Everything goes through e2fsprogs' debugfs on a raw copy: no mount, no loop device.
# Driven by image.ts, which hashes this file's text into the layer's cache key. Inputs:
#   USERLAND    the armhf image's folder (disk.qcow2)
#   KERNEL_IMG  the arm64 image's folder (disk.qcow2, vmlinuz-arm64, initrd-arm64, kernel-version-arm64)
#   OUT         empty output folder (on the same filesystem as the cache)
set -euo pipefail

log() { printf '[layer-k64 %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'layer-k64: %s\n' "$*" >&2; exit 1; }

for v in USERLAND KERNEL_IMG OUT; do [ -n "${!v:-}" ] || die "missing \$$v"; done
for f in "$USERLAND/disk.qcow2" "$USERLAND/host_key.pub" "$USERLAND/host_key.sha256" \
  "$KERNEL_IMG/disk.qcow2" "$KERNEL_IMG/vmlinuz-arm64" "$KERNEL_IMG/initrd-arm64" "$KERNEL_IMG/kernel-version-arm64"; do
  [ -f "$f" ] || die "missing $f"
done
command -v debugfs >/dev/null || die "debugfs is missing (install e2fsprogs)"

version=$(cat "$KERNEL_IMG/kernel-version-arm64")
work="$OUT/work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/modules"

log "taking /lib/modules/$version out of the arm64 image"
qemu-img convert -O raw "$KERNEL_IMG/disk.qcow2" "$work/kernel.raw"
debugfs -R "rdump /lib/modules/$version $work/modules" "$work/kernel.raw" >/dev/null 2>"$work/rdump.err" ||
  die "debugfs rdump failed: $(cat "$work/rdump.err")"
rm -f "$work/kernel.raw"
mods="$work/modules/$version"
[ -f "$mods/modules.dep.bin" ] || die "the arm64 image has no modules.dep.bin for $version"
[ -n "$(find "$mods" -name 'virtio_net.ko*' -print -quit)" ] || die "the arm64 image's modules lack virtio_net"

log "adding them to a copy of the armhf root"
qemu-img convert -O raw "$USERLAND/disk.qcow2" "$work/root.raw"
{
  echo "mkdir /lib/modules/$version"
  (cd "$mods" && find . -mindepth 1 -type d | sed 's|^\./||' | sort) | while read -r d; do
    echo "mkdir /lib/modules/$version/$d"
  done
  (cd "$mods" && find . -type f | sed 's|^\./||' | sort) | while read -r f; do
    echo "write $mods/$f /lib/modules/$version/$f"
  done
  (cd "$mods" && find . -type l | sed 's|^\./||' | sort) | while read -r l; do
    echo "symlink /lib/modules/$version/$l $(readlink "$mods/$l")"
  done
} > "$work/commands"
# debugfs goes on after a failed command, so its output is read instead of its exit code:
# anything but the banner, the echoed commands and "Allocated inode" is an error.
debugfs -w -f "$work/commands" "$work/root.raw" > "$work/debugfs.log" 2>&1 || true
errors=$(grep -vE '^(debugfs [0-9]|debugfs: |Allocated inode: )' "$work/debugfs.log" || true)
[ -z "$errors" ] || die "debugfs reported errors: $(head -5 <<<"$errors")"
# A file system check, read-only: what was written must be whole.
e2fsck -fn "$work/root.raw" > "$work/fsck.log" 2>&1 || die "e2fsck after the writes: $(tail -5 "$work/fsck.log")"
written=$(debugfs -R "ls /lib/modules/$version" "$work/root.raw" 2>/dev/null | grep -c 'modules.dep.bin' || true)
[ "$written" -ge 1 ] || die "the modules did not land in the armhf root"

log "packing the qcow2"
qemu-img convert -f raw -O qcow2 "$work/root.raw" "$OUT/disk.qcow2"
cp "$KERNEL_IMG/vmlinuz-arm64" "$OUT/vmlinuz-arm64"
cp "$KERNEL_IMG/initrd-arm64" "$OUT/initrd-arm64"
echo "$version" > "$OUT/kernel-version-arm64"
# The root is the armhf image's, so is its host key.
cp "$USERLAND/host_key.pub" "$USERLAND/host_key.sha256" "$OUT/"
log "done: $(du -sm "$mods" | awk '{print $1}') MB of modules for $version"
