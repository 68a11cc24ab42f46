/**
 * `hil envelope`: on every selected device at once (one job at a time on
 * each), the largest value of one suite parameter that still ends `passed`,
 * found by the search in harness/envelope/search.ts. Every probe is an
 * ordinary job of the same machinery as `hil run` (lease, health gate,
 * recovery, the agent, outcome.ts) and an ordinary result record, with
 * `params` and `envelope: {search, step}`, in the run's results.jsonl, so
 * `hil report` shows the whole search and its Capacity section.
 *
 * Exit codes: 0 every device's search ended (bounded, or all-pass/all-fail
 * within the range); 1 a search stopped on an unexpected outcome; 3 a device
 * could not be measured (infra_error twice); 4 harness error; 2 usage;
 * 130/143 interrupted (finished records are kept).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../config/diagnostics.ts';
import { knownHostsFile, projectDir } from '../host/paths.ts';
import { loadInventory } from '../inventory/load.ts';
import type { Device } from '../inventory/device.ts';
import { executeJob, type JobContext } from '../run/job.ts';
import { selectDevices, type Job } from '../run/plan.ts';
import { schedule } from '../run/scheduler.ts';
import { jobIdOf, type Attempt, type Outcome, type ParamValue, type ResultRecord } from '../results/record.ts';
import type { InterruptSignal } from '../results/run-meta.ts';
import { newRunId, RunStore } from '../results/store.ts';
import { loadSuite, needsOf, type Suite } from '../suite/suite.ts';
import { parseParamOptions, parseValue, allowedText } from '../suite/params.ts';
import { judge } from '../suite/expectation.ts';
import { createTransport, describeTarget } from '../transport/factory.ts';
import type { Transport } from '../transport/transport.ts';
import { DEVICE_OPTIONS, durationMs, helpText, parseCommand, positiveInt, stringList, type CommandSpec } from './args.ts';
import { DeviceAdmissions } from '../rack/admission.ts';
import { DEFAULT_LEASE_TTL_MS } from '../rack/lease.ts';
import { QuarantineBook } from '../rack/quarantine.ts';
import { createProgress } from './progress.ts';
import { jobBound, runSearch, specProblems, summarize, type EnvelopeResult, type Observation, type SearchSpec } from '../envelope/search.ts';
import { formatMb, formatMs } from '../report/format.ts';

export const ENVELOPE_SPEC: CommandSpec = {
  name: 'envelope',
  summary: 'Find, on each device, the largest value of a suite parameter that still passes.',
  usage: 'hil envelope --suite <name> --param <name> --from <n> --to <n> [options]',
  options: {
    ...DEVICE_OPTIONS,
    suite: { type: 'string', short: 's', arg: 'name', help: 'the suite to run (required)' },
    param: { type: 'string', short: 'p', arg: 'name', help: 'the integer or number parameter to search (required)' },
    from: { type: 'string', arg: 'n', help: 'the smallest value tried (required; above 0)' },
    to: { type: 'string', arg: 'n', help: 'the largest value tried (required)' },
    fix: { type: 'string', multiple: true, arg: 'name=value', help: "hold another parameter at this value (default: the suite's default)" },
    resolution: { type: 'string', arg: 'ratio', help: 'stop when first failure / last pass is at most this (default: 1.25)' },
    factor: { type: 'string', arg: 'ratio', help: 'each step up multiplies by this until the first failure (default: 10)' },
    concurrency: { type: 'string', short: 'j', arg: 'n', help: 'devices searched at once (default: all of them)' },
    out: { type: 'string', short: 'o', arg: 'dir', help: 'runs folder (default: reports/runs)' },
    suites: { type: 'string', arg: 'dir', help: 'suites folder (default: suites)' },
    keep: { type: 'boolean', help: 'keep the per-run workdir on each device' },
    'sample-ms': { type: 'string', arg: 'ms', help: 'memory sampling interval (default: 50)' },
    'no-report': { type: 'boolean', help: 'store results only; build reports later with `hil report`' },
    'lease-wait': { type: 'string', arg: 'duration', help: 'wait this long for a device another controller holds (default: 0, skip it)' },
    'lease-ttl': { type: 'string', arg: 'duration', help: 'a dead controller frees its devices after this long (default: 60s)' },
  },
};

const EXIT_ON_SIGNAL: Record<InterruptSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/** One device's search as it ended, with the records behind its answer. */
export interface DeviceEnvelope {
  device: string;
  result: EnvelopeResult;
  pass: ResultRecord | null;
  fail: ResultRecord | null;
  stopped: ResultRecord | null;
}

