/**
 * The power adapters that call a tool, without the hardware: the exact argv
 * each builds, run for real against stand-ins for uhubctl, snmpset and snmpget
 * placed first on PATH (which record what they were given), a tool's failure
 * as a PowerError that names the command and never the community, the real
 * snmpset talking to an SNMP agent stand-in on loopback, and the command
 * adapter's quoting and timeout.
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { parseInventory } from '../harness/inventory/load.ts';
import type { Device, PowerSpec, SshDevice } from '../harness/inventory/device.ts';
import {
  parsePowerStatus,
  parseUhubctlStatus,
  powerControlFor,
  PowerError,
  renderPowerCommand,
  snmpConf,
  snmpGetArgv,
  snmpSetArgv,
  uhubctlArgv,
  type PowerControl,
} from '../harness/rack/power.ts';
import { LocalTransport } from '../harness/transport/local.ts';

/** A private temporary folder, removed when the test file ends. */
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An ssh device with this `power:` block, read by the real loader. */
function deviceWith(power: string, name = 'pi4'): SshDevice {
  const text = `devices:
  - name: ${name}
    transport: ssh
    host: 10.0.0.4
    port: 2222
    user: pi
    identity_file: k
    model: Raspberry Pi 4 Model B
    ram_mb: 2048
    arch: arm64
    power:
${power
  .trim()
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
`;
  const device = parseInventory('devices.yaml', text, {}).devices[0];
  if (device?.transport !== 'ssh') throw new Error('not an ssh device');
  return device;
}

function specOf<A extends PowerSpec['adapter']>(device: SshDevice, adapter: A): Extract<PowerSpec, { adapter: A }> {
  if (device.power?.adapter !== adapter) throw new Error(`expected a ${adapter} power block`);
  return device.power as Extract<PowerSpec, { adapter: A }>;
}

/** A transport is only looked at for QEMU devices; these tests never connect one. */
const NO_TRANSPORT = new LocalTransport({ name: 'unused', capMb: null });

function control(device: Device, env: NodeJS.ProcessEnv): PowerControl {
  const c = powerControlFor(device, NO_TRANSPORT, env);
  if (c === null) throw new Error('no power control');
  return c;
}

async function powerError(t: Pick<typeof import('tap').default, 'ok' | 'fail'>, p: Promise<unknown>): Promise<PowerError> {
  try {
    await p;
  } catch (err) {
    t.ok(err instanceof PowerError, `a PowerError (got ${(err as Error).name}: ${(err as Error).message})`);
    return err as PowerError;
  }
  t.fail('expected a PowerError');
  return new PowerError('none');
}

/**
 * A folder of stand-in tools. Each appends one JSON line to $FAKE_LOG per run: its name, its
 * argv and, for the SNMP tools, the snmp.conf it was pointed at. FAKE_FAIL=1 makes it fail
 * the way a real one does (a message on stderr, exit 1), echoing the community as a
 * careless tool might; FAKE_OUT is what it prints on success.
 */
