/**
 * A minimal QMP (QEMU Machine Protocol) client: JSON lines over a unix socket.
 * Used for what the serial console cannot do: stop, migrate to a file, query
 * migration, power down and quit.
 */
import net from 'node:net';

export type QmpValue = null | boolean | number | string | QmpValue[] | { [k: string]: QmpValue };
type QmpObject = { [k: string]: QmpValue };

export class QmpError extends Error {
  override readonly name = 'QmpError';
}

export class Qmp {
  private buffer = '';
  private pending: { resolve: (v: QmpValue) => void; reject: (e: Error) => void }[] = [];
  private closed = false;
  readonly events: QmpObject[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d) => this.onData(d.toString('utf8')));
    const fail = (): void => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(new QmpError('QMP connection closed'));
    };
    socket.on('close', fail);
    socket.on('error', fail);
  }

  /** Connect, retrying until QEMU has created the socket, then leave capabilities negotiation. */
  static async connect(socketPath: string, timeoutMs = 10_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.greeting();
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (e) {
        if (Date.now() > deadline) throw new QmpError(`QMP socket ${socketPath}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private greetingWaiter: ((ok: boolean) => void) | null = null;
  private greeted = false;

  private greeting(): Promise<void> {
    if (this.greeted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.greetingWaiter = (ok) => (ok ? resolve() : reject(new QmpError('no QMP greeting')));
      this.socket.once('close', () => this.greetingWaiter?.(false));
    });
  }

  private onData(text: string): void {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: QmpObject;
      try {
        msg = JSON.parse(line) as QmpObject;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeted = true;
        this.greetingWaiter?.(true);
      } else if ('event' in msg) {
        this.events.push(msg);
      } else if ('return' in msg) {
        this.pending.shift()?.resolve(msg.return ?? null);
      } else if ('error' in msg) {
        const err = msg.error as QmpObject | undefined;
        this.pending.shift()?.reject(new QmpError(String(err?.desc ?? 'QMP error')));
      }
    }
  }

  /** Run one command; commands are answered in order, so a FIFO of waiters suffices. */
  execute(command: string, args?: QmpObject): Promise<QmpValue> {
    if (this.closed) return Promise.reject(new QmpError('QMP connection closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
