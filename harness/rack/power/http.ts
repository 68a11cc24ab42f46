/**
 * The `http` adapter: smart plugs and PDUDaemon, one GET each.
 *
 * - Tasmota: `/cm?cmnd=Power%20On`. Its command endpoint takes the web
 *   password as `user=` and `password=` query parameters (it does not read
 *   Basic auth there), so shown URLs have the password redacted.
 * - Shelly (Gen1 API): `/relay/<n>?turn=on`, Basic auth.
 * - PDUDaemon: `/power/control/<on|off|reboot>?hostname=<pdu>&port=<n>`,
 *   Basic auth where a proxy in front of it asks for it. PDUDaemon queues the
 *   request and answers at once; it waits out a reboot's delay itself.
 */
import type { HttpPowerSpec } from '../../inventory/device.ts';
import { pause, PowerError, redact, seconds, type PowerAction, type PowerControl, type PowerState } from './types.ts';

export type HttpPowerOp = 'on' | 'off' | 'status' | 'reboot';

export interface HttpPowerRequest {
  url: string;
  /** The URL as logs and errors may show it: the password redacted. */
  shownUrl: string;
  headers: Record<string, string>;
}

const REDACTED = '(redacted)';

/** The request for one operation, or null where the kind has no such endpoint (Tasmota and Shelly reboot, PDUDaemon status). */
export function httpPowerRequest(spec: HttpPowerSpec, op: HttpPowerOp, password: string | null): HttpPowerRequest | null {
  const origin = `http://${spec.host}${spec.port === 80 ? '' : `:${spec.port}`}`;
  const q = encodeURIComponent;
  const basic: Record<string, string> = password === null ? {} : { Authorization: `Basic ${Buffer.from(`${spec.user}:${password}`).toString('base64')}` };
  switch (spec.kind) {
    case 'tasmota': {
      if (op === 'reboot') return null;
      const cmnd = `Power${spec.outlet ?? ''}${op === 'on' ? ' On' : op === 'off' ? ' Off' : ''}`;
      const login = (pw: string): string => (password === null ? '' : `user=${q(spec.user)}&password=${pw}&`);
      const path = (pw: string): string => `${origin}/cm?${login(pw)}cmnd=${q(cmnd)}`;
      return { url: path(password === null ? '' : q(password)), shownUrl: path(REDACTED), headers: {} };
    }
    case 'shelly': {
      if (op === 'reboot') return null;
      const url = `${origin}/relay/${spec.outlet ?? 0}${op === 'status' ? '' : `?turn=${op}`}`;
      return { url, shownUrl: url, headers: basic };
    }
    case 'pdudaemon': {
      if (op === 'status') return null;
      const delay = op === 'reboot' ? `&delay=${Number((spec.delayMs / 1000).toFixed(3))}` : '';
      const url = `${origin}/power/control/${op}?hostname=${q(spec.pdu ?? '')}&port=${spec.outlet ?? ''}${delay}`;
      return { url, shownUrl: url, headers: basic };
    }
  }
}

export class HttpPower implements PowerControl {
  readonly describe: string;

  constructor(
    private readonly spec: HttpPowerSpec,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    const at = `${spec.host}:${spec.port}`;
    this.describe =
      spec.kind === 'tasmota'
        ? `Tasmota plug ${at} Power${spec.outlet ?? ''}`
        : spec.kind === 'shelly'
          ? `Shelly plug ${at} relay ${spec.outlet ?? 0}`
          : `PDUDaemon ${at}, PDU ${spec.pdu ?? '?'} port ${spec.outlet ?? '?'}`;
  }

  private password(): string | null {
    const name = this.spec.passwordEnv;
    if (name === null) return null;
    const value = this.env[name];
    if (value === undefined || value === '') throw new PowerError(`${this.describe}: environment variable ${name} (password_env) is not set`);
    return value;
  }

  /** One GET; the answer's body when it is a 2xx. */
  private async get(op: HttpPowerOp, signal?: AbortSignal): Promise<{ body: string; shownUrl: string }> {
    const password = this.password();
    const req = httpPowerRequest(this.spec, op, password);
    if (req === null) throw new PowerError(`${this.describe}: ${this.spec.kind} has no ${op} request`);
    const secrets = password === null ? [] : [password, encodeURIComponent(password)];
    const timeout = AbortSignal.timeout(this.spec.timeoutMs);
    let res: Response;
    let body: string;
    try {
      res = await fetch(req.url, { headers: req.headers, signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'manual' });
      body = await res.text();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) throw new PowerError(`GET ${req.shownUrl}: no answer within ${seconds(this.spec.timeoutMs)}`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new PowerError(`GET ${req.shownUrl}: ${redact(cause?.code ?? cause?.message ?? (err as Error).message, secrets)}`);
    }
    const excerpt = redact(body.trim().slice(0, 500), secrets);
    if (res.status < 200 || res.status > 299) {
      throw new PowerError(`GET ${req.shownUrl}: HTTP ${res.status} ${res.statusText}${excerpt ? `\n    body: ${excerpt}` : ''}`);
    }
    return { body: excerpt, shownUrl: req.shownUrl };
  }

  /** Tasmota answers {"POWER":"ON"} (POWER1… with an outlet), Shelly {"ison":true,…}. */
  private stateIn(body: string): PowerState | null {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return null;
    }
    if (typeof json !== 'object' || json === null) return null;
    if (this.spec.kind === 'shelly') {
      const ison = (json as { ison?: unknown }).ison;
      return typeof ison === 'boolean' ? (ison ? 'on' : 'off') : null;
    }
    const key = Object.keys(json).find((k) => /^POWER\d*$/i.test(k));
    const value = key === undefined ? undefined : String((json as Record<string, unknown>)[key]).toUpperCase();
    return value === 'ON' ? 'on' : value === 'OFF' ? 'off' : null;
  }

  /** Switch and check that the plug says it did: Tasmota answers 200 with a warning when the password is wrong. */
  private async switchTo(to: 'on' | 'off', signal?: AbortSignal): Promise<void> {
    const { body, shownUrl } = await this.get(to, signal);
    if (this.spec.kind === 'pdudaemon') return;
    const state = this.stateIn(body);
    if (state !== to) throw new PowerError(`GET ${shownUrl}: the plug did not say it is ${to}\n    body: ${body}`);
  }

  async run(action: PowerAction, signal?: AbortSignal): Promise<void> {
    if (action !== 'cycle') return this.switchTo(action, signal);
    if (this.spec.kind === 'pdudaemon') {
      await this.get('reboot', signal);
      return;
    }
    await this.switchTo('off', signal);
    await pause(this.spec.delayMs, signal);
    await this.switchTo('on', signal);
  }

  async status(signal?: AbortSignal): Promise<PowerState> {
    if (this.spec.kind === 'pdudaemon') return 'unknown';
    const { body, shownUrl } = await this.get('status', signal);
    const state = this.stateIn(body);
    if (state === null) throw new PowerError(`GET ${shownUrl}: no power state in the answer\n    body: ${body}`);
    return state;
  }
}
