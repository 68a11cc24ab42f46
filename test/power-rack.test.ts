/**
 * Power control on a rack of real sshd devices (scripts/lib/local-sshd.ts),
 * where cutting a device's power kills its sshd and every session, and
 * restoring it starts sshd again:
 * - `command`: `hil power` runs the user's commands, which act on a device's
 *   sshd through its pidfile; a cycle takes the device down and back, and SSH
 *   works after.
 * - `http`: a plug stand-in on 127.0.0.1 that records each request and acts on
 *   a device (on: restart its sshd, off: kill it), for Tasmota, Shelly and
 *   PDUDaemon; the exact paths, queries and auth headers sent are asserted.
 * - `hil power`'s exit codes: 0 done, 3 a power failure, 2 bad usage.
 */
import t from 'tap';
import http from 'node:http';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { loadInventory } from '../harness/inventory/load.ts';
import type { SshDevice } from '../harness/inventory/device.ts';
import { powerControlFor, PowerError, type PowerControl } from '../harness/rack/power.ts';
import { SshTransport } from '../harness/transport/ssh.ts';
import { powerCommand } from '../harness/cli/power.ts';
import { UsageError } from '../harness/config/diagnostics.ts';
import { startLocalSshd, type LocalSshdRack } from '../scripts/lib/local-sshd.ts';
import { hil, waitFor } from './helpers/hil.ts';

t.setTimeout(600_000);

const dir = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-power-rack-'));
const state = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-power-state-'));
process.env['PI_HIL_STATE'] = state;
const PLUG_PW = 'p&ss w0rd';
const SHELLY_PW = 'shelly-s3cret';

let rack: LocalSshdRack;
const links: SshTransport[] = [];
/** The rack script's log of what it switched, for the command adapter. */
const switchLog = path.join(dir, 'switched.log');

/**
 * What a person's own power script might do for a rack whose "power" is each
 * device's sshd: off kills the daemon and its sessions, on starts it again
 * from the same configuration (same port, same host key).
 */
function writeRackScript(rackDir: string): string {
  const script = path.join(dir, 'rackctl.sh');
  writeFileSync(
    script,
    `#!/bin/sh
set -u
home=${JSON.stringify(rackDir)}/"$2"
pidfile="$home/sshd.pid"
kill_tree() { for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null; }
case "$1" in
  off)
    pid=$(cat "$pidfile") || exit 1
    kill_tree "$pid"
    rm -f "$pidfile"
    echo "off $2 $pid $(date +%s%N)" >> ${JSON.stringify(switchLog)}
    ;;
  on)
    /usr/sbin/sshd -f "$home/sshd_config" -E "$home/sshd.log" || exit 1
    for i in $(seq 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
    echo "on $2 $(cat "$pidfile") $(date +%s%N)" >> ${JSON.stringify(switchLog)}
    ;;
  status)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo on; else echo off; fi
    ;;
  *) echo "usage: rackctl.sh on|off|status DEVICE" >&2; exit 2 ;;
esac
`,
  );
  chmodSync(script, 0o755);
  return script;
}

/** The plug stand-in's record of one request. */
interface Seen {
  path: string;
  auth: string | undefined;
}
const seen: Seen[] = [];
let plugPort = 0;
const poweredOn = new Map<string, boolean>();

/**
 * One server plays three plugs, each wired to a device: Tasmota to sshd-1, Shelly to
 * sshd-2, PDUDaemon (PDU pdu-1, port 3) to sshd-3. Each checks its credentials the way
 * the real one does.
 */
function plugServer(): http.Server {
  const power = async (name: string, on: boolean): Promise<void> => {
    if (on) await rack.restart(name);
    else rack.kill(name);
    poweredOn.set(name, on);
  };
  return http.createServer((req, res) => {
    void (async () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization });
      const url = new URL(req.url ?? '/', 'http://plug');
      if (url.pathname === '/cm') {
        if (url.searchParams.get('user') !== 'admin' || url.searchParams.get('password') !== PLUG_PW) {
          res.end('{"WARNING":"Need user=<username>&password=<password>"}');
          return;
        }
        const cmnd = url.searchParams.get('cmnd');
        if (cmnd === 'Power On') await power('sshd-1', true);
        if (cmnd === 'Power Off') await power('sshd-1', false);
        res.end(JSON.stringify({ POWER: poweredOn.get('sshd-1') === false ? 'OFF' : 'ON' }));
      } else if (url.pathname === '/relay/0') {
        if (req.headers.authorization !== `Basic ${Buffer.from(`admin:${SHELLY_PW}`).toString('base64')}`) {
          res.writeHead(401, 'Unauthorized').end('401 Unauthorized');
          return;
        }
        const turn = url.searchParams.get('turn');
        if (turn === 'on' || turn === 'off') await power('sshd-2', turn === 'on');
        res.end(JSON.stringify({ ison: poweredOn.get('sshd-2') !== false, has_timer: false }));
      } else if (/^\/power\/control\/(on|off|reboot)$/.test(url.pathname) && url.searchParams.get('hostname') === 'pdu-1' && url.searchParams.get('port') === '3') {
        // PDUDaemon queues the request and answers at once; the switching happens after.
        res.end('OK - accepted request\n');
        const what = url.pathname.split('/').pop();
        if (what !== 'on') await power('sshd-3', false);
        if (what === 'reboot') await new Promise((r) => setTimeout(r, Number(url.searchParams.get('delay') ?? '5') * 1000));
        if (what !== 'off') await power('sshd-3', true);
      } else {
        res.writeHead(404).end('no such plug');
      }
    })();
  });
}