function fakeTools(): { bin: string; log: string; runs: () => { tool: string; argv: string[]; conf: string | null; confMode: string | null }[] } {
  const dir = tempDir('pi-hil-power-fake-');
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'runs.jsonl');
  writeFileSync(path.join(dir, 'record.mjs'), `
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
const tool = path.basename(process.argv[2]);
const conf = process.env.SNMPCONFPATH ? path.join(process.env.SNMPCONFPATH, 'snmp.conf') : null;
const text = conf && existsSync(conf) ? readFileSync(conf, 'utf8') : null;
const mode = conf && existsSync(conf) ? (statSync(conf).mode & 0o777).toString(8) : null;
appendFileSync(process.env.FAKE_LOG, JSON.stringify({ tool, argv: process.argv.slice(3), conf: text, confMode: mode }) + '\\n');
if (process.env.FAKE_FAIL === '1') {
  process.stderr.write('Timeout: No Response from switch (community ' + (/defCommunity "(.*)"/.exec(text ?? '')?.[1] ?? '-') + ')\\n');
  process.exit(1);
}
process.stdout.write(process.env.FAKE_OUT ?? '');
`);
  mkdirSync(bin);
  for (const tool of ['uhubctl', 'snmpset', 'snmpget']) {
    const file = path.join(bin, tool);
    writeFileSync(file, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(dir, 'record.mjs'))} "$0" "$@"\n`);
    chmodSync(file, 0o755);
  }
  return {
    bin,
    log,
    runs: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []),
  };
}

t.test('uhubctl: the argv for each action, and a cycle that uhubctl times itself', async (t) => {
  const spec = specOf(deviceWith('adapter: uhubctl\nlocation: 1-1.3\nport: 2\ndelay: 1500ms'), 'uhubctl');
  t.same(uhubctlArgv(spec, 'on'), ['uhubctl', '-l', '1-1.3', '-p', '2', '-a', 'on']);
  t.same(uhubctlArgv(spec, 'off'), ['uhubctl', '-l', '1-1.3', '-p', '2', '-a', 'off']);
  t.same(uhubctlArgv(spec, 'cycle'), ['uhubctl', '-l', '1-1.3', '-p', '2', '-a', 'cycle', '-d', '1.5']);
  t.same(uhubctlArgv(spec, null), ['uhubctl', '-l', '1-1.3', '-p', '2'], 'no action: the status listing');
  const listing = 'Current status for hub 1-1.3 [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]\n  Port 1: 0100 power\n  Port 2: 0000 off\n  Port 3: 0503 power highspeed enable connect [0424:ec00]\n';
  t.equal(parseUhubctlStatus(listing, 2), 'off');
  t.equal(parseUhubctlStatus(listing, 3), 'on');
  t.equal(parseUhubctlStatus(listing, 4), null, 'a port the hub does not list');
});

t.test('uhubctl runs for real (a stand-in first on PATH): argv as built, its failure a PowerError naming the command', async (t) => {
  const fake = fakeTools();
  const device = deviceWith('adapter: uhubctl\nlocation: 1-1\nport: 2');
  const env = { ...process.env, PATH: `${fake.bin}:${process.env['PATH']}`, FAKE_LOG: fake.log };
  const power = control(device, env);
  t.equal(power.describe, 'uhubctl hub 1-1 port 2');
  await power.run('cycle');
  await power.run('off');
  t.same(
    fake.runs().map((r) => [r.tool, ...r.argv]),
    [
      ['uhubctl', '-l', '1-1', '-p', '2', '-a', 'cycle', '-d', '2'],
      ['uhubctl', '-l', '1-1', '-p', '2', '-a', 'off'],
    ],
    'the default delay is 2 s',
  );
  const on = control(device, { ...env, FAKE_OUT: 'Current status for hub 1-1 [...]\n  Port 2: 0503 power highspeed enable connect\n' });
  t.equal(await on.status(), 'on', 'status parsed from the real output format');

  const failing = control(device, { ...env, FAKE_FAIL: '1' });
  const err = await powerError(t, failing.run('on'));
  t.match(err.message, /`uhubctl -l 1-1 -p 2 -a on` failed \(exit code 1\)/, 'names the command and how it ended');
  t.match(err.message, /stderr: Timeout: No Response/, "carries the tool's stderr");

  const missing = control(device, { ...process.env, PATH: '/nonexistent' });
  const gone = await powerError(t, missing.run('on'));
  t.match(gone.message, /uhubctl is not installed/, 'a missing tool is named');
});

t.test('snmp-poe: the argv for on and off, the OID of the PoE MIB, no community on the command line', async (t) => {
  const spec = specOf(deviceWith('adapter: snmp-poe\nhost: poe-switch.lab\ncommunity_env: POE_COMMUNITY\ngroup: 2\nport: 7'), 'snmp-poe');
  const oid = '1.3.6.1.2.1.105.1.1.1.3.2.7';
  t.same(snmpSetArgv(spec, 'on'), ['snmpset', '-v2c', '-On', '-t', '15', '-r', '1', 'poe-switch.lab', oid, 'i', '1']);
  t.same(snmpSetArgv(spec, 'off'), ['snmpset', '-v2c', '-On', '-t', '15', '-r', '1', 'poe-switch.lab', oid, 'i', '2']);
  t.same(snmpGetArgv(spec), ['snmpget', '-v2c', '-On', '-t', '15', '-r', '1', '-Oqv', 'poe-switch.lab', oid]);
  t.equal(snmpConf('pa ss"w\\d'), 'defCommunity "pa ss\\"w\\\\d"\nmibs :\n', 'quoted the way net-snmp reads a quoted word');
  t.equal(specOf(deviceWith('adapter: snmp-poe\nhost: sw\ncommunity_env: C\nport: 1'), 'snmp-poe').group, 1, 'group defaults to 1');
});

t.test('snmp-poe runs for real (stand-ins first on PATH): off, delay, on; the community only in a private snmp.conf; failures without it', async (t) => {
  const fake = fakeTools();
  const device = deviceWith('adapter: snmp-poe\nhost: sw1\ncommunity_env: POE_COMMUNITY\nport: 5\ndelay: 300ms');
  const community = 'rack-s3cret';
  const env = { ...process.env, PATH: `${fake.bin}:${process.env['PATH']}`, FAKE_LOG: fake.log, POE_COMMUNITY: community };
  const power = control(device, env);
  t.equal(power.describe, 'PoE port 5 (group 1) of switch sw1 over SNMP');
  const started = Date.now();
  await power.run('cycle');
  t.ok(Date.now() - started >= 300, 'the delay was waited between off and on');
  const runs = fake.runs();
  t.same(
    runs.map((r) => [r.tool, ...r.argv]),
    [snmpSetArgv(specOf(device, 'snmp-poe'), 'off'), snmpSetArgv(specOf(device, 'snmp-poe'), 'on')],
    'off, then on',
  );
  t.notOk(runs.some((r) => r.argv.join(' ').includes(community)), 'the community is never on a command line');
  t.ok(runs.every((r) => r.conf === snmpConf(community)), 'each run read it from the snmp.conf it was pointed at');
  t.ok(runs.every((r) => r.confMode === '600'), 'a file only its owner reads');

  t.equal(await control(device, { ...env, FAKE_OUT: '1\n' }).status(), 'on');
  t.equal(await control(device, { ...env, FAKE_OUT: '2\n' }).status(), 'off');

  const failing = control(device, { ...env, FAKE_FAIL: '1' });
  const err = await powerError(t, failing.run('off'));
  t.match(err.message, /`snmpset -v2c -On -t 15 -r 1 sw1 1\.3\.6\.1\.2\.1\.105\.1\.1\.1\.3\.1\.5 i 2` failed \(exit code 1\)/);
  t.match(err.message, /Timeout: No Response from switch \(community \(redacted\)\)/, "the tool's stderr, with the community it echoed redacted");
  t.notMatch(err.message, new RegExp(community), 'no community in the error');

  const unset = control(device, { ...env, POE_COMMUNITY: '' });
  const noEnv = await powerError(t, unset.run('on'));
  t.match(noEnv.message, /environment variable POE_COMMUNITY \(community_env\) is not set/);
});

/** BER, as much as an SNMP v2c agent stand-in needs: parse a message, answer it. */
type Tlv = { tag: number; value: Buffer; children?: Tlv[] };
const node = (tag: number, children: Tlv[]): Tlv => ({ tag, value: Buffer.alloc(0), children });
function parseBer(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++]!;
    let len = buf[i++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let k = 0; k < n; k++) len = (len << 8) | buf[i++]!;
    }
    const value = buf.subarray(i, i + len);
    i += len;
    out.push({ tag, value, ...(tag & 0x20 ? { children: parseBer(value) } : {}) });
  }
  return out;
}
function ber(tag: number, value: Buffer): Buffer {
  const len = value.length < 128 ? Buffer.from([value.length]) : Buffer.from([0x81, value.length]);
  return Buffer.concat([Buffer.from([tag]), len, value]);
}
function encodeBer(tlv: Tlv): Buffer {
  return ber(tlv.tag, tlv.children ? Buffer.concat(tlv.children.map(encodeBer)) : tlv.value);
}
function oidText(value: Buffer): string {
  const parts = [Math.floor(value[0]! / 40), value[0]! % 40];
  let n = 0;
  for (const b of value.subarray(1)) {
    n = (n << 7) | (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

t.test('the real snmpset and snmpget against an SNMP agent stand-in on loopback: what reaches the wire', async (t) => {
  // The switch: answers every request, keeps each port's pethPsePortAdminEnable.
  const seen: { pdu: string; community: string; oid: string; value: number | null }[] = [];
  const ports = new Map<string, number>();
  const agent = dgram.createSocket('udp4');
  agent.on('message', (msg, from) => {
    const [message] = parseBer(msg);
    const [version, community, pdu] = message!.children!;
    const [reqId, , , bindings] = pdu!.children!;
    const [binding] = bindings!.children!;
    const [oid, value] = binding!.children!;
    const name = oidText(oid!.value);
    const isSet = pdu!.tag === 0xa3;
    seen.push({ pdu: isSet ? 'set' : 'get', community: community!.value.toString(), oid: name, value: value!.tag === 0x02 ? value!.value[0]! : null });
    if (isSet) ports.set(name, value!.value[0]!);
    const int = (n: number): Tlv => ({ tag: 0x02, value: Buffer.from([n]) });
    const binding0 = node(0x30, [oid!, int(ports.get(name) ?? 1)]);
    const answer = node(0x30, [version!, community!, node(0xa2, [reqId!, int(0), int(0), node(0x30, [binding0])])]);
    agent.send(encodeBer(answer), from.port, from.address);
  });
  await new Promise<void>((resolve) => agent.bind(0, '127.0.0.1', () => resolve()));
  t.teardown(() => agent.close());
  const address = `127.0.0.1:${agent.address().port}`;
  const device = deviceWith(`adapter: snmp-poe\nhost: "${address}"\ncommunity_env: POE_COMMUNITY\nport: 3\ndelay: 100ms\ntimeout: 4s`);
  const community = 'a b"c\\d';
  const power = control(device, { ...process.env, POE_COMMUNITY: community });
  await power.run('off');
  t.equal(await power.status(), 'off', 'snmpget reads back what snmpset wrote');
  await power.run('cycle');
  t.equal(await power.status(), 'on');
  const oid = '1.3.6.1.2.1.105.1.1.1.3.1.3';
  t.same(
    seen.map((s) => [s.pdu, s.oid, s.value]),
    [
      ['set', oid, 2],
      ['get', oid, null],
      ['set', oid, 2],
      ['set', oid, 1],
      ['get', oid, null],
    ],
  );
  t.ok(seen.every((s) => s.community === community), `the community, spaces, quote and backslash included, reached the switch (${JSON.stringify(seen[0]?.community)})`);

  agent.removeAllListeners('message');
  const silent = control(deviceWith(`adapter: snmp-poe\nhost: "${address}"\ncommunity_env: POE_COMMUNITY\nport: 3\ntimeout: 2s`), { ...process.env, POE_COMMUNITY: community });
  const err = await powerError(t, silent.run('on'));
  t.match(err.message, /^`snmpset -v2c -On -t 1 -r 1 127\.0\.0\.1:\d+ 1\.3\.6\.1\.2\.1\.105\.1\.1\.1\.3\.1\.3 i 1` failed \(exit code 1\)/);
  t.match(err.message, /stderr: Timeout: No Response from 127\.0\.0\.1/);
  t.notOk(err.message.includes(community), 'no community in the error');
});

t.test('command: placeholders are filled in shell-quoted, so a value cannot run a command', async (t) => {
  const dir = tempDir('pi-hil-power-cmd-');
  const marker = path.join(dir, 'injected');
  const evil = { name: 'pi4', host: `x; touch ${marker}`, port: 22, user: "o'neil" };
  const line = renderPowerCommand('printf "%s|" {host} {user} {port} {name}', evil);
  t.equal(line, `printf "%s|" 'x; touch ${marker}' 'o'\\''neil' 22 pi4`);
  const device = deviceWith(`adapter: command\non: ${JSON.stringify(`printf "%s|" {host} {user} > ${path.join(dir, 'out')}`)}\noff: "true"`);
  const power = control({ ...device, host: evil.host, user: evil.user }, process.env);
  await power.run('on');
  t.equal(readFileSync(path.join(dir, 'out'), 'utf8'), `x; touch ${marker}|o'neil|`, 'each value arrived as one word');
  t.notOk(existsSync(marker), 'nothing ran from a value');
  t.equal(parsePowerStatus('ON\n'), 'on');
  t.equal(parsePowerStatus('0'), 'off');
  t.equal(parsePowerStatus('maybe'), null);
});

