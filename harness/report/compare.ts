/**
 * The comparison page: one self-contained HTML file (inline CSS and SVG, no
 * script, no network) that answers the article's question for this fleet.
 */
import type { ResultRecord } from '../results/record.ts';
import type { RunMeta } from '../results/run-meta.ts';
import { CLAIM_STANDING_TEXT, answer, assessClaims, bitsSummary, expectationTallies, type ClaimAssessment, type SuiteTally } from './claims.ts';
import { jobAnchor, SETUPS, setupOf, verdictLabel } from './cell.ts';
import type { RunDiff } from './diff.ts';
import { escapeHtml as esc, formatDelta, formatMb, formatMs, formatRam } from './format.ts';
import { PEAK_NOTE, bootText, bootsByDevice, cellNotes, peakText, sessionText, truncationTexts } from './notes.ts';
import { cellOf, deviceOrder, runSize, suiteOrder, type DeviceRow } from './order.ts';
import { OUTCOME_COLORS } from './palette.ts';
import { regressionsHtml } from './regressions-section.ts';
import { peakBarsSvg, timelineSvg } from './svg.ts';
import { testStatus } from './test-status.ts';
import { capacityHtml } from './capacity.ts';

/** A line of a results file that could not be read; the reports were built without it. */
export interface UnreadableLine {
  /** The file as a reader of the report knows it, e.g. "<run-id>/results.jsonl". */
  file: string;
  line: number;
  why: string;
}

export interface ReportInput {
  meta: RunMeta;
  records: ResultRecord[];
  diff: RunDiff | null;
  /** Lines of the results (or the baseline's) left out because they could not be read. */
  unreadable?: UnreadableLine[];
}

const badge = (outcome: ResultRecord['outcome']) => `<span class="badge o-${outcome}">${esc(outcome)}</span>`;

