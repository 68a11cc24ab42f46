/**
 * One job's life: get the device's session, run the suite through the agent,
 * let harness/run/outcome.ts decide how it ended, and write exactly one
 * result record. This function never throws: a dead device becomes an
 * infra_error record, so the scheduler's other devices carry on.
 */
import { runOnDevice, type AgentRun, type HarnessStage } from '../agent/client.ts';
import { snapshotDevice, type Device } from '../inventory/device.ts';
import { RECORD_SCHEMA, type Attempt, type DeviceFacts, type ExpectationCheck, type ResultRecord } from '../results/record.ts';
import type { Transport } from '../transport/transport.ts';
import type { Admission, DeviceRefusal } from '../rack/admission.ts';
import { timingTrust } from '../rack/throttle.ts';
import type { RunObserver } from './events.ts';
import { decideOutcome, type ControllerAbort, type OutcomeEnding } from './outcome.ts';
import type { Job } from './plan.ts';
import { probeScript } from '../suite/probe.ts';
import { paramEnv } from '../suite/params.ts';
import type { Suite } from '../suite/suite.ts';

export interface JobContext {
  runId: string;
  /** The device's one session, shared by its jobs (connected on first use). */
  transportFor(device: Device): Transport;
  judge(suiteName: string, record: ResultRecord): ExpectationCheck | null;
  /** Lease, reach and health-check the device before its first job (decided once per device). */
  admit(device: Device, transport: Transport, signal: AbortSignal): Promise<Admission>;
  keep: boolean;
  sampleIntervalMs: number;
  observe: RunObserver;
}

/** Slack beyond the agent's own deadline before the controller gives up on a silent device. */
const BACKSTOP_SLACK_MS = 30_000;

export interface JobResult {
  record: ResultRecord;
  /**
   * The job ended in a way that leaves its device in doubt: the harness lost
   * it, or it was OOM-killed or timed out. Whether the device still answers is
   * checked (and a hung one recovered) before its next job.
   */
  deviceInDoubt: boolean;
}

const FIRST_ATTEMPT: Attempt = { n: 1, previous: null };

/**
 * Each device's facts from its first job of the run, keyed by its session
 * (one per device and run): later jobs ask the agent only for the facts that
 * change, which saves the facts' process starts and lookups on every job.
 */
const factsOfRun = new WeakMap<Transport, { runId: string; facts: DeviceFacts }>();

/** The device's facts already gathered in this run, if any. */
export function knownFacts(transport: Transport, runId: string): DeviceFacts | null {
  const known = factsOfRun.get(transport);
  return known?.runId === runId ? known.facts : null;
}

