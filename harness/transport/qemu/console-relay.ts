/**
 * A VM's serial console served on a unix socket in its state folder, so `hil console`
 * can attach to a VM that another process holds (a running `hil run`) without stopping
 * it. The pty stays owned by the process that launched QEMU; a client gets the recent
 * console tail, then every byte as it comes, and what it types goes to ttyAMA0.
 */
import net from 'node:net';
import type { ConsoleLog } from './console-log.ts';

/** How much of the console a client sees on attach, so it lands in context. */
const TAIL_ON_ATTACH = 2000;

export function serveConsole(socketPath: string, log: ConsoleLog, write: (data: Buffer) => void): net.Server {
  const server = net.createServer((client) => {
    client.write(log.tail(TAIL_ON_ATTACH));
    const unsubscribe = log.subscribe((chunk) => client.write(chunk));
    client.on('data', (d: Buffer) => write(d));
    client.on('close', unsubscribe);
    // A client that vanishes mid-write must not take the controller down.
    client.on('error', unsubscribe);
  });
  server.on('error', () => undefined);
  server.listen(socketPath);
  return server;
}

/** Connect to a served console; rejects when nothing listens there. */
export function attachConsole(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