function css(): string {
  const badges = Object.entries(OUTCOME_COLORS)
    .map(([o, c]) => `.o-${o}{color:${c.ink};background:${c.tint};border-color:${c.ink}33}`)
    .join('');
  return `
:root{color-scheme:light;--ink:#1e2530;--muted:#5b6573;--line:#e2e6ec;--bg:#f5f6f8;--card:#fff;--accent:#1d4e89}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 24px 64px}
header.top{padding:8px 0 18px;border-bottom:1px solid var(--line);margin-bottom:8px}
h1{font-size:28px;line-height:1.2;margin:0 0 6px;letter-spacing:-.01em}
h2{font-size:20px;margin:40px 0 12px;letter-spacing:-.005em}
h3{font-size:16px;margin:0 0 8px}
p.lede{color:var(--muted);margin:0 0 12px}
.meta{display:flex;flex-wrap:wrap;gap:6px 18px;color:var(--muted);font-size:13px;margin:0;padding:0;list-style:none}
.meta b{color:var(--ink);font-weight:600}
nav.toc{font-size:13px;margin:14px 0 0;display:flex;gap:14px;flex-wrap:wrap}
nav.toc a{color:var(--accent);text-decoration:none}
nav.toc a:hover{text-decoration:underline}
.chips{display:flex;gap:8px;flex-wrap:wrap;margin:14px 0 0;padding:0;list-style:none}
.chip{border:1px solid var(--line);background:var(--card);border-radius:999px;padding:3px 12px;font-size:13px}
.chip b{font-variant-numeric:tabular-nums}
.answer{background:#eef4fb;border:1px solid #cfe0f3;border-radius:12px;padding:12px 18px;margin:0 0 16px}
.answer p{margin:0 0 4px}.answer ul{margin:0;padding-left:20px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px}
.three{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px}
.three .card{padding:14px 12px;overflow-x:auto}.three th,.three td{padding:6px 5px}.three .badge{margin:0 0 2px;font-size:11.5px;padding:1px 5px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:8px 10px;border-bottom:1px solid var(--line)}
thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600}
tbody th{font-weight:600}
.num{font-variant-numeric:tabular-nums}
.badge{display:inline-block;border:1px solid;border-radius:6px;padding:1px 7px;font-size:12.5px;font-weight:600;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:nowrap}
${badges}
.matrix-wrap{overflow-x:auto}
table.matrix td{min-width:170px}
table.matrix td a{color:inherit;text-decoration:none;display:block}
table.matrix td a:hover .badge{text-decoration:underline}
.cellmeta{display:block;color:var(--muted);font-size:12.5px;margin-top:3px;font-variant-numeric:tabular-nums}
.cellmeta.time{margin-top:0}
.v{display:block;font-size:12.5px;margin-top:2px}
.v-expected{color:#1f6f43}.v-unexpected{color:#a1261d;font-weight:600}.v-infra{color:#57534e}.v-skipped{color:#57534e}.v-notinstalled{color:#57534e;font-style:italic}.v-none{color:var(--muted)}
td.c-unexpected{box-shadow:inset 3px 0 0 #a1261d;background:#fffafa}
td.c-infra,td.c-skipped{box-shadow:inset 3px 0 0 #a8a29e}
td.c-notinstalled{box-shadow:inset 3px 0 0 #d6d3d1;background:repeating-linear-gradient(135deg,#fff 0 8px,#f7f6f4 8px 16px)}
.notes{display:block;font-size:12px;color:#8a5a00;margin-top:2px}
.boot{color:var(--accent)}
.note{font-size:13px;color:var(--muted);margin:10px 0 0;max-width:900px}
.warn{background:#fff7e6;border:1px solid #f0d9a8;border-radius:12px;padding:10px 16px;margin:16px 0 0;font-size:14px}
.warn ul{margin:4px 0 0;padding-left:20px}.warn code{font-size:13px}
.dev small{display:block;color:var(--muted);font-weight:400;font-size:12.5px}
tr.group th{background:#eef1f5;color:var(--ink);font-size:13px;text-transform:none;letter-spacing:0}
td.empty{color:#9aa3ae}
.bar{height:8px;border-radius:4px;background:#e9edf2;overflow:hidden;min-width:80px}
.bar span{display:block;height:100%;background:#1f6f43}
.claims{display:grid;gap:16px}
.claim header{display:flex;justify-content:space-between;gap:12px;align-items:baseline;flex-wrap:wrap}
.claim blockquote{margin:6px 0 10px;padding-left:12px;border-left:3px solid var(--line);color:var(--muted);font-style:italic}
.standing{font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;border-radius:999px;padding:2px 10px;border:1px solid}
.standing-supported{color:#1f6f43;background:#e3f3e8}.standing-contradicted{color:#a1261d;background:#fbe6e4}
.standing-mixed{color:#8a5a00;background:#fbf0d2}.standing-untested{color:#57534e;background:#efedea}
.untried{color:var(--muted);font-size:12.5px;font-style:italic}
.ev{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:760px){.ev{grid-template-columns:1fr}}
.ev h4{margin:4px 0;font-size:13px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.ev ul{margin:0;padding-left:18px;font-size:14px}
.ev li{margin:3px 0}
.none{color:var(--muted);font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:12px 14px}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:var(--muted);margin-top:6px}
figcaption b{color:var(--ink)}
.tl h3{margin:28px 0 10px}
.tl figure{scroll-margin-top:16px}
.tl figure:target{outline:2px solid var(--accent)}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12.5px;color:var(--muted);margin:0 0 12px}
.key{display:inline-block;width:18px;height:0;border-top:2px solid #1e2530;vertical-align:middle;margin-right:5px}
.key.ram{border-top:2px dashed #1d4e89}.key.anon{height:10px;border:0;background:#c9d8ea}
footer{margin-top:48px;color:var(--muted);font-size:12.5px;border-top:1px solid var(--line);padding-top:14px}
#regressions.regressed h2{color:#a1261d}
.up{color:#a1261d;font-weight:600}.down{color:#1f6f43;font-weight:600}
`;
}

