/**
 * One job's life: get the device's session, run the suite through the agent,
 * and turn whatever happened into exactly one result record. This function
 * never throws: a dead device becomes an infra_error record, so the
 * scheduler's other devices carry on.
 */
import { runOnDevice, type AgentRun } from '../agent/client.ts';
import { snapshotDevice, type Device } from '../inventory/device.ts';
import { RECORD_SCHEMA, type ExpectationVerdict, type Outcome, type ResultRecord } from '../results/record.ts';
import type { Transport } from '../transport/transport.ts';
import type { RunObserver } from './events.ts';
import type { Job } from './plan.ts';
import { probeScript } from '../suite/probe.ts';
import type { Suite } from '../suite/suite.ts';

export interface JobContext {
  runId: string;
  /** The device's one session, shared by its jobs (connected on first use). */
  transportFor(device: Device): Transport;
  judge(suiteName: string, record: ResultRecord): ExpectationVerdict | null;
  keep: boolean;
  sampleIntervalMs: number;
  observe: RunObserver;
}

export async function executeJob(job: Job<Suite>, runSignal: AbortSignal, ctx: JobContext): Promise<ResultRecord> {
  const { device, suite } = job;
  const queuedAt = new Date();
  const started = Date.now();
  const deadlineMs = device.timeouts.jobMs ?? suite.timeoutMs;
  let connectMs: number | null = null;
  const base = blankRecord(ctx.runId, job.id, suite.name, device, queuedAt.toISOString());
  ctx.observe({ kind: 'job-start', device: device.name, jobId: job.id });
  let record: ResultRecord;
  try {
    const transport = ctx.transportFor(device);
    ctx.observe({ kind: 'device', device: device.name, state: 'connecting' });
    await transport.connect(AbortSignal.any([runSignal, AbortSignal.timeout(device.timeouts.connectMs + device.timeouts.bootMs)]));
    connectMs = Date.now() - started;
    const consoleMark = transport.console?.mark();
    // The agent enforces the deadline on the device; this backstop only fires if the device stops answering.
    const jobSignal = AbortSignal.any([runSignal, AbortSignal.timeout(deadlineMs + device.timeouts.connectMs + 30_000)]);
    ctx.observe({ kind: 'device', device: device.name, state: 'running', detail: job.id });
    const run = await runOnDevice(
      transport,
      {
        runId: ctx.runId,
        jobId: job.id,
        payloadDir: suite.dir,
        entry: [suite.main],
        probe: { code: probeScript(suite.probe) },
        python: device.python,
        workdirRoot: device.workdir,
        deadlineMs,
        intervalMs: ctx.sampleIntervalMs,
        keep: ctx.keep,
        // After a dropped connection, keep trying to re-attach as long as we would wait for the device to come back.
        reconnectGraceMs: device.timeouts.connectMs,
        // A capped host only stands in for a Pi; its facts must say so.
        ...(device.transport === 'local' ? { standIn: `local host capped at ${device.capMb ?? 'no'} MB, standing in for a ${device.model}` } : {}),
      },
      jobSignal,
      (event) => {
        if (event.type === 'phase') ctx.observe({ kind: 'phase', device: device.name, jobId: job.id, phase: event.name });
      },
    );
    record = fromAgentRun(base, run);
    record.logs.console = consoleMark === undefined ? null : (transport.console?.since(consoleMark) ?? null);
  } catch (err) {
    record = infraRecord(base, err, runSignal);
  }
  const ended = Date.now();
  record.timing = { ...record.timing, startedAt: new Date(started).toISOString(), endedAt: new Date(ended).toISOString(), wallMs: ended - started, connectMs };
  record.expectation = ctx.judge(suite.name, record);
  ctx.observe({ kind: 'job-end', device: device.name, jobId: job.id, outcome: record.outcome, reason: record.reason, wallMs: record.timing.wallMs, peakRssKb: record.memory.peakRssKb });
  ctx.observe({ kind: 'device', device: device.name, state: 'idle' });
  return record;
}

function fromAgentRun(base: ResultRecord, run: AgentRun): ResultRecord {
  return {
    ...base,
    outcome: run.outcome,
    reason: run.reason,
    evidence: run.evidence,
    unavailable: run.unavailable,
    thrashing: run.thrashing,
    exit: run.exit,
    memory: run.memory,
    phases: run.phases,
    facts: run.facts,
    values: run.values,
    probe: run.probe,
    logs: { ...base.logs, ...run.logs },
    timing: { ...base.timing, deployMs: run.timing.deployMs, payloadMs: run.timing.payloadMs },
  };
}

function infraRecord(base: ResultRecord, err: unknown, runSignal: AbortSignal): ResultRecord {
  const message = err instanceof Error ? err.message : String(err);
  const interrupted = runSignal.aborted;
  return {
    ...base,
    outcome: 'infra_error' satisfies Outcome,
    reason: interrupted ? `interrupted: ${String(runSignal.reason instanceof Error ? runSignal.reason.message : runSignal.reason)}` : message,
    evidence: [{ source: 'transport', detail: message }],
  };
}

function blankRecord(runId: string, jobId: string, suite: string, device: Device, queuedAt: string): ResultRecord {
  return {
    schema: RECORD_SCHEMA,
    runId,
    jobId,
    suite,
    device: snapshotDevice(device),
    outcome: 'infra_error',
    reason: '',
    evidence: [],
    unavailable: [],
    thrashing: false,
    exit: { code: null, signal: null },
    timing: { queuedAt, startedAt: queuedAt, endedAt: queuedAt, wallMs: 0, connectMs: null, deployMs: null, payloadMs: null },
    memory: { peakRssKb: null, peakMethod: null, peakAnonKb: null, sampledPeakRssKb: null, cgroupPeakKb: null, minAvailKb: null, sampleIntervalMs: 0, samples: [] },
    phases: [],
    facts: null,
    values: {},
    probe: null,
    expectation: null,
    logs: { stdoutTail: '', stderrTail: '', console: null, kernelOomLines: [] },
  };
}
