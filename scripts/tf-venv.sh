#!/usr/bin/env bash
# Create (once) the TensorFlow virtualenv that local capped devices run in, and
# print its interpreter path on stdout. The venv lives outside the repository,
# keyed by a hash of the requirements file and the base interpreter's version,
# so it is reused until either changes.
#
#   PI_HIL_CACHE   cache root (default: $HOME/.cache/pi-hil)
#   PI_HIL_PYTHON  base interpreter (default: python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="${here}/tf-requirements.txt"
base="${PI_HIL_PYTHON:-python3}"
cache="${PI_HIL_CACHE:-$HOME/.cache/pi-hil}"

pyver="$("$base" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
key="$( { cat "$req"; echo "python=${pyver}"; } | sha256sum | cut -c1-16)"
venv="${cache}/venv/tf-${key}"

mkdir -p "${cache}/venv"
# Two test files may ask at once: one builds, the other waits and reuses.
exec 9>"${venv}.lock"
flock 9

# The marker is written last, so a half-built venv is never reused.
if [[ ! -f "${venv}/.complete" ]]; then
  rm -rf "${venv}"
  {
    "$base" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --quiet --retries 0 --disable-pip-version-check -r "$req"
    "${venv}/bin/python" -m pip freeze >"${venv}/.frozen"
  } >&2
  touch "${venv}/.complete"
fi

echo "${venv}/bin/python"