function header(input: ReportInput): string {
  const { meta, records } = input;
  const size = runSize(records);
  const counts = { expected: 0, unexpected: 0, infra: 0, skipped: 0, notinstalled: 0, none: 0 };
  for (const r of records) counts[verdictLabel(r).key] += 1;
  const started = meta.startedAt.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
  const chip = (n: number, label: string) => `<li class="chip"><b>${n}</b> ${label}</li>`;
  return `<header class="top">
<h1>Can TensorFlow run on this Raspberry Pi?</h1>
<p class="lede">The article's three examples, measured on ${size.devices} devices across 32-bit and 64-bit userlands: how each run ended, how much memory it needed, and whether that matched what the article claims.</p>
<ul class="meta"><li>run <b>${esc(meta.runId)}</b></li><li>started <b>${esc(started)}</b></li><li>${size.devices} devices × ${size.suites} suites, ${size.jobs} jobs</li><li>pi-hil ${esc(meta.harnessVersion)}${meta.gitSha ? ` @ <code>${esc(meta.gitSha.slice(0, 7))}</code>` : ''}</li>${input.diff ? `<li>baseline <b>${esc(input.diff.baselineRunId)}</b></li>` : ''}</ul>
<ul class="chips" aria-label="Verdicts">${chip(counts.expected, 'as expected')}${chip(counts.unexpected, 'unexpected')}${chip(counts.infra, 'infrastructure')}${chip(counts.skipped, 'never probed')}${counts.notinstalled ? chip(counts.notinstalled, 'not installed') : ''}${counts.none ? chip(counts.none, 'without expectation') : ''}</ul>
${unreadableBanner(input.unreadable ?? [], records.length)}
<nav class="toc" aria-label="Sections">${input.diff ? '<a href="#regressions">Regressions</a>' : ''}${records.some((r) => r.envelope) ? '<a href="#capacity">Capacity</a>' : ''}<a href="#glance">32-bit vs 64-bit</a><a href="#matrix">Results</a><a href="#claims">The article's claims</a><a href="#changes">Changes</a><a href="#peaks">Peak memory</a><a href="#timelines">Timelines</a></nav>
</header>`;
}

/** The lines of the results that could not be read: the page is built without them, and says so first. */
function unreadableBanner(lines: UnreadableLine[], readable: number): string {
  if (lines.length === 0) return '';
  const items = lines.map((l) => `<li><code>${esc(`${l.file}:${l.line}`)}</code>: ${esc(l.why)}</li>`).join('');
  return `<section class="warn" role="note" aria-labelledby="unreadable-h"><b id="unreadable-h">${lines.length} line${lines.length === 1 ? '' : 's'} of the results could not be read</b>; this page is built from the ${readable} record${readable === 1 ? '' : 's'} that could. A run that crashed while writing leaves a torn last line.<ul>${items}</ul></section>`;
}

function outcomesText(t: SuiteTally): string {
  const parts = Object.entries(t.outcomes).map(([o, n]) => `${badge(o as ResultRecord['outcome'])}${n > 1 ? ` ×${n}` : ''}`);
  if (t.notInstalled) parts.push(`<span class="untried">not installed ×${t.notInstalled}</span>`);
  return parts.join(' ') || '<span class="none">not run</span>';
}

function glance(records: ResultRecord[]): string {
  const summary = bitsSummary(records);
  const lines = answer(summary).map((l) => `<li>${esc(l)}</li>`).join('');
  const cards = summary.map((s) => {
    const rows = s.suites
      .map((t) => {
        const pct = t.total ? Math.round((t.passed / t.total) * 100) : 0;
        return `<tr><th scope="row">${esc(t.suite)}</th><td class="num">${t.passed} of ${t.total}${t.notInstalled ? `<span class="untried" style="display:block">+${t.notInstalled} not installed</span>` : ''}<div class="bar" role="presentation"><span style="width:${pct}%"></span></div></td><td class="num">${t.minRamPassedMb === null ? '—' : esc(formatRam(t.minRamPassedMb))}</td><td>${outcomesText(t)}</td></tr>`;
      })
      .join('');
    return `<section class="card" aria-labelledby="glance-${s.setup}"><h3 id="glance-${s.setup}">${esc(s.bits)} <small class="cellmeta">${s.devices} device${s.devices === 1 ? '' : 's'}</small></h3>
<table><caption class="none" style="caption-side:bottom;text-align:left;font-size:12.5px">Jobs that never produced a product result are left out; so are jobs whose runtime is not installed on the device, which could not be tried.</caption><thead><tr><th scope="col">Example</th><th scope="col">Ran</th><th scope="col">Smallest RAM that ran it</th><th scope="col">Outcomes</th></tr></thead><tbody>${rows}</tbody></table></section>`;
  });
  return `<section id="glance" aria-labelledby="glance-h"><h2 id="glance-h">32-bit vs 64-bit at a glance</h2>
<div class="answer"><p><b>The article's question, answered for this fleet.</b> How many devices ran each example to the end, for each setup: a 32-bit userland on a 32-bit kernel (a Pi 3, older 32-bit installs), a 32-bit userland on the 64-bit kernel that 32-bit Raspberry Pi OS boots on a Pi 4 or 5 since 2023, and 64-bit:</p><ul>${lines}</ul></div><div class="three">${cards.join('')}</div></section>`;
}

