import t from 'tap';
import { join } from 'node:path';
import { RUNTIME_MODULES, type Arch, type DeviceFacts, type DeviceSnapshot, type Outcome } from '../harness/results/record.ts';
import { effectiveArch, judge, judgeInDetail, type JudgeSubject } from '../harness/suite/expectation.ts';
import { loadSuite, parseSuiteText } from '../harness/suite/suite.ts';
import type { Diagnostic } from '../harness/config/diagnostics.ts';

const suites = {
  keras: loadSuite('keras-train'),
  listing: loadSuite('device-listing'),
  lite: loadSuite('tflite-inference'),
  ladder: loadSuite('memory-ladder'),
};

function device(transport: DeviceSnapshot['transport'], arch: Arch, ramMb: number, tags: string[] = []): DeviceSnapshot {
  return { name: `${transport}-${arch}-${ramMb}`, transport, model: 'Raspberry Pi 4 Model B', ramMb, arch, tags };
}

function facts(over: Partial<DeviceFacts>): DeviceFacts {
  const versions = Object.fromEntries(RUNTIME_MODULES.map((m) => [m, 'absent'])) as DeviceFacts['versions'];
  return { model: null, machine: 'aarch64', longBit: 64, kernelBits: null, dpkgArch: 'arm64', kernel: '6.1', ramMb: 4096, swapMb: 0, pageSize: 4096, memoryCgroup: 'none', memoryLimitMb: null, memoryLimitFreeMb: null, dmesgRestrict: 0, cpuModel: null, throttled: null, emulated: false, emulation: null, versions, ...over };
}

function subject(d: DeviceSnapshot, outcome: Outcome, values: JudgeSubject['values'] = {}, f: DeviceFacts | null = null): JudgeSubject {
  return { device: d, facts: f, outcome, values };
}

t.test("keras-train: the article's 32-bit claim per device class", async (t) => {
  const pi3 = device('qemu', 'armhf', 1024);
  t.same(judge(suites.keras, subject(pi3, 'unsupported')), {
    allowed: ['unsupported', 'oom_killed', 'memory_error'],
    claim: judgeInDetail(suites.keras, subject(pi3, 'unsupported'))?.expectation.claim,
    verdict: 'met',
  });
  t.match(judge(suites.keras, subject(pi3, 'unsupported'))?.claim, /1GB or less/);
  t.equal(judge(suites.keras, subject(pi3, 'passed'))?.verdict, 'unmet', 'passing on a 1 GB 32-bit Pi refutes the claim');
  t.equal(judge(suites.keras, subject(pi3, 'infra_error'))?.verdict, 'infra', 'infra errors never count');
  t.match(judge(suites.keras, subject(device('ssh', 'armhf', 4096), 'unsupported'))?.claim, /manual intervention/, 'more RAM: the install claim');
});

t.test('local capped devices: killed below the import footprint, passing from 512 MB', async (t) => {
  t.equal(judge(suites.keras, subject(device('local', 'amd64', 128), 'oom_killed'))?.verdict, 'met');
  const thrashed = judgeInDetail(suites.keras, subject(device('local', 'amd64', 128), 'timeout'));
  t.equal(thrashed?.verdict.verdict, 'unmet', 'a thrash until the deadline is not the clear kill we expect');
  t.same(thrashed?.problems, ['outcome timeout, expected oom_killed']);
  t.equal(judge(suites.keras, subject(device('local', 'amd64', 2048), 'passed', { loss: 1.3 }))?.verdict, 'met');
  const noLoss = judgeInDetail(suites.keras, subject(device('local', 'amd64', 2048), 'passed'));
  t.same(noLoss?.problems, ['loss not reported, expected >= 0'], 'a pass must report what the suite promises');
  t.equal(judge(suites.keras, subject(device('local', 'amd64', 256), 'passed')), null, 'no class for 129-511 MB: no verdict');
});

