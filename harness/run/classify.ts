/**
 * Outcome classification: a pure function from what the agent saw at the end
 * of a run to one outcome, a one-sentence reason and the evidence behind it.
 * It applies the outcome table of DESIGN.md; the order of the rules below is
 * the precedence.
 */
import type { Evidence, Outcome } from '../results/record.ts';

export interface ExitEvidence {
  /** The suite's requirement probe; null when none ran. */
  probe: { ok: boolean; message: string } | null;
  code: number | null;
  /** Without the SIG prefix, e.g. "KILL". */
  signal: string | null;
  /** Who killed the job on purpose, if anyone. */
  killedBy: 'deadline' | 'controller' | null;
  deadlineMs: number | null;
  stderrTail: string;
  oom: {
    vmstatBefore: number | null;
    vmstatAfter: number | null;
    cgroupBefore: number | null;
    cgroupAfter: number | null;
    /** Kernel log lines that name one of the job's pids. */
    kernelLines: string[];
  } | null;
  pressure: {
    windowMs: number;
    /** The job's own major-fault rate. */
    majfltPerS: number;
    sysMajfltPerS: number;
    psiSome10: number | null;
    psiScope?: 'cgroup' | 'system' | null;
  } | null;
}

export interface Classification {
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

function oomEvidence(e: ExitEvidence): Evidence[] {
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

function pressureEvidence(e: ExitEvidence): { thrashing: boolean; evidence: Evidence | null } {
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

export function classify(e: ExitEvidence): Classification {
  const exitEv: Evidence[] = [];
  if (e.signal) exitEv.push({ source: 'signal', detail: `SIG${e.signal}` });
  else if (e.code !== null) exitEv.push({ source: 'exit_code', detail: `exit ${e.code}` });
  const stderrEv: Evidence[] = e.stderrTail.trim() ? [{ source: 'stderr', detail: tail(e.stderrTail) }] : [];
  const done = (outcome: Outcome, reason: string, evidence: Evidence[], thrashing = false): Classification => ({
    outcome,
    reason,
    evidence,
    thrashing,
  });

  if (e.probe && !e.probe.ok) {
    return done('unsupported', `requirement probe failed: ${e.probe.message}`, [
      { source: 'probe', detail: e.probe.message },
    ]);
  }

  if (e.killedBy === 'deadline') {
    const { thrashing, evidence } = pressureEvidence(e);
    const secs = e.deadlineMs === null ? '' : ` of ${(e.deadlineMs / 1000).toFixed(1)} s`;
    const ev: Evidence[] = [{ source: 'deadline', detail: `deadline${secs} fired; the agent killed the process group` }];
    if (evidence) ev.push(evidence);
    return done(
      'timeout',
      `deadline${secs} fired and the process group was killed` + (thrashing ? ', while thrashing' : ''),
      ev,
      thrashing,
    );
  }
  if (e.killedBy === 'controller') {
    return done('timeout', 'the controller aborted the job and killed its process group', [
      { source: 'deadline', detail: 'controller abort (deadline backstop or interrupt)' },
    ]);
  }

  const sig = e.signal;
  if (sig === 'ILL') {
    return done('unsupported', 'SIGILL: the build uses instructions this CPU lacks', [...exitEv, ...stderrEv]);
  }
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
  if (sig !== null && MEMORY_ERRORS.test(e.stderrTail) && /bad_alloc/.test(e.stderrTail)) {
    return done('memory_error', `SIG${sig} after std::bad_alloc: the program could not allocate`, [...exitEv, ...stderrEv]);
  }
  if (sig === 'SEGV' || sig === 'BUS' || sig === 'ABRT') {
    return done('crashed', `crashed with SIG${sig}`, [...exitEv, ...stderrEv]);
  }
  if (sig !== null) {
    return done('failed', `killed by SIG${sig}`, [...exitEv, ...stderrEv]);
  }

  if (e.code === 0) return done('passed', 'exit 0', exitEv);
  if (e.code === null) return done('failed', 'the payload ended without an exit status', [...stderrEv]);

  const exc = lastException(e.stderrTail);
  const err = e.stderrTail;
  if (exc?.name.endsWith('MemoryError') || /std::bad_alloc/.test(err)) {
    return done('memory_error', `${exc?.line ?? 'std::bad_alloc'}: the program could not allocate`, [...exitEv, ...stderrEv]);
  }
  if (NUMPY_ABI.some((re) => re.test(err))) {
    return done('unsupported', 'NumPy ABI mismatch: a module was built against another NumPy', [...exitEv, ...stderrEv]);
  }
  if (GLIBC_TOO_OLD.test(err)) {
    return done('unsupported', `the C library is too old: ${GLIBC_TOO_OLD.exec(err)?.[0] ?? ''}`, [...exitEv, ...stderrEv]);
  }
  if (exc && (exc.name === 'ImportError' || exc.name === 'ModuleNotFoundError')) {
    if (/Cannot allocate memory|failed to map segment/.test(exc.line)) {
      return done('memory_error', `${exc.line}: not enough memory to load a library`, [...exitEv, ...stderrEv]);
    }
    return done('unsupported', exc.line, [...exitEv, ...stderrEv]);
  }
  if (MEMORY_ERRORS.test(err) && exc === null) {
    return done('memory_error', 'could not allocate memory', [...exitEv, ...stderrEv]);
  }
  return done('failed', `exit ${e.code}` + (exc ? `: ${exc.line}` : ''), [...exitEv, ...stderrEv]);
}
