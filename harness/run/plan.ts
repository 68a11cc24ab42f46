/**
 * Inventory × suites → the list of jobs to run, after --device, --tag,
 * --suite and --shard. One job is one suite on one device.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../config/diagnostics.ts';
import type { Device, Inventory } from '../inventory/device.ts';
import { jobIdOf, type EnvelopeTag, type ParamValue } from '../results/record.ts';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export interface Selection {
  devices: string[];
  tags: string[];
  suites: string[];
  shard: Shard | null;
}

export interface Job<S extends { name: string }> {
  /** `<suite>.<device>` (with its params, see jobIdOf), the same identity the reports use across runs. */
  id: string;
  device: Device;
  suite: S;
  /** Suite parameters given to this job (expandParams); absent: every one at its default. */
  params?: Record<string, ParamValue>;
  /** Set when the job is a probe of a capacity search (`hil envelope`). */
  envelope?: EnvelopeTag;
}

/** "i/n" with 1 ≤ i ≤ n. */
export function parseShard(spec: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new UsageError('--shard', spec, '"i/n" with 1 <= i <= n, e.g. --shard 2/4');
  }
  return { index, count };
}

/** Devices picked by --device and --tag (tags match device tags or inventory group names). */
export function selectDevices(inventory: Inventory, selection: Pick<Selection, 'devices' | 'tags' | 'shard'>): Device[] {
  const names = inventory.devices.map((d) => d.name);
  for (const wanted of selection.devices) {
    if (!names.includes(wanted)) throw new UsageError('--device', wanted, names.join(', '), `no device named ${wanted} in ${inventory.file}`);
  }
  const knownTags = new Set([...inventory.devices.flatMap((d) => d.tags), ...Object.keys(inventory.groups)]);
  for (const tag of selection.tags) {
    if (!knownTags.has(tag)) throw new UsageError('--tag', tag, [...knownTags].sort().join(', ') || '(the inventory has no tags or groups)', `no device or group has tag ${tag}`);
  }
  let devices = inventory.devices.filter(
    (d) =>
      (selection.devices.length === 0 || selection.devices.includes(d.name)) &&
      (selection.tags.length === 0 || selection.tags.some((tag) => d.tags.includes(tag) || (inventory.groups[tag] ?? []).includes(d.name))),
  );
  // Shards split devices, not jobs: two CI machines must never drive the same device at once.
  const shard = selection.shard;
  if (shard) devices = devices.filter((d) => shardOf(d, shard.count) === shard.index);
  return devices;
}

/** What a device is sharded by: its `shard_group:`, so a group stays together, else its name. */
export function shardKey(device: Pick<Device, 'name' | 'shardGroup'>): string {
  return device.shardGroup ?? device.name;
}

/**
 * The shard (1-based) a device belongs to out of `count`, by rendezvous
 * (highest-random-weight) hashing on its shard key: each shard scores the key
 * and the highest score wins. Adding or removing a device moves only that
 * device, and the answer depends on nothing but the key and `count`, so every
 * CI runner computes the same split without talking to the others, and a
 * device keeps its runner (its leases, its warm VM state) night after night.
 */
export function shardOf(device: Pick<Device, 'name' | 'shardGroup'>, count: number): number {
  const key = shardKey(device);
  let best = 1;
  let bestWeight = -1n;
  for (let i = 1; i <= count; i++) {
    const weight = createHash('sha256').update(`${key}:${i}`).digest().readBigUInt64BE(0);
    if (weight > bestWeight) [best, bestWeight] = [i, weight];
  }
  return best;
}

export function planJobs<S extends { name: string }>(inventory: Inventory, suites: readonly S[], selection: Selection): Job<S>[] {
  const suiteNames = suites.map((s) => s.name);
  for (const wanted of selection.suites) {
    if (!suiteNames.includes(wanted)) throw new UsageError('--suite', wanted, suiteNames.join(', '), `no suite named ${wanted}`);
  }
  // Suites run in the order --suite names them, else in the suites' own order.
  const chosenSuites = selection.suites.length === 0 ? [...suites] : selection.suites.map((name) => suites.find((s) => s.name === name)!);
  const jobs: Job<S>[] = [];
  for (const device of selectDevices(inventory, selection)) {
    for (const suite of chosenSuites) jobs.push({ id: `${suite.name}.${device.name}`, device, suite });
  }
  return jobs;
}

/**
 * The matrix of `--param`: each job becomes one job per combination of the
 * values given for the parameters its suite declares (in the order given,
 * first parameter slowest). A suite that declares none of them keeps its one
 * job at its defaults. Device and suite order, and so sharding, are untouched.
 */
export function expandParams<S extends { name: string; params: Record<string, unknown> }>(
  jobs: readonly Job<S>[],
  matrix: Readonly<Record<string, readonly ParamValue[]>>,
): Job<S>[] {
  return jobs.flatMap((job) => {
    let combos: Record<string, ParamValue>[] = [{ ...(job.params ?? {}) }];
    for (const [name, values] of Object.entries(matrix)) {
      if (!(name in job.suite.params)) continue;
      combos = combos.flatMap((c) => values.map((v) => ({ ...c, [name]: v })));
    }
    return combos.map((params) => ({ ...job, id: jobIdOf(job.suite.name, job.device.name, params), params }));
  });
}
