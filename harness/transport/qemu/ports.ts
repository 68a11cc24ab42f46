/** A free loopback TCP port, chosen at launch so parallel VMs and parallel runs never clash. */
import net from 'node:net';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Read the SSH identification banner. User-mode networking accepts a TCP connection before
 * the guest's sshd listens (then closes it), so only a banner proves sshd answers.
 */
export function sshBanner(port: number, timeoutMs = 3000): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ host: '127.0.0.1', port });
    let got = '';
    const finish = (v: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      const nl = got.indexOf('\n');
      if (nl >= 0) finish(got.startsWith('SSH-') ? got.slice(0, nl).trim() : null);
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(null));
  });
}
