/**
 * The "Capacity" section of the comparison page and of compare.md: what each
 * `hil envelope` search found, rebuilt from its probe records alone (records
 * with `envelope` set). Per device: a log-scale bar from the smallest value
 * tried to the largest that passed, the boundary's outcome as a badge, and
 * peak memory against the value as a small chart; 32-bit and 64-bit devices
 * apart.
 */
import type { Outcome, ResultRecord } from '../results/record.ts';
import { summarize, type EnvelopeResult, type Observation } from '../envelope/search.ts';
import { escapeHtml as esc, escapeMdCell as mdCell, formatMb, formatMs, formatRam } from './format.ts';
import { CHART, OUTCOME_COLORS } from './palette.ts';
import { bitness } from './test-status.ts';
import { jobAnchor } from './cell.ts';

/** One device's search. */
export interface DeviceCapacity {
  device: string;
  model: string;
  ramMb: number;
  bits: '32-bit' | '64-bit';
  result: EnvelopeResult;
  /** Every probe's final record, in step order. */
  probes: ResultRecord[];
  smallestTried: number;
  pass: ResultRecord | null;
  fail: ResultRecord | null;
}

/** One search (suite, parameter, the other parameters held) over its devices. */
export interface CapacitySearch {
  suite: string;
  param: string;
  /** The other parameters given, e.g. {units: 64}; the rest ran at their defaults. */
  fixed: Record<string, string | number>;
  devices: DeviceCapacity[];
}

const valueOf = (r: ResultRecord): number => Number(r.params[r.envelope!.search]);

/** The searches in these records, each device's answer read back from its probes. */
export function capacityOf(records: readonly ResultRecord[]): CapacitySearch[] {
  const searches = new Map<string, CapacitySearch>();
  const probes = new Map<string, ResultRecord[]>();
  for (const r of records) {
    if (!r.envelope) continue;
    const fixed = Object.fromEntries(Object.entries(r.params).filter(([k]) => k !== r.envelope!.search).sort(([a], [b]) => a.localeCompare(b)));
    const key = JSON.stringify([r.suite, r.envelope.search, fixed]);
    if (!searches.has(key)) searches.set(key, { suite: r.suite, param: r.envelope.search, fixed, devices: [] });
    const dk = `${key}\u0000${r.device.name}`;
    probes.set(dk, [...(probes.get(dk) ?? []), r]);
  }
  for (const [dk, rs] of probes) {
    const search = searches.get(dk.split('\u0000')[0]!)!;
    rs.sort((a, b) => a.envelope!.step - b.envelope!.step);
    // A retried probe keeps its last attempt; the infra_error before it still counts as a job.
    const seen: Observation[] = rs.flatMap((r) => [
      ...(r.attempt.previous ? [{ value: valueOf(r), outcome: r.attempt.previous.outcome }] : []),
      { value: valueOf(r), outcome: r.outcome },
    ]);
    const result = summarize(seen);
    const at = (v: number | null) => (v === null ? null : (rs.find((r) => valueOf(r) === v) ?? null));
    const sample = rs.find((r) => r.facts !== null) ?? rs[0]!;
    search.devices.push({
      device: sample.device.name,
      model: sample.device.model,
      ramMb: sample.device.ramMb,
      bits: bitness(sample),
      result,
      probes: rs,
      smallestTried: Math.min(...rs.map(valueOf)),
      pass: at(result.largestPass),
      fail: at(result.smallestFail),
    });
  }
  const out = [...searches.values()];
  for (const s of out) s.devices.sort((a, b) => a.bits.localeCompare(b.bits) || a.ramMb - b.ramMb || a.device.localeCompare(b.device));
  return out;
}

const fmtValue = (v: number | null): string => (v === null ? '—' : v.toLocaleString('en-US'));
const fixedText = (s: CapacitySearch): string => Object.entries(s.fixed).map(([k, v]) => `${k}=${v}`).join(', ');

