/**
 * `hil image build --wheelhouse`, for real: a wheel of the user's is installed offline
 * into the image's venv, a second build with the same wheels is a cache hit, and a
 * device that names the wheelhouse boots that image and runs its suite with the venv.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hil, onlyRunDir, readRecords, TEST_SUITES } from './helpers/hil.ts';

t.setTimeout(1_800_000);

/** A pure-Python wheel, byte-identical every time (fixed zip timestamps), so the image key is stable. */
function makeWheel(dir: string): void {
  const script = `
import sys, zipfile
name, ver = "pihil_wheel_probe", "1.0"
info = f"{name}-{ver}.dist-info"
files = {
    f"{name}/__init__.py": 'MESSAGE = "installed from the wheelhouse"\\n',
    f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: pi-hil-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
files[f"{info}/RECORD"] = "".join(f"{p},,\\n" for p in files) + f"{info}/RECORD,,\\n"
with zipfile.ZipFile(f"{sys.argv[1]}/{name}-{ver}-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        z.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), text)
`;
  execFileSync('python3', ['-c', script, dir]);
}

t.test('a wheelhouse goes into the image, is cached by content, and a device runs with it', async (t) => {
  const dir = t.testdir({ wheels: {} });
  const wheels = join(dir, 'wheels');
  makeWheel(wheels);

  const first = await hil(['image', 'build', 'arm64', '--wheelhouse', wheels]);
  t.equal(first.code, 0, first.code === 0 ? 'the build succeeded' : first.stderr.slice(-3000));
  t.match(first.stdout, /^arm64-[0-9a-f]{16}: (built in \d+ s|cached, recipe unchanged)/m);
  const again = await hil(['image', 'build', 'arm64', '--wheelhouse', wheels]);
  t.equal(again.code, 0);
  t.match(again.stdout, /cached, recipe unchanged/, 'the same wheels are a cache hit');
  const listed = await hil(['image', 'list']);
  t.match(listed.stdout, /arm64-[0-9a-f]{16} +current .*\+wheelhouse/, 'the image is listed with its wheelhouse');

  const inventory = join(dir, 'devices.yaml');
  // Relative to the inventory: the device's wheelhouse is ./wheels beside it.
  writeFileSync(inventory, `devices:\n  - { name: pi3-wheels, transport: qemu, profile: pi3b-1g-arm64, wheelhouse: wheels, timeouts: { job: 5m } }\n`);
  const out = join(dir, 'runs');
  const run = await hil(['run', '-i', inventory, '--suites', TEST_SUITES, '--suite', 'wheel-probe', '--out', out, '--no-report']);
  t.equal(run.code, 0, run.code === 0 ? 'every expectation met' : run.stderr.slice(-3000));
  const [rec] = readRecords(onlyRunDir(out));
  t.equal(rec?.outcome, 'passed', rec?.reason ?? 'no record');
  t.equal(rec?.values['wheel_message'], 'installed from the wheelhouse', 'the wheel was importable in the guest');
  t.equal(rec?.values['prefix'], '/opt/pi-hil/venv', 'through the venv the wheels went into');
  t.equal(rec?.facts?.longBit, 64);
});
