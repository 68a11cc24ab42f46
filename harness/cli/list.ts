/** `hil list`: the inventory's devices and the suites, as tables. */
import { join } from 'node:path';
import { projectDir } from '../host/paths.ts';
import { loadInventory } from '../inventory/load.ts';
import { parseShard, selectDevices } from '../run/plan.ts';
import type { ParamDecls } from '../suite/params.ts';
import { loadSuites } from '../suite/suite.ts';
import { describeTarget } from '../transport/factory.ts';
import { helpText, parseCommand, type CommandSpec } from './args.ts';
import { table } from './table.ts';

export const LIST_SPEC: CommandSpec = {
  name: 'list',
  summary: 'List the devices of the inventory and the suites.',
  usage: 'hil list [--shard i/n] [options]',
  options: {
    inventory: { type: 'string', short: 'i', arg: 'file', help: 'device inventory (default: devices.yaml)' },
    suites: { type: 'string', arg: 'dir', help: 'suites folder (default: suites)' },
    shard: { type: 'string', arg: 'i/n', help: 'only the devices shard i of n gets (what `hil run --shard i/n` runs on)' },
  },
};

/** What `--param` may set, each at its default: "step_mb=16 MB, limit_mb=8192 MB", "mode=fast (fast|slow)". */
function paramsText(params: ParamDecls): string {
  return Object.values(params)
    .map((p) => `${p.name}=${String(p.default)}${p.unit === null ? '' : ` ${p.unit}`}${p.choices === null ? '' : ` (${p.choices.join('|')})`}`)
    .join(', ');
}

export async function listCommand(argv: string[]): Promise<number> {
  const { values, help } = parseCommand(LIST_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(LIST_SPEC));
    return 0;
  }
  const inventory = loadInventory(String(values['inventory'] ?? 'devices.yaml'));
  const suites = loadSuites(String(values['suites'] ?? join(projectDir(), 'suites')));
  const shard = typeof values['shard'] === 'string' ? parseShard(values['shard']) : null;
  const devices = shard ? selectDevices(inventory, { devices: [], tags: [], shard }) : inventory.devices;
  process.stdout.write(`Devices (${inventory.file})\n`);
  // A CI log shows its runner's share of the rack.
  if (shard) process.stdout.write(`Shard ${shard.index}/${shard.count}: ${devices.length} of ${inventory.devices.length} devices\n`);
  const grouped = inventory.devices.some((d) => d.shardGroup !== null);
  process.stdout.write(
    table(
      ['name', 'transport', 'model', 'RAM', 'arch', 'tags', ...(grouped ? ['shard group'] : []), 'target'],
      devices.map((d) => [d.name, d.transport, d.model, `${d.ramMb} MB`, d.arch, d.tags.join(','), ...(grouped ? [d.shardGroup ?? ''] : []), describeTarget(d)]),
    ),
  );
  const groups = Object.entries(inventory.groups);
  if (groups.length > 0) {
    process.stdout.write('\nGroups\n');
    process.stdout.write(table(['group', 'devices'], groups.map(([g, members]) => [g, members.join(', ')])));
  }
  process.stdout.write('\nSuites\n');
  process.stdout.write(
    table(
      ['name', 'timeout', 'expectations', 'params (default)', 'description'],
      suites.map((s) => [s.name, `${Math.round(s.timeoutMs / 1000)} s`, String(s.expectations.length), paramsText(s.params), s.description.split('\n')[0] ?? '']),
    ),
  );
  return 0;
}
