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
    samples = hil_phase.param("samples")   # typed by suite.yaml's params:

pi-hil passes every parameter the suite declares as HIL_PARAM_<NAME> (the
value given with --param, else its default) and the declarations as
HIL_PARAMS (JSON), so param() knows each one's type and default.
"""
import json
import os
import sys
from contextlib import contextmanager

__all__ = ["phase", "end_phase", "value", "phase_of", "param"]


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


def param(name):
    """The value of suite parameter `name`: int, float or str as suite.yaml declares it.

    Falls back to the declared default when HIL_PARAM_<NAME> is not set.
    """
    try:
        decls = json.loads(os.environ.get("HIL_PARAMS") or "{}")
    except ValueError:
        decls = {}
    decl = decls.get(name)
    raw = os.environ.get("HIL_PARAM_" + str(name).upper())
    if decl is None:
        if raw is None:
            raise KeyError("no parameter %r: not declared under params: in suite.yaml "
                           "(declared: %s)" % (name, ", ".join(sorted(decls)) or "none"))
        return raw
    if raw is None:
        return decl.get("default")
    kind = decl.get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        raise ValueError("HIL_PARAM_%s=%r is not %s" % (name.upper(), raw, "an integer" if kind == "integer" else "a number"))
    choices = decl.get("choices") or []
    if choices and raw not in choices:
        raise ValueError("HIL_PARAM_%s=%r is not one of %s" % (name.upper(), raw, ", ".join(choices)))
    return raw