let inventoryFile = '';
let plugs: http.Server;

t.before(async () => {
  rack = await startLocalSshd({ dir: path.join(dir, 'rack'), count: 5, prefix: 'sshd', defaults: { timeouts: { connect: '15s' } } });
  plugs = plugServer();
  await new Promise<void>((resolve) => plugs.listen(0, '127.0.0.1', () => resolve()));
  plugPort = (plugs.address() as { port: number }).port;
  const script = writeRackScript(rack.dir);
  const doc = parse(readFileSync(rack.inventoryFile, 'utf8')) as { devices: Record<string, unknown>[] };
  const blocks: Record<string, unknown> = {
    'sshd-1': { adapter: 'http', kind: 'tasmota', host: '127.0.0.1', port: plugPort, password_env: 'PLUG_PW', delay: '1s' },
    'sshd-2': { adapter: 'http', kind: 'shelly', host: '127.0.0.1', port: plugPort, password_env: 'SHELLY_PW', delay: '1s' },
    'sshd-3': { adapter: 'http', kind: 'pdudaemon', host: '127.0.0.1', port: plugPort, pdu: 'pdu-1', outlet: 3, delay: '1s' },
    'sshd-4': { adapter: 'command', on: `${script} on {name}`, off: `${script} off {name}`, status: `${script} status {name}`, delay: '1500ms' },
  };
  for (const d of doc.devices) if (typeof d['name'] === 'string' && blocks[d['name']]) d['power'] = blocks[d['name']];
  inventoryFile = path.join(dir, 'devices.yaml');
  writeFileSync(inventoryFile, stringify(doc));
});