t.test("the device's own facts decide the arch: armhf userland on a 64-bit kernel", async (t) => {
  const pi4 = device('ssh', 'arm64', 1024);
  const armhfOnPi4 = facts({ machine: 'aarch64', longBit: 32, dpkgArch: 'armhf', ramMb: 1024 });
  t.equal(effectiveArch({ device: pi4, facts: armhfOnPi4 }), 'armhf');
  t.equal(effectiveArch({ device: pi4, facts: facts({ machine: 'aarch64', longBit: 32, dpkgArch: null }) }), 'armhf');
  t.equal(effectiveArch({ device: pi4, facts: facts({ machine: 'armv6l', longBit: 32, dpkgArch: null }) }), 'armel');
  t.equal(effectiveArch({ device: device('local', 'amd64', 512), facts: facts({ machine: 'x86_64', dpkgArch: null }) }), 'amd64');
  t.equal(effectiveArch({ device: pi4, facts: null }), 'arm64');
  t.equal(judge(suites.keras, subject(pi4, 'oom_killed', {}, armhfOnPi4))?.verdict, 'met');
  t.equal(judge(suites.keras, subject(pi4, 'oom_killed'))?.verdict, undefined, 'without facts it is an arm64 SSH Pi of 1 GB, which no class covers');
});

t.test('device-listing checks the GPU and CPU counts', async (t) => {
  const local = device('local', 'amd64', 2048);
  t.equal(judge(suites.listing, subject(local, 'passed', { tf_version: '2.21.0', gpus: 0, cpus: 1 }))?.verdict, 'met');
  const twoCpus = judgeInDetail(suites.listing, subject(local, 'passed', { tf_version: '2.21.0', gpus: 0, cpus: 2 }));
  t.same(twoCpus?.problems, ['cpus = 2, expected 1']);
  t.equal(judge(suites.listing, subject(device('qemu', 'armhf', 512), 'unsupported'))?.verdict, 'met');
});

t.test('tflite-inference must pass on 32-bit, with the right output shape', async (t) => {
  const zero = device('qemu', 'armhf', 512);
  t.equal(judge(suites.lite, subject(zero, 'passed', { interpreter: 'pyarmnn', output_shape: '[1, 1]' }))?.verdict, 'met');
  t.same(judgeInDetail(suites.lite, subject(zero, 'passed', { output_shape: '[1]' }))?.problems, ['output_shape = "[1]", expected "[1, 1]"']);
  t.equal(judge(suites.lite, subject(zero, 'unsupported'))?.verdict, 'unmet');
  t.equal(judge(suites.lite, subject(device('qemu', 'arm64', 2048), 'passed', { output_shape: '[1, 1]' }))?.verdict, 'met', 'the catch-all class');
});

t.test('memory-ladder: the 32-bit ceiling against 64-bit', async (t) => {
  const fourGb32 = device('qemu', 'armhf', 4096);
  const refused = { stopped_by: 'refused', usable_mb: 2990, address_bits: 32 };
  t.equal(judge(suites.ladder, subject(fourGb32, 'memory_error', refused))?.verdict, 'met');
  t.same(judgeInDetail(suites.ladder, subject(fourGb32, 'oom_killed', { ...refused, stopped_by: 'killed' }))?.problems, [
    'outcome oom_killed, expected memory_error',
    'stopped_by = "killed", expected "refused"',
  ]);
  const fourGb64 = device('qemu', 'arm64', 4096);
  t.equal(judge(suites.ladder, subject(fourGb64, 'oom_killed', { stopped_by: 'killed', usable_mb: 3700, address_bits: 64 }))?.verdict, 'met');
  t.equal(judge(suites.ladder, subject(fourGb64, 'memory_error', { stopped_by: 'refused', usable_mb: 2990, address_bits: 32 }))?.verdict, 'unmet');
});

