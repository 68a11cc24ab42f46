/**
 * The `uhubctl` adapter: per-port power switching of a USB hub (how a Pi 4's
 * own USB ports, or a smart hub's, power a Pi that hangs from them). uhubctl
 * needs root or a udev rule for the hub.
 */
import type { UhubctlPowerSpec } from '../../inventory/device.ts';
import { shellJoin } from '../../transport/quote.ts';
import { execPower } from './exec.ts';
import { PowerError, type PowerAction, type PowerControl, type PowerState } from './types.ts';

/** uhubctl's argv for an action: `uhubctl -l <location> -p <port> -a on|off|cycle [-d <seconds>]`; null: the status query. */
export function uhubctlArgv(spec: UhubctlPowerSpec, action: PowerAction | null): string[] {
  const argv = ['uhubctl', '-l', spec.location, '-p', String(spec.port)];
  if (action === null) return argv;
  argv.push('-a', action);
  if (action === 'cycle') argv.push('-d', String(Number((spec.delayMs / 1000).toFixed(3))));
  return argv;
}

/** The port's state from uhubctl's listing ("  Port 2: 0503 power highspeed enable connect"). */
export function parseUhubctlStatus(output: string, port: number): PowerState | null {
  const line = new RegExp(`^\\s*Port ${port}: [0-9a-f]{4}\\b(.*)$`, 'm').exec(output);
  if (!line) return null;
  const words = (line[1] ?? '').trim().split(/\s+/);
  if (words.includes('off')) return 'off';
  return words.includes('power') || words.includes('5gbps') ? 'on' : null;
}

export class UhubctlPower implements PowerControl {
  readonly describe: string;

  constructor(
    private readonly spec: UhubctlPowerSpec,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.describe = `uhubctl hub ${spec.location} port ${spec.port}`;
  }

  async run(action: PowerAction, signal?: AbortSignal): Promise<void> {
    const argv = uhubctlArgv(this.spec, action);
    // uhubctl waits out the off time itself during a cycle.
    const timeoutMs = this.spec.timeoutMs + (action === 'cycle' ? this.spec.delayMs : 0);
    await execPower({ argv, shown: `\`${shellJoin(argv)}\``, timeoutMs, env: this.env, ...(signal ? { signal } : {}) });
  }

  async status(signal?: AbortSignal): Promise<PowerState> {
    const argv = uhubctlArgv(this.spec, null);
    const { stdout } = await execPower({ argv, shown: `\`${shellJoin(argv)}\``, timeoutMs: this.spec.timeoutMs, env: this.env, ...(signal ? { signal } : {}) });
    const state = parseUhubctlStatus(stdout, this.spec.port);
    if (state === null) throw new PowerError(`\`${shellJoin(argv)}\` did not list port ${this.spec.port}:\n    stdout: ${stdout.trim().slice(0, 500)}`);
    return state;
  }
}
