/**
 * Device → the transport that talks to it. The only place that knows which
 * class serves which `transport:` value.
 */
import type { Device } from '../inventory/device.ts';
import { LocalTransport } from './local.ts';
import { QemuTransport } from './qemu.ts';
import { SshTransport } from './ssh.ts';
import type { Transport } from './transport.ts';

export interface TransportOptions {
  acceptNew: boolean;
  /** The project's known_hosts, where --accept-new records keys. */
  knownHostsFile: string;
}

export function createTransport(device: Device, options: TransportOptions): Transport {
  switch (device.transport) {
    case 'ssh':
      return new SshTransport(device, { acceptNew: options.acceptNew, knownHostsFile: options.knownHostsFile, connectTimeoutMs: device.timeouts.connectMs });
    case 'local':
      return new LocalTransport({ name: device.name, capMb: device.capMb });
    case 'qemu':
      return new QemuTransport(device, { acceptNew: options.acceptNew, knownHostsFile: options.knownHostsFile });
  }
}

/** A one-line, secret-free description of where a device is, for run.json and `hil list`. */
export function describeTarget(device: Device): string {
  switch (device.transport) {
    case 'ssh':
      return `${device.user}@${device.host}:${device.port}`;
    case 'local':
      return device.capMb === null ? 'this host, uncapped' : `this host, memory cap ${device.capMb} MB`;
    case 'qemu':
      return device.qemu.profile !== null ? `qemu profile ${device.qemu.profile}` : `qemu image ${device.qemu.image ?? '?'}`;
  }
}
