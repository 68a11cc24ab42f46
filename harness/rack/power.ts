/**
 * Power control of a device, for an unattended rack: cut and restore the
 * power of a hung Pi. Each adapter is a thin command or HTTP call chosen by
 * the device's `power:` block (harness/inventory/device.ts, PowerSpec); a QEMU
 * device needs none, its VM is its power.
 *
 *   command   your own shell commands             power/command.ts
 *   uhubctl   a USB hub port (Pi 4 USB power)     power/uhubctl.ts
 *   snmp-poe  a PoE switch port over SNMP         power/snmp.ts
 *   http      Tasmota, Shelly, PDUDaemon          power/http.ts
 *   (qemu)    system_reset over QMP, or a restart power/qemu.ts
 *
 * Every command and request runs on this host (the controller), never on the
 * device: a hung device cannot cut its own power.
 */
import type { Device } from '../inventory/device.ts';
import { QemuTransport } from '../transport/qemu.ts';
import type { Transport } from '../transport/transport.ts';
import { CommandPower } from './power/command.ts';
import { HttpPower } from './power/http.ts';
import { QemuPower } from './power/qemu.ts';
import { SnmpPoePower } from './power/snmp.ts';
import { UhubctlPower } from './power/uhubctl.ts';
import type { PowerControl } from './power/types.ts';

export { PowerError, type PowerAction, type PowerControl, type PowerState } from './power/types.ts';
export { parsePowerStatus, renderPowerCommand } from './power/command.ts';
export { httpPowerRequest, type HttpPowerOp, type HttpPowerRequest } from './power/http.ts';
export { poeOid, snmpConf, snmpGetArgv, snmpSetArgv } from './power/snmp.ts';
export { parseUhubctlStatus, uhubctlArgv } from './power/uhubctl.ts';

/**
 * The device's power control: its `power:` block, QEMU's own (system_reset
 * through QMP, or a VM restart), or null (no way to cycle it). `transport` is
 * the one the device's jobs use: a QEMU control acts on that transport's VM.
 */
export function powerControlFor(device: Device, transport: Transport, env: NodeJS.ProcessEnv = process.env): PowerControl | null {
  if (device.transport === 'qemu') return transport instanceof QemuTransport ? new QemuPower(transport) : null;
  if (device.transport !== 'ssh' || device.power === null) return null;
  const spec = device.power;
  switch (spec.adapter) {
    case 'command':
      return new CommandPower(spec, { name: device.name, host: device.host, port: device.port, user: device.user }, env);
    case 'uhubctl':
      return new UhubctlPower(spec, env);
    case 'snmp-poe':
      return new SnmpPoePower(spec, env);
    case 'http':
      return new HttpPower(spec, env);
  }
}
