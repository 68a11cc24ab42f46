#!/usr/bin/env bash
# Builds one emulated-Pi disk image: Debian bookworm via debootstrap + qemu-user-static,
# packed into a qcow2 with its kernel and initrd taken out for direct boot.
#
# Driven by image.ts, which hashes this file's text into the cache key: editing it
# rebuilds the images. Inputs (environment):
#   ARCH        armhf | arm64
#   OUT         empty output folder (on the same filesystem as the cache)
#   MIRROR      Debian mirror URL (the host's own)
#   SECURITY    Debian security mirror URL
#   SUITE       bookworm
#   PACKAGES    space-separated packages installed after debootstrap
#   KERNELS     space-separated kernel flavours (armmp armmp-lpae | arm64)
#   PUBKEY      the harness's ssh public key, authorized for GUEST_USER
#   GUEST_USER  login user (pi)
#   WHEELHOUSE  optional folder of wheels, installed offline into the venv $VENV
#   VENV        where the wheelhouse's venv goes (image.ts: WHEELHOUSE_VENV)
#   INITRD      tiny-initramfs (default) | initramfs-tools (Debian's default generator:
#               slower to build under emulation, kept as the benchmark's baseline)
#   ROOT_IN_RAM auto (default: a tmpfs when memory allows) | no
set -euo pipefail

log() { printf '[build-image %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "building an image needs root (debootstrap, chroot, binfmt_misc); run it with sudo"
for v in ARCH OUT MIRROR SECURITY SUITE PACKAGES KERNELS PUBKEY GUEST_USER; do
  [ -n "${!v:-}" ] || die "missing \$$v"
done

case "$ARCH" in
  armhf) QEMU_USER=qemu-arm ;;
  arm64) QEMU_USER=qemu-aarch64 ;;
  *) die "unknown arch $ARCH" ;;
esac

# Retry a command: the Debian mirror is sometimes mid-sync ("File has unexpected size").
retry() {
  local n=1 max=4
  until "$@"; do
    [ $n -ge $max ] && return 1
    log "attempt $n of '$*' failed; retrying in $((n * 15)) s"
    sleep $((n * 15)); n=$((n + 1))
  done
}

# binfmt_misc is not mounted on a fresh machine; without it the foreign second stage cannot exec.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  log "mounting binfmt_misc"
  # Two builds may race here: losing the race to mount it is fine.
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
    [ -e /proc/sys/fs/binfmt_misc/status ] || die "cannot mount binfmt_misc"
fi
update-binfmts --enable "$QEMU_USER" >/dev/null 2>&1 || true
[ -e "/proc/sys/fs/binfmt_misc/$QEMU_USER" ] || die "binfmt handler $QEMU_USER is not registered (install qemu-user-static and binfmt-support)"