t.test('memory-ladder: a 32-bit userland on a 64-bit kernel is its own setup (kernel_bits)', async (t) => {
  const fourGb32 = device('qemu', 'armhf', 4096);
  const k32 = facts({ machine: 'armv7l', longBit: 32, kernelBits: 32, dpkgArch: 'armhf', ramMb: 3900 });
  const k64 = facts({ machine: 'aarch64', longBit: 32, kernelBits: 64, dpkgArch: 'armhf', ramMb: 3900 });
  const claimOf = (f: DeviceFacts | null): string => judgeInDetail(suites.ladder, subject(fourGb32, 'memory_error', {}, f))?.expectation.claim ?? '';
  t.match(claimOf(k32), /on a 32-bit kernel a process gets about 3 GB/);
  t.match(claimOf(k64), /under the 64-bit kernel/);
  t.match(claimOf(facts({ machine: 'aarch64', longBit: 32, dpkgArch: 'armhf' })), /under the 64-bit kernel/, 'an older agent without kernelBits: read off uname -m');
  t.match(claimOf(null), /with 4 GB of RAM or more the address space runs out first/, 'no facts, no kernel: the general 32-bit class');
  // About 3 GB on a 32-bit kernel; close to 4 GB, refused or OOM-killed, on a 64-bit one.
  t.equal(judge(suites.ladder, subject(fourGb32, 'memory_error', { stopped_by: 'refused', usable_mb: 2990, address_bits: 32 }, k32))?.verdict, 'met');
  t.equal(judge(suites.ladder, subject(fourGb32, 'memory_error', { stopped_by: 'refused', usable_mb: 3980, address_bits: 32 }, k64))?.verdict, 'met');
  t.equal(judge(suites.ladder, subject(fourGb32, 'oom_killed', { stopped_by: 'killed', usable_mb: 3700, address_bits: 32 }, k64))?.verdict, 'met');
  t.same(judgeInDetail(suites.ladder, subject(fourGb32, 'memory_error', { stopped_by: 'refused', usable_mb: 2990, address_bits: 32 }, k64))?.problems, [
    'usable_mb = 2990, expected 3500..4096',
  ]);
  t.equal(judge(suites.ladder, subject(fourGb32, 'oom_killed', { stopped_by: 'killed', usable_mb: 3700, address_bits: 32 }, k32))?.verdict, 'unmet', 'a 32-bit kernel refuses first');
});

t.test('classes match on transport, emulation, tags and RAM bounds', async (t) => {
  const out: Diagnostic[] = [];
  const suite = parseSuiteText(
    `description: d
timeout: 60s
probe: {}
values: {n: a number}
expectations:
  - when: {tags: [rack-a, pi5], emulated: false}
    allow: [passed]
    claim: tagged
  - when: {transport: [qemu, local], ram_mb: "512..1024"}
    allow: [oom_killed, timeout]
    claim: small emulated
  - when: {ram_mb: "> 1024"}
    allow: passed
    claim: big
    check: {n: "< 10"}
`,
    join(t.testdir({ 'class-suite': { 'main.py': '' } }), 'class-suite'),
    out,
  );
  t.same(out, []);
  if (!suite) return;
  const claim = (d: DeviceSnapshot, f: DeviceFacts | null = null) => judge(suite, subject(d, 'passed', { n: 1 }, f))?.claim ?? null;
  t.equal(claim(device('ssh', 'arm64', 8192, ['pi5', 'rack-a', 'x'])), 'tagged');
  t.equal(claim(device('ssh', 'arm64', 8192, ['pi5'])), 'big', 'every tag is needed');
  t.equal(claim(device('ssh', 'arm64', 8192, ['pi5', 'rack-a']), facts({ emulated: true })), 'big', 'facts say emulated');
  t.equal(claim(device('qemu', 'arm64', 512)), 'small emulated', 'bounds are inclusive');
  t.equal(claim(device('local', 'amd64', 1024)), 'small emulated');
  t.equal(claim(device('ssh', 'arm64', 1024)), null);
  t.equal(claim(device('qemu', 'arm64', 1025)), 'big');
  t.equal(judge(suite, subject(device('qemu', 'arm64', 2048), 'passed', { n: 10 }))?.verdict, 'unmet', '"< 10" is strict');
  t.equal(judge(suite, subject(device('qemu', 'arm64', 2048), 'oom_killed'))?.verdict, 'unmet');
});