/** What stopped a search short of a boundary, or what bounds it. */
function boundaryOutcome(d: DeviceCapacity): Outcome | null {
  return d.result.failOutcome ?? d.result.stoppedAt?.outcome ?? null;
}

function statusText(d: DeviceCapacity, param: string): string {
  const r = d.result;
  switch (r.status) {
    case 'bounded':
      return `passes up to ${param}=${fmtValue(r.largestPass)}; ${r.failOutcome} at ${fmtValue(r.smallestFail)}`;
    case 'beyond-range':
      return `passed everything tried, up to ${fmtValue(r.largestPass)}`;
    case 'below-range':
      return `${r.failOutcome} already at ${fmtValue(r.smallestFail)}, the smallest value tried`;
    case 'stopped':
      return `stopped: ${r.stoppedAt?.outcome} at ${fmtValue(r.stoppedAt?.value ?? null)}, not a capacity limit`;
    case 'infra':
      return `not measured: infra_error twice at ${fmtValue(r.stoppedAt?.value ?? null)}`;
  }
}

/** A log-scale bar on a shared axis: smallest tried to largest pass, a tick at the boundary. */
function barSvg(d: DeviceCapacity, lo: number, hi: number, id: string): string {
  const W = 360;
  const H = 34;
  const pad = { l: 6, r: 6 };
  const span = Math.log(hi / lo) || 1;
  const x = (v: number) => pad.l + ((Math.log(v / lo) / span) * (W - pad.l - pad.r));
  const f = (n: number) => n.toFixed(1);
  const r = d.result;
  const desc = `${d.device}: tried from ${fmtValue(d.smallestTried)}; ${r.largestPass === null ? 'nothing passed' : `largest pass ${fmtValue(r.largestPass)}`}${r.smallestFail === null ? '' : `; ${r.failOutcome} at ${fmtValue(r.smallestFail)}`}.`;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${id}-t" class="capbar" font-family="system-ui, sans-serif" font-size="10"><title id="${id}-t">${esc(desc)}</title>`,
    `<rect x="${pad.l}" y="8" width="${W - pad.l - pad.r}" height="10" rx="5" fill="${CHART.grid}"/>`,
  ];
  if (r.largestPass !== null) {
    const x0 = x(d.smallestTried);
    out.push(`<rect x="${f(x0)}" y="8" width="${f(Math.max(3, x(r.largestPass) - x0))}" height="10" rx="5" fill="${OUTCOME_COLORS.passed.ink}" class="pass"/>`);
  }
  const bound = r.smallestFail ?? r.stoppedAt?.value ?? null;
  const outcome = boundaryOutcome(d);
  if (bound !== null && outcome !== null) {
    out.push(`<line x1="${f(x(bound))}" x2="${f(x(bound))}" y1="4" y2="22" stroke="${OUTCOME_COLORS[outcome].ink}" stroke-width="2.5" class="bound"/>`);
  }
  out.push(`<text x="${pad.l}" y="32" fill="${CHART.text}">${esc(fmtValue(lo))}</text><text x="${W - pad.r}" y="32" text-anchor="end" fill="${CHART.text}">${esc(fmtValue(hi))}</text></svg>`);
  return out.join('');
}

