/**
 * The `command` adapter: the user's own shell commands for on, off, and
 * optionally cycle and status, run on this host. The device's fields fill in
 * {name}, {host}, {port} and {user}, each shell-quoted, so no value of the
 * inventory can change what the command does.
 */
import type { CommandPowerSpec } from '../../inventory/device.ts';
import { shellQuote } from '../../transport/quote.ts';
import { execPower } from './exec.ts';
import { pause, PowerError, type PowerAction, type PowerControl, type PowerState } from './types.ts';

/** What a command's placeholders are filled in with. */
export interface CommandFields {
  name: string;
  host: string;
  port: number;
  user: string;
}

/** The command line with each {placeholder} replaced by its value, shell-quoted. */
export function renderPowerCommand(template: string, fields: CommandFields): string {
  return template.replace(/\{(name|host|port|user)\}/g, (_, key: keyof CommandFields) => shellQuote(String(fields[key])));
}

/** A status command's answer: its first word, on/off (or 1/0, true/false), in any case. */
export function parsePowerStatus(output: string): PowerState | null {
  const word = output.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  if (['on', '1', 'true'].includes(word)) return 'on';
  if (['off', '0', 'false'].includes(word)) return 'off';
  return null;
}

export class CommandPower implements PowerControl {
  readonly describe: string;

  constructor(
    private readonly spec: CommandPowerSpec,
    private readonly fields: CommandFields,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.describe = `commands on: ${JSON.stringify(spec.on)}, off: ${JSON.stringify(spec.off)}`;
  }

  private async sh(template: string, signal?: AbortSignal): Promise<string> {
    const line = renderPowerCommand(template, this.fields);
    const { stdout } = await execPower({ argv: ['sh', '-c', line], shown: `power command \`${line}\``, timeoutMs: this.spec.timeoutMs, env: this.env, ...(signal ? { signal } : {}) });
    return stdout;
  }

  async run(action: PowerAction, signal?: AbortSignal): Promise<void> {
    const { spec } = this;
    if (action === 'on') await this.sh(spec.on, signal);
    else if (action === 'off') await this.sh(spec.off, signal);
    else if (spec.cycle !== null) await this.sh(spec.cycle, signal);
    else {
      await this.sh(spec.off, signal);
      await pause(spec.delayMs, signal);
      await this.sh(spec.on, signal);
    }
  }

  async status(signal?: AbortSignal): Promise<PowerState> {
    if (this.spec.status === null) return 'unknown';
    const out = await this.sh(this.spec.status, signal);
    const state = parsePowerStatus(out);
    if (state === null) {
      throw new PowerError(`power status command \`${renderPowerCommand(this.spec.status, this.fields)}\` printed ${JSON.stringify(out.trim().slice(0, 200))}; expected on or off`);
    }
    return state;
  }
}
