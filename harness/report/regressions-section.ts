/**
 * The regressions against the baseline, first thing on the comparison page,
 * in compare.md and in a CI job's step summary, with the thresholds they
 * were held to.
 */
import { describeThresholds } from '../config/thresholds.ts';
import type { RunDiff } from './diff.ts';
import { escapeHtml as esc, escapeMdCell as cell, formatMb, formatMs } from './format.ts';
import type { Regression } from './regressions.ts';

function fmt(n: number, unit: 'kb' | 'ms'): string {
  return unit === 'kb' ? formatMb(n) : formatMs(n);
}

/** What the nightly counts as the rule's name. */
const RULE_TEXT = { outcome: 'outcome got worse', memory: 'peak memory rose', time: 'time rose' } as const;

function beforeAfter(r: Regression): [string, string] {
  return r.rule === 'outcome' ? [r.before, r.after] : [fmt(r.before, r.unit), fmt(r.after, r.unit)];
}

/** Thresholds as printed with the result: the base, and each suite that has its own. */
export function thresholdLines(diff: RunDiff): string[] {
  return [`default: ${describeThresholds(diff.policy.base)}`, ...Object.entries(diff.policy.suites).map(([s, t]) => `${s}: ${describeThresholds(t)}`)];
}

/** One line per regression, for a terminal or a log. */
export function regressionLines(diff: RunDiff): string[] {
  return diff.regressions.map((r) => `${r.jobId}: ${r.why}`);
}

export function regressionsHtml(diff: RunDiff | null): string {
  if (!diff) return '';
  const n = diff.regressions.length;
  const rows = diff.regressions
    .map((r) => {
      const [before, after] = beforeAfter(r);
      return `<tr data-rule="${r.rule}" data-job="${esc(r.jobId)}"><th scope="row">${esc(r.jobId)}</th><td>${RULE_TEXT[r.rule]}</td><td class="num">${esc(before)} → ${esc(after)}</td><td>${esc(r.why)}</td></tr>`;
    })
    .join('');
  const shown = diff.emulatedTime.length
    ? `<p class="note">Emulated devices, time only (compared with emulated runs, never counted): ${diff.emulatedTime.map((r) => esc(`${r.jobId} ${r.why.split(';')[0]}`)).join('; ')}.</p>`
    : '';
  const thresholds = `<ul class="note" id="thresholds">${thresholdLines(diff).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`;
  const body = n
    ? `<div class="card"><table><thead><tr><th scope="col">Job</th><th scope="col">Rule</th><th scope="col">Before → now</th><th scope="col">Why</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<p class="none">No regression against <b>${esc(diff.baselineRunId)}</b>.</p>`;
  return `<section id="regressions" aria-labelledby="regressions-h" class="${n ? 'regressed' : 'clean'}"><h2 id="regressions-h">Regressions against the baseline (${n})</h2>
<p class="lede">Against <b>${esc(diff.baselineRunId)}</b>: an outcome that got worse, or peak memory or time that rose above the thresholds.</p>
${body}${shown}<p class="note">Thresholds:</p>${thresholds}</section>`;
}

/** The Markdown section: placed before everything else a reader scrolls past. */
export function regressionsMarkdown(diff: RunDiff | null): string[] {
  if (!diff) return [];
  const out = [`## Regressions against the baseline (${diff.regressions.length})`, ''];
  if (diff.regressions.length) {
    out.push('| Job | Rule | Before → now | Why |', '| --- | --- | --- | --- |');
    for (const r of diff.regressions) {
      const [before, after] = beforeAfter(r);
      out.push(`| ${cell(r.jobId)} | ${RULE_TEXT[r.rule]} | ${cell(`${before} → ${after}`)} | ${cell(r.why)} |`);
    }
    out.push('');
  } else out.push(`No regression against \`${diff.baselineRunId}\`.`, '');
  if (diff.emulatedTime.length) out.push(`Emulated devices, time only (never counted): ${diff.emulatedTime.map((r) => `${r.jobId} ${r.why.split(';')[0]}`).join('; ')}.`, '');
  out.push('Thresholds:', ...thresholdLines(diff).map((l) => `- ${l}`), '');
  return out;
}

/** A short Markdown block for $GITHUB_STEP_SUMMARY: the verdict at a glance, then the regressions. */
export function stepSummaryMarkdown(runId: string, diff: RunDiff | null): string {
  const head = diff
    ? diff.regressions.length
      ? `### ❌ pi-hil ${runId}: ${diff.regressions.length} regression${diff.regressions.length === 1 ? '' : 's'} against ${diff.baselineRunId}`
      : `### ✅ pi-hil ${runId}: no regression against ${diff.baselineRunId}`
    : `### pi-hil ${runId}: no baseline to compare with`;
  return [head, '', ...regressionsMarkdown(diff).slice(2)].join('\n') + '\n';
}
