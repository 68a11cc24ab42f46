/**
 * `hil run`: inventory → plan → scheduler → transports → agent → records →
 * store → reports → exit code.
 *
 * Exit codes: 0 every job met its expectation; 1 some job did not (a product
 * regression); 3 only infrastructure failed; 4 the harness itself failed;
 * 2 bad configuration or usage; 130/143 interrupted by SIGINT/SIGTERM
 * (finished results are kept). A second signal stops waiting for the clean-up
 * on the devices; run.json then says so (`interruption.remoteCleanup`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../config/diagnostics.ts';
import { knownHostsFile, projectDir } from '../host/paths.ts';
import { loadInventory } from '../inventory/load.ts';
import type { Device } from '../inventory/device.ts';
import { executeJob, type JobContext } from '../run/job.ts';
import { finalAttempts } from '../results/attempts.ts';
import { expandParams, parseShard, planJobs, type Selection } from '../run/plan.ts';
import { parseParamOptions } from '../suite/params.ts';
import { schedule } from '../run/scheduler.ts';
import type { ResultRecord } from '../results/record.ts';
import type { InterruptSignal, Interruption, RunMeta } from '../results/run-meta.ts';
import { newRunId, RunStore } from '../results/store.ts';
import { loadSuites, type Suite } from '../suite/suite.ts';
import { judge } from '../suite/expectation.ts';
import { createTransport, describeTarget } from '../transport/factory.ts';
import type { Transport } from '../transport/transport.ts';
import { DEVICE_OPTIONS, durationMs, helpText, parseCommand, positiveInt, stringList, type CommandSpec } from './args.ts';
import { DeviceAdmissions } from '../rack/admission.ts';
import { DEFAULT_LEASE_TTL_MS } from '../rack/lease.ts';
import { QuarantineBook } from '../rack/quarantine.ts';
import { needsOf } from '../suite/suite.ts';
import { createProgress } from './progress.ts';
import { renderSummary } from './summary.ts';
import { writeStepSummary } from './report.ts';
import { loadThresholdsFile, type ThresholdsFile } from '../config/thresholds.ts';
import type { RunDiff } from '../report/diff.ts';

export const RUN_SPEC: CommandSpec = {
  name: 'run',
  summary: 'Run suites on devices, one job at a time per device, and store one result record per job.',
  usage: 'hil run [options]',
  options: {
    ...DEVICE_OPTIONS,
    suite: { type: 'string', short: 's', multiple: true, arg: 'name', help: 'only these suites' },
    param: { type: 'string', short: 'p', multiple: true, arg: 'name=v1,v2', help: "run each suite that declares it once per value (repeat: every combination); see `hil list`" },
    concurrency: { type: 'string', short: 'j', arg: 'n', help: 'jobs running at once across devices (default: 4)' },
    out: { type: 'string', short: 'o', arg: 'dir', help: 'runs folder (default: reports/runs)' },
    suites: { type: 'string', arg: 'dir', help: 'suites folder (default: suites)' },
    keep: { type: 'boolean', help: 'keep the per-run workdir on each device' },
    'sample-ms': { type: 'string', arg: 'ms', help: 'memory sampling interval (default: 50)' },
    'no-report': { type: 'boolean', help: 'store results only; build reports later with `hil report`' },
    reporter: { type: 'string', arg: 'tap', help: 'also stream TAP 14 to stdout' },
    'lease-wait': { type: 'string', arg: 'duration', help: 'wait this long for a device another controller holds (default: 0, skip it)' },
    'lease-ttl': { type: 'string', arg: 'duration', help: 'a dead controller frees its devices after this long (default: 60s)' },
    baseline: { type: 'string', arg: 'run-dir', help: 'compare with this earlier run: regressions in the reports and the summary' },
    thresholds: { type: 'string', arg: 'file', help: 'regression thresholds for --baseline (YAML; see docs/regressions.md)' },
  },
};

const STATUS_EXIT = { ok: 0, unmet: 1, infra: 3, harness: 4 } as const;
/** 128 + the signal's number, as a shell reports a process killed by it. */
const EXIT_ON_SIGNAL: Record<InterruptSignal, number> = { SIGINT: 130, SIGTERM: 143 };
/** After a second signal, how long releasing the leases and closing the connections may delay the exit. */
const CLOSE_GRACE_MS = 5_000;

