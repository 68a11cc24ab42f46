/**
 * tflite-inference on emulated Pis, for real: an armhf and an arm64 QEMU guest
 * (no TensorFlow there) run the shipped model through Arm NN's TFLite parser,
 * and the TF-only suite ends `unsupported` with the probe's message.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hil, onlyRunDir, readRecords } from './helpers/hil.ts';

t.setTimeout(900_000);

t.test('tflite-inference runs through pyarmnn on armhf and arm64 guests; keras-train is unsupported', async (t) => {
  const dir = t.testdir();
  const inventory = join(dir, 'devices.yaml');
  writeFileSync(
    inventory,
    `defaults: { transport: qemu, timeouts: { job: 10m } }
devices:
  - { name: guest-armhf, profile: pi3b-1g-armhf }
  - { name: guest-arm64, profile: pi3b-1g-arm64 }
`,
  );
  const out = join(dir, 'runs');
  const r = await hil(['run', '-i', inventory, '--suite', 'tflite-inference,keras-train', '--out', out, '--no-report']);
  t.equal(r.code, 0, `every expectation met\n${r.stderr}`);
  const records = readRecords(onlyRunDir(out));
  const byJob = Object.fromEntries(records.map((x) => [x.jobId, x]));
  for (const [device, bits] of [['guest-armhf', 32], ['guest-arm64', 64]] as const) {
    const tflite = byJob[`tflite-inference.${device}`];
    t.equal(tflite?.outcome, 'passed', `${device}: ${tflite?.reason ?? 'no record'}`);
    t.equal(tflite?.values['interpreter'], 'pyarmnn', `${device} ran the model through Arm NN`);
    for (const key of ['latency_mean_ms', 'latency_p50_ms', 'latency_p90_ms', 'first_inference_ms']) {
      const v = tflite?.values[key];
      t.ok(typeof v === 'number' && v > 0, `${device} ${key} = ${String(v)}`);
    }
    t.equal(tflite?.facts?.longBit, bits, `${device} is a ${bits}-bit userland`);
    t.equal(tflite?.facts?.emulated, true);
    t.ok((tflite?.memory.peakRssKb ?? 0) > 1000, `${device} peak measured`);
    const keras = byJob[`keras-train.${device}`];
    t.equal(keras?.outcome, 'unsupported', `${device} keras-train`);
    t.match(keras?.reason ?? '', /missing tensorflow/);
    t.equal(keras?.expectation?.verdict, 'met');
    const mine = records.filter((x) => x.device.name === device);
    t.ok(mine.every((x) => typeof x.logs.console === 'string'), `${device}: every result carries its console excerpt`);
    const booted = mine.filter((x) => x.timing.bootMs !== null);
    t.equal(booted.length, 1, `${device}: the boot is recorded once, in the job that booted the VM`);
    t.ok((booted[0]?.timing.bootMs ?? 0) > 0 && (booted[0]?.timing.connectMs ?? 0) >= (booted[0]?.timing.bootMs ?? 0), `${device}: boot is part of the wait for the device`);
    for (const x of mine) {
      const whole = Date.parse(x.timing.endedAt) - Date.parse(x.timing.startedAt);
      t.equal(x.timing.wallMs + (x.timing.connectMs ?? 0), whole, `${x.jobId}: job time leaves the boot out`);
    }
  }
});
