#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for pi-hil: Debian packages, npm
# dependencies, the TensorFlow virtualenv and the QEMU Pi images. Everything
# slow is cached outside the repository and reused on the next run.
#
#   bash scripts/setup.sh            everything
#   bash scripts/setup.sh --no-images  skip the QEMU images (SSH/local devices only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

images=1
for arg in "$@"; do
  case "$arg" in
    --no-images) images=0 ;;
    *) echo "setup.sh: unknown option $arg (allowed: --no-images)" >&2; exit 2 ;;
  esac
done

# What the harness, its tests and the emulated Pis need from Debian.
packages=(
  openssh-server openssh-client            # local sshd devices, ssh-keygen
  qemu-system-arm qemu-user-static qemu-utils debootstrap binfmt-support  # emulated Pis
  python3 python3-venv python3-numpy       # the agent and the NumPy reference
  python3-pyarmnn libarmnn-cpuref-backend22 libarmnntfliteparser22  # TFLite via Arm NN, checked on the host
  chromium                                 # rendering checks of the reports
  procps util-linux e2fsprogs cpio      # cpio: checking the initrds that images carry
  snmp                                     # snmpset/snmpget: PoE switch ports (power: adapter snmp-poe)
  ansible-core                             # npm run bench: the Ansible baseline (ad-hoc -m script)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# allure generate needs a Java runtime; any JDK/JRE 8+ on PATH will do.
command -v java >/dev/null || missing+=(default-jre-headless)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: these Debian packages are missing and installing them needs root:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}" >&2
  # Debian's mirror is sometimes mid-sync: retry.
  for attempt in 1 2 3; do
    if apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; then break; fi
    [[ $attempt -eq 3 ]] && { echo "setup.sh: apt-get failed 3 times" >&2; exit 1; }
    sleep $((attempt * 10))
  done
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

echo "setup.sh: TensorFlow virtualenv: $(bash scripts/tf-venv.sh)" >&2

if ((images)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: building QEMU images needs root (debootstrap); rerun as root, or use --no-images" >&2
    exit 1
  fi
  npx tsx scripts/build-images.ts
fi
echo "setup.sh: ready" >&2
