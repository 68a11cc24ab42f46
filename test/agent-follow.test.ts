/**
 * `start` and `attach` pass the worker's events on until its end. A worker
 * that writes its end and exits between two looks must still be seen to have
 * ended, not reported gone: the race is made certain here by a stand-in for
 * the liveness check that writes the end just before it answers "dead".
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { withAgentModule } from './agent-fixtures.ts';

/** A job's workdir as a worker leaves it: a hello in its events, and the pid of a process that is not there. */
function workdirOfGoneWorker(t: Test): string {
  const wd = mkdtempSync(join(tmpdir(), 'hil-follow-'));
  t.teardown(() => rmSync(wd, { recursive: true, force: true }));
  mkdirSync(join(wd, '.hil'));
  writeFileSync(join(wd, '.hil', 'events.jsonl'), '{"type":"hello","v":1}\n');
  writeFileSync(join(wd, '.hil', 'worker.pid'), '999999999\n');
  return wd;
}

t.test('an end written just before the worker went is passed on, and the job ends 0', async (t) => {
  const wd = workdirOfGoneWorker(t);
  const r = withAgentModule(`
import os
events = os.path.join(${JSON.stringify(wd)}, ".hil", "events.jsonl")
def alive(pid):  # the worker writes its end and exits just as it is looked at
    with open(events, "ab") as f:
        f.write(b'{"type":"end","started":false}\\n')
    return False
m.alive = alive
sys.exit(m.follow(${JSON.stringify(wd)}, 0, wake=None))
`);
  t.equal(r.status, 0, `follow ended ${r.status}: ${r.stderr}`);
  t.same(r.stdout.trim().split('\n').map((l) => JSON.parse(l).type), ['hello', 'end'], 'both events passed on');
});

t.test('a worker that is gone without an end is reported, with its last words from agent.err', async (t) => {
  const wd = workdirOfGoneWorker(t);
  writeFileSync(join(wd, '.hil', 'agent.err'), 'Traceback (most recent call last):\n  File "x", line 1\nMemoryError\n');
  const r = withAgentModule(`sys.exit(m.follow(${JSON.stringify(wd)}, 0, wake=None))`);
  t.equal(r.status, 3);
  t.match(r.stderr, /worker 999999999 is gone and wrote no end event: .*MemoryError/);
});
