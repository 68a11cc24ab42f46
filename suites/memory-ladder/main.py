# Calibration: how much memory can one process really use on this device?
#
# Allocates and touches memory in steps until it is refused (MemoryError, as
# when a 32-bit process runs out of address space) or killed (the OOM killer,
# when RAM or a cgroup cap runs out first), or until LIMIT_MB.
#
# Values:
#   usable_mb   memory allocated and touched so far; reported after every
#               step, so it survives a SIGKILL as the last step that held.
#   stopped_by  "refused" (MemoryError at the ceiling), "limit", or "killed"
#               when the process never got to say (OOM killer or a signal).
#   address_bits 32 or 64: the pointer size of this Python.
# Outcomes: refused -> memory_error (the traceback is re-raised so the
# harness classifies it), killed -> oom_killed, limit -> passed.
# Python 3.7+, standard library only.
import json
import os
import struct
import sys

MB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def hil(kind, *words):
    print("@@hil", kind, *words, flush=True)


def param(name, default):
    """A suite parameter: pi-hil sets HIL_PARAM_<NAME> from suite.yaml's params:
    (the value given, else its default); `default` only serves a run by hand."""
    return type(default)(os.environ.get("HIL_PARAM_" + name.upper(), default))


STEP_MB = param("step_mb", 16)
# Bounds a run on an uncapped host; 8 GB is above any 32-bit ceiling. As a
# parameter it makes the ladder a capacity probe: it passes below the ceiling.
LIMIT_MB = param("limit_mb", 8192)


def value(key, v):
    hil("value", key, json.dumps(v))


def touched(n_bytes):
    """n_bytes that are really resident: write one byte in every page."""
    block = bytearray(n_bytes)
    block[::PAGE] = b"\x01" * len(range(0, n_bytes, PAGE))
    return block


def main():
    value("address_bits", struct.calcsize("P") * 8)
    value("step_mb", STEP_MB)
    value("limit_mb", LIMIT_MB)
    # Overwritten below if the ladder stops by itself; a kill leaves it standing.
    value("stopped_by", "killed")
    value("usable_mb", 0)

    hil("phase", "climb")
    held = []
    usable = 0
    step = STEP_MB
    refusal = None
    while usable + step <= LIMIT_MB:
        try:
            held.append(touched(step * MB))
        except MemoryError as e:
            # Near the address-space ceiling a smaller block may still fit: refine to 1 MB.
            if step > 1:
                step //= 2
                continue
            refusal = e
            break
        usable += step
        value("usable_mb", usable)

    # Free everything before reporting, so printing itself cannot be refused.
    del held
    if refusal is None:
        value("stopped_by", "limit")
        print("reached the %d MB limit without a refusal" % LIMIT_MB)
        return 0
    value("stopped_by", "refused")
    raise MemoryError("refused after %d MB (address_bits %d)" % (usable, struct.calcsize("P") * 8))


if __name__ == "__main__":
    sys.exit(main())
