/**
 * A TAP 14 stream, one test point per job, with a YAML diagnostic block.
 * YAML comes from the yaml package so that any string (colons, quotes,
 * newlines) stays valid; each line is indented two spaces as TAP 14 wants.
 */
import { stringify } from 'yaml';
import { kernelBitsOf, type ResultRecord } from '../results/record.ts';
import { skipReason, testStatus } from './test-status.ts';

/** TAP descriptions end at '#' (directive) and at a newline; escape the one, flatten the other. */
function description(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\\/g, '\\\\').replace(/#/g, '\\#');
}

function diagnostics(r: ResultRecord): string {
  const doc = {
    outcome: r.outcome,
    status: testStatus(r),
    reason: r.reason,
    device: { name: r.device.name, model: r.device.model, ramMb: r.device.ramMb, arch: r.device.arch, longBit: r.facts?.longBit ?? null, kernelBits: kernelBitsOf(r.facts) },
    expectation: r.expectation,
    peakRssKb: r.memory.peakRssKb,
    wallMs: r.timing.wallMs,
    exit: r.exit,
    evidence: r.evidence.map((e) => `${e.source}: ${e.detail}`),
    ...(r.logs.kernelOomLines.length ? { kernelOomLines: r.logs.kernelOomLines } : {}),
    ...(r.logs.stderrTail ? { stderrTail: r.logs.stderrTail } : {}),
  };
  const yaml = stringify(doc, { lineWidth: 0 }).trimEnd();
  return ['  ---', ...yaml.split('\n').map((l) => `  ${l}`), '  ...'].join('\n');
}

export function renderTap(records: ResultRecord[]): string {
  const lines = ['TAP version 14', `1..${records.length}`];
  records.forEach((r, i) => {
    const status = testStatus(r);
    const desc = description(`${r.jobId}: ${r.outcome}`);
    if (status === 'skipped') lines.push(`ok ${i + 1} - ${desc} # SKIP ${description(skipReason(r))}`);
    else lines.push(`${status === 'passed' ? 'ok' : 'not ok'} ${i + 1} - ${desc}`);
    lines.push(diagnostics(r));
  });
  return lines.join('\n') + '\n';
}
