/** The event protocol's parser and the byte-offset line splitter re-attaching relies on. */
import t from 'tap';
import { LineSplitter, parseEvent, ProtocolError, toFacts } from '../harness/agent/protocol.ts';
import { downsample, workdirOf } from '../harness/agent/client.ts';
import type { MemorySample } from '../harness/results/record.ts';

t.test('valid events parse into typed values', async (t) => {
  const s = parseEvent('{"type":"sample","t":50,"n":1,"rss":9000,"anon":3000,"file":6000,"hwm":9100,"avail":1000,"swap":0,"majflt":2,"pmajflt":0,"psi":0.5,"cg":12000}');
  t.same(s, { type: 'sample', t: 50, n: 1, rss: 9000, anon: 3000, file: 6000, hwm: 9100, avail: 1000, swap: 0, majflt: 2, pmajflt: 0, psi: 0.5, cg: 12000 });
  const v = parseEvent('{"type":"value","key":"tf_version","value":"2.16.1","t":3}');
  t.same(v, { type: 'value', key: 'tf_version', value: '2.16.1', t: 3 });
  const end = parseEvent('{"type":"end","unavailable":[{"source":"dmesg","why":"restricted"}],"values":{},"started":false,"probe":{"ok":false,"message":"no tf"}}');
  t.equal(end.type, 'end');
  if (end.type === 'end') {
    t.same(end.probe, { ok: false, message: 'no tf', killedBy: null }, 'a probe without killedBy ended by itself');
    t.same(end.unavailable, [{ source: 'dmesg', why: 'restricted' }]);
    t.equal(end.memory, null);
    t.same(end.phases, []);
    t.equal(end.killedAtMs, null);
    t.equal(end.output, null, 'no output accounting when the payload never started');
  }
});

t.test('kill and output facts parse', async (t) => {
  const probe = parseEvent('{"type":"probe","ok":false,"message":"probe did not finish","killedBy":"deadline"}');
  t.same(probe, { type: 'probe', ok: false, message: 'probe did not finish', killedBy: 'deadline' });
  const end = parseEvent(
    '{"type":"end","unavailable":[],"values":{},"started":true,"probe":{"ok":false,"message":"m","killedBy":"controller"},' +
      '"killedBy":"deadline","killedAtMs":1480,"output":{"stdout":{"written":300000000,"kept":8192},"stderr":{"written":10,"kept":10}}}',
  );
  t.equal(end.type, 'end');
  if (end.type === 'end') {
    t.equal(end.probe?.killedBy, 'controller');
    t.equal(end.killedBy, 'deadline');
    t.equal(end.killedAtMs, 1480);
    t.same(end.output, { stdout: { written: 300_000_000, kept: 8192 }, stderr: { written: 10, kept: 10 } });
  }
  t.throws(() => parseEvent('{"type":"probe","ok":false,"message":"m","killedBy":"oom"}'), /killedBy/);
  t.throws(() => parseEvent('{"type":"end","killedAtMs":"soon"}'), /killedAtMs/);
  t.throws(() => parseEvent('{"type":"end","output":{"stdout":{"written":1,"kept":1}}}'), /stderr/);
});

t.test('facts carry the memory cap; the facts command is validated the same way', async (t) => {
  const versions = { python: '3.11.2', numpy: 'absent', tensorflow: 'absent', tflite_runtime: 'absent', ai_edge_litert: 'absent', pyarmnn: 'absent' };
  const raw = {
    model: null, machine: 'x86_64', longBit: 64, dpkgArch: 'amd64', kernel: '6.1.0', ramMb: 24000, swapMb: 0, pageSize: 4096,
    memoryCgroup: 'v2', memoryLimitMb: 512, memoryLimitFreeMb: 500, dmesgRestrict: 0, cpuModel: null, throttled: null,
    emulated: true, emulation: 'local capped host', versions,
  };
  const f = toFacts(raw);
  t.equal(f.memoryLimitMb, 512);
  t.equal(f.memoryLimitFreeMb, 500);
  const uncapped = toFacts({ ...raw, memoryLimitMb: null, memoryLimitFreeMb: undefined });
  t.equal(uncapped.memoryLimitMb, null);
  t.equal(uncapped.memoryLimitFreeMb, null);
  t.throws(() => toFacts({ ...raw, memoryLimitMb: '512M' }), /memoryLimitMb/);
  t.throws(() => toFacts([raw]), /JSON object/);
});

