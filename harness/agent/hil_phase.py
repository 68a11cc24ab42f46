"""Phase and value markers for pi-hil payloads.

The agent reads the payload's stdout; these helpers print the marker lines it
understands and flush at once, so the agent timestamps each phase when it
really starts. Standard library only, Python 3.7+.

    import hil_phase
    hil_phase.phase("import")
    import tensorflow as tf
    hil_phase.value("tf_version", tf.__version__)
    with hil_phase.phase_of("fit"):
        model.fit(...)
"""
import json
import sys
from contextlib import contextmanager

__all__ = ["phase", "end_phase", "value", "phase_of"]


def _say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def phase(name):
    """Start phase `name`; the previous phase ends here."""
    name = str(name).strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError("phase name must be one word: %r" % (name,))
    _say("@@hil phase " + name)


def end_phase():
    """End the current phase without starting another."""
    _say("@@hil endphase")


def value(key, val):
    """Report a value (any JSON) for the result record, e.g. tf_version."""
    key = str(key)
    if not key or any(c.isspace() for c in key):
        raise ValueError("value key must be one word: %r" % (key,))
    _say("@@hil value " + key + " " + json.dumps(val, separators=(",", ":"), default=str))


@contextmanager
def phase_of(name):
    phase(name)
    try:
        yield
    finally:
        end_phase()