export async function runCommand(argv: string[]): Promise<number> {
  const { values, help } = parseCommand(RUN_SPEC, argv);
  if (help) {
    process.stdout.write(helpText(RUN_SPEC));
    return 0;
  }
  const reporter = values['reporter'];
  if (reporter !== undefined && reporter !== 'tap') throw new UsageError('--reporter', String(reporter), 'tap');
  const inventory = loadInventory(String(values['inventory'] ?? 'devices.yaml'));
  const suites = loadSuites(String(values['suites'] ?? join(projectDir(), 'suites')));
  const shardSpec = typeof values['shard'] === 'string' ? values['shard'] : null;
  const selection: Selection = {
    devices: stringList(values['device']),
    tags: stringList(values['tag']),
    suites: stringList(values['suite']),
    shard: shardSpec === null ? null : parseShard(shardSpec),
  };
  const concurrency = positiveInt('--concurrency', values['concurrency'], 4);
  const sampleIntervalMs = positiveInt('--sample-ms', values['sample-ms'], 50);
  const leaseWaitMs = durationMs('--lease-wait', values['lease-wait'], 0, true);
  const leaseTtlMs = durationMs('--lease-ttl', values['lease-ttl'], DEFAULT_LEASE_TTL_MS);
  const baseline = typeof values['baseline'] === 'string' ? values['baseline'] : null;
  if (baseline !== null && !existsSync(join(baseline, 'results.jsonl'))) throw new UsageError('--baseline', baseline, 'a run dir holding results.jsonl', 'not a run dir');
  const thresholds = typeof values['thresholds'] === 'string' ? loadThresholdsFile(values['thresholds']) : null;
  const planned = planJobs(inventory, suites, selection);
  const matrix = parseParamOptions('--param', Array.isArray(values['param']) ? values['param'] : [], [...new Set(planned.map((j) => j.suite))]);
  const jobs = expandParams(planned, matrix);
  if (jobs.length === 0) throw new UsageError('--device/--tag/--shard', argv.join(' '), 'a selection that matches at least one device', 'nothing selected');

  const runId = newRunId();
  const devices = [...new Map(jobs.map((j) => [j.device.name, j.device])).values()];
  const store = RunStore.create(resolve(String(values['out'] ?? 'reports/runs')), {
    runId,
    startedAt: new Date().toISOString(),
    endedAt: null,
    harnessVersion: harnessVersion(),
    gitSha: gitSha(),
    selection: { ...selection, shard: shardSpec, concurrency, params: matrix },
    inventory: { file: inventory.file, devices: inventory.devices.map((d) => ({ name: d.name, transport: d.transport, model: d.model, ramMb: d.ramMb, arch: d.arch, tags: d.tags, target: describeTarget(d) })) },
    jobs: jobs.map((j) => j.id),
    exitCode: null,
    interrupted: null,
    ...suiteThresholds(jobs.map((j) => j.suite)),
  });
  process.stderr.write(`hil run ${runId}: ${jobs.length} job(s) on ${devices.length} device(s) → ${store.dir}\n`);

  const progress = createProgress(devices.map((d) => d.name), process.stderr, { totalJobs: jobs.length });
  const controller = new AbortController();
  let interrupted: InterruptSignal | null = null;
  const signals: InterruptSignal[] = [];
  let abandoned = false;
  /** Jobs started and not yet recorded: what an abandoned clean-up leaves without a record. */
  const running = new Set<string>();
  const transports = new Map<string, Transport>();
  let finished = false;
  const finishRun = (exitCode: number, remoteCleanup: Interruption['remoteCleanup']): void => {
    if (finished) return;
    finished = true;
    const end: Pick<RunMeta, 'endedAt' | 'exitCode' | 'interrupted' | 'interruption'> = { endedAt: new Date().toISOString(), exitCode, interrupted };
    if (interrupted !== null) end.interruption = { signals: [...signals], remoteCleanup, unfinishedJobs: [...running] };
    store.finish(end);
  };
  const onSignal = (sig: InterruptSignal): void => {
    signals.push(sig);
    if (abandoned) return; // already on the way out
    if (interrupted !== null) {
      // A second interrupt: stop waiting for the clean-up on the devices. run.json is
      // written first, so it tells how the run ended even if closing the connections hangs.
      abandoned = true;
      const code = EXIT_ON_SIGNAL[interrupted];
      progress.stop();
      process.stderr.write(
        `\nhil: second ${sig}: abandoning the clean-up on the devices; ${running.size} running job(s) left without a record (${[...running].join(', ') || 'none'}); closing connections and exiting ${code}\n`,
      );
      finishRun(code, 'abandoned');
      // The leases go back (else the devices stay held for a lease's ttl) and the connections
      // close, in that order as after a normal end; neither may hold the exit beyond the grace.
      const letGo = async (): Promise<void> => {
        await admissions.releaseAll().catch(() => undefined);
        await Promise.allSettled([...transports.values()].map((t) => t.close()));
      };
      const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS));
      void Promise.race([letGo(), grace]).finally(() => process.exit(code));
      return;
    }
    interrupted = sig;
    process.stderr.write(`\nhil: ${sig}: starting no new jobs, stopping running ones, keeping finished results; a second ${sig} stops waiting for the devices\n`);
    controller.abort(new Error(`${sig} received`));
  };
  const sigint = (): void => onSignal('SIGINT');
  const sigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);

  const acceptNew = values['accept-new'] === true;
  const jobsPerDevice = new Map<string, number>();
  for (const j of jobs) jobsPerDevice.set(j.device.name, (jobsPerDevice.get(j.device.name) ?? 0) + 1);
  const admissions = new DeviceAdmissions({
    runId,
    leaseTtlMs,
    leaseWaitMs,
    needsFor: (device) => needsOf(jobs.filter((j) => j.device.name === device.name).map((j) => j.suite)),
    jobsPerDevice,
    log: (device, message) => progress.observe({ kind: 'notice', device, message }),
    quarantine: new QuarantineBook(),
  });
  const jobContext: JobContext = {
    runId,
    transportFor: (device: Device) => {
      const existing = transports.get(device.name);
      if (existing) return existing;
      const created = createTransport(device, { acceptNew, knownHostsFile: knownHostsFile() });
      transports.set(device.name, created);
      return created;
    },
    judge: (suiteName, r) => judge(suites.find((s) => s.name === suiteName)!, r),
    admit: (device, transport, signal) => admissions.admit(device, transport, signal),
    keep: values['keep'] === true,
    sampleIntervalMs,
    observe: (e) => progress.observe(e),
  };
  const records: ResultRecord[] = [];
  let crashes: { jobId: string; error: unknown }[] = [];
  try {
    ({ crashed: crashes } = await schedule(
      jobs,
      async (job, signal) => {
        running.add(job.id);
        /** Appended and flushed the moment the job ends: a crash after this loses nothing. False once run.json is final. */
        const keep = (record: ResultRecord): boolean => {
          // After an abandoned clean-up run.json is final and lists this job as unfinished.
          if (abandoned) return false;
          store.append(record);
          records.push(record);
          return true;
        };
        try {
          const first = await executeJob(job, signal, jobContext);
          if (!keep(first.record) || !first.deviceInDoubt || signal.aborted) return first.record;
          const health = await admissions.recover(job.device, jobContext.transportFor(job.device), signal);
          // A product outcome is never retried; an infra_error is, once, on a device that answers again.
          if (first.record.outcome !== 'infra_error' || health === 'down' || signal.aborted) return first.record;
          const { outcome, reason } = first.record;
          progress.observe({ kind: 'notice', device: job.device.name, message: `retrying ${job.id} once after ${outcome}: ${reason}` });
          const second = await executeJob(job, signal, jobContext, { n: 2, previous: { outcome, reason } });
          keep(second.record);
          if (second.deviceInDoubt && !signal.aborted) await admissions.recover(job.device, jobContext.transportFor(job.device), signal);
          return second.record;
        } finally {
          running.delete(job.id);
          await admissions.jobEnded(job.device.name);
        }
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
    // Leases go back before the connections close: a lease on a Pi is released over its connection.
    await admissions.releaseAll();
    await Promise.allSettled([...transports.values()].map((t) => t.close()));
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }

  // The second signal's handler has written run.json and owns the exit.
  if (abandoned) return new Promise<number>(() => undefined);
  const final = finalAttempts(records);
  const code = crashes.length > 0 ? STATUS_EXIT.harness : interrupted !== null ? EXIT_ON_SIGNAL[interrupted] : exitCodeFor(final);
  finishRun(code, 'waited');
  const retried = records.length - final.length;
  process.stderr.write(`hil run ${runId}: ${final.length}/${jobs.length} job(s)${retried ? ` (${retried} retried)` : ''} recorded in ${join(store.dir, 'results.jsonl')}\n`);
  const reported = await buildReports(store.dir, { tap: reporter === 'tap', write: values['no-report'] !== true, baseline, thresholds });
  process.stderr.write(
    renderSummary({ title: `hil run ${runId}`, records: final, planned: jobs.length, diff: reported.diff, exitCode: code, compareHtml: reported.compareHtml }),
  );
  return code;
}

/**
 * Reports are rebuilt from the stored records; a report failure never loses
 * results. Without `write`, only the comparison with the baseline is made, for the summary.
 */
async function buildReports(
  runDir: string,
  o: { tap: boolean; write: boolean; baseline: string | null; thresholds: ThresholdsFile | null },
): Promise<{ compareHtml: string | null; diff: RunDiff | null }> {
  try {
    const { writeReports, renderTap, loadReportInput } = await import('../report/index.ts');
    if (!o.write) return { compareHtml: null, diff: o.baseline ? loadReportInput(runDir, o.baseline, o.thresholds).diff : null };
    const summary = await writeReports(runDir, { ...(o.baseline ? { baseline: o.baseline } : {}), thresholds: o.thresholds });
    for (const warning of summary.warnings) process.stderr.write(`hil report: ${warning}\n`);
    if (o.tap) {
      const { readResults } = await import('../results/read.ts');
      process.stdout.write(renderTap(readResults(runDir)));
    }
    if (summary.diff) writeStepSummary(summary.runId, summary.diff);
    return { compareHtml: summary.paths.compareHtml, diff: summary.diff };
  } catch (err) {
    process.stderr.write(`hil report: failed (${(err as Error).message}); results are safe, rebuild with \`hil report ${runDir}\`\n`);
    return { compareHtml: null, diff: null };
  }
}

export function exitCodeFor(records: readonly ResultRecord[]): number {
  if (records.some((r) => r.expectation?.verdict === 'unmet' || (r.expectation === null && r.outcome !== 'passed' && r.outcome !== 'infra_error'))) return STATUS_EXIT.unmet;
  if (records.some((r) => r.outcome === 'infra_error')) return STATUS_EXIT.infra;
  return STATUS_EXIT.ok;
}

/** The suites' own `thresholds:` blocks, kept in run.json so a report against a baseline holds each suite to its own. */
function suiteThresholds(suites: readonly Suite[]): Pick<RunMeta, 'thresholds'> {
  const blocks = Object.fromEntries(suites.filter((s) => Object.keys(s.thresholds).length > 0).map((s) => [s.name, s.thresholds]));
  return Object.keys(blocks).length ? { thresholds: blocks } : {};
}

export function harnessVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectDir(), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

export function gitSha(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: projectDir(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}