ROOT="$OUT/rootfs"
# Every mount at or below the root, deepest first: ours, and the proc and sys that
# debootstrap mounts in the target itself (an interrupted run leaves them).
unmount_root() {
  awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
}
cleanup() {
  unmount_root
  # --one-file-system: never follow a bind mount that failed to detach into the host.
  rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# The root is built in RAM when there is room: dpkg fsyncs every file it unpacks, and the
# root is thrown away once packed, so a disk under it only adds waiting (it holds ~1 GB).
avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
fresh_root() {
  unmount_root
  rm -rf --one-file-system "$ROOT"; mkdir -p "$ROOT"
  if [ "${ROOT_IN_RAM:-auto}" = auto ] && [ "${avail_kb:-0}" -ge $((6 * 1024 * 1024)) ]; then
    mount -t tmpfs -o size=4g,mode=755 pi-hil-rootfs "$ROOT"
  else
    log "building the root on disk (ROOT_IN_RAM=${ROOT_IN_RAM:-auto}, $((avail_kb / 1024)) MB available)"
  fi
}
debootstrap_once() {
  fresh_root
  debootstrap --arch="$ARCH" --variant=minbase \
    --include=systemd-sysv,udev \
    "$SUITE" "$ROOT" "$MIRROR"
}
log "debootstrap $SUITE $ARCH from $MIRROR"
retry debootstrap_once || die "debootstrap failed (see above)"

bindmount() { mount --bind "$1" "$ROOT$1"; }
bindmount /proc; bindmount /sys; bindmount /dev; bindmount /dev/pts
in_root() { chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# No daemons inside the build chroot; unsafe-io and no recommends keep dpkg fast under qemu-user.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"; chmod 755 "$ROOT/usr/sbin/policy-rc.d"
echo force-unsafe-io > "$ROOT/etc/dpkg/dpkg.cfg.d/pi-hil-unsafe-io"
printf 'APT::Install-Recommends "false";\nAcquire::Retries "5";\nDpkg::Use-Pty "0";\n' > "$ROOT/etc/apt/apt.conf.d/90pi-hil"
# No documentation, man pages or translations: less for dpkg to unpack under emulation.
cat > "$ROOT/etc/dpkg/dpkg.cfg.d/90pi-hil-excludes" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# The initrd: initramfs-tools' shell-heavy generator was the slowest step under qemu-user
# (a minute or more per kernel, even with a short module list). The guest only has to
# load its virtio disk and ext4 to find its root, so tiny-initramfs (a small C init; it
# Provides linux-initramfs-tool) does it in seconds. mktirfs resolves module dependencies
# (modprobe --show-depends); ext4 takes its checksum through the crypto API, so crc32c
# is named by hand.
case "${INITRD:-tiny-initramfs}" in
  tiny-initramfs)
    mkdir -p "$ROOT/etc/tiny-initramfs"
    cat > "$ROOT/etc/tiny-initramfs/tiny-initramfs.conf" <<'EOF'
AUTO_MODULES=no
INCLUDE_MODULES=virtio_mmio,virtio_blk,ext4,crc32c_generic
MICROCODE=no
EOF
    ;;
  initramfs-tools)
    # Files of our own, so dpkg sees no changed conffile of initramfs-tools.
    mkdir -p "$ROOT/etc/initramfs-tools/conf.d" "$ROOT/usr/share/initramfs-tools/modules.d"
    printf 'MODULES=list\nCOMPRESS=gzip\n' > "$ROOT/etc/initramfs-tools/conf.d/pi-hil"
    printf '%s\n' virtio_mmio virtio_blk ext4 crc32c_generic > "$ROOT/usr/share/initramfs-tools/modules.d/pi-hil"
    ;;
  *) die "unknown INITRD ${INITRD} (allowed: tiny-initramfs, initramfs-tools)" ;;
esac

KPKGS=""
for f in $KERNELS; do KPKGS="$KPKGS linux-image-$f"; done
log "apt-get install $PACKAGES $KPKGS"
# A proxy or mirror mid-sync can keep serving one stale index for a long while; apt then
# ignores that source, and installing from the others is better than no image at all.
retry in_root apt-get update || log "apt-get update left some indexes out (mirror mid-sync?); installing from the rest"
# The initrd generator before the kernels, so apt never picks initramfs-tools for them.
retry in_root apt-get install -y $PACKAGES "${INITRD:-tiny-initramfs}" kmod
retry in_root apt-get install -y $KPKGS

if [ -n "${WHEELHOUSE:-}" ]; then
  [ -n "${VENV:-}" ] || die "missing \$VENV"
  log "installing the wheelhouse offline into $VENV"
  mkdir -p "$ROOT/opt/pi-hil/wheelhouse"
  cp -a "$WHEELHOUSE"/. "$ROOT/opt/pi-hil/wheelhouse/"
  in_root python3 -m venv --system-site-packages "$VENV"
  in_root sh -c "ls /opt/pi-hil/wheelhouse/*.whl >/dev/null 2>&1 && '$VENV/bin/pip' install --no-index --find-links /opt/pi-hil/wheelhouse /opt/pi-hil/wheelhouse/*.whl"
fi

log "configuring the guest"
echo pi-hil > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpi-hil\n' > "$ROOT/etc/hosts"
echo '/dev/vda / ext4 defaults,noatime 0 1' > "$ROOT/etc/fstab"
printf 'nameserver 10.0.2.3\n' > "$ROOT/etc/resolv.conf"