function deviceHeader(d: DeviceRow, boots: number[] | undefined): string {
  const s = d.sample;
  const real = s.facts ? (s.facts.emulated ? 'emulated' : 'real') : s.device.transport === 'ssh' ? 'real' : 'emulated';
  // A VM's boot is the device's, not a job's: said once here, kept out of the job times.
  const boot = bootText(boots);
  return `<th scope="row" class="dev" data-device="${esc(d.name)}">${esc(d.name)}<small>${esc(s.device.model)} · ${esc(formatRam(s.device.ramMb))} · ${esc(s.facts?.dpkgArch ?? s.device.arch)} · ${real}</small>${boot ? `<small class="boot">${esc(boot)}</small>` : ''}</th>`;
}

/** What a matrix cell says under its badge: the peak (all three where they differ), the job's time, and any trouble the job went through. */
function cellMeta(r: ResultRecord): string {
  const peak = peakText(r) ?? 'no payload ran';
  const notes = cellNotes(r);
  return `<span class="cellmeta">${esc(peak)}</span><span class="cellmeta time">${esc(formatMs(r.timing.wallMs))}</span>${notes.length ? `<span class="notes">${esc(notes.join(' · '))}</span>` : ''}`;
}

function matrix(records: ResultRecord[]): string {
  const suites = suiteOrder(records);
  const devices = deviceOrder(records);
  const boots = bootsByDevice(records);
  const head = `<thead><tr><th scope="col">Device</th>${suites.map((s) => `<th scope="col">${esc(s)}</th>`).join('')}</tr></thead>`;
  const groups = SETUPS.map((setup) => {
    const rows = devices
      .filter((d) => setupOf(d.sample).id === setup.id)
      .map((d) => {
        const cells = suites.map((suite) => {
          const r = cellOf(records, d.name, suite);
          if (!r) return `<td class="empty">not run</td>`;
          const v = verdictLabel(r);
          return `<td data-job="${esc(r.jobId)}" data-outcome="${r.outcome}" class="c-${v.key}"><a href="#${jobAnchor(r.jobId)}" title="${esc(r.reason)}">${badge(r.outcome)}${cellMeta(r)}<span class="v v-${v.key}">${esc(v.text)}</span></a></td>`;
        });
        return `<tr>${deviceHeader(d, boots.get(d.name))}${cells.join('')}</tr>`;
      });
    if (rows.length === 0) return '';
    return `<tbody><tr class="group"><th scope="rowgroup" colspan="${suites.length + 1}">${setup.label}</th></tr>${rows.join('')}</tbody>`;
  });
  return `<section id="matrix" aria-labelledby="matrix-h"><h2 id="matrix-h">Results by device and suite</h2>
<p class="lede">Each cell: how the run ended, its peak memory and its time on the device (a VM's boot is shown once, under the device), and whether that is what the suite's expectation allows. <i>Not installed</i>: the suite's runtime is missing on that device, so it could not be tried and counts for no claim. Select a cell for its memory timeline.</p>
<div class="card matrix-wrap"><table class="matrix">${head}${groups.join('')}</table></div>
<p class="note" id="peak-note"><b>Peak memory.</b> ${esc(PEAK_NOTE)}</p></section>`;
}

