/**
 * A rack of real OpenSSH servers on loopback, for tests and the demo. Each
 * device is an `sshd -D` with its own host key, the harness's authorized key
 * and, optionally, a memory cap (a cgroup the sshd and every session inherit).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { tmpdir, userInfo } from 'node:os';
import { stringify } from 'yaml';
import { createMemoryCgroup, type MemoryCgroup } from '../../harness/host/cgroup.ts';
import { descendantsOf, processesUnder } from './proc.ts';
import { waitFor } from './wait.ts';

export interface LocalSshdOptions {
  /**
   * Folder for keys, configs, pidfiles and the inventory. Created if missing. It may be
   * private to the caller (e.g. made by `mktemp -d`): the device user reads nothing in it.
   */
  dir: string;
  count: number;
  /** Device name prefix: devices are `<prefix>-1` … `<prefix>-N`. */
  prefix?: string;
  /** Memory cap per device in MB (index-aligned); missing or null means uncapped. */
  capsMb?: (number | null)[];
  /** Python interpreter path recorded in the inventory. */
  python?: string;
  /** RAM the inventory claims for each device (defaults to the cap, else 1024). */
  ramMb?: number;
  /** Pin each host key in the inventory (default true); false leaves it to known_hosts and --accept-new. */
  pinHostKeys?: boolean;
  /** Extra `defaults:` keys for the inventory, e.g. { timeouts: { connect: '3s' } }. */
  defaults?: Record<string, unknown>;
}

/**
 * The login user of the devices. Run as root, the rack logs in as an
 * unprivileged system user with a plain POSIX shell, as a Pi's `pi` user is:
 * no root powers (dmesg may be restricted), and no slow interactive shell
 * start-up in front of every command. Otherwise it is the caller.
 */
export const DEVICE_USER = 'pihil';

/** Host key types a device's sshd can offer (ssh-keygen -t). */
export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

function deviceUser(): { name: string; uid: number; gid: number } {
  const me = userInfo();
  if (me.uid !== 0) return { name: me.username, uid: me.uid, gid: me.gid };
  const id = (flag: string): number => Number(spawnSync('id', [flag, DEVICE_USER], { encoding: 'utf8' }).stdout.trim());
  if (spawnSync('id', [DEVICE_USER]).status !== 0) {
    // Password '*': no password login, but not "locked", which sshd would refuse even for keys.
    const r = spawnSync('useradd', ['--system', '--create-home', '--home-dir', `/var/lib/${DEVICE_USER}`, '--shell', '/bin/sh', '--password', '*', DEVICE_USER], { encoding: 'utf8' });
    if (r.status !== 0 && spawnSync('id', [DEVICE_USER]).status !== 0) throw new Error(`cannot create the device user ${DEVICE_USER}: ${r.stderr || r.error?.message}`);
  }
  return { name: DEVICE_USER, uid: id('-u'), gid: id('-g') };
}

export interface LocalSshdDevice {
  name: string;
  port: number;
  pid: number;
  /** SHA256 fingerprint of the device's first host key (the one the inventory pins). */
  hostKeyFingerprint: string;
  /** The host key types sshd offers, in its HostKey order. */
  hostKeyTypes: HostKeyType[];
  capMb: number | null;
  cgroup: MemoryCgroup | null;
}

export interface LocalSshdRack {
  dir: string;
  /** The login user of every device. */
  user: string;
  /** Parent of the devices' workdirs (`<workRoot>/<device>`). */
  workRoot: string;
  devices: LocalSshdDevice[];
  identityFile: string;
  inventoryFile: string;
  /** Kill one device's sshd and every session under it, as if the Pi lost power. */
  kill(name: string): void;
  /** Start a killed device again on the same port (optionally with a fresh host key). */
  /**
   * Start a killed device again on the same port, optionally with fresh host keys
   * or other host key types (a Pi re-imaged, or its sshd reconfigured).
   */
  restart(name: string, options?: { newHostKey?: boolean; hostKeyTypes?: HostKeyType[] }): Promise<void>;
  stop(): void;
}

const SSHD = '/usr/sbin/sshd';

