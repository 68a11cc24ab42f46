/**
 * The agent does without json, argparse and subprocess (a slow Pi pays for
 * each import in every job): its own JSON writer, option parser and process
 * starter must say exactly what the standard ones would. Checked against them
 * on the device's Python.
 */
import { spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { MONITOR, PYTHON, withAgentModule } from './agent-fixtures.ts';

/** Run `code` with the agent loaded as module `m`; returns its stdout (and fails the test on a non-zero exit). */
function py(t: Test, code: string): string {
  const r = withAgentModule(code);
  t.equal(r.status, 0, r.stderr);
  return r.stdout;
}

t.test('dumps writes what json.dumps(obj, separators=(",", ":")) writes', async (t) => {
  const out = py(t, `
import json
cases = [None, True, False, 0, -7, 2**70, 1.5, -0.0, 1e-07, 1e300, 0.1 + 0.2, "", "plain",
         'quote " backslash \\\\ slash /', "\\x00\\x01\\x1f\\x7f\\t\\n\\r\\b\\f", "Grüße", "🍓 and \\u2028",
         [], {}, [1, [2, [3, {"k": "v"}]]], {"a": 1, "b": [True, None], "ü": {"x": ""}}, (1, 2)]
bad = [c for c in cases if m.dumps(c) != json.dumps(c, separators=(",", ":"))]
print(len(cases), len(bad), repr(bad))
print(m.dumps(float("inf")), m.dumps(float("nan")))
`);
  const [counts, nonFinite] = out.trim().split('\n');
  t.equal(counts, '22 0 []', 'all 22 cases the same');
  t.equal(nonFinite, 'null null', 'a float that is not finite is null (json.dumps would write invalid JSON)');
});

t.test('parse_args reads the commands the controller sends, and refuses the rest with exit 2', async (t) => {
  const out = py(t, `
a = m.parse_args(["start", "--workdir", "/w", "--deadline-s", "30", "--interval-ms=25", "--bundle", "--cleanup",
                  "--probe", "/w/p.py", "--facts", "now", "--", "python3", "main.py", "--workdir", "x"])
print(a.cmd, a.workdir, a.deadline_s, a.interval_ms, a.bundle, a.cleanup, a.probe, a.facts, a.standin, a.argv)
a = m.parse_args(["start", "--workdir", "/w", "--deadline-s", "5", "--no-facts", "python3", "-u", "main.py"])
print(a.facts, a.interval_ms, a.bundle, a.argv)
a = m.parse_args(["attach", "--workdir", "/w", "--offset", "1024"])
print(a.cmd, a.workdir, a.offset, a.cleanup)
for bad in (["start", "--workdir", "/w"], ["start", "--deadline-s", "x", "--workdir", "/w"], ["start", "--facts", "some"],
            ["kill"], ["kill", "--workdir"], ["attach", "--workdir", "/w", "--nope"], ["health", "--root=/r", "--root"], []):
    try:
        m.parse_args(bad)
        print("accepted", bad)
    except ValueError as e:
        print("refused:", e)
`);
  const lines = out.trim().split('\n');
  t.equal(lines[0], "start /w 30.0 25.0 True True /w/p.py now None ['python3', 'main.py', '--workdir', 'x']");
  t.equal(lines[1], "none 50.0 False ['python3', '-u', 'main.py']", 'the payload begins at the first word that is not an option');
  t.equal(lines[2], 'attach /w 1024 False');
  t.same(lines.slice(3), [
    'refused: start: --deadline-s required',
    "refused: start: --deadline-s needs a number, not 'x'",
    "refused: start: --facts must be one of full, now, none, not 'some'",
    'refused: kill: --workdir required',
    'refused: kill: --workdir needs a value',
    'refused: attach: unknown option --nope',
    'refused: health: --root needs a value',
    'refused: a command is needed, one of: attach, facts, health, kill, start',
  ]);
  const r = spawnSync(PYTHON, ['-S', MONITOR, 'start', '--workdir'], { encoding: 'utf8' });
  t.equal(r.status, 2, 'bad usage exits 2, as argparse did');
  t.match(r.stderr, /usage: monitor\.py .*\nmonitor\.py: start: --workdir needs a value/);
});

t.test('run_cmd: output, exit codes, a missing tool and a timeout, as subprocess.run gave them', async (t) => {
  const out = py(t, `
print(repr(m.run_cmd(["sh", "-c", "echo out; echo err >&2; exit 3"])))
print(repr(m.run_cmd(["sh", "-c", "kill -TERM $$"])))
rc, o, e = m.run_cmd(["no-such-tool-pi-hil"])
print(rc, repr(o), "No such file" in e)
rc, o, e = m.run_cmd(["sleep", "5"], timeout=0.2)
print(rc, repr(o), e)
print(m.signame(9), m.signame(6), m.signame(17), m.signame(255))
`);
  t.same(out.trim().split('\n'), [
    "(3, 'out\\n', 'err\\n')",
    "(-15, '', '')",
    "None '' True",
    "None '' sleep: no answer within 0.2 s",
    'KILL ABRT CHLD 255',
  ]);
});
