#!/usr/bin/env bash
# The main job: set this machine up (Debian packages, npm dependencies, the
# TensorFlow virtualenv, the QEMU Pi images; all cached), then run every suite
# on the default inventory and build the reports.
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
exit "$status"