function number(option: string, value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new UsageError(option, String(value ?? ''), 'a number', value === undefined ? `${option} is required` : 'not a number');
  return n;
}

export async function envelopeCommand(argv: string[]): Promise<number> {
  const { values, help } = parseCommand(ENVELOPE_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(ENVELOPE_SPEC));
    return 0;
  }
  if (typeof values['suite'] !== 'string') throw new UsageError('--suite', '', 'a suite name', '--suite is required');
  const suite = loadSuite(values['suite'], String(values['suites'] ?? join(projectDir(), 'suites')));
  const name = typeof values['param'] === 'string' ? values['param'] : '';
  const numeric = Object.values(suite.params).filter((p) => p.type !== 'string');
  const decl = suite.params[name];
  if (!decl || decl.type === 'string') {
    throw new UsageError('--param', name, numeric.map((p) => p.name).join(', ') || `(${suite.name} declares no numeric parameter)`, `${suite.name} has no integer or number parameter ${JSON.stringify(name)}`);
  }
  const spec: SearchSpec = {
    from: number('--from', values['from']),
    to: number('--to', values['to']),
    integer: decl.type === 'integer',
    factor: values['factor'] === undefined ? 10 : number('--factor', values['factor']),
    resolution: values['resolution'] === undefined ? 1.25 : number('--resolution', values['resolution']),
  };
  const problems = specProblems(spec);
  if (problems.length) throw new UsageError('--from/--to/--factor/--resolution', argv.join(' '), 'from > 0, to > from, factor > 1, resolution > 1', problems.join('; '));
  for (const [option, v] of [['--from', spec.from], ['--to', spec.to]] as const) {
    if ('problem' in parseValue(decl, String(v))) throw new UsageError(option, String(v), allowedText(decl), `${suite.name}'s ${name}: outside what it allows`);
  }
  const fixed: Record<string, ParamValue> = {};
  for (const [k, vs] of Object.entries(parseParamOptions('--fix', Array.isArray(values['fix']) ? values['fix'] : [], [suite]))) {
    if (k === name) throw new UsageError('--fix', `${k}=${vs.join(',')}`, 'a parameter other than the one searched', `${k} is the parameter searched`);
    if (vs.length !== 1) throw new UsageError('--fix', `${k}=${vs.join(',')}`, 'one value', `--fix holds ${k} at one value`);
    fixed[k] = vs[0]!;
  }

  const inventory = loadInventory(String(values['inventory'] ?? 'devices.yaml'));
  const devices = selectDevices(inventory, { devices: stringList(values['device']), tags: stringList(values['tag']), shard: null });
  if (devices.length === 0) throw new UsageError('--device/--tag', argv.join(' '), 'a selection that matches at least one device', 'nothing selected');
  const concurrency = positiveInt('--concurrency', values['concurrency'], devices.length);
  const sampleIntervalMs = positiveInt('--sample-ms', values['sample-ms'], 50);
  const leaseWaitMs = durationMs('--lease-wait', values['lease-wait'], 0, true);
  const leaseTtlMs = durationMs('--lease-ttl', values['lease-ttl'], DEFAULT_LEASE_TTL_MS);

  const runId = newRunId();
  const store = RunStore.create(resolve(String(values['out'] ?? 'reports/runs')), {
    runId,
    startedAt: new Date().toISOString(),
    endedAt: null,
    harnessVersion: harnessVersion(),
    gitSha: gitSha(),
    selection: {
      devices: devices.map((d) => d.name),
      tags: stringList(values['tag']),
      suites: [suite.name],
      shard: null,
      concurrency,
      params: Object.fromEntries(Object.entries(fixed).map(([k, v]) => [k, [v]])),
      envelope: { param: name, from: spec.from, to: spec.to, factor: spec.factor, resolution: spec.resolution },
    },
    inventory: { file: inventory.file, devices: inventory.devices.map((d) => ({ name: d.name, transport: d.transport, model: d.model, ramMb: d.ramMb, arch: d.arch, tags: d.tags, target: describeTarget(d) })) },
    // A search decides its jobs as it goes: none are planned ahead.
    jobs: [],
    exitCode: null,
    interrupted: null,
  });
  const bound = jobBound(spec);
  process.stderr.write(
    `hil envelope ${runId}: ${suite.name} ${name} from ${spec.from} to ${spec.to} (×${spec.factor}, down to ${spec.resolution}) on ${devices.length} device(s), at most ${bound} jobs each plus retries → ${store.dir}\n`,
  );

  const progress = createProgress(devices.map((d) => d.name));
  const controller = new AbortController();
  let interrupted: InterruptSignal | null = null;
  const onSignal = (sig: InterruptSignal): void => {
    if (interrupted !== null) process.exit(EXIT_ON_SIGNAL[interrupted]);
    interrupted = sig;
    process.stderr.write(`\nhil: ${sig}: starting no new probe, stopping running ones, keeping finished results; a second ${sig} exits at once\n`);
    controller.abort(new Error(`${sig} received`));
  };
  const sigint = (): void => onSignal('SIGINT');
  const sigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);

  const transports = new Map<string, Transport>();
  const admissions = new DeviceAdmissions({
    runId,
    leaseTtlMs,
    leaseWaitMs,
    needsFor: () => needsOf([suite]),
    // The number of probes is not known ahead: the leases go back at the end (releaseAll).
    jobsPerDevice: new Map(devices.map((d) => [d.name, Number.MAX_SAFE_INTEGER])),
    log: (device, message) => progress.observe({ kind: 'notice', device, message }),
    quarantine: new QuarantineBook(),
  });
  const ctx: JobContext = {
    runId,
    transportFor: (device: Device) => {
      let t = transports.get(device.name);
      if (!t) transports.set(device.name, (t = createTransport(device, { acceptNew: values['accept-new'] === true, knownHostsFile: knownHostsFile() })));
      return t;
    },
    judge: (_suite, r) => judge(suite, r),
    admit: (device, transport, signal) => admissions.admit(device, transport, signal),
    keep: values['keep'] === true,
    sampleIntervalMs,
    observe: (e) => progress.observe(e),
  };

  const found: DeviceEnvelope[] = [];
  let crashes: { jobId: string; error: unknown }[] = [];
  try {
    ({ crashed: crashes } = await schedule(
      devices.map((device) => ({ id: `envelope.${device.name}`, device })),
      async ({ device }, signal) => {
        const records = new Map<number, ResultRecord>();
        const seen: Observation[] = [];
        let previous: ResultRecord | null = null;
        const probe = async (value: number, step: number, retry: boolean): Promise<Outcome> => {
          const params = { ...fixed, [name]: value };
          const job: Job<Suite> = { id: jobIdOf(suite.name, device.name, params), device, suite, params, envelope: { search: name, step } };
          const attempt: Attempt = retry && previous ? { n: 2, previous: { outcome: previous.outcome, reason: previous.reason } } : { n: 1, previous: null };
          const { record, deviceInDoubt } = await executeJob(job, signal, ctx, attempt);
          store.append(record);
          records.set(value, record);
          previous = record;
          seen.push({ value, outcome: record.outcome });
          if (deviceInDoubt && !signal.aborted) await admissions.recover(device, ctx.transportFor(device), signal);
          return record.outcome;
        };
        let result: EnvelopeResult;
        try {
          ({ result } = await runSearch(spec, async (value, step, retry) => {
            if (signal.aborted) throw new Interrupted();
            return probe(value, step, retry);
          }));
        } catch (err) {
          if (!(err instanceof Interrupted)) throw err;
          // An interrupt ends the search where it is: what the probes so far say.
          result = summarize(seen);
        }
        const at = (v: number | null) => (v === null ? null : (records.get(v) ?? null));
        const envelope: DeviceEnvelope = { device: device.name, result, pass: at(result.largestPass), fail: at(result.smallestFail), stopped: at(result.stoppedAt?.value ?? null) };
        found.push(envelope);
        progress.observe({ kind: 'notice', device: device.name, message: describeEnvelope(envelope, name) });
        return envelope;
      },
      {
        concurrency,
        signal: controller.signal,
        onCrash: (jobId, error) => {
          process.stderr.write(`hil: harness error in ${jobId}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
          controller.abort(new Error(`harness error in ${jobId}`));
        },
      },
    ));
  } finally {
    progress.stop();
    await admissions.releaseAll();
    await Promise.allSettled([...transports.values()].map((t) => t.close()));
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }

  found.sort((a, b) => devices.findIndex((d) => d.name === a.device) - devices.findIndex((d) => d.name === b.device));
  process.stdout.write(envelopeTable(suite.name, name, found, fixed, bound));
  const code =
    crashes.length > 0 ? 4
    : interrupted !== null ? EXIT_ON_SIGNAL[interrupted]
    : found.some((f) => f.result.status === 'stopped') ? 1
    : found.some((f) => f.result.status === 'infra') ? 3
    : 0;
  store.finish({ endedAt: new Date().toISOString(), exitCode: code, interrupted });
  process.stderr.write(`hil envelope ${runId}: ${store.recordCount} probe record(s) in ${join(store.dir, 'results.jsonl')}\n`);
  if (values['no-report'] !== true) {
    try {
      const { writeReports } = await import('../report/index.ts');
      const summary = await writeReports(store.dir, {});
      for (const w of summary.warnings) process.stderr.write(`hil report: ${w}\n`);
      process.stderr.write(`hil report: ${join(store.dir, 'compare.html')}\n`);
    } catch (err) {
      process.stderr.write(`hil report: failed (${(err as Error).message}); results are safe, rebuild with \`hil report ${store.dir}\`\n`);
    }
  }
  return code;
}

function peakOf(r: ResultRecord | null): string {
  return r?.memory.peakRssKb == null ? 'no peak' : `peak ${formatMb(r.memory.peakRssKb)}`;
}

/** One line per device, for the log. */
export function describeEnvelope(e: DeviceEnvelope, param: string): string {
  const r = e.result;
  const pass = r.largestPass === null ? 'nothing passed' : `${param}=${r.largestPass} passed (${peakOf(e.pass)}, ${formatMs(e.pass?.timing.wallMs ?? 0)})`;
  const fail = r.smallestFail === null ? 'nothing failed' : `${param}=${r.smallestFail} ${r.failOutcome}`;
  const stop = r.stoppedAt ? `; stopped at ${param}=${r.stoppedAt.value}: ${r.stoppedAt.outcome}${e.stopped ? ` (${e.stopped.reason})` : ''}` : '';
  return `envelope ${r.status}: ${pass}; ${fail}${stop}; ${r.jobs} job(s)`;
}

/** The answer on stdout: one row per device. */
export function envelopeTable(suite: string, param: string, found: readonly DeviceEnvelope[], fixed: Record<string, ParamValue>, bound: number): string {
  const fixedText = Object.entries(fixed).map(([k, v]) => `${k}=${v}`).join(' ');
  const head = `${suite}: largest ${param} that passes${fixedText ? ` (with ${fixedText})` : ''}`;
  const rows = found.map((e) => {
    const r = e.result;
    // The record's one-sentence reason; the evidence itself is in the record and the reports.
    const evidence = e.fail?.reason ?? e.stopped?.reason ?? '';
    return [
      e.device,
      r.largestPass === null ? '—' : String(r.largestPass),
      e.pass ? `${peakOf(e.pass).replace('peak ', '')} · ${formatMs(e.pass.timing.wallMs)}` : '—',
      r.smallestFail === null ? (r.stoppedAt ? `${r.stoppedAt.value} (${r.stoppedAt.outcome})` : '—') : `${r.smallestFail} (${r.failOutcome})`,
      `${r.jobs}/${bound}`,
      r.status,
      evidence.replace(/\s+/g, ' ').slice(0, 90),
    ];
  });
  const header = ['device', `largest pass`, 'its peak · time', 'smallest failure', 'jobs/bound', 'status', 'why it failed'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${head}\n${line(header)}\n${rows.map(line).join('\n')}\n`;
}

class Interrupted extends Error {}

function harnessVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectDir(), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

function gitSha(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: projectDir(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}
