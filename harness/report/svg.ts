/**
 * Our own SVG charts: small, dependency-free, readable without colour
 * (labels carry the numbers) and with <title>/<desc> text alternatives.
 */
import type { ResultRecord } from '../results/record.ts';
import { CHART, OUTCOME_COLORS } from './palette.ts';
import { escapeHtml as esc, formatMb, formatMs, formatRam } from './format.ts';

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"';
/** A white halo under a label keeps it legible where it crosses a line. */
const HALO = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"';

/** Round up to a tidy number (1, 2, 2.5, 5 × 10^n). */
function nice(value: number): number {
  if (value <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * exp + 1e-9) return step * exp;
  return 10 * exp;
}

/** A tidy axis end in KiB: whole MB below 1 GiB, whole-ish GB above, so the labels read well. */
function niceMaxKb(kb: number): number {
  const mb = kb / 1024;
  return mb > 1024 ? nice(mb / 1024) * 1024 * 1024 : nice(Math.max(mb, 1)) * 1024;
}

/** Axis ticks: "0", "256 MB", "2 GB" (no trailing .0). */
const axisLabel = (kb: number) => (kb === 0 ? '0' : formatMb(kb).replace('.0 ', ' '));

/** Short bar labels for the known suites; the full name is in each bar's <title>. */
const SHORT: Record<string, string> = { 'keras-train': 'train', 'device-listing': 'listing', 'tflite-inference': 'tflite', 'memory-ladder': 'ladder' };
const shortName = (suite: string) => SHORT[suite] ?? (suite.length > 10 ? `${suite.slice(0, 9)}…` : suite);

/** Gridlines and labels of the memory axis at 0, half and full scale; both charts share them. */
function memoryGrid(left: number, width: number, yMax: number, y: (kb: number) => number): string[] {
  return [0, 0.5, 1].flatMap((frac) => {
    const yy = y(yMax * frac).toFixed(1);
    const label = (y(yMax * frac) + 4).toFixed(1);
    return [
      `<line x1="${left}" x2="${left + width}" y1="${yy}" y2="${yy}" stroke="${CHART.grid}"/>`,
      `<text x="${left - 6}" y="${label}" text-anchor="end" fill="${CHART.text}">${esc(axisLabel(yMax * frac))}</text>`,
    ];
  });
}

function open(id: string, width: number, height: number, title: string, desc: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
    `aria-labelledby="${id}-title ${id}-desc" ${FONT} font-size="11" class="chart">` +
    `<title id="${id}-title">${esc(title)}</title><desc id="${id}-desc">${esc(desc)}</desc>`
  );
}

/** Text alternative of a job's timeline: the numbers a reader would take from the chart. */
export function describeTimeline(r: ResultRecord): string {
  const s = r.memory.samples;
  if (s.length === 0) return `No memory samples: the job ended ${r.outcome} before the payload ran.`;
  const last = s.at(-1)!;
  return (
    `Resident memory over ${formatMs(last.t)}, peaking at ${formatMb(r.memory.peakRssKb)} ` +
    `on a device with ${formatRam(r.device.ramMb)} of RAM; ${s.length} samples; ` +
    `phases ${r.phases.map((p) => p.name).join(', ') || 'none'}; the job ended ${r.outcome}.`
  );
}

