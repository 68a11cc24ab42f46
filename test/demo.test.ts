/**
 * `npm run demo`, the README's main command, for real: every suite on every device of
 * the default inventory (five emulated Pis, four capped local devices with real
 * TensorFlow), then the reports. Checks the run folder and the article's claims that
 * only the whole inventory shows side by side, above all memory-ladder's 32-bit
 * address-space ceiling on a 4 GB armhf guest against the 64-bit guest with the same RAM.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadInventory } from '../harness/inventory/load.ts';
import type { ResultRecord } from '../harness/results/record.ts';
import { loadSuites } from '../harness/suite/suite.ts';
import { onlyRunDir, PROJECT, readRecords } from './helpers/hil.ts';

t.setTimeout(2_700_000);

function npmRunDemo(out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    // The demo's capacity searches stay out: test/envelope.test.ts runs the same
    // `hil envelope` with real TensorFlow on capped devices, and on 2 cores the
    // searches would double this file's time. Their folder is set all the same.
    const child = spawn('npm', ['run', 'demo', '--', '--out', out], { cwd: PROJECT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PI_HIL_ENVELOPE: '0', PI_HIL_ENVELOPE_OUT: `${out}-envelopes` } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

t.test('npm run demo runs every suite on the default inventory and writes a run folder', async (t) => {
  const out = t.testdir();
  t.teardown(() => rmSync(`${out}-envelopes`, { recursive: true, force: true }));
  const demo = await npmRunDemo(out);
  t.equal(demo.code, 0, demo.code === 0 ? 'every expectation met' : demo.stderr.slice(-4000));

  const runDir = onlyRunDir(out);
  for (const f of ['results.jsonl', 'run.json', 'compare.html', 'compare.md', 'junit.xml', join('allure-report', 'index.html')]) {
    t.ok(existsSync(join(runDir, f)), `the run folder has ${f}`);
  }
  const records = readRecords(runDir);
  const devices = loadInventory(join(PROJECT, 'devices.yaml'), { ...process.env, PI_HIL_TF_PYTHON: 'python3' }).devices;
  const suites = loadSuites();
  t.equal(records.length, devices.length * suites.length, `${devices.length} devices × ${suites.length} suites`);
  const job = (suite: string, device: string): ResultRecord | undefined => records.find((r) => r.jobId === `${suite}.${device}`);
  for (const r of records) t.equal(r.expectation?.verdict, 'met', `${r.jobId}: ${r.outcome} (${r.reason})`);
  t.ok(readdirSync(join(runDir, 'allure-results')).some((f) => f.endsWith('-result.json')), 'Allure results were written');

  // Real TensorFlow on the capped stand-ins: trains at 2 GB, killed below its import footprint.
  t.equal(job('keras-train', 'cap-2g')?.outcome, 'passed');
  t.equal(job('keras-train', 'cap-128')?.outcome, 'oom_killed', 'killed by the cap, not timed out');
  t.equal(job('device-listing', 'cap-2g')?.values['cpus'], 1);
  t.equal(job('device-listing', 'cap-2g')?.values['gpus'], 0);
  // The emulated Pis have no TensorFlow; TFLite runs through Arm NN.
  for (const d of ['qemu-pi3b-armhf', 'qemu-pi3b-arm64']) {
    t.equal(job('keras-train', d)?.outcome, 'unsupported', `${d} keras-train`);
    t.equal(job('tflite-inference', d)?.values['interpreter'], 'pyarmnn', `${d} tflite-inference through Arm NN`);
  }

  // memory-ladder: the same 4 GB of RAM, 32-bit against 64-bit.
  const lad32 = job('memory-ladder', 'qemu-pi4b-4g-armhf');
  const lad64 = job('memory-ladder', 'qemu-pi4b-4g-arm64');
  if (!lad32 || !lad64) {
    t.fail('a memory-ladder record of the 4 GB guests is missing');
    return;
  }
  t.equal(lad32.facts?.longBit, 32, 'the armhf guest is a 32-bit userland');
  t.match(lad32.facts?.kernel ?? '', /lpae/, 'on the LPAE kernel, which reaches RAM above 3 GB');
  t.ok((lad32.facts?.ramMb ?? 0) > 3600, `the armhf guest sees its 4 GB (${lad32.facts?.ramMb} MB)`);
  t.equal(lad32.outcome, 'memory_error', lad32.reason);
  t.equal(lad32.values['address_bits'], 32);
  t.equal(lad32.values['stopped_by'], 'refused', 'refused by the address space, with RAM to spare');
  const ceiling32 = Number(lad32.values['usable_mb']);
  t.ok(ceiling32 > 1500 && ceiling32 < 4096, `32-bit process ceiling ${ceiling32} MB: below 4 GB`);

  t.equal(lad64.facts?.longBit, 64, 'the arm64 guest is a 64-bit userland');
  t.ok((lad64.facts?.ramMb ?? 0) > 3600, `the arm64 guest sees its 4 GB (${lad64.facts?.ramMb} MB)`);
  t.equal(lad64.outcome, 'oom_killed', lad64.reason);
  t.ok(lad64.logs.kernelOomLines.length > 0 || lad64.evidence.some((e) => e.source === 'kernel_log'), 'the guest kernel logged the kill');
  const ceiling64 = Number(lad64.values['usable_mb']);
  t.ok(ceiling64 > ceiling32, `64-bit: ${ceiling64} MB, above the 32-bit ${ceiling32} MB`);

  // The third 4 GB setup: 32-bit Pi OS on a Pi 4 since 2023, armhf userland on the 64-bit kernel.
  const ladK64 = job('memory-ladder', 'qemu-pi4b-4g-armhf-k64');
  if (!ladK64) {
    t.fail('the memory-ladder record of the armhf-on-k64 guest is missing');
    return;
  }
  t.match(ladK64.facts, { machine: 'aarch64', dpkgArch: 'armhf', longBit: 32, kernelBits: 64 }, 'armhf userland under the 64-bit kernel');
  t.equal(lad32.facts?.kernelBits, 32, 'the LPAE guest runs a 32-bit kernel');
  t.equal(ladK64.values['address_bits'], 32);
  const ceilingK64 = Number(ladK64.values['usable_mb']);
  t.ok(ceilingK64 > 3500 && ceilingK64 > ceiling32, `32-bit process on the 64-bit kernel: ${ceilingK64} MB, past the 32-bit kernel's ${ceiling32} MB`);
});
