/**
 * A 256 MB guest really OOM-kills a NumPy allocation loop; the guest kernel's
 * "Killed process <pid>" line is found in the serial console and in the kernel log,
 * and the outcome classifies as oom_killed from that evidence.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decideOutcome } from '../harness/run/outcome.ts';
import { QemuTransport } from '../harness/transport/qemu.ts';
import { recordedQemuPids } from '../harness/transport/qemu/pidfiles.ts';
import { shellJoin } from '../harness/transport/quote.ts';
import { ensureImages, qemuDevice } from './qemu-fixtures.ts';

t.setTimeout(3_600_000);
process.env['PI_HIL_STATE'] = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-qemu-oom-'));

const HOG = [
  'import os, numpy',
  'print(os.getpid(), flush=True)',
  'blocks = []',
  'while True:',
  '    blocks.append(numpy.ones(4 * 1024 * 1024))  # 32 MB at a time, touched',
].join('\n');

t.test('a 256 MB armhf guest OOM-kills a NumPy allocation loop', async (t) => {
  await ensureImages();
  const q = new QemuTransport(qemuDevice('oom-256', 'tiny-256-armhf', 256));
  t.teardown(() => q.close());
  await q.connect();
  const mem = await q.exec('grep MemTotal /proc/meminfo');
  const totalKb = Number(/(\d+)/.exec(mem.stdout)?.[1]);
  t.ok(totalKb > 150_000 && totalKb <= 262_144, `the guest has 256 MB (MemTotal ${totalKb} kB)`);
  const mark = q.console.mark();
  const res = await q.exec(shellJoin(['python3', '-c', HOG]));
  const pid = Number(res.stdout.trim().split('\n')[0]);
  t.ok(pid > 0, `the payload reported its pid (${pid})`);
  const signal = res.signal?.replace(/^SIG/, '') ?? (res.code === 137 ? 'KILL' : null);
  t.equal(signal, 'KILL', `the payload died of SIGKILL (code ${res.code}, signal ${res.signal})`);
  const vm = q.machine;
  if (!vm) throw new Error('no VM');
  const line = await vm.console.waitFor(new RegExp(`Killed process ${pid} \\([^)]*\\)[^\\r\\n]*`), mark, AbortSignal.timeout(60_000));
  t.match(line[0], /python3/, 'the console carries the kernel line naming the pid');
  const dmesg = await q.exec(`sudo -n dmesg | grep -F ${shellJoin([`Killed process ${pid} `])}`);
  t.equal(dmesg.code, 0, 'the kernel log names the pid too');
  const verdict = decideOutcome({
    ending: {
      kind: 'agent_end',
      end: {
        probe: null,
        agentError: null,
        code: res.code,
        signal,
        killedBy: null,
        killedAtMs: null,
        stderrTail: res.stderr,
        oom: { vmstatBefore: null, vmstatAfter: null, cgroupBefore: null, cgroupAfter: null, kernelLines: [line[0]], kernelLogSource: null },
        pressure: null,
      },
    },
    abort: null,
    deadlineMs: null,
    reattached: 0,
  });
  t.equal(verdict.outcome, 'oom_killed', verdict.reason);
  await q.close();
  t.same(recordedQemuPids(), []);
});