t.teardown(async () => {
  await Promise.all(links.map((l) => l.close()));
  plugs?.close();
  // The command adapter's sshd runs outside the rack's bookkeeping: end it by its pidfile first.
  const pidfile = path.join(rack.dir, 'sshd-4', 'sshd.pid');
  if (existsSync(pidfile)) {
    try {
      process.kill(Number(readFileSync(pidfile, 'utf8').trim()), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rack?.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

function device(name: string): SshDevice {
  const d = loadInventory(inventoryFile).devices.find((x) => x.name === name);
  if (d?.transport !== 'ssh') throw new Error(`no ssh device ${name}`);
  return d;
}

function link(d: SshDevice): SshTransport {
  const l = new SshTransport(d, { acceptNew: false, knownHostsFile: path.join(state, 'known_hosts'), connectTimeoutMs: d.timeouts.connectMs });
  links.push(l);
  return l;
}

function controlOf(d: SshDevice, env: NodeJS.ProcessEnv = { ...process.env, PLUG_PW, SHELLY_PW }): PowerControl {
  const c = powerControlFor(d, link(d), env);
  if (c === null) throw new Error(`${d.name} has no power control`);
  return c;
}

/** A connection opened before a cycle, proved to work, so the test can see it die with the power. */
async function openLink(t: Tap, d: SshDevice): Promise<SshTransport> {
  const before = link(d);
  await before.connect();
  t.equal((await before.exec('echo up')).stdout.trim(), 'up', `${d.name} answers before the cycle`);
  return before;
}

/** After power comes back: a new SSH connection (same pinned host key) runs a command. */
async function answersAgain(t: Tap, d: SshDevice): Promise<void> {
  const after = link(d);
  await after.connect();
  const r = await after.exec('echo back; id -un');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^back\n/, `${d.name} answers over SSH after the cycle`);
}

type Tap = Pick<typeof t, 'equal' | 'match' | 'ok' | 'not' | 'same'>;

t.test('command: `hil power <dev> cycle` takes the device down and back, and SSH works after', async (t) => {
  const d = device('sshd-4');
  const before = await openLink(t, d);
  const oldPid = rack.devices.find((x) => x.name === 'sshd-4')!.pid;

  const cycle = await hil(['power', 'sshd-4', 'cycle', '-i', inventoryFile]);
  t.equal(cycle.code, 0, cycle.stderr);
  t.match(cycle.stdout, /^sshd-4: cycle done in [\d.]+ s \(commands on: ".*rackctl\.sh on \{name\}", off: .*\)\n$/);

  const switched = readFileSync(switchLog, 'utf8').trim().split('\n').map((l) => l.split(' '));
  t.same(switched.map(([what, name]) => [what, name]), [['off', 'sshd-4'], ['on', 'sshd-4']], 'off, then on, with {name} filled in');
  const [, , offPid, offAt] = switched[0]!;
  const [, , onPid, onAt] = switched[1]!;
  t.equal(Number(offPid), oldPid, "off ended the device's own sshd");
  t.not(onPid, offPid, 'on started a new one');
  t.ok((Number(onAt) - Number(offAt)) / 1e6 >= 1500, `the power stayed off for the delay (${((Number(onAt) - Number(offAt)) / 1e6).toFixed(0)} ms)`);
  await waitFor('the connection from before the cycle to drop', () => !before.connected, 20_000);
  t.notOk(before.connected, 'the SSH connection from before the cycle died with the power');
  await answersAgain(t, d);

  const status = await hil(['power', 'sshd-4', 'status', '-i', inventoryFile]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /^sshd-4: on /);

  const off = await hil(['power', 'sshd-4', 'off', '-i', inventoryFile]);
  t.equal(off.code, 0, off.stderr);
  t.match((await hil(['power', 'sshd-4', 'status', '-i', inventoryFile])).stdout, /^sshd-4: off /);
  const dead = new SshTransport(d, { acceptNew: false, knownHostsFile: path.join(state, 'known_hosts'), connectTimeoutMs: 1500 });
  await t.rejects(dead.connect(), /refused/, 'nothing answers while the power is off');

  const on = await hil(['power', 'sshd-4', 'on', '-i', inventoryFile]);
  t.equal(on.code, 0, on.stderr);
  await answersAgain(t, d);
});

t.test('http tasmota: Power Off, then Power On, with the password as Tasmota reads it; the device comes back', async (t) => {
  const d = device('sshd-1');
  const before = await openLink(t, d);
  const power = controlOf(d);
  t.equal(power.describe, `Tasmota plug 127.0.0.1:${plugPort} Power`);
  seen.length = 0;
  const oldPid = rack.devices.find((x) => x.name === 'sshd-1')!.pid;
  await power.run('cycle');
  const login = 'user=admin&password=p%26ss%20w0rd';
  t.same(seen, [
    { path: `/cm?${login}&cmnd=Power%20Off`, auth: undefined },
    { path: `/cm?${login}&cmnd=Power%20On`, auth: undefined },
  ]);
  t.not(rack.devices.find((x) => x.name === 'sshd-1')!.pid, oldPid, 'the plug restarted the device');
  await waitFor('the connection from before the cycle to drop', () => !before.connected, 20_000);
  await answersAgain(t, d);
  seen.length = 0;
  t.equal(await power.status(), 'on');
  t.same(seen.map((s) => s.path), [`/cm?${login}&cmnd=Power`]);

  // A wrong password: Tasmota answers 200 with a warning, and nothing switched.
  const wrong = controlOf(d, { ...process.env, PLUG_PW: 'nope-not-it' });
  const err = await t.rejects(wrong.run('off'), PowerError);
  t.match((err as unknown as Error).message, /GET http:\/\/127\.0\.0\.1:\d+\/cm\?user=admin&password=\(redacted\)&cmnd=Power%20Off: the plug did not say it is off\n    body: \{"WARNING":"Need user=/);
  t.notMatch((err as unknown as Error).message, /nope-not-it/, 'the password is not in the error');
  t.equal(poweredOn.get('sshd-1'), true, 'the device kept its power');
});

t.test('http shelly: relay/0 turn=off, then turn=on, Basic auth; a wrong password is HTTP 401', async (t) => {
  const d = device('sshd-2');
  const before = await openLink(t, d);
  const power = controlOf(d);
  t.equal(power.describe, `Shelly plug 127.0.0.1:${plugPort} relay 0`);
  seen.length = 0;
  await power.run('cycle');
  const auth = `Basic ${Buffer.from(`admin:${SHELLY_PW}`).toString('base64')}`;
  t.same(seen, [
    { path: '/relay/0?turn=off', auth },
    { path: '/relay/0?turn=on', auth },
  ]);
  await waitFor('the connection from before the cycle to drop', () => !before.connected, 20_000);
  await answersAgain(t, d);
  t.equal(await power.status(), 'on');

  const wrong = controlOf(d, { ...process.env, SHELLY_PW: 'wrong-pass' });
  const err = (await t.rejects(wrong.run('off'), PowerError)) as unknown as Error;
  t.match(err.message, /^GET http:\/\/127\.0\.0\.1:\d+\/relay\/0\?turn=off: HTTP 401 Unauthorized\n    body: 401 Unauthorized$/);
  t.notMatch(err.message, /wrong-pass/);

  const cli = await hil(['power', 'sshd-2', 'off', '-i', inventoryFile], { SHELLY_PW: 'wrong-pass' });
  t.equal(cli.code, 3, 'a power failure exits 3');
  t.match(cli.stderr, /hil power: sshd-2: GET .*relay\/0\?turn=off: HTTP 401 Unauthorized/);
  t.notMatch(cli.stderr + cli.stdout, /wrong-pass/);
  const unset = await hil(['power', 'sshd-2', 'status', '-i', inventoryFile], { SHELLY_PW: '' });
  t.equal(unset.code, 3);
  t.match(unset.stderr, /environment variable SHELLY_PW \(password_env\) is not set/);
  const status = await hil(['power', 'sshd-2', 'status', '-i', inventoryFile], { SHELLY_PW });
  t.equal(status.code, 0, status.stderr);
  t.equal(status.stdout, `sshd-2: on (Shelly plug 127.0.0.1:${plugPort} relay 0)\n`);
});

t.test('http pdudaemon: one reboot request with PDUDaemon delay; PDUDaemon cycles after answering, and the device comes back', async (t) => {
  const d = device('sshd-3');
  const before = await openLink(t, d);
  const power = controlOf(d);
  t.equal(power.describe, `PDUDaemon 127.0.0.1:${plugPort}, PDU pdu-1 port 3`);
  seen.length = 0;
  const oldPid = rack.devices.find((x) => x.name === 'sshd-3')!.pid;
  await power.run('cycle');
  t.same(seen, [{ path: '/power/control/reboot?hostname=pdu-1&port=3&delay=1', auth: undefined }]);
  await waitFor('the connection from before the cycle to drop', () => !before.connected, 20_000);
  await waitFor('PDUDaemon to restore the power', () => rack.devices.find((x) => x.name === 'sshd-3')!.pid !== oldPid && poweredOn.get('sshd-3') === true, 20_000);
  await answersAgain(t, d);
  seen.length = 0;
  await power.run('off');
  t.same(seen.map((s) => s.path), ['/power/control/off?hostname=pdu-1&port=3'], 'on and off are their own requests');
  t.equal(await power.status(), 'unknown', 'PDUDaemon cannot say; nothing is asked');
  t.equal(seen.length, 1);
});

t.test('http failures: a plug that never answers, and nothing listening, are PowerErrors naming the URL', async (t) => {
  const silent = http.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const base = device('sshd-2');
  const spec = { adapter: 'http', kind: 'shelly', host: '127.0.0.1', port, pdu: null, outlet: 0, user: 'admin', passwordEnv: null, delayMs: 100, timeoutMs: 1000 } as const;
  const started = Date.now();
  const hung = (await t.rejects(controlOf({ ...base, power: spec }).run('on'), PowerError)) as unknown as Error;
  t.equal(hung.message, `GET http://127.0.0.1:${port}/relay/0?turn=on: no answer within 1 s`);
  t.ok(Date.now() - started < 5000, 'the timeout ended the wait');
  silent.closeAllConnections();
  await new Promise((r) => silent.close(r));
  const refused = (await t.rejects(controlOf({ ...base, power: spec }).run('on'), PowerError)) as unknown as Error;
  t.equal(refused.message, `GET http://127.0.0.1:${port}/relay/0?turn=on: ECONNREFUSED`);
});

t.test('hil power: bad usage exits 2 and says what is allowed', async (t) => {
  const unknown = await hil(['power', 'sshd-44', 'cycle', '-i', inventoryFile]);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /no device named "sshd-44" \(did you mean `sshd-4`\?\)[\s\S]*allowed: sshd-1, sshd-2, sshd-3, sshd-4/);
  const top = await hil(['--help']);
  t.match(top.stdout, /power\s+switch a device's power/, 'the command is listed');
  // The other refusals are the same UsageError, which hil turns into exit 2 as above.
  const usage = async (args: string[], problem: RegExp): Promise<void> => {
    const err = await t.rejects(powerCommand([...args, '-i', inventoryFile]), UsageError);
    t.match((err as unknown as Error).message, problem);
  };
  await usage(['sshd-4', 'reboot'], /unknown action[\s\S]*allowed: on \| off \| cycle \| status/);
  await usage(['sshd-5', 'cycle'], /device sshd-5 has no `power:` block/);
  await usage(['sshd-4'], /wrong number of arguments[\s\S]*allowed: <device> on\|off\|cycle\|status/);
});