# The login user looks like Raspberry Pi OS's: in adm (journalctl -k) and sudo without password.
in_root useradd -m -s /bin/bash -G adm,sudo "$GUEST_USER"
echo "$GUEST_USER ALL=(ALL) NOPASSWD: ALL" > "$ROOT/etc/sudoers.d/010_pi-hil"
chmod 440 "$ROOT/etc/sudoers.d/010_pi-hil"
uid=$(in_root id -u "$GUEST_USER"); gid=$(in_root id -g "$GUEST_USER")
install -d -m 700 -o "$uid" -g "$gid" "$ROOT/home/$GUEST_USER/.ssh"
install -m 600 -o "$uid" -g "$gid" "$PUBKEY" "$ROOT/home/$GUEST_USER/.ssh/authorized_keys"

# One ed25519 host key, made here (not under qemu-user) and recorded beside the image for pinning.
rm -f "$ROOT"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C pi-hil-guest -f "$ROOT/etc/ssh/ssh_host_ed25519_key"
cp "$ROOT/etc/ssh/ssh_host_ed25519_key.pub" "$OUT/host_key.pub"
ssh-keygen -l -E sha256 -f "$OUT/host_key.pub" | awk '{print $2}' > "$OUT/host_key.sha256"
cat > "$ROOT/etc/ssh/sshd_config.d/pi-hil.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
UseDNS no
GSSAPIAuthentication no
EOF

# User-mode network: DHCP by systemd-networkd, and nothing waits for "online" at boot.
cat > "$ROOT/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
EOF
in_root systemctl enable systemd-networkd.service ssh.service
in_root systemctl disable systemd-networkd-wait-online.service 2>/dev/null || true
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer 2>/dev/null || true

# Serial console on ttyAMA0 (the virt board's PL011), logged in as root for `hil console`.
mkdir -p "$ROOT/etc/systemd/system/serial-getty@ttyAMA0.service.d"
cat > "$ROOT/etc/systemd/system/serial-getty@ttyAMA0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

# The disk driver must be in the initrd (or built in), or the guest cannot find its root.
# (The listing is taken whole: `cpio -t | grep -q` fails under pipefail by SIGPIPE.)
for v in $(cd "$ROOT/lib/modules" && ls); do
  grep -q 'virtio_blk' "$ROOT/lib/modules/$v/modules.builtin" 2>/dev/null && continue
  listing=$(zcat "$ROOT/boot/initrd.img-$v" | cpio -t --quiet 2>/dev/null || true)
  grep -q 'virtio_blk\.ko' <<<"$listing" || die "the initrd of kernel $v lacks virtio_blk: the guest would not find its disk"
done

log "taking out kernels and initrds"
for f in $KERNELS; do
  v=$(cd "$ROOT/boot" && ls vmlinuz-*-"$f" | sed 's/^vmlinuz-//' | sort -V | tail -1)
  [ -n "$v" ] || die "no kernel for flavour $f"
  cp "$ROOT/boot/vmlinuz-$v" "$OUT/vmlinuz-$f"
  cp "$ROOT/boot/initrd.img-$v" "$OUT/initrd-$f"
  echo "$v" > "$OUT/kernel-version-$f"
done

rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/dpkg/dpkg.cfg.d/pi-hil-unsafe-io"
in_root apt-get clean
for m in /dev/pts /dev /sys /proc; do umount -l "$ROOT$m"; done

log "packing the qcow2"
used_mb=$(du -sm "$ROOT" | awk '{print $1}')
size_mb=$((used_mb + used_mb / 4 + 1536))
truncate -s "${size_mb}M" "$OUT/disk.raw"
mkfs.ext4 -q -F -L pi-hil-root -d "$ROOT" "$OUT/disk.raw"
qemu-img convert -f raw -O qcow2 "$OUT/disk.raw" "$OUT/disk.qcow2"
rm -f "$OUT/disk.raw"
log "done: $used_mb MB used, ${size_mb} MB disk"
