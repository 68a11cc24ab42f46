/**
 * Shards that stay put: `--shard i/n` splits devices by rendezvous hashing on
 * their shard key, so a device keeps its shard as the inventory grows, a
 * `shard_group:` lands on one shard, and `hil list --shard` shows the split.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../harness/config/diagnostics.ts';
import { parseInventory } from '../harness/inventory/load.ts';
import { parseShard, selectDevices, shardOf } from '../harness/run/plan.ts';
import type { Inventory } from '../harness/inventory/device.ts';
import { hil, TEST_SUITES } from './helpers/hil.ts';

function inventoryText(names: string[], groups: Record<string, string> = {}): string {
  const rows = names.map((n) => `  - { name: ${n}${groups[n] ? `, shard_group: ${groups[n]}` : ''} }`);
  return `defaults: { transport: local, ram_mb: 512, arch: amd64 }\ndevices:\n${rows.join('\n')}\n`;
}

const NAMES = Array.from({ length: 20 }, (_, i) => `pi-${String(i + 1).padStart(2, '0')}`);

/** Device name → shard, taken through selectDevices the way `hil run --shard` takes it. */
function split(inv: Inventory, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 1; i <= n; i++) {
    for (const d of selectDevices(inv, { devices: [], tags: [], shard: parseShard(`${i}/${n}`) })) {
      if (out.has(d.name)) throw new Error(`${d.name} is on shard ${out.get(d.name)} and shard ${i}`);
      out.set(d.name, i);
    }
  }
  return out;
}

t.test('adding a device to 20 moves at most ceil(20/n)+1 devices, for n = 2..8', async (t) => {
  const before = parseInventory('devices.yaml', inventoryText(NAMES), {});
  const after = parseInventory('devices.yaml', inventoryText([...NAMES, 'pi-21']), {});
  for (const n of [2, 3, 4, 5, 8]) {
    const a = split(before, n);
    const b = split(after, n);
    t.equal(a.size, 20, `n=${n}: every device on exactly one shard`);
    t.equal(b.size, 21, `n=${n}: every device on exactly one shard after the addition`);
    const moved = NAMES.filter((name) => a.get(name) !== b.get(name));
    // Rendezvous hashing moves none of the old devices; the bound is the issue's.
    t.ok(moved.length + 1 <= Math.ceil(20 / n) + 1, `n=${n}: ${moved.length} old device(s) moved plus the new one`);
    t.same(moved, [], `n=${n}: no old device changed shard`);
    t.ok(new Set(a.values()).size > 1, `n=${n}: the devices spread over more than one shard`);
  }
  // The index-based split this replaced would have moved most devices on an insertion at the front.
  const front = parseInventory('devices.yaml', inventoryText(['pi-00', ...NAMES]), {});
  const a = split(before, 4);
  const f = split(front, 4);
  t.same(NAMES.filter((name) => a.get(name) !== f.get(name)), [], 'inventory order plays no part');
});

t.test('removing a device moves nobody else', async (t) => {
  const full = split(parseInventory('devices.yaml', inventoryText(NAMES), {}), 4);
  const less = split(parseInventory('devices.yaml', inventoryText(NAMES.filter((n) => n !== 'pi-07')), {}), 4);
  for (const [name, shard] of less) t.equal(shard, full.get(name), name);
});

t.test('a shard_group lands on one shard, for every n', async (t) => {
  const groups: Record<string, string> = { 'pi-01': 'strip-a', 'pi-05': 'strip-a', 'pi-09': 'strip-a', 'pi-13': 'strip-a', 'pi-02': 'poe-b', 'pi-20': 'poe-b' };
  const inv = parseInventory('devices.yaml', inventoryText(NAMES, groups), {});
  t.equal(inv.devices.find((d) => d.name === 'pi-05')?.shardGroup, 'strip-a');
  t.equal(inv.devices.find((d) => d.name === 'pi-03')?.shardGroup, null);
  for (const n of [2, 3, 4, 6, 10]) {
    const s = split(inv, n);
    t.equal(s.size, 20);
    t.equal(new Set(['pi-01', 'pi-05', 'pi-09', 'pi-13'].map((d) => s.get(d))).size, 1, `n=${n}: strip-a together`);
    t.equal(new Set(['pi-02', 'pi-20'].map((d) => s.get(d))).size, 1, `n=${n}: poe-b together`);
  }
  t.equal(shardOf({ name: 'x', shardGroup: 'strip-a' }, 4), shardOf({ name: 'y', shardGroup: 'strip-a' }, 4));
  t.equal(shardOf({ name: 'anything', shardGroup: null }, 1), 1, 'one shard takes all');
});

t.test('a bad shard_group is a positioned error naming the value and what is allowed', async (t) => {
  const text = `defaults: { transport: local, ram_mb: 512, arch: amd64 }\ndevices:\n  - { name: a, shard_group: "two words" }\n  - { name: b, shard_group: [x] }\n`;
  const err = t.throws(() => parseInventory('devices.yaml', text, {})) as unknown as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.message, /devices\.yaml:3:\d+[\s\S]*"two words"[\s\S]*letters, digits/);
  t.match(err.message, /devices\.yaml:4:\d+[\s\S]*\["x"\]/);
});

t.test('hil list --shard i/n prints the devices that shard gets', async (t) => {
  const file = join(t.testdir(), 'devices.yaml');
  writeFileSync(file, inventoryText(NAMES, { 'pi-01': 'strip-a', 'pi-05': 'strip-a' }));
  const inv = parseInventory(file, inventoryText(NAMES, { 'pi-01': 'strip-a', 'pi-05': 'strip-a' }), {});
  const want = split(inv, 3);
  const seen: string[] = [];
  for (const i of [1, 2, 3]) {
    const r = await hil(['list', '-i', file, '--suites', TEST_SUITES, '--shard', `${i}/3`]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`Shard ${i}/3: (\\d+) of 20 devices`));
    const listed = NAMES.filter((n) => new RegExp(`^${n}\\s`, 'm').test(r.stdout));
    t.same(listed, NAMES.filter((n) => want.get(n) === i), `shard ${i}`);
    seen.push(...listed);
  }
  t.same([...seen].sort(), NAMES, 'the three lists together are the inventory, each device once');
  const bad = await hil(['list', '-i', file, '--suites', TEST_SUITES, '--shard', '4/3']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--shard[\s\S]*"4\/3"/);
});
