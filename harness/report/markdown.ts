/**
 * The comparison page's Markdown twin, for CI job summaries, PR comments
 * and terminals (`hil report --format md`). Same facts, no charts.
 */
import type { ResultRecord } from '../results/record.ts';
import { CLAIM_STANDING_TEXT, answer, assessClaims, bitsSummary } from './claims.ts';
import { setupOf, verdictLabel } from './cell.ts';
import type { ReportInput } from './compare.ts';
import { escapeMdCell as cell, formatDelta, formatMb, formatMs, formatRam } from './format.ts';
import { PEAK_NOTE, bootText, bootsByDevice, cellNotes, peakView, sessionText, truncationTexts } from './notes.ts';
import { cellOf, deviceOrder, runSize, suiteOrder } from './order.ts';
import { capacityMarkdown } from './capacity.ts';
import { regressionsMarkdown } from './regressions-section.ts';

const STANDING_MARK = { supported: '🟢', contradicted: '🔴', mixed: '🟡', untested: '⚪' } as const;

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(head: string[], rows: string[][]): string[] {
  return [row(head), row(head.map(() => '---')), ...rows.map(row)];
}

function jobCell(r: ResultRecord | undefined): string {
  if (!r) return '—';
  const view = peakView(r);
  // Where the peaks differ they are all given, slash-separated so they read as one item beside the time.
  const peak = view.differ ? view.parts.map((p) => `${p.label} ${formatMb(p.kb)}`).join(' / ') : r.memory.peakRssKb === null ? 'no payload' : formatMb(r.memory.peakRssKb);
  const notes = cellNotes(r);
  return `${verdictLabel(r).mark} \`${r.outcome}\` · ${peak} · ${formatMs(r.timing.wallMs)}${notes.length ? ` · ${notes.join(' · ')}` : ''}`;
}