/** Peak memory against the value probed, log x: every probe a dot coloured by its outcome. */
export function peakVsValueSvg(d: DeviceCapacity, param: string, id: string, width = 300, height = 150): string {
  const pts = d.probes.filter((r) => r.memory.peakRssKb !== null).map((r) => ({ v: valueOf(r), kb: r.memory.peakRssKb!, r }));
  const desc = pts.length
    ? `Peak memory against ${param} on ${d.device}: ${pts.map((p) => `${fmtValue(p.v)} → ${formatMb(p.kb)} (${p.r.outcome})`).join('; ')}.`
    : `No peak memory measured on ${d.device}.`;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="${id}-t ${id}-d" class="chart" font-family="system-ui, sans-serif" font-size="10">`,
    `<title id="${id}-t">${esc(`Peak memory vs ${param} on ${d.device}`)}</title><desc id="${id}-d">${esc(desc)}</desc>`,
  ];
  const pad = { l: 52, r: 10, t: 12, b: 24 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const vs = d.probes.map(valueOf);
  const [lo, hi] = [Math.min(...vs), Math.max(...vs)];
  const span = Math.log(hi / lo) || 1;
  const x = (v: number) => pad.l + (hi === lo ? w / 2 : (Math.log(v / lo) / span) * w);
  const ramKb = d.ramMb * 1024;
  const top = Math.max(ramKb, ...pts.map((p) => p.kb)) * 1.08;
  const y = (kb: number) => pad.t + h - (kb / top) * h;
  const f = (n: number) => n.toFixed(1);
  for (const frac of [0, 0.5, 1]) {
    out.push(`<line x1="${pad.l}" x2="${pad.l + w}" y1="${f(y(top * frac))}" y2="${f(y(top * frac))}" stroke="${CHART.grid}"/>`);
    out.push(`<text x="${pad.l - 5}" y="${f(y(top * frac) + 3)}" text-anchor="end" fill="${CHART.text}">${esc(frac === 0 ? '0' : formatMb(top * frac))}</text>`);
  }
  out.push(`<line x1="${pad.l}" x2="${pad.l + w}" y1="${f(y(ramKb))}" y2="${f(y(ramKb))}" stroke="${CHART.ram}" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${pad.l + 3}" y="${f(y(ramKb) - 3)}" fill="${CHART.ram}">RAM ${esc(formatRam(d.ramMb))}</text>`);
  const passes = pts.filter((p) => p.r.outcome === 'passed').sort((a, b) => a.v - b.v);
  if (passes.length > 1) out.push(`<polyline points="${passes.map((p) => `${f(x(p.v))},${f(y(p.kb))}`).join(' ')}" fill="none" stroke="${OUTCOME_COLORS.passed.ink}" stroke-width="1.5"/>`);
  for (const p of pts) {
    out.push(`<circle cx="${f(x(p.v))}" cy="${f(y(p.kb))}" r="3.5" fill="${OUTCOME_COLORS[p.r.outcome].ink}" class="probe" data-outcome="${p.r.outcome}"><title>${esc(`${param}=${fmtValue(p.v)}: ${p.r.outcome}, peak ${formatMb(p.kb)}`)}</title></circle>`);
  }
  out.push(`<text x="${pad.l}" y="${height - 6}" fill="${CHART.text}">${esc(fmtValue(lo))}</text>`);
  out.push(`<text x="${pad.l + w}" y="${height - 6}" text-anchor="end" fill="${CHART.text}">${esc(`${fmtValue(hi)} ${param}`)}</text>`);
  out.push('</svg>');
  return out.join('');
}

const badge = (o: Outcome) => `<span class="badge o-${o}">${esc(o)}</span>`;