export async function startLocalSshd(options: LocalSshdOptions): Promise<LocalSshdRack> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found: install Debian's openssh-server (apt-get install openssh-server)`);
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // sshd refuses to start without its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const user = deviceUser();
  // What the device user must reach lives under the system temp folder, not in `dir`,
  // which may be closed to other users: its workdirs, and the authorized keys, which
  // sshd opens with the user's own uid, not as root. The folder is the caller's and the
  // key file read-only, so the user cannot change which keys log in as it.
  const workRoot = mkdtempSync(join(tmpdir(), 'pi-hil-rack-'));
  chmodSync(workRoot, 0o711);
  const identityFile = join(dir, 'harness_ed25519');
  if (!existsSync(identityFile)) keygen(identityFile, 'pi-hil harness');
  const authorizedKeys = join(workRoot, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${identityFile}.pub`), { mode: 0o644 });
  chmodSync(authorizedKeys, 0o644);
  try {
    assertReachable(user, authorizedKeys);
  } catch (err) {
    rmSync(workRoot, { recursive: true, force: true });
    throw err;
  }
  const sshdFor = (name: string, port: number, capMb: number | null, cgroup: MemoryCgroup | null, hostKeyTypes: HostKeyType[] = ['ed25519']): Promise<LocalSshdDevice> =>
    launch({ dir, workRoot, name, port, authorizedKeys, capMb, cgroup, user, hostKeyTypes });
  const prefix = options.prefix ?? 'sshd';
  const devices: LocalSshdDevice[] = [];
  const rack: LocalSshdRack = {
    dir,
    user: user.name,
    workRoot,
    devices,
    identityFile,
    inventoryFile: join(dir, 'devices.yaml'),
    kill: (name) => killDevice(find(devices, name), [join(workRoot, name), join(dir, name)]),
    restart: async (name, opts) => {
      const device = find(devices, name);
      killDevice(device, [join(workRoot, name), join(dir, name)]);
      if (opts?.newHostKey) {
        for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
          rmSync(join(dir, device.name, `host_${type}`), { force: true });
          rmSync(join(dir, device.name, `host_${type}.pub`), { force: true });
        }
      }
      Object.assign(device, await sshdFor(device.name, device.port, device.capMb, device.cgroup, opts?.hostKeyTypes ?? device.hostKeyTypes));
    },
    stop: () => {
      for (const device of devices) {
        killDevice(device, [join(workRoot, device.name), join(dir, device.name)]);
        device.cgroup?.remove();
      }
      rmSync(workRoot, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < options.count; i++) {
      const name = `${prefix}-${i + 1}`;
      const capMb = options.capsMb?.[i] ?? null;
      const cgroup = capMb === null ? null : createMemoryCgroup(`pi-hil-sshd-${name}-${process.pid}`, capMb);
      try {
        devices.push(await sshdFor(name, await freePort(), capMb, cgroup));
      } catch (err) {
        cgroup?.remove();
        throw err;
      }
    }
  } catch (err) {
    rack.stop();
    throw err;
  }
  writeFileSync(rack.inventoryFile, inventoryYaml(rack, options));
  return rack;
}

function find(devices: LocalSshdDevice[], name: string): LocalSshdDevice {
  const device = devices.find((d) => d.name === name);
  if (!device) throw new Error(`no local sshd device named ${name}`);
  return device;
}

interface LaunchSpec {
  dir: string;
  workRoot: string;
  name: string;
  port: number;
  authorizedKeys: string;
  capMb: number | null;
  cgroup: MemoryCgroup | null;
  user: { uid: number; gid: number };
  hostKeyTypes: HostKeyType[];
}

async function launch({ dir, workRoot, name, port, authorizedKeys, capMb, cgroup, user, hostKeyTypes }: LaunchSpec): Promise<LocalSshdDevice> {
  const home = join(dir, name);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const work = join(workRoot, name);
  mkdirSync(work, { recursive: true, mode: 0o700 });
  chownSync(work, user.uid, user.gid);
  const hostKeys = hostKeyTypes.map((type) => join(home, `host_${type}`));
  hostKeyTypes.forEach((type, i) => {
    if (!existsSync(hostKeys[i]!)) keygen(hostKeys[i]!, `pi-hil ${name} host key`, type);
  });
  const config = join(home, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      ...hostKeys.map((k) => `HostKey ${k}`),
      `PidFile ${join(home, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      // The key file lies outside the user's home, under the world-writable temp folder: StrictModes would refuse it.
      'StrictModes no',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      'MaxStartups 100',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd's log goes to a file, not a pipe: a pipe would keep the caller alive and SIGPIPE sshd when it goes.
  const logFile = join(home, 'sshd.log');
  const logFd = openSync(logFile, 'a');
  const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', logFd], detached: true });
  closeSync(logFd);
  child.unref();
  if (child.pid === undefined) throw new Error(`cannot start sshd for ${name}`);
  // The cap applies to the daemon and is inherited by every session it forks.
  cgroup?.adopt(child.pid);
  try {
    await waitForBanner(port, () => (child.exitCode !== null ? `sshd for ${name} exited: ${readFileSync(logFile, 'utf8').trim()}` : null));
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { name, port, pid: child.pid, hostKeyFingerprint: fingerprint(`${hostKeys[0]}.pub`), hostKeyTypes, capMb, cgroup };
}

/**
 * Kill the daemon, its sessions, and anything still running from the device's
 * folders: the agent detaches from sshd (as it must on a real Pi), so "power
 * off" has to find it by where it runs; an sshd a test started again from the
 * device's config (a power "on" command) is found by that config's folder.
 */
function killDevice(device: LocalSshdDevice, folders: string[]): void {
  for (const pid of [device.pid, ...descendantsOf(device.pid), ...folders.flatMap((f) => processesUnder(f))]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function keygen(path: string, comment: string, type: HostKeyType = 'ed25519'): void {
  // 2048-bit RSA keeps a test's key generation under a second.
  const size = type === 'rsa' ? ['-b', '2048'] : [];
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, ...size, '-N', '', '-C', comment, '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr || r.error?.message}`);
}

function fingerprint(pubKey: string): string {
  const r = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubKey], { encoding: 'utf8' });
  const fp = /SHA256:\S+/.exec(r.stdout)?.[0];
  if (!fp) throw new Error(`cannot fingerprint ${pubKey}: ${r.stderr}`);
  return fp;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Ready means the SSH banner answers, not just that TCP accepts. */
async function waitForBanner(port: number, died: () => string | null, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `sshd on 127.0.0.1:${port} to answer with an SSH banner`,
    () => {
      const why = died();
      if (why !== null) throw new Error(why);
      return sshBanner(port);
    },
    timeoutMs,
    100,
  );
}

function sshBanner(port: number): Promise<boolean> {
  return new Promise<boolean>((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('data', (d) => {
      socket.destroy();
      done(d.toString().startsWith('SSH-'));
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

/**
 * Run as root, check that the device user can read `file` before any sshd starts:
 * otherwise every login fails later with nothing but "Permission denied (publickey)".
 * The check runs as that user, so it sees exactly the folder modes sshd will.
 */
function assertReachable(user: { name: string; uid: number; gid: number }, file: string): void {
  if (user.uid === process.getuid?.()) return;
  const can = (test: '-r' | '-x', path: string): boolean =>
    spawnSync('test', [test, path], { uid: user.uid, gid: user.gid }).status === 0;
  if (can('-r', file)) return;
  const folders: string[] = [];
  for (let d = dirname(file); ; d = dirname(d)) {
    folders.unshift(d);
    if (d === dirname(d)) break;
  }
  const closed = folders.find((d) => !can('-x', d));
  const why = closed
    ? `${closed} (mode ${(statSync(closed).mode & 0o7777).toString(8).padStart(4, '0')}) is closed to it`
    : 'the file is not readable to it';
  throw new Error(
    `the device user ${user.name} cannot read ${file}, which sshd opens as that user: ${why}. ` +
      `The rack keeps it under the system temp folder (${tmpdir()}); point TMPDIR at a folder every user can traverse, such as /tmp`,
  );
}

function inventoryYaml(rack: LocalSshdRack, options: LocalSshdOptions): string {
  const doc = {
    defaults: {
      transport: 'ssh',
      user: rack.user,
      identity_file: rack.identityFile,
      // Debian's interpreter, as on a Pi; not whatever a login shell's PATH would find.
      python: options.python ?? '/usr/bin/python3',
      model: 'local sshd (stand-in)',
      arch: 'amd64',
      tags: ['local-sshd'],
      ...options.defaults,
    },
    devices: rack.devices.map((d) => ({
      name: d.name,
      host: '127.0.0.1',
      port: d.port,
      ...(options.pinHostKeys === false ? {} : { host_key: d.hostKeyFingerprint }),
      // One workdir per device, so "power off" can find what runs there.
      workdir: join(rack.workRoot, d.name),
      ram_mb: options.ramMb ?? d.capMb ?? 1024,
      ...(d.capMb !== null ? { tags: ['local-sshd', `cap-${d.capMb}mb`] } : {}),
    })),
  };
  return `# Written by scripts/local-sshd.ts: real OpenSSH servers on loopback.\n${stringify(doc)}`;
}
