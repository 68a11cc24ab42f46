/**
 * The `snmp-poe` adapter: a PoE switch port, switched through the Power
 * Ethernet MIB (RFC 3621) with net-snmp's snmpset. pethPsePortAdminEnable is
 * 1.3.6.1.2.1.105.1.1.1.3.<group>.<port>, a TruthValue: 1 powers the port, 2
 * cuts it.
 *
 * The community is a password, so it never goes on the command line, where
 * any user of this host could read it in the process list: it goes into a
 * private snmp.conf (defCommunity) that only this call's snmpset reads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SnmpPoePowerSpec } from '../../inventory/device.ts';
import { shellJoin } from '../../transport/quote.ts';
import { execPower } from './exec.ts';
import { pause, PowerError, type PowerAction, type PowerControl, type PowerState } from './types.ts';

export const PETH_PSE_PORT_ADMIN_ENABLE = '1.3.6.1.2.1.105.1.1.1.3';

export function poeOid(spec: Pick<SnmpPoePowerSpec, 'group' | 'port'>): string {
  return `${PETH_PSE_PORT_ADMIN_ENABLE}.${spec.group}.${spec.port}`;
}

/** Options both tools share: SNMP v2c, numeric OIDs, a bounded wait for the switch. */
function common(spec: SnmpPoePowerSpec): string[] {
  const perTry = Math.max(1, Math.floor(spec.timeoutMs / 2000));
  return ['-v2c', '-On', '-t', String(perTry), '-r', '1'];
}

/** snmpset's argv to switch the port on or off; the community is not in it (see the file's comment). */
export function snmpSetArgv(spec: SnmpPoePowerSpec, to: 'on' | 'off'): string[] {
  return ['snmpset', ...common(spec), spec.host, poeOid(spec), 'i', to === 'on' ? '1' : '2'];
}

/** snmpget's argv to read the port's admin state, printed as the bare value. */
export function snmpGetArgv(spec: SnmpPoePowerSpec): string[] {
  return ['snmpget', ...common(spec), '-Oqv', spec.host, poeOid(spec)];
}

/**
 * The snmp.conf that carries the community, quoted as net-snmp reads a quoted
 * word (a backslash escapes the next character), so spaces and quotes survive.
 * `mibs :` keeps net-snmp from loading (and complaining about) MIB files.
 */
export function snmpConf(community: string): string {
  return `defCommunity "${community.replace(/[\\"]/g, '\\$&')}"\nmibs :\n`;
}

export class SnmpPoePower implements PowerControl {
  readonly describe: string;

  constructor(
    private readonly spec: SnmpPoePowerSpec,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.describe = `PoE port ${spec.port} (group ${spec.group}) of switch ${spec.host} over SNMP`;
  }

  private async snmp(argv: string[], signal?: AbortSignal): Promise<string> {
    const community = this.env[this.spec.communityEnv];
    if (community === undefined || community === '') {
      throw new PowerError(`${this.describe}: environment variable ${this.spec.communityEnv} (community_env) is not set`);
    }
    if (/[\r\n]/.test(community)) throw new PowerError(`${this.describe}: the community in ${this.spec.communityEnv} spans lines`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pi-hil-snmp-'));
    try {
      writeFileSync(path.join(dir, 'snmp.conf'), snmpConf(community), { mode: 0o600 });
      const { stdout } = await execPower({
        argv,
        shown: `\`${shellJoin(argv)}\``,
        // The switch answers within the tool's own timeout and retry; this only bounds a stuck tool.
        timeoutMs: this.spec.timeoutMs + 5000,
        env: { ...this.env, SNMPCONFPATH: dir },
        secrets: [community],
        ...(signal ? { signal } : {}),
      });
      return stdout;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async run(action: PowerAction, signal?: AbortSignal): Promise<void> {
    if (action !== 'cycle') {
      await this.snmp(snmpSetArgv(this.spec, action), signal);
      return;
    }
    await this.snmp(snmpSetArgv(this.spec, 'off'), signal);
    await pause(this.spec.delayMs, signal);
    await this.snmp(snmpSetArgv(this.spec, 'on'), signal);
  }

  async status(signal?: AbortSignal): Promise<PowerState> {
    const argv = snmpGetArgv(this.spec);
    const out = (await this.snmp(argv, signal)).trim();
    // A TruthValue: 1 (true) or 2 (false); "true(1)" where a MIB is loaded after all.
    if (/^(?:1|true(?:\(1\))?)$/i.test(out)) return 'on';
    if (/^(?:2|false(?:\(2\))?)$/i.test(out)) return 'off';
    throw new PowerError(`\`${shellJoin(argv)}\` printed ${JSON.stringify(out.slice(0, 200))}; expected 1 (on) or 2 (off)`);
  }
}
