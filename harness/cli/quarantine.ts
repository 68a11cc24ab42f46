/**
 * `hil quarantine list|release [<device>]`: the devices set aside after
 * failing N runs in a row, and letting one run again. A passing
 * `hil check --device X` releases it too.
 */
import { UsageError } from '../config/diagnostics.ts';
import { QuarantineBook } from '../rack/quarantine.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';
import { table } from './table.ts';

export const QUARANTINE_SPEC: CommandSpec = {
  name: 'quarantine',
  summary: 'List quarantined devices, or release one so that runs use it again.',
  usage: 'hil quarantine list | hil quarantine release <device>',
  options: {},
  positionals: { min: 1, max: 2, names: 'list, or release and a device name' },
};

export async function quarantineCommand(argv: string[]): Promise<number> {
  const { positionals, help } = parseCommand(QUARANTINE_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(QUARANTINE_SPEC));
    return 0;
  }
  const book = new QuarantineBook();
  const [action = '', device] = positionals;
  if (action === 'list' && device === undefined) {
    const rows = book.list();
    process.stdout.write(rows.length === 0 ? 'no device is quarantined\n' : table(['device', 'since', 'reason'], rows.map((r) => [r.device, r.since, r.reason])));
    return 0;
  }
  if (action === 'release' && device !== undefined) {
    const was = book.release(device);
    process.stdout.write(was ? `${device}: released from quarantine (since ${was.since}: ${was.reason})\n` : `${device}: not quarantined\n`);
    return 0;
  }
  throw new UsageError('hil quarantine', positionals.join(' '), 'list, or release <device>');
}
