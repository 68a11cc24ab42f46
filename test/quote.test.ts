import t from 'tap';
import { spawnSync } from 'node:child_process';
import { shellJoin, shellQuote } from '../harness/transport/quote.ts';

t.test('quoted words survive a real shell unchanged', async (t) => {
  const nasty = ["it's", 'a b', '$(touch /tmp/pwned)', '`id`', '; rm -rf /', '', 'new\nline', '*', '\\'];
  const out = spawnSync('sh', ['-c', `printf '%s\\0' ${shellJoin(nasty)}`], { encoding: 'utf8' });
  t.equal(out.status, 0);
  t.same(out.stdout.split('\0').slice(0, -1), nasty);
});

t.test('safe words are left bare', async (t) => {
  t.equal(shellQuote('/opt/pi-hil/run-1'), '/opt/pi-hil/run-1');
  t.equal(shellQuote(''), "''");
});