t.test('invalid events are refused with the field named', async (t) => {
  t.throws(() => parseEvent('not json'), ProtocolError);
  t.throws(() => parseEvent('[1,2]'), /JSON object/);
  t.throws(() => parseEvent('{"type":"nope"}'), /unknown event type/);
  t.throws(() => parseEvent('{"type":"sample","t":"x"}'), /field t must be a number/);
  t.throws(() => parseEvent('{"type":"value","key":"k","value":{"a":1},"t":0}'), /value must be/);
  t.throws(() => parseEvent('{"type":"end","unavailable":[{"source":"moon","why":"x"}]}'), /source/);
  t.throws(() => parseEvent('{"type":"end","memory":{"peakMethod":"guess","samples":0}}'), /peakMethod/);
});

t.test('errors name the whole path to the bad field, and what was there', async (t) => {
  const refusal = (line: string): string => {
    try {
      parseEvent(line);
    } catch (err) {
      if (err instanceof ProtocolError) return err.message;
      throw err;
    }
    return 'accepted';
  };
  t.equal(refusal('{"type":"end","output":{"stdout":{"written":1,"kept":1}}}'), 'field output.stderr must be an object: got undefined');
  t.match(refusal('{"type":"end","unavailable":[{"source":"dmesg","why":"x"},{"source":"moon","why":"x"}]}'), /^field unavailable\[1\]\.source must be one of exit_code, .*, psi: got "moon"$/);
  t.equal(refusal('{"type":"facts","facts":{"model":null}}'), 'field facts.machine must be a string: got undefined');
  t.equal(refusal('{"type":"end","output":{"stdout":{"written":-1,"kept":0},"stderr":{"written":0,"kept":0}}}'), 'field output.stdout.written must be a byte count: got -1');
  t.equal(refusal('{"type":"end","phases":[{"name":"fit","startMs":0,"endMs":"late","peakRssKb":1}]}'), 'field phases[0].endMs must be a number: got "late"');
  t.equal(refusal('{"type":"value","key":"k","value":[1],"t":0}'), 'field value must be a string, a number, a boolean or null: got [1]');
  t.equal(refusal('{"v":1}'), 'unknown event type: got undefined');
});

t.test('an end event with only its head reads with every fact unknown', async (t) => {
  const end = parseEvent('{"type":"end","unavailable":[],"values":{"gpus":0},"probe":null,"started":false,"agentError":"worker crashed"}');
  t.same(end, {
    type: 'end', unavailable: [], values: { gpus: 0 }, started: false, probe: null, agentError: 'worker crashed', killedBy: null, killedAtMs: null,
    pid: null, pids: [], code: null, signal: null, rusage: null, payloadMs: null, deadlineFired: false, pressure: null, oom: null, memory: null,
    phases: [], left: [], stdoutTail: '', stderrTail: '', output: null, throttle: null, foreign: [],
  });
  const phase = parseEvent('{"type":"phase","name":"fit","t":5,"hwm0":123}');
  t.same(Object.keys(phase), ['type', 'name', 't'], 'keys the protocol does not know are dropped');
});

t.test('the splitter counts bytes of whole lines only', async (t) => {
  const sp = new LineSplitter();
  t.same(sp.push(Buffer.from('{"a":"é"}\n{"b"')), ['{"a":"é"}']);
  t.equal(sp.consumed, Buffer.byteLength('{"a":"é"}\n'), 'bytes, not characters');
  t.same(sp.push(Buffer.from(':1}\n\n')), ['{"b":1}', '']);
  t.equal(sp.consumed, Buffer.byteLength('{"a":"é"}\n{"b":1}\n\n'));
  sp.push(Buffer.from('{"partial'));
  sp.reset();
  t.same(sp.push(Buffer.from('x\n')), ['x'], 'a dropped partial line is not glued to the next');
});

t.test('downsampling keeps the peak', async (t) => {
  const samples: MemorySample[] = Array.from({ length: 1000 }, (_, i) => ({
    t: i, rssKb: i === 777 ? 99_999 : i % 10, anonKb: 0, fileKb: 0, hwmKb: 0, availKb: 0, swapUsedKb: 0, majfltPerS: 0,
  }));
  const d = downsample(samples, 100);
  t.equal(d.length, 100);
  t.ok(d.some((s) => s.rssKb === 99_999), 'the peak survives');
  t.equal(downsample(samples.slice(0, 10), 100).length, 10, 'short timelines are kept whole');
});

t.test('workdirs cannot escape their root', async (t) => {
  t.equal(workdirOf({ workdirRoot: '/var/tmp/hil', runId: 'r1', jobId: 'keras.pi4' }), '/var/tmp/hil/r1/keras.pi4');
  t.throws(() => workdirOf({ workdirRoot: '/w', runId: '..', jobId: 'x' }));
  t.throws(() => workdirOf({ workdirRoot: '/w', runId: 'r', jobId: 'a/b' }));
  t.throws(() => workdirOf({ workdirRoot: '/w', runId: 'r', jobId: '$(reboot)' }));
});
