/**
 * The site's index.html, drawn from nights.json alone: every night in a
 * table, newest first, and an inline SVG trend of the verdict counts with
 * one point per night. Links are relative, so the site works from any base
 * path (a GitHub project page, a GitLab Pages subpath, a plain folder).
 */
import { escapeHtml as esc } from '../report/format.ts';
import type { Night } from './nights.ts';

const SERIES = [
  { key: 'expected', label: 'as expected', color: '#1f6f43' },
  { key: 'unexpected', label: 'unexpected', color: '#a1261d' },
  { key: 'infra', label: 'infrastructure', color: '#8a6d1d' },
] as const;

/** Where a night's files are, relative to the site root. */
export function nightPaths(id: string): { dir: string; compare: string; compareMd: string; allure: string; results: string; runJson: string } {
  const dir = `nights/${id}/`;
  return { dir, compare: `${dir}compare.html`, compareMd: `${dir}compare.md`, allure: `${dir}allure/index.html`, results: `${dir}results.jsonl`, runJson: `${dir}run.json` };
}

/** "2026-11-23 02:00 UTC" */
function when(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** The trend chart: oldest night left, one <g class="night"> per night holding its points. */
export function trendSvg(nights: readonly Night[]): string {
  const chrono = [...nights].reverse();
  const [w, h, padL, padR, padT, padB] = [640, 180, 36, 12, 12, 28];
  const max = Math.max(1, ...chrono.flatMap((n) => SERIES.map((s) => n.counts[s.key])));
  const x = (i: number) => padL + (chrono.length === 1 ? (w - padL - padR) / 2 : (i * (w - padL - padR)) / (chrono.length - 1));
  const y = (v: number) => padT + (h - padT - padB) * (1 - v / max);
  const lines = SERIES.map(
    (s) => `<polyline class="series series-${s.key}" fill="none" stroke="${s.color}" stroke-width="2" points="${chrono.map((n, i) => `${x(i).toFixed(1)},${y(n.counts[s.key]).toFixed(1)}`).join(' ')}"/>`,
  );
  const points = chrono.map(
    (n, i) =>
      `<g class="night" data-night="${esc(n.id)}"><title>${esc(when(n.startedAt))}: ${SERIES.map((s) => `${n.counts[s.key]} ${s.label}`).join(', ')}</title>${SERIES.map(
        (s) => `<circle class="point point-${s.key}" cx="${x(i).toFixed(1)}" cy="${y(n.counts[s.key]).toFixed(1)}" r="3.5" fill="${s.color}"/>`,
      ).join('')}</g>`,
  );
  const axis = `<line x1="${padL}" y1="${h - padB}" x2="${w - padR}" y2="${h - padB}" stroke="#d6d3d1"/><text x="${padL - 6}" y="${y(max) + 4}" text-anchor="end">${max}</text><text x="${padL - 6}" y="${h - padB + 4}" text-anchor="end">0</text>`;
  const ends =
    chrono.length > 0
      ? `<text x="${x(0)}" y="${h - 8}" text-anchor="${chrono.length === 1 ? 'middle' : 'start'}">${esc(chrono[0]!.startedAt.slice(0, 10))}</text>${chrono.length > 1 ? `<text x="${x(chrono.length - 1)}" y="${h - 8}" text-anchor="end">${esc(chrono.at(-1)!.startedAt.slice(0, 10))}</text>` : ''}`
      : '';
  return `<svg class="trend" role="img" aria-label="Verdict counts per night" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" font-size="11" fill="#57534e">${axis}${ends}${lines.join('')}${points.join('')}</svg>`;
}

function row(n: Night): string {
  const p = nightPaths(n.id);
  const commit = n.commit ? `<code title="${esc(n.commit)}">${esc(n.commit.slice(0, 10))}</code>` : '—';
  const cell = (v: number, cls: string) => `<td class="num ${v > 0 ? cls : ''}">${v}</td>`;
  return `<tr data-night="${esc(n.id)}">
<td><a href="${p.compare}">${esc(when(n.startedAt))}</a></td>
<td>${commit}</td>
<td class="num" title="${esc(n.devices.join(', '))}">${n.devices.length}</td>
${cell(n.counts.expected, 'ok')}${cell(n.counts.unexpected, 'bad')}${cell(n.counts.infra, 'warn')}
<td class="num">${n.regressions === null ? '—' : n.regressions}</td>
<td class="links"><a href="${p.compare}">comparison</a> · <a href="${p.compareMd}">md</a> · <a href="${p.allure}">Allure ${n.allure}</a> · <a href="${p.results}">results.jsonl</a> · <a href="${p.runJson}">run.json</a></td>
</tr>`;
}

export function renderIndex(nights: readonly Night[]): string {
  const newest = nights[0];
  const legend = SERIES.map((s) => `<span><i style="background:${s.color}"></i>${s.label}</span>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>pi-hil nightly: ${nights.length} night${nights.length === 1 ? '' : 's'}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;color:#1c1917;margin:2rem auto;max-width:72rem;padding:0 1rem}
h1{font-size:1.4rem;margin:0 0 .25rem}p.lead{color:#57534e;margin:0 0 1rem}
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .6rem;border-bottom:1px solid #e7e5e4;text-align:left;vertical-align:top}
th{font-weight:600;background:#fafaf9}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{color:#1f6f43}td.bad{color:#a1261d;font-weight:600}td.warn{color:#8a6d1d}
.legend span{margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
a{color:#1d4ed8}
</style>
</head>
<body>
<h1>pi-hil nightly: can TensorFlow run on these Raspberry Pi setups?</h1>
<p class="lead">${nights.length} night${nights.length === 1 ? '' : 's'}, newest first.${newest ? ` Latest: <a href="latest/compare.html">${esc(when(newest.startedAt))}</a> (<a href="latest/allure/index.html">Allure</a>). Machine-readable: <a href="nights.json">nights.json</a>.` : ''}</p>
<figure>${trendSvg(nights)}<figcaption class="legend">${legend}</figcaption></figure>
<table>
<thead><tr><th>night</th><th>commit</th><th class="num">devices</th><th class="num">as expected</th><th class="num">unexpected</th><th class="num">infra</th><th class="num">regressions</th><th>reports</th></tr></thead>
<tbody>
${nights.map(row).join('\n')}
</tbody>
</table>
</body>
</html>
`;
}

/** nights/<id>/index.html and latest/index.html: a folder URL opens the comparison page. */
export function nightRedirect(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=compare.html"><title>pi-hil night</title></head>
<body><p><a href="compare.html">The comparison page</a> · <a href="allure/index.html">Allure report</a> · <a href="results.jsonl">results.jsonl</a> · <a href="run.json">run.json</a></p></body></html>
`;
}