export function renderMarkdown(input: ReportInput): string {
  const { meta, diff } = input;
  // A capacity search's probes get their own section; the rest of the page is the ordinary jobs'.
  const records = input.records.filter((r) => r.envelope === null);
  const suites = suiteOrder(records);
  const devices = deviceOrder(records);
  // The headline counts every record, a capacity search's probes too (as the HTML page does).
  const size = runSize(input.records);
  const out: string[] = [];
  out.push('# Can TensorFlow run on this Raspberry Pi?', '');
  out.push(`Run \`${meta.runId}\` · started ${meta.startedAt} · ${size.devices} devices × ${size.suites} suites, ${size.jobs} jobs · pi-hil ${meta.harnessVersion}${meta.gitSha ? ` @ \`${meta.gitSha.slice(0, 7)}\`` : ''}`, '');
  const counts = { expected: 0, unexpected: 0, infra: 0, skipped: 0, notinstalled: 0, none: 0 };
  for (const r of input.records) counts[verdictLabel(r).key] += 1;
  out.push(`✅ ${counts.expected} as expected · ❌ ${counts.unexpected} unexpected · ⚠️ ${counts.infra} infrastructure · ⏭️ ${counts.skipped} never probed${counts.notinstalled ? ` · ➖ ${counts.notinstalled} not installed` : ''}`, '');
  const unreadable = input.unreadable ?? [];
  if (unreadable.length) {
    out.push(`> ⚠️ **${unreadable.length} line${unreadable.length === 1 ? '' : 's'} of the results could not be read**; this summary is built from the ${records.length} record${records.length === 1 ? '' : 's'} that could.`, '>');
    out.push(...unreadable.map((l) => `> - \`${l.file}:${l.line}\`: ${l.why.replace(/\r?\n/g, ' ')}`), '');
  }

  out.push(...regressionsMarkdown(diff));
  const capacity = capacityMarkdown(input.records);
  out.push(...capacity);
  // A run of capacity searches alone has no matrix or claims to show.
  if (records.length === 0 && capacity.length > 0) return out.join('\n');
  out.push('## 32-bit vs 64-bit at a glance', '');
  const summary = bitsSummary(records);
  out.push(...answer(summary).map((l) => `- ${l}`), '');
  // One column per setup: 32-bit on a 32-bit kernel, 32-bit on a 64-bit kernel, 64-bit.
  const glanceRows = (summary[0]?.suites ?? []).map((t, i) => {
    const side = (x: typeof t | undefined) =>
      x ? `${x.passed} of ${x.total} ran${x.minRamPassedMb === null ? '' : ` (from ${formatRam(x.minRamPassedMb)})`}${x.notInstalled ? `, ${x.notInstalled} not installed` : ''}` : '—';
    return [t.suite, ...summary.map((s) => side(s.suites[i]))];
  });
  out.push(...table(['Example', ...summary.map((s) => `${s.bits} (${s.devices} devices)`)], glanceRows), '');

  out.push('## Results by device and suite', '');
  out.push(
    'Each cell: verdict, outcome, peak memory, time on the device (without waiting for it; a VM boots once, in the Boot column). ✅ as expected · ❌ unexpected · ⚠️ infrastructure · ⏭️ never probed · ➖ not installed: the runtime is missing there, so the suite could not be tried.',
    '',
  );
  const boots = bootsByDevice(records);
  const bootCol = boots.size > 0;
  out.push(
    ...table(
      ['Device', 'Setup', 'RAM', ...(bootCol ? ['Boot'] : []), ...suites],
      devices.map((d) => [
        `**${cell(d.name)}**`,
        setupOf(d.sample).short,
        formatRam(d.sample.device.ramMb),
        ...(bootCol ? [bootText(boots.get(d.name))?.replace(/^boot /, '') ?? '—'] : []),
        ...suites.map((s) => cell(jobCell(cellOf(records, d.name, s)))),
      ]),
    ),
    '',
  );
  out.push(`Peak memory: ${PEAK_NOTE}`, '');

  out.push("## The article's claims", '');
  for (const c of assessClaims(records)) {
    out.push(`### ${STANDING_MARK[c.standing]} ${c.title}: ${CLAIM_STANDING_TEXT[c.standing]}`, '', `> ${c.quote}`, '', c.summary, '');
    out.push('Evidence for:', ...(c.for.length ? c.for.map((e) => `- ${e}`) : ['- none in this run']), '');
    out.push('Evidence against:', ...(c.against.length ? c.against.map((e) => `- ${e}`) : ['- none in this run']), '');
  }

  out.push('## Changes since the baseline', '');
  if (!diff) {
    out.push('No baseline given (`--baseline <run-dir>`).', '');
  } else {
    out.push(`Against \`${diff.baselineRunId}\`; regressions above +${diff.thresholds.memoryPct}% peak memory or +${diff.thresholds.timePct}% time.`, '');
    if (diff.changes.length) {
      out.push(...table(['Job', 'Before', 'Now', 'Kind'], diff.changes.map((c) => [cell(c.jobId), `\`${c.before}\``, `\`${c.after}\``, c.kind])), '');
    } else out.push('No outcome changed.', '');
    const metricRegressions = diff.regressions.filter((r) => r.rule !== 'outcome');
    if (metricRegressions.length) {
      const fmt = (n: number, u: 'kb' | 'ms') => (u === 'kb' ? formatMb(n) : formatMs(n));
      out.push(...table(['Job', 'Metric', 'Before', 'Now', 'Change'], metricRegressions.map((r) => [cell(r.jobId), r.metric, fmt(r.before, r.unit), fmt(r.after, r.unit), formatDelta(r.before, r.after)])), '');
    } else out.push('No memory or time regression over the threshold.', '');
    if (diff.added.length) out.push(`New jobs: ${diff.added.join(', ')}.`, '');
    if (diff.removed.length) out.push(`No longer run: ${diff.removed.join(', ')}.`, '');
  }

  const eventful = records.filter((r) => r.agent.reattached > 0 || r.agent.leftPids.length > 0 || truncationTexts(r).length > 0);
  if (eventful.length) {
    out.push('## Sessions and output', '');
    for (const r of eventful) out.push(`- **${r.jobId}**: ${[sessionText(r), ...truncationTexts(r)].join('; ')}`);
    out.push('');
  }

  const unexpected = records.filter((r) => verdictLabel(r).key === 'unexpected' || verdictLabel(r).key === 'infra');
  if (unexpected.length) {
    out.push('## What needs a look', '');
    for (const r of unexpected) out.push(`- **${r.jobId}** \`${r.outcome}\`: ${r.reason}`);
    out.push('');
  }
  return out.join('\n');
}
