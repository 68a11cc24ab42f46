/**
 * A controller process for the orphan tests: starts one emulated Pi (cold, so it is
 * mid-boot for a long while) and waits. Mode "default" keeps Node's own SIGINT
 * behaviour (die at once); mode "abort" handles SIGINT like the scheduler does:
 * abort the boot, close the transport, exit 130.
 *
 *   node --import tsx test/qemu-controller-fixture.ts <default|abort> <profile>
 */
import { QemuTransport } from '../harness/transport/qemu.ts';
import { qemuDevice } from './qemu-fixtures.ts';

const [mode = 'default', profile = 'pi3b-1g-arm64'] = process.argv.slice(2);
const q = new QemuTransport(qemuDevice(`ctl-${mode}`, profile), { warm: false });
const ac = new AbortController();
if (mode === 'abort') {
  process.on('SIGINT', () => {
    ac.abort(new Error('SIGINT'));
    void q.close().then(() => process.exit(130));
  });
}
process.stdout.write(`controller ${process.pid} starting\n`);
await q.connect(ac.signal).catch((e: unknown) => {
  process.stdout.write(`connect ended: ${(e as Error).message.split('\n')[0]}\n`);
});
await q.close();
