#!/usr/bin/env bash
# The main job: set this machine up (Debian packages, npm dependencies, the
# TensorFlow virtualenv, the QEMU Pi images; all cached), then run every suite
# on the default inventory and build the reports; then two small capacity
# searches (`hil envelope`): keras-train's hidden-layer width on the capped
# devices, and memory-ladder's limit on the 32-bit and the 64-bit 4 GB QEMU
# guest. Their run folders go under $PI_HIL_ENVELOPE_OUT (default
# reports/envelopes); PI_HIL_ENVELOPE=0 leaves them out.
#
#   npm run demo [-- <extra hil run options>]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
PI_HIL_TF_PYTHON="$(bash scripts/tf-venv.sh)"
export PI_HIL_TF_PYTHON
status=0
node bin/hil.js run --inventory devices.yaml --concurrency 4 "$@" || status=$?
# 0: every expectation met; 1: an outcome the article's claims did not predict; 3: infrastructure.
echo "demo: hil run exited ${status}; the reports are in the newest folder under reports/runs/" >&2
if [ "${PI_HIL_ENVELOPE:-1}" != 0 ]; then
  envelopes="${PI_HIL_ENVELOPE_OUT:-reports/envelopes}"
  # How far can each device go? Ten-fold steps, then bisection to a factor of 2 (about 5 probes a device).
  node bin/hil.js envelope --inventory devices.yaml --tag capped --suite keras-train --param units \
    --from 10000 --to 10000000 --resolution 2 --out "$envelopes" || status=$?
  # 32-bit against 64-bit on the same 4 GB: the largest memory-ladder limit that one process
  # still reaches. Two guests, 100 MB steps and 2000..4000 MB keep it to 4 probes a guest
  # (about 2.5 minutes on 2 cores).
  node bin/hil.js envelope --inventory devices.yaml --device qemu-pi4b-4g-armhf,qemu-pi4b-4g-arm64 \
    --suite memory-ladder --param limit_mb --fix step_mb=100 --from 2000 --to 4000 --factor 2 --resolution 1.25 \
    --out "$envelopes" || status=$?
  echo "demo: capacity searches in ${envelopes}/" >&2
fi
exit "$status"
