/**
 * What a device *is*: the validated, typed form of one devices.yaml entry.
 * Loading and validation live in load.ts; how to talk to a device lives in
 * harness/transport/.
 */
import type { Arch, DeviceSnapshot, TransportKind } from '../results/record.ts';

export type { TransportKind };

/** Where a value came from, for errors raised after loading. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export interface Timeouts {
  /** Connecting (including retries while a device boots). */
  connectMs: number;
  /**
   * One job, from payload start to its end; the agent kills the process group then.
   * null: the suite's own timeout applies. A slow device (an emulated one) sets it to override.
   */
  jobMs: number | null;
  /** QEMU: boot until the SSH banner answers. */
  bootMs: number;
}

/** How to authenticate. A password only ever comes from an environment variable. */
export interface SshAuth {
  identityFile: string | null;
  useAgent: boolean;
  /** Name of the environment variable that holds the password, never the password. */
  passwordEnv: string | null;
}

/** Host-key pinning: a SHA256 fingerprint ("SHA256:base64") or a known_hosts file. */
export interface HostKeyPin {
  fingerprint: string | null;
  knownHosts: string | null;
}

interface DeviceBase {
  name: string;
  transport: TransportKind;
  model: string;
  ramMb: number;
  /** The userland arch we expect; the agent's facts say what it really is. */
  arch: Arch;
  tags: string[];
  /**
   * Devices with the same `shard_group:` always land on the same shard (they
   * share a power strip, a switch or warm state); null: the device's own name.
   */
  shardGroup: string | null;
  /** Parent folder on the device for per-run workdirs. */
  workdir: string;
  /** Python interpreter on the device that runs the agent and the payload. */
  python: string;
  timeouts: Timeouts;
  source: SourcePosition;
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  auth: SshAuth;
  hostKey: HostKeyPin;
}

export interface SshDevice extends DeviceBase, SshTarget {
  transport: 'ssh';
  /** How to cut and restore its power (its `power:` block), or null where nothing can. */
  power: PowerSpec | null;
}

/**
 * A device's `power:` block: which adapter cuts and restores its power, and
 * that adapter's settings. Acted on by harness/rack/power.ts. Secrets are
 * named here (an environment variable), never held.
 */
export type PowerSpec = CommandPowerSpec | UhubctlPowerSpec | SnmpPoePowerSpec | HttpPowerSpec;
export type PowerAdapterKind = PowerSpec['adapter'];

interface PowerSpecBase {
  /** How long a cycle leaves the power off. */
  delayMs: number;
  /** How long one command or request may take before it counts as failed. */
  timeoutMs: number;
}

/** Your own shell commands, with {name}, {host}, {port}, {user} filled in shell-quoted. */
export interface CommandPowerSpec extends PowerSpecBase {
  adapter: 'command';
  on: string;
  off: string;
  /** null: off, the delay, then on. */
  cycle: string | null;
  /** Prints on or off; null: the state is unknown. */
  status: string | null;
}

/** A port of a USB hub with per-port power switching (a Pi powered from a Pi 4's or a hub's USB port). */
export interface UhubctlPowerSpec extends PowerSpecBase {
  adapter: 'uhubctl';
  /** uhubctl's hub location, e.g. "1-1". */
  location: string;
  port: number;
}

/** A PoE switch port, through the Power Ethernet MIB's pethPsePortAdminEnable. */
export interface SnmpPoePowerSpec extends PowerSpecBase {
  adapter: 'snmp-poe';
  /** The switch (snmpset's agent address: host, or host:port). */
  host: string;
  /** The environment variable that holds the SNMP community, never the community. */
  communityEnv: string;
  /** pethPsePortGroupIndex: 1 on a single switch; the stack member on a stack. */
  group: number;
  /** pethPsePortIndex: the switch port. */
  port: number;
}

export type HttpPowerKind = 'tasmota' | 'shelly' | 'pdudaemon';

/** A smart plug or a PDUDaemon server, over HTTP. */
export interface HttpPowerSpec extends PowerSpecBase {
  adapter: 'http';
  kind: HttpPowerKind;
  host: string;
  /** TCP port of the HTTP server (80; PDUDaemon's 16421). */
  port: number;
  /** PDUDaemon: the PDU's name in its configuration. */
  pdu: string | null;
  /** Which outlet: PDUDaemon's port, Shelly's relay (default 0), Tasmota's PowerN (default: its first). */
  outlet: number | null;
  user: string;
  /** The environment variable that holds the password, never the password. */
  passwordEnv: string | null;
}

/** A QEMU-emulated Pi: either a named profile, or the user's own image and boot files. */
export interface QemuSpec {
  /** Profile name from harness/pi/profiles.ts, e.g. "pi4b-2g-armhf". */
  profile: string | null;
  image: string | null;
  kernel: string | null;
  initrd: string | null;
  dtb: string | null;
  machine: string | null;
  cpu: string | null;
  append: string | null;
  /**
   * A folder of the user's wheels (their TensorFlow build, say): the device boots the
   * image built with them (`hil image build <arch> --wheelhouse DIR`), and its python
   * defaults to the venv they were installed into.
   */
  wheelhouse: string | null;
  /** Guest user the harness logs in as. */
  user: string;
}

export interface QemuDevice extends DeviceBase {
  transport: 'qemu';
  qemu: QemuSpec;
}

/** This machine, optionally under a memory cgroup that stands in for a Pi's RAM. */
export interface LocalDevice extends DeviceBase {
  transport: 'local';
  /** Memory cap in MB; null runs uncapped. */
  capMb: number | null;
}

export type Device = SshDevice | QemuDevice | LocalDevice;

export interface Inventory {
  file: string;
  devices: Device[];
  /** Named groups of device names, for --tag selection alongside tags. */
  groups: Record<string, string[]>;
}

/** The secret-free view of a device that goes into every result record. */
export function snapshotDevice(device: Device): DeviceSnapshot {
  return {
    name: device.name,
    transport: device.transport,
    model: device.model,
    ramMb: device.ramMb,
    arch: device.arch,
    tags: [...device.tags],
  };
}
