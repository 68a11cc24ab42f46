/**
 * A job that thrashes until its deadline is flagged: under a 64 MB cap it
 * keeps reading a 192 MB file through mmap in random order, so the page cache
 * charged to its cgroup is evicted and the pages fault back in from disk.
 */
import t from 'tap';
import { LocalTransport } from '../harness/transport/local.ts';
import { runPlanted } from './agent-fixtures.ts';

const local = new LocalTransport({ name: 'thrash', capMb: 64 });
t.teardown(() => local.close());

t.test('deadline while thrashing → timeout with thrashing: true', async (t) => {
  const thrash = [
    'import mmap, os',
    'with open("big.bin", "wb") as f:',
    '    for _ in range(192):',
    '        f.write(os.urandom(1 << 20))',
    'f = open("big.bin", "rb")',
    'm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)',
    '# Random order, no readahead: each touch of an evicted page is one major fault, as with code pages.',
    'if hasattr(m, "madvise"): m.madvise(mmap.MADV_RANDOM)  # Python 3.8+',
    'pages = len(m) // 4096',
    'print("@@hil phase thrash", flush=True)',
    'x = i = 0',
    'while True:',
    '    i = (i + 7919) % pages',
    '    x ^= m[i * 4096]',
  ].join('\n');
  const run = await runPlanted(local, thrash, { deadlineMs: 5000 });
  t.equal(run.outcome, 'timeout', run.reason);
  t.equal(run.thrashing, true, JSON.stringify(run.evidence));
  t.match(run.reason, /thrashing/);
  const faults = run.memory.samples.filter((s) => s.t > (run.phases[0]?.startMs ?? Infinity));
  t.ok(faults.length > 0, 'samples cover the thrashing phase');
});