t.test('command: a failing or hanging command is a PowerError with its output; cycle is off, delay, on', async (t) => {
  const dir = tempDir('pi-hil-power-cmd-');
  const log = path.join(dir, 'log');
  const device = deviceWith(
    `adapter: command\non: "date +%s%N >> ${log}; echo on >> ${log}"\noff: "echo off >> ${log}; date +%s%N >> ${log}"\nstatus: "echo Off"\ndelay: 400ms`,
  );
  const power = control(device, process.env);
  await power.run('cycle');
  const [off, offAt, onAt, on] = readFileSync(log, 'utf8').trim().split('\n');
  t.same([off, on], ['off', 'on'], 'off, then on');
  t.ok((Number(onAt) - Number(offAt)) / 1e6 >= 400, `the delay between them (${((Number(onAt) - Number(offAt)) / 1e6).toFixed(0)} ms)`);
  t.equal(await power.status(), 'off');

  const failing = control(deviceWith('adapter: command\non: "echo relay stuck >&2; exit 4"\noff: "true"'), process.env);
  const err = await powerError(t, failing.run('on'));
  t.match(err.message, /power command `echo relay stuck >&2; exit 4` failed \(exit code 4\)\n    stderr: relay stuck/);

  const hanging = control(deviceWith('adapter: command\non: "sleep 30"\noff: "true"\ntimeout: 500ms'), process.env);
  const started = Date.now();
  const hung = await powerError(t, hanging.run('on'));
  t.match(hung.message, /no answer within 0\.5 s/);
  t.ok(Date.now() - started < 5000, 'the timeout ended it');

  const unknown = control(deviceWith('adapter: command\non: "true"\noff: "true"\nstatus: "echo perhaps"'), process.env);
  t.match((await powerError(t, unknown.status())).message, /printed "perhaps"; expected on or off/);
  t.equal(await control(deviceWith('adapter: command\non: "true"\noff: "true"'), process.env).status(), 'unknown', 'no status command: unknown');

  const ac = new AbortController();
  const aborted = hanging.run('on', ac.signal);
  setTimeout(() => ac.abort(new Error('stop now')), 100);
  await t.rejects(aborted, /stop now/, 'an abort ends the command with its reason');
});

t.test('no power block, a local device: no control', async (t) => {
  const plain = parseInventory('devices.yaml', 'devices:\n  - { name: l, transport: local, ram_mb: 512, arch: amd64 }\n  - { name: s, transport: ssh, host: h, identity_file: k, model: m, ram_mb: 512, arch: arm64 }\n', {});
  for (const device of plain.devices) t.equal(powerControlFor(device, NO_TRANSPORT), null, `${device.name}: null`);
});