export async function executeJob(job: Job<Suite>, runSignal: AbortSignal, ctx: JobContext, attempt: Attempt = FIRST_ATTEMPT): Promise<JobResult> {
  const { device, suite } = job;
  const queuedAt = new Date().toISOString();
  const started = Date.now();
  const deadlineMs = device.timeouts.jobMs ?? suite.timeoutMs;
  ctx.observe({ kind: 'job-start', device: device.name, jobId: job.id });

  let connectedAt: number | null = null;
  let bootMs: number | null = null;
  let consoleExcerpt: string | null = null;
  let run: AgentRun | null = null;
  let ending: OutcomeEnding;
  // The agent enforces the deadline on the device; this backstop only fires if the device stops answering.
  let backstop: AbortSignal | null = null;
  let stage: HarnessStage = 'connect';
  try {
    const transport = ctx.transportFor(device);
    ctx.observe({ kind: 'device', device: device.name, state: 'connecting' });
    const bootBefore = transport.boot;
    const admission = await ctx.admit(device, transport, runSignal);
    if (!admission.admitted) throw new Refused(admission.refusal);
    await transport.connect(AbortSignal.any([runSignal, AbortSignal.timeout(device.timeouts.connectMs + device.timeouts.bootMs)]));
    connectedAt = Date.now();
    if (transport.boot !== null && transport.boot !== bootBefore) bootMs = transport.boot.readyMs;
    const consoleMark = transport.console?.mark() ?? null;
    stage = 'lost';
    backstop = AbortSignal.timeout(deadlineMs + device.timeouts.connectMs + BACKSTOP_SLACK_MS);
    ctx.observe({ kind: 'device', device: device.name, state: 'running', detail: job.id });
    const known = knownFacts(transport, ctx.runId);
    run = await runOnDevice(
      transport,
      {
        runId: ctx.runId,
        // A retry gets a workdir of its own: the first attempt's may still hold its dead run.
        jobId: folderName(attempt.n === 1 ? job.id : `${job.id}.attempt-${attempt.n}`),
        env: paramEnv(suite.params, job.params ?? {}),
        payloadDir: suite.dir,
        entry: [suite.main],
        // A suite that needs nothing has nothing to probe: no fork, no lookups (an emulated Pi 3 paid half a
        // second). Its record says the empty check passed once the payload started, as the probe would have.
        ...(needsNothing(suite.probe) ? {} : { probe: { code: probeScript(suite.probe) } }),
        python: device.python,
        workdirRoot: device.workdir,
        deadlineMs,
        intervalMs: ctx.sampleIntervalMs,
        keep: ctx.keep,
        ...(known ? { knownFacts: known } : {}),
        // After a dropped connection, keep trying to re-attach as long as we would wait for the device to come back.
        reconnectGraceMs: device.timeouts.connectMs,
        // A capped host only stands in for a Pi; its facts must say so.
        ...(device.transport === 'local' ? { standIn: `local host capped at ${device.capMb ?? 'no'} MB, standing in for a ${device.model}` } : {}),
      },
      AbortSignal.any([runSignal, backstop]),
      (event) => {
        if (event.type === 'phase') ctx.observe({ kind: 'phase', device: device.name, jobId: job.id, phase: event.name });
      },
    );
    ending = run.ending;
    if (!known && run.facts) factsOfRun.set(transport, { runId: ctx.runId, facts: run.facts });
    if (consoleMark !== null) consoleExcerpt = transport.console?.since(consoleMark) ?? null;
  } catch (err) {
    ending = err instanceof Refused ? { kind: 'device_refused', refusal: err.refusal } : { kind: 'harness_failure', stage, detail: err instanceof Error ? err.message : String(err) };
  }
  const ended = Date.now();
  const decided = decideOutcome({
    ending,
    abort: abortOf(runSignal, backstop),
    deadlineMs,
    reattached: run?.reattached ?? 0,
  });
  const record: ResultRecord = {
    schema: RECORD_SCHEMA,
    runId: ctx.runId,
    jobId: job.id,
    suite: suite.name,
    device: snapshotDevice(device),
    ...decided,
    unavailable: run?.unavailable ?? [],
    exit: run?.exit ?? { code: null, signal: null },
    timing: {
      queuedAt,
      startedAt: new Date(started).toISOString(),
      endedAt: new Date(ended).toISOString(),
      wallMs: ended - (connectedAt ?? ended),
      connectMs: (connectedAt ?? ended) - started,
      bootMs,
      deployMs: run?.timing.deployMs ?? null,
      payloadMs: run?.timing.payloadMs ?? null,
      ...timingTrust(run?.throttle?.before.throttled ?? null, run?.throttle?.after.throttled ?? null),
    },
    memory: run?.memory ?? { peakRssKb: null, peakMethod: null, peakAnonKb: null, sampledPeakRssKb: null, cgroupPeakKb: null, minAvailKb: null, sampleIntervalMs: 0, samples: [] },
    phases: run?.phases ?? [],
    facts: run?.facts ?? null,
    values: run?.values ?? {},
    probe: run?.probe ?? (needsNothing(suite.probe) && run?.pid != null ? { ok: true, message: 'no requirements' } : null),
    expectation: null,
    logs: {
      stdoutTail: run?.logs.stdoutTail ?? '',
      stderrTail: run?.logs.stderrTail ?? '',
      output: run?.logs.output ?? null,
      truncated: run?.logs.truncated ?? false,
      console: consoleExcerpt,
      kernelOomLines: run?.logs.kernelOomLines ?? [],
    },
    agent: { payloadPid: run?.pid ?? null, reattached: run?.reattached ?? 0, leftPids: run?.left ?? [] },
    throttle: run?.throttle ?? null,
    attempt,
    params: { ...(job.params ?? {}) },
    envelope: job.envelope ?? null,
  };
  record.expectation = ctx.judge(suite.name, record);
  ctx.observe({ kind: 'job-end', device: device.name, jobId: job.id, outcome: record.outcome, reason: record.reason, wallMs: record.timing.wallMs, peakRssKb: record.memory.peakRssKb });
  ctx.observe({ kind: 'device', device: device.name, state: 'idle' });
  const inDoubt = (ending.kind === 'harness_failure' && !runSignal.aborted) || record.outcome === 'oom_killed' || record.outcome === 'timeout';
  return { record, deviceInDoubt: inDoubt };
}

/** A job id as a workdir name: the `[a=1,b=2]` of its params becomes `@a-1+b-2`. */
function folderName(jobId: string): string {
  return jobId.replace('[', '@').replace(/]/g, '').replace(/=/g, '-').replace(/,/g, '+').replace(/[^A-Za-z0-9._@+-]/g, '_');
}

/** The device was refused before this job could start. */
class Refused extends Error {
  constructor(readonly refusal: DeviceRefusal) {
    super(refusal.detail);
  }
}

/** Who stopped the job from the controller's side: an interrupt wins, since it stops everything. */
function abortOf(runSignal: AbortSignal, backstop: AbortSignal | null): ControllerAbort | null {
  if (runSignal.aborted) return { cause: 'interrupt', detail: describe(runSignal.reason) };
  if (backstop?.aborted) return { cause: 'deadline', detail: 'the device stopped answering past the job deadline' };
  return null;
}

function describe(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason ?? 'aborted');
}

/** A suite whose probe lists no module: nothing for a device to lack. */
function needsNothing(probe: Suite['probe']): boolean {
  return probe.allOf.length === 0 && probe.anyOf.length === 0;
}