/** The HTML section; empty when the run holds no search. */
export function capacityHtml(records: readonly ResultRecord[]): string {
  const searches = capacityOf(records);
  if (searches.length === 0) return '';
  const cards = searches.map((s, si) => {
    const tried = s.devices.flatMap((d) => d.probes.map(valueOf));
    const [lo, hi] = [Math.min(...tried), Math.max(...tried)];
    const groups = (['32-bit', '64-bit'] as const).map((bits) => {
      const rows = s.devices
        .filter((d) => d.bits === bits)
        .map((d, di) => {
          const r = d.result;
          const outcome = boundaryOutcome(d);
          const link = (rec: ResultRecord | null, text: string) => (rec ? `<a href="#${jobAnchor(rec.jobId)}">${esc(text)}</a>` : esc(text));
          const pass = d.pass ? `${link(d.pass, fmtValue(r.largestPass))}<span class="cellmeta">peak ${esc(formatMb(d.pass.memory.peakRssKb))} · ${esc(formatMs(d.pass.timing.wallMs))}</span>` : '—';
          const fail = r.smallestFail !== null ? `${link(d.fail, fmtValue(r.smallestFail))}<span class="cellmeta">${esc(d.fail?.reason ?? '')}</span>` : r.stoppedAt ? `${fmtValue(r.stoppedAt.value)}` : '—';
          return `<tr data-device="${esc(d.device)}" data-status="${r.status}" data-largest-pass="${r.largestPass ?? ''}" data-smallest-fail="${r.smallestFail ?? ''}"><th scope="row" class="dev">${esc(d.device)}<small>${esc(d.model)} · ${esc(formatRam(d.ramMb))}</small></th><td>${barSvg(d, lo, hi, `cap-${si}-${bits.slice(0, 2)}-${di}`)}<span class="cellmeta">${esc(statusText(d, s.param))}</span></td><td class="num">${pass}</td><td class="num">${fail}</td><td>${outcome ? badge(outcome) : '<span class="none">none</span>'}</td><td class="num">${r.jobs}</td></tr>`;
        });
      return rows.length ? `<tbody><tr class="group"><th scope="rowgroup" colspan="6">${bits} userland</th></tr>${rows.join('')}</tbody>` : '';
    });
    const figs = s.devices.map((d, di) => `<figure>${peakVsValueSvg(d, s.param, `capv-${si}-${di}`)}<figcaption><b>${esc(d.device)}</b> · ${d.bits} · ${esc(formatRam(d.ramMb))}</figcaption></figure>`);
    const fixed = fixedText(s);
    return `<section class="card" aria-labelledby="cap-${si}-h"><h3 id="cap-${si}-h">${esc(s.suite)}: the largest <code>${esc(s.param)}</code> that passes${fixed ? ` <small class="cellmeta" style="display:inline">with ${esc(fixed)}</small>` : ''}</h3>
<table class="capacity"><thead><tr><th scope="col">Device</th><th scope="col">From the smallest tried to the largest pass (log scale)</th><th scope="col">Largest pass</th><th scope="col">Smallest failure</th><th scope="col">Boundary</th><th scope="col">Jobs</th></tr></thead>${groups.join('')}</table>
<h4 class="cellmeta">Peak memory against ${esc(s.param)}</h4><div class="grid">${figs.join('')}</div></section>`;
  });
  return `<section id="capacity" aria-labelledby="capacity-h"><h2 id="capacity-h">Capacity</h2>
<p class="lede">How far each device goes: <code>hil envelope</code> stepped the parameter up geometrically to the first failure, then bisected between the last pass and the first failure. The boundary is a memory outcome or a timeout; a crash or failure stops a search and is shown as such. Every probe is a job of this run, listed with its parameters in Allure.</p>
${cards.join('\n')}</section>`;
}

/** The Markdown twin; no lines when the run holds no search. */
export function capacityMarkdown(records: readonly ResultRecord[]): string[] {
  const searches = capacityOf(records);
  if (searches.length === 0) return [];
  const out = ['## Capacity', ''];
  for (const s of searches) {
    const fixed = fixedText(s);
    out.push(`### ${s.suite}: the largest \`${s.param}\` that passes${fixed ? ` (with ${fixed})` : ''}`, '');
    out.push('| Device | Userland | RAM | Largest pass | Its peak · time | Smallest failure | Jobs |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const d of s.devices) {
      const r = d.result;
      const fail = r.smallestFail !== null ? `${fmtValue(r.smallestFail)} \`${r.failOutcome}\`` : r.stoppedAt ? `stopped at ${fmtValue(r.stoppedAt.value)} \`${r.stoppedAt.outcome}\`` : '— (passed all tried)';
      const peak = d.pass ? `${formatMb(d.pass.memory.peakRssKb)} · ${formatMs(d.pass.timing.wallMs)}` : '—';
      out.push(`| **${mdCell(d.device)}** | ${d.bits} | ${formatRam(d.ramMb)} | ${fmtValue(r.largestPass)} | ${peak} | ${fail} | ${r.jobs} |`);
    }
    out.push('');
  }
  return out;
}