/** Memory timeline of one job: RSS line over the anonymous share, phase marks, the RAM line when it is in range. */
export function timelineSvg(r: ResultRecord, id: string, width = 380, height = 170): string {
  const title = `Memory timeline: ${r.suite} on ${r.device.name}`;
  const samples = r.memory.samples;
  const out = [open(id, width, height, title, describeTimeline(r))];
  if (samples.length === 0) {
    out.push(`<rect x="0.5" y="0.5" width="${width - 1}" height="${height - 1}" rx="6" fill="none" stroke="${CHART.grid}"/>`);
    out.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="${CHART.text}">no samples: ${esc(r.outcome)} before the payload ran</text></svg>`);
    return out.join('');
  }
  const pad = { l: 58, r: 12, t: 22, b: 26 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const ramKb = r.device.ramMb * 1024;
  const peakKb = Math.max(...samples.map((s) => s.rssKb), r.memory.peakRssKb ?? 0);
  // Draw the RAM line only when it keeps the curve readable (within 1.6× of the peak).
  const showRam = ramKb <= peakKb * 1.6;
  const yMax = niceMaxKb(Math.max(peakKb, showRam ? ramKb : 0) * 1.05);
  const tMax = Math.max(samples.at(-1)!.t, 1);
  const x = (t: number) => pad.l + (t / tMax) * w;
  const y = (kb: number) => pad.t + h - (kb / yMax) * h;
  const f = (n: number) => n.toFixed(1);

  out.push(...memoryGrid(pad.l, w, yMax, y));
  out.push(`<text x="${pad.l}" y="${height - 8}" fill="${CHART.text}">0 s</text>`);
  out.push(`<text x="${pad.l + w}" y="${height - 8}" text-anchor="end" fill="${CHART.text}">${esc(formatMs(tMax))}</text>`);

  for (const p of r.phases.slice(1)) {
    const px = f(x(p.startMs));
    out.push(`<line x1="${px}" x2="${px}" y1="${pad.t}" y2="${pad.t + h}" stroke="${CHART.axis}" stroke-dasharray="2 3"/>`);
  }
  r.phases.forEach((p) => {
    const mid = x((p.startMs + Math.min(p.endMs, tMax)) / 2);
    if (x(p.endMs) - x(p.startMs) > 34) out.push(`<text x="${f(mid)}" y="${pad.t - 8}" text-anchor="middle" fill="${CHART.axis}">${esc(p.name)}</text>`);
  });

  const anon = samples.map((s) => `${f(x(s.t))},${f(y(s.anonKb))}`).join(' ');
  out.push(`<polygon points="${f(x(samples[0]!.t))},${f(y(0))} ${anon} ${f(x(samples.at(-1)!.t))},${f(y(0))}" fill="${CHART.anon}" opacity="0.7"><title>anonymous memory</title></polygon>`);
  const ink = OUTCOME_COLORS[r.outcome].ink;
  out.push(`<polyline points="${samples.map((s) => `${f(x(s.t))},${f(y(s.rssKb))}`).join(' ')}" fill="none" stroke="${ink}" stroke-width="2" stroke-linejoin="round" class="rss"/>`);
  if (showRam) {
    const ry = f(y(ramKb));
    out.push(`<line x1="${pad.l}" x2="${pad.l + w}" y1="${ry}" y2="${ry}" stroke="${CHART.ram}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    out.push(`<text x="${pad.l + 4}" y="${f(y(ramKb) - 4)}" fill="${CHART.ram}" ${HALO}>RAM ${esc(formatRam(r.device.ramMb))}</text>`);
  }
  const last = samples.at(-1)!;
  if (r.outcome !== 'passed') {
    out.push(`<circle cx="${f(x(last.t))}" cy="${f(y(last.rssKb))}" r="4" fill="${ink}"/>`);
    out.push(`<text x="${f(x(last.t) - 7)}" y="${f(Math.max(pad.t + 10, y(last.rssKb) - 8))}" text-anchor="end" fill="${ink}" font-weight="600" ${HALO}>${esc(r.outcome)}</text>`);
  }
  out.push('</svg>');
  return out.join('');
}

/** Peak memory of every suite on one device, as bars, with the device's RAM as a line across. */
export function peakBarsSvg(deviceName: string, ramMb: number, records: ResultRecord[], id: string, width = 300, height = 190): string {
  const measured = records.filter((r) => r.memory.peakRssKb !== null);
  const desc =
    measured.length === 0
      ? `No peak memory measured on ${deviceName}.`
      : `Peak memory on ${deviceName} (RAM ${formatRam(ramMb)}): ` +
        measured.map((r) => `${r.suite} ${formatMb(r.memory.peakRssKb)} (${r.outcome})`).join('; ') + '.';
  const out = [open(id, width, height, `Peak memory per suite on ${deviceName}`, desc)];
  const pad = { l: 58, r: 10, t: 30, b: 40 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const ramKb = ramMb * 1024;
  const yMax = niceMaxKb(Math.max(ramKb, ...measured.map((r) => r.memory.peakRssKb ?? 0)) * 1.08);
  const y = (kb: number) => pad.t + h - (kb / yMax) * h;
  const f = (n: number) => n.toFixed(1);
  out.push(...memoryGrid(pad.l, w, yMax, y));
  const slot = w / Math.max(records.length, 1);
  const barW = Math.min(34, slot * 0.6);
  records.forEach((r, i) => {
    const cx = pad.l + slot * (i + 0.5);
    const kb = r.memory.peakRssKb;
    const label = shortName(r.suite);
    if (kb !== null) {
      const top = y(kb);
      out.push(`<rect x="${f(cx - barW / 2)}" y="${f(top)}" width="${f(barW)}" height="${f(pad.t + h - top)}" rx="2" fill="${OUTCOME_COLORS[r.outcome].ink}"><title>${esc(`${r.suite}: ${formatMb(kb)}, ${r.outcome}`)}</title></rect>`);
      out.push(`<text x="${f(cx)}" y="${f(top - 4)}" text-anchor="middle" fill="${CHART.text}" ${HALO}>${esc(formatMb(kb))}</text>`);
    } else {
      out.push(`<text x="${f(cx)}" y="${f(pad.t + h - 4)}" text-anchor="middle" fill="${CHART.axis}">n/a</text>`);
    }
    out.push(`<text x="${f(cx)}" y="${pad.t + h + 14}" text-anchor="middle" fill="${CHART.text}">${esc(label)}</text>`);
    out.push(`<text x="${f(cx)}" y="${pad.t + h + 27}" text-anchor="middle" fill="${OUTCOME_COLORS[r.outcome].ink}" font-size="10">${esc(r.outcome)}</text>`);
  });
  const ry = f(y(ramKb));
  out.push(`<line x1="${pad.l}" x2="${pad.l + w}" y1="${ry}" y2="${ry}" stroke="${CHART.ram}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
  // The RAM key sits above the plot, so it never collides with a bar's value label.
  out.push(`<line x1="${pad.l}" x2="${pad.l + 18}" y1="10" y2="10" stroke="${CHART.ram}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
  out.push(`<text x="${pad.l + 24}" y="14" fill="${CHART.ram}">RAM ${esc(formatRam(ramMb))}</text>`);
  out.push('</svg>');
  return out.join('');
}
