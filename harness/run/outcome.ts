/**
 * The one place that decides how a job ended. Evidence in (the agent's end
 * event, or the kind of harness failure, plus who aborted the job and how often
 * the stream was re-attached), decision out: `outcome`, `reason`, `evidence`
 * and `thrashing`. Nothing else writes those record fields.
 *
 * It follows docs/outcomes.md: the rules below run in the table's order, and
 * the first that matches decides, so the order is the precedence.
 */
import type { Evidence, Outcome } from '../results/record.ts';
import type { AgentEnding, HarnessStage } from '../agent/client.ts';
import type { DeviceRefusal } from '../rack/admission.ts';
import type { EndEvent } from '../agent/protocol.ts';

/** The facts of the agent's end event that the decision reads. */
export type EndFacts = Pick<
  EndEvent,
  'probe' | 'agentError' | 'code' | 'signal' | 'killedBy' | 'killedAtMs' | 'stderrTail' | 'oom' | 'pressure'
> &
  Partial<Pick<EndEvent, 'foreign'>>;

/** Who stopped the job from the controller's side: its deadline backstop, or an interrupt (Ctrl-C, SIGTERM). */
export interface ControllerAbort {
  cause: 'deadline' | 'interrupt';
  detail: string;
}

/**
 * How the job ended: the agent's end facts, where the harness lost it, or the
 * device was refused before its first job (leased by another controller,
 * unreachable, or unfit by the health gate) and the job never started.
 */
export type OutcomeEnding =
  | Exclude<AgentEnding, { kind: 'agent_end' }>
  | { kind: 'agent_end'; end: EndFacts }
  | { kind: 'device_refused'; refusal: DeviceRefusal };

export interface OutcomeInput {
  ending: OutcomeEnding;
  /** Null when the controller let the job run to its end. */
  abort: ControllerAbort | null;
  /** The deadline the agent enforced, for the reason text. */
  deadlineMs: number | null;
  /** How often the controller re-attached after losing the stream. */
  reattached: number;
}

export interface OutcomeDecision {
  outcome: Outcome;
  reason: string;
  evidence: Evidence[];
  thrashing: boolean;
}

/**
 * Thrashing: the job pages its own code and data in and out. Its own
 * major-fault rate is the direct sign. Memory PSI counts too, but PSI that is
 * system-wide also reflects other tenants of a shared host, so it needs the
 * job to be faulting at least a little (or to be the job's cgroup PSI).
 */
export const THRASH_MAJFLT_PER_S = 100;
export const THRASH_PSI_SOME10 = 10;
export const THRASH_PSI_MIN_MAJFLT_PER_S = 10;

const NUMPY_ABI = [
  /numpy\.core\.multiarray failed to import/,
  /compiled against (?:API|ABI) version/i,
  /compiled using NumPy 1\.x cannot be run in\s+NumPy 2/,
  /_ARRAY_API not found/,
  /numpy\.dtype size changed, may indicate binary incompatibility/,
];
const GLIBC_TOO_OLD = /GLIBC_[\d.]+'? not found/;
const MEMORY_ERRORS = /(?:^|\n)\s*(?:[\w.]+\.)?MemoryError\b|std::bad_alloc|Cannot allocate memory/;

/** The exception name of the last traceback line, e.g. "ModuleNotFoundError". */
export function lastException(stderr: string): { name: string; line: string } | null {
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? '';
    const m = /^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning))(?::|$)/.exec(line);
    if (m?.[1]) return { name: m[1].split('.').pop() ?? m[1], line };
  }
  return null;
}

function tail(text: string, max = 300): string {
  const t = text.trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}

function oomEvidence(e: EndFacts): Evidence[] {
  const out: Evidence[] = [];
  const o = e.oom;
  if (!o) return out;
  for (const line of o.kernelLines) out.push({ source: 'kernel_log', detail: line });
  if (o.cgroupBefore !== null && o.cgroupAfter !== null && o.cgroupAfter > o.cgroupBefore) {
    out.push({ source: 'cgroup_oom_kill', detail: `cgroup oom_kill ${o.cgroupBefore} → ${o.cgroupAfter}` });
  }
  if (o.vmstatBefore !== null && o.vmstatAfter !== null && o.vmstatAfter > o.vmstatBefore) {
    out.push({
      source: 'vmstat_oom_kill',
      detail: `/proc/vmstat oom_kill ${o.vmstatBefore} → ${o.vmstatAfter} (system-wide)`,
    });
  }
  return out;
}

function pressureEvidence(e: EndFacts): { thrashing: boolean; evidence: Evidence | null } {
  const p = e.pressure;
  if (!p) return { thrashing: false, evidence: null };
  const psi = p.psiSome10;
  const jobPsi = p.psiScope === 'cgroup' || p.majfltPerS >= THRASH_PSI_MIN_MAJFLT_PER_S;
  const thrashing = p.majfltPerS >= THRASH_MAJFLT_PER_S || (psi !== null && psi >= THRASH_PSI_SOME10 && jobPsi);
  const detail =
    `over the last ${(p.windowMs / 1000).toFixed(1)} s: ${p.majfltPerS} major faults/s in the job ` +
    `(${p.sysMajfltPerS}/s system-wide)` +
    (psi === null ? ', no PSI' : `, memory PSI some avg10 ${psi} (${p.psiScope ?? 'system'})`);
  return { thrashing, evidence: { source: 'pressure', detail } };
}