function claimCard(c: ClaimAssessment): string {
  const list = (items: string[], none: string) => (items.length ? `<ul>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>` : `<p class="none">${none}</p>`);
  return `<article class="card claim" aria-labelledby="claim-${c.id}"><header><h3 id="claim-${c.id}">${esc(c.title)}</h3><span class="standing standing-${c.standing}">${esc(CLAIM_STANDING_TEXT[c.standing])}</span></header>
<blockquote>${esc(c.quote)}</blockquote><p>${esc(c.summary)}</p>
<div class="ev"><div><h4>Evidence for</h4>${list(c.for, 'None in this run.')}</div><div><h4>Evidence against</h4>${list(c.against, 'None in this run.')}</div></div></article>`;
}

function claims(records: ResultRecord[]): string {
  const tallies = expectationTallies(records);
  const rows = tallies
    .map((t) => `<tr><th scope="row">${esc(t.claim)}</th><td class="num">${t.met}</td><td class="num">${t.unmet}${t.jobs.length ? `<span class="cellmeta">${t.jobs.map(esc).join(', ')}</span>` : ''}</td><td class="num">${t.infra}</td><td class="num">${t.notInstalled}</td></tr>`)
    .join('');
  return `<section id="claims" aria-labelledby="claims-h"><h2 id="claims-h">The article's claims</h2>
<p class="lede">“Can TensorFlow run on a 32-bit Raspbian OS?” makes three claims. Here is what this run says about each.</p>
<div class="claims">${assessClaims(records).map(claimCard).join('')}</div>
${tallies.length ? `<h3 style="margin-top:24px">Suite expectations by claim</h3><div class="card"><table><thead><tr><th scope="col">Claim the expectation tests</th><th scope="col">Met</th><th scope="col">Unmet</th><th scope="col">Infrastructure</th><th scope="col">Not installed</th></tr></thead><tbody>${rows}</tbody></table></div>` : ''}</section>`;
}

function changes(diff: RunDiff | null): string {
  const h = `<h2 id="changes-h">Changes since the baseline</h2>`;
  if (!diff) return `<section id="changes" aria-labelledby="changes-h">${h}<p class="none">No baseline was given (<code>--baseline &lt;run-dir&gt;</code>), so nothing to compare.</p></section>`;
  const changeRows = diff.changes
    .map((c) => `<tr><th scope="row">${esc(c.jobId)}</th><td>${badge(c.before)} → ${badge(c.after)}</td><td>${c.kind === 'infra' ? 'infrastructure, not a product change' : c.kind}</td></tr>`)
    .join('');
  const fmt = (n: number, unit: 'kb' | 'ms') => (unit === 'kb' ? formatMb(n) : formatMs(n));
  const metricRegressions = diff.regressions.filter((r) => r.rule !== 'outcome');
  const regRows = metricRegressions
    .map((r) => `<tr><th scope="row">${esc(r.jobId)}</th><td>${r.metric}</td><td class="num">${esc(fmt(r.before, r.unit))} → ${esc(fmt(r.after, r.unit))}</td><td class="num up">${esc(formatDelta(r.before, r.after))}</td></tr>`)
    .join('');
  const t = diff.thresholds;
  return `<section id="changes" aria-labelledby="changes-h">${h}
<p class="lede">Against <b>${esc(diff.baselineRunId)}</b>. Regressions are flagged above +${t.memoryPct}% peak memory or +${t.timePct}% time, for jobs whose outcome did not change.</p>
<div class="two"><section class="card" aria-labelledby="chg-h"><h3 id="chg-h">Outcomes that changed (${diff.changes.length})</h3>${diff.changes.length ? `<table><thead><tr><th scope="col">Job</th><th scope="col">Outcome</th><th scope="col">Kind</th></tr></thead><tbody>${changeRows}</tbody></table>` : '<p class="none">No outcome changed.</p>'}</section>
<section class="card" aria-labelledby="reg-h"><h3 id="reg-h">Memory and time regressions (${metricRegressions.length})</h3>${metricRegressions.length ? `<table><thead><tr><th scope="col">Job</th><th scope="col">Metric</th><th scope="col">Before → now</th><th scope="col">Change</th></tr></thead><tbody>${regRows}</tbody></table>` : '<p class="none">None over the threshold.</p>'}</section></div>
${diff.added.length || diff.removed.length ? `<p class="lede">New jobs: ${diff.added.map(esc).join(', ') || 'none'}. Jobs no longer run: ${diff.removed.map(esc).join(', ') || 'none'}.</p>` : ''}</section>`;
}

