/**
 * What a record says beyond its outcome, in the same words on every report:
 * which peak to believe, what the agent's session went through, how much
 * output was cut, and each emulated device's boot. Records only.
 */
import type { ResultRecord } from '../results/record.ts';
import { formatBytes, formatMb, formatMs } from './format.ts';

/** Peaks further apart than this (max over min) are all shown, labelled. */
export const PEAK_SPREAD = 1.1;

export interface PeakPart {
  label: 'RSS' | 'anon' | 'cgroup';
  kb: number;
}

export interface PeakView {
  /** The measured peaks, in the order RSS, anon, cgroup. */
  parts: PeakPart[];
  /** True when they differ by more than 10%: one number would mislead, so all are shown. */
  differ: boolean;
}

/**
 * RSS (VmHWM) counts file-backed pages, which the kernel may drop under
 * pressure, so on a small cap it can read far above what the cap allowed;
 * anon is what had to fit; cgroup is what the cap charged. When they agree
 * the RSS figure stands alone; when they do not, a reader needs all three.
 */
export function peakView(r: ResultRecord): PeakView {
  const m = r.memory;
  const parts: PeakPart[] = [];
  if (m.peakRssKb !== null) parts.push({ label: 'RSS', kb: m.peakRssKb });
  if (m.peakAnonKb !== null) parts.push({ label: 'anon', kb: m.peakAnonKb });
  if (m.cgroupPeakKb !== null) parts.push({ label: 'cgroup', kb: m.cgroupPeakKb });
  const kbs = parts.map((p) => p.kb);
  const differ = parts.length > 1 && Math.max(...kbs) > PEAK_SPREAD * Math.max(Math.min(...kbs), 1);
  return { parts, differ };
}

/** "peak 905 MB", or "peak RSS 383 MB · anon 90 MB · cgroup 127 MB" where they differ; null when nothing was measured. */
export function peakText(r: ResultRecord): string | null {
  const v = peakView(r);
  if (r.memory.peakRssKb === null && v.parts.length === 0) return null;
  if (!v.differ) return `peak ${formatMb(r.memory.peakRssKb ?? v.parts[0]?.kb)}`;
  return `peak ${v.parts.map((p) => `${p.label} ${formatMb(p.kb)}`).join(' · ')}`;
}

/** The short note on the three peaks, said once per page. */
export const PEAK_NOTE =
  'RSS is the kernel’s resident high-water mark (VmHWM); it also counts file-backed pages such as shared libraries and mapped model files, which the kernel can drop under pressure, so it can exceed a small cap. ' +
  'anon is the anonymous memory alone (heap, tensors): what really had to fit. ' +
  'cgroup is what the device’s memory cgroup charged, the figure its cap enforces. ' +
  'Where the three differ by more than 10%, all are shown.';

/** "survived 1 SSH drop (re-attached)"; null when the session never dropped. */
export function reattachText(r: ResultRecord): string | null {
  const n = r.agent.reattached;
  return n > 0 ? `survived ${n} SSH drop${n === 1 ? '' : 's'} (re-attached)` : null;
}

/** "1 process outlived the job: pid 88377"; null when the clean-up left nothing. */
export function leftPidsText(r: ResultRecord): string | null {
  const pids = r.agent.leftPids;
  if (pids.length === 0) return null;
  return `${pids.length} process${pids.length === 1 ? '' : 'es'} outlived the job: pid${pids.length === 1 ? '' : 's'} ${pids.join(', ')}`;
}

/** The agent's session in one line: payload pid, re-attaches, leftovers. */
export function sessionText(r: ResultRecord): string {
  const parts = [r.agent.payloadPid === null ? 'no payload started' : `payload pid ${r.agent.payloadPid}`];
  parts.push(reattachText(r) ?? 'no SSH drop');
  parts.push(leftPidsText(r) ?? 'nothing left running');
  return parts.join('; ');
}

/** Per stream the record cut: "stdout truncated: 125 KB written, last 8.0 KB kept". Empty when nothing was cut. */
export function truncationTexts(r: ResultRecord): string[] {
  const out = r.logs.output;
  if (out === null) return r.logs.truncated ? ['output truncated (sizes not recorded)'] : [];
  const texts = (['stdout', 'stderr'] as const)
    .filter((s) => out[s].written > out[s].kept)
    .map((s) => `${s} truncated: ${formatBytes(out[s].written)} written, last ${formatBytes(out[s].kept)} kept`);
  if (texts.length === 0 && r.logs.truncated) texts.push('output truncated');
  return texts;
}

/** The notes a job's cell carries beyond outcome, peak and time. */
export function cellNotes(r: ResultRecord): string[] {
  const notes: string[] = [];
  const re = reattachText(r);
  if (re) notes.push(re);
  if (r.agent.leftPids.length) notes.push(`${r.agent.leftPids.length} pid${r.agent.leftPids.length === 1 ? '' : 's'} left running`);
  if (r.logs.truncated || truncationTexts(r).length) notes.push('output truncated');
  if (!r.timing.trusted) notes.push('times not comparable: throttled');
  const retry = retryText(r);
  if (retry) notes.push(retry);
  return notes;
}

/** "attempt 2, after infra_error: lost the device…", or null on a first attempt. */
export function retryText(r: ResultRecord): string | null {
  const p = r.attempt.previous;
  return p ? `attempt ${r.attempt.n}, after ${p.outcome}: ${p.reason}` : null;
}

/** "Times not comparable: under-voltage during the job (before 0x0, after 0x10001)", or null when they are. */
export function untrustedTimeText(r: ResultRecord): string | null {
  return r.timing.trusted ? null : `Times not comparable: ${r.timing.untrustedBecause ?? 'the device was throttled'}`;
}

/** Each device's VM boots in this run, in job order; devices that never booted are absent. */
export function bootsByDevice(records: ResultRecord[]): Map<string, number[]> {
  const boots = new Map<string, number[]>();
  const inOrder = [...records].sort((a, b) => a.timing.startedAt.localeCompare(b.timing.startedAt));
  for (const r of inOrder) {
    if (r.timing.bootMs === null) continue;
    boots.set(r.device.name, [...(boots.get(r.device.name) ?? []), r.timing.bootMs]);
  }
  return boots;
}

/** "boot 25.5 s", or "2 boots: 25.5 s, 3.1 s"; null without a boot. */
export function bootText(boots: number[] | undefined): string | null {
  if (!boots?.length) return null;
  return boots.length === 1 ? `boot ${formatMs(boots[0])}` : `${boots.length} boots: ${boots.map((b) => formatMs(b)).join(', ')}`;
}