const HARNESS_REASONS: Record<HarnessStage, string> = {
  connect: 'the device did not answer',
  deploy: 'deploy failed',
  agent_start: 'the agent could not start',
  agent_died: 'the agent on the device died without reporting an end',
  protocol: 'the agent spoke an unknown protocol',
  lost: 'lost the device and it never came back',
  uncollected: "the job was aborted and the agent's end was not collected",
};

const REFUSALS: Record<DeviceRefusal['why'], string> = {
  quarantined: 'not run: the device is quarantined',
  lease: 'not run: another controller holds the device',
  unreachable: 'not run: the device could not be reached',
  health: 'not run: the device failed the health gate',
  down: 'not run: the device went down earlier in this run',
};

function seconds(ms: number | null): string {
  return ms === null ? '' : ` of ${(ms / 1000).toFixed(1)} s`;
}

const decision = (outcome: Outcome, reason: string, evidence: Evidence[], thrashing = false): OutcomeDecision => ({
  outcome,
  reason,
  evidence,
  thrashing,
});

/** The job's outcome, from the rules of docs/outcomes.md in their order. */
export function decideOutcome(input: OutcomeInput): OutcomeDecision {
  const d = decideEnding(input);
  if (input.reattached > 0 && d.outcome !== 'infra_error') {
    d.evidence.push({
      source: 'transport',
      detail: `the SSH stream was lost ${input.reattached} time(s); the controller re-attached and collected the whole run`,
    });
  }
  const foreign = input.ending.kind === 'agent_end' ? (input.ending.end.foreign ?? []) : [];
  if (foreign.length > 0) {
    // Not a decision of its own: the outcome stands, but its memory figures were shared with another job.
    d.evidence.push({
      source: 'foreign_job',
      detail: `another pi-hil job ran on the device at the same time (agent pid ${foreign.map((f) => `${f.pid} in ${f.workdir}`).join(', ')}): memory figures are shared`,
    });
  }
  return d;
}

function decideEnding({ ending, abort, deadlineMs }: OutcomeInput): OutcomeDecision {
  // 1. infra_error: the device was refused, or the harness lost the job. Never a product result.
  if (ending.kind === 'device_refused') {
    const { why, detail } = ending.refusal;
    return decision('infra_error', `${REFUSALS[why]}: ${detail}`, [{ source: 'transport', detail }]);
  }
  if (ending.kind === 'harness_failure') {
    const base = HARNESS_REASONS[ending.stage];
    const reason = abort?.cause === 'interrupt' ? `interrupted (${abort.detail}); ${base}` : `${base}: ${ending.detail}`;
    const evidence: Evidence[] = [{ source: 'transport', detail: ending.detail }];
    if (abort) evidence.push({ source: abort.cause === 'interrupt' ? 'interrupt' : 'deadline', detail: abort.detail });
    return decision('infra_error', reason, evidence);
  }
  const e = ending.end;
  // 2. infra_error: the agent itself failed.
  if (e.agentError !== null) {
    return decision('infra_error', `the agent failed: ${e.agentError}`, [{ source: 'transport', detail: e.agentError }]);
  }
  // Who killed the job on purpose, the probe or the payload alike: that kill says nothing about the product.
  const killedBy = e.killedBy ?? e.probe?.killedBy ?? null;
  const what = e.killedBy ? 'the payload' : 'the requirement probe';
  // 3. infra_error: an interrupt (Ctrl-C, SIGTERM, another controller) stopped it.
  if (killedBy === 'controller' && abort?.cause !== 'deadline') {
    const why = abort?.detail ?? 'controller abort';
    return decision('infra_error', `interrupted (${why}): ${what} was killed before it finished`, [
      { source: 'interrupt', detail: `${why}; the agent killed ${what}'s process group` },
    ]);
  }
  // 4. timeout: the deadline fired (the agent's own, or the controller's backstop).
  if (killedBy !== null) {
    const ev: Evidence[] = [];
    let thrashing = false;
    let reason: string;
    if (killedBy === 'deadline') {
      ev.push({ source: 'deadline', detail: `deadline${seconds(deadlineMs)} fired; the agent killed ${what}'s process group` });
      reason = `deadline${seconds(deadlineMs)} fired and ${what}'s process group was killed`;
    } else {
      ev.push({ source: 'deadline', detail: `the controller's deadline backstop fired (${abort?.detail ?? 'deadline'}) and it killed ${what}'s process group` });
      reason = `the controller's deadline backstop fired and ${what}'s process group was killed`;
    }
    if (e.killedBy) {
      const p = pressureEvidence(e);
      thrashing = p.thrashing;
      if (p.evidence) ev.push(p.evidence);
      if (thrashing) reason += ', while thrashing';
    }
    return decision('timeout', reason, ev, thrashing);
  }
  // 5. unsupported: the requirement probe failed by itself (the runtime is not installed or not usable here).
  if (e.probe && !e.probe.ok) {
    return decision('unsupported', `requirement probe failed: ${e.probe.message}`, [{ source: 'probe', detail: e.probe.message }]);
  }
  return decideExit(e);
}