function peaks(records: ResultRecord[]): string {
  const suites = suiteOrder(records);
  const figs = deviceOrder(records).map((d, i) => {
    const mine = suites.map((s) => cellOf(records, d.name, s)).filter((r): r is ResultRecord => r !== undefined);
    return `<figure>${peakBarsSvg(d.name, d.sample.device.ramMb, mine, `peak-${i}`)}<figcaption><b>${esc(d.name)}</b> · ${esc(setupOf(d.sample).short)} · RAM ${esc(formatRam(d.sample.device.ramMb))}</figcaption></figure>`;
  });
  return `<section id="peaks" aria-labelledby="peaks-h"><h2 id="peaks-h">Peak memory per device</h2>
<p class="legend"><span><span class="key ram"></span>device RAM</span><span>bars coloured by outcome</span></p><div class="grid">${figs.join('')}</div></section>`;
}

/** A job's caption under its timeline: outcome and reason, then its peaks, its session and what its output lost. */
function jobDetail(r: ResultRecord): string {
  const lines = [`<b>${esc(r.suite)}</b> ${badge(r.outcome)} ${esc(r.reason)}`];
  const peak = peakText(r);
  if (peak) lines.push(esc(peak));
  lines.push(esc(`agent: ${sessionText(r)}`));
  for (const t of truncationTexts(r)) lines.push(`<span class="notes" style="display:inline">${esc(t)}</span>`);
  return lines.join('<br>');
}

function timelines(records: ResultRecord[]): string {
  const suites = suiteOrder(records);
  const groups = deviceOrder(records).map((d) => {
    const figs = suites
      .map((s) => cellOf(records, d.name, s))
      .filter((r): r is ResultRecord => r !== undefined)
      .map((r) => `<figure id="${jobAnchor(r.jobId)}">${timelineSvg(r, `tl-${jobAnchor(r.jobId)}`)}<figcaption>${jobDetail(r)}</figcaption></figure>`);
    return `<h3>${esc(d.name)} <small class="cellmeta" style="display:inline">${esc(setupOf(d.sample).short)} · ${esc(formatRam(d.sample.device.ramMb))}</small></h3><div class="grid">${figs.join('')}</div>`;
  });
  return `<section id="timelines" class="tl" aria-labelledby="tl-h"><h2 id="tl-h">Memory timelines</h2>
<p class="legend"><span><span class="key"></span>resident memory (RSS)</span><span><span class="key anon"></span>anonymous share</span><span><span class="key ram"></span>device RAM, when in range</span><span>dotted lines: phases</span></p>
${groups.join('\n')}</section>`;
}

export function renderCompareHtml(input: ReportInput): string {
  // A capacity search's probes have their own section; the matrix and the claims are the ordinary jobs'.
  const plain = input.records.filter((r) => r.envelope === null);
  const failing = input.records.filter((r) => testStatus(r) === 'failed').length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>pi-hil ${esc(input.meta.runId)}: can TensorFlow run on this Raspberry Pi?${failing ? ` (${failing} unexpected)` : ''}</title>
<style>${css()}</style></head>
<body><main>
${header(input)}
${regressionsHtml(input.diff)}
${capacityHtml(input.records)}
${plain.length || !input.records.length ? `${glance(plain)}
${matrix(plain)}
${claims(plain)}` : ''}
${changes(input.diff)}
${plain.length ? peaks(plain) : ''}
${timelines(input.records)}
<footer>Generated by pi-hil ${esc(input.meta.harnessVersion)} from <code>results.jsonl</code> of run ${esc(input.meta.runId)}. Peak memory is the payload's resident high-water mark unless a cell shows RSS, anon and cgroup apart (see the note under the results); job times leave out the wait for the device; “emulated” devices are QEMU guests or memory-capped hosts standing in for a Pi.</footer>
</main></body></html>
`;
}
