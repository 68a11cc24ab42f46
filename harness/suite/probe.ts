/**
 * A suite's requirement probe as a Python script for the agent's --probe:
 * exit 0 when the modules are there, and the last line of output says what
 * was found or missing. It only looks modules up (importlib find_spec) and
 * never imports them: importing TensorFlow alone costs half a gigabyte and
 * seconds, and a probe must stay cheap on a 512 MB Pi.
 */
import type { Probe } from './suite.ts';

export function probeScript(probe: Probe): string {
  // A JSON string or list of strings is also a Python literal (JSON.stringify writes only escapes Python
  // reads the same): no json import, which costs a slow Pi a third of a second.
  const spec = `{"all_of": ${JSON.stringify(probe.allOf)}, "any_of": ${JSON.stringify(probe.anyOf)}, "why": ${JSON.stringify(probe.why)}}`;
  return `# pi-hil requirement probe (generated from suite.yaml). Python 3.7+.
import importlib.util, sys
spec = ${spec}

def found(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        # find_spec of "a.b" imports "a"; a broken parent counts as missing.
        return False

missing = [m for m in spec["all_of"] if not found(m)]
present = [m for m in spec["any_of"] if found(m)]
if spec["any_of"] and not present:
    missing.append("one of " + ", ".join(spec["any_of"]))
if missing:
    print("missing " + "; ".join(missing) + (": " + spec["why"] if spec["why"] else ""))
    sys.exit(1)
have = spec["all_of"] + [m for m in present[:1] if m not in spec["all_of"]]
print("found " + ", ".join(have) if have else "no requirements")
`;
}