/** Rules 6 onwards: the payload ended by itself; its signal, exit status and stderr decide. */
function decideExit(e: EndFacts): OutcomeDecision {
  const exitEv: Evidence[] = [];
  if (e.signal) exitEv.push({ source: 'signal', detail: `SIG${e.signal}` });
  else if (e.code !== null) exitEv.push({ source: 'exit_code', detail: `exit ${e.code}` });
  const stderrEv: Evidence[] = e.stderrTail.trim() ? [{ source: 'stderr', detail: tail(e.stderrTail) }] : [];
  const done = (outcome: Outcome, reason: string, evidence: Evidence[]): OutcomeDecision => decision(outcome, reason, evidence);

  const sig = e.signal;
  // 6. unsupported: SIGILL.
  if (sig === 'ILL') {
    return done('unsupported', 'SIGILL: the build uses instructions this CPU lacks', [...exitEv, ...stderrEv]);
  }
  // 7. oom_killed: SIGKILL with OOM evidence; 8. failed: SIGKILL without.
  if (sig === 'KILL') {
    const oom = oomEvidence(e);
    if (oom.length > 0) {
      const named = oom.find((x) => x.source === 'kernel_log');
      const why = named
        ? 'a kernel OOM line naming its pid'
        : oom.some((x) => x.source === 'cgroup_oom_kill')
          ? 'a rise of the cgroup oom_kill counter'
          : 'a rise of /proc/vmstat oom_kill';
      return done('oom_killed', `SIGKILL with ${why}`, [...exitEv, ...oom, ...stderrEv]);
    }
    return done(
      'failed',
      'SIGKILL without OOM evidence (no kernel line, no oom_kill counter rise): killed by something else, not counted as oom_killed',
      [...exitEv, ...stderrEv],
    );
  }
  // 9. memory_error: a signal after std::bad_alloc.
  if (sig !== null && MEMORY_ERRORS.test(e.stderrTail) && /bad_alloc/.test(e.stderrTail)) {
    return done('memory_error', `SIG${sig} after std::bad_alloc: the program could not allocate`, [...exitEv, ...stderrEv]);
  }
  // 10. crashed.
  if (sig === 'SEGV' || sig === 'BUS' || sig === 'ABRT') {
    return done('crashed', `crashed with SIG${sig}`, [...exitEv, ...stderrEv]);
  }
  // 11. failed: any other signal.
  if (sig !== null) {
    return done('failed', `killed by SIG${sig}`, [...exitEv, ...stderrEv]);
  }

  // 12. passed; 13. failed without an exit status.
  if (e.code === 0) return done('passed', 'exit 0', exitEv);
  if (e.code === null) return done('failed', 'the payload ended without an exit status', [...stderrEv]);

  const exc = lastException(e.stderrTail);
  const err = e.stderrTail;
  // 14. memory_error: MemoryError or std::bad_alloc.
  if (exc?.name.endsWith('MemoryError') || /std::bad_alloc/.test(err)) {
    return done('memory_error', `${exc?.line ?? 'std::bad_alloc'}: the program could not allocate`, [...exitEv, ...stderrEv]);
  }
  // 15. unsupported: NumPy ABI mismatch, C library too old.
  if (NUMPY_ABI.some((re) => re.test(err))) {
    return done('unsupported', 'NumPy ABI mismatch: a module was built against another NumPy', [...exitEv, ...stderrEv]);
  }
  if (GLIBC_TOO_OLD.test(err)) {
    return done('unsupported', `the C library is too old: ${GLIBC_TOO_OLD.exec(err)?.[0] ?? ''}`, [...exitEv, ...stderrEv]);
  }
  // 16. memory_error or unsupported: an import that failed.
  if (exc && (exc.name === 'ImportError' || exc.name === 'ModuleNotFoundError')) {
    if (/Cannot allocate memory|failed to map segment/.test(exc.line)) {
      return done('memory_error', `${exc.line}: not enough memory to load a library`, [...exitEv, ...stderrEv]);
    }
    return done('unsupported', exc.line, [...exitEv, ...stderrEv]);
  }
  // 17. memory_error: could not allocate, without a traceback.
  if (MEMORY_ERRORS.test(err) && exc === null) {
    return done('memory_error', 'could not allocate memory', [...exitEv, ...stderrEv]);
  }
  // 18. failed: any other non-zero exit.
  return done('failed', `exit ${e.code}` + (exc ? `: ${exc.line}` : ''), [...exitEv, ...stderrEv]);
}
