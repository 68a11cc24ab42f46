/**
 * JUnit XML for CI test tabs: one <testsuite> per suite, one <testcase> per
 * device. failed → <failure>, broken (infra) → <error>, skipped → <skipped>.
 */
import { kernelBitsOf, type ResultRecord } from '../results/record.ts';
import { formatMb } from './format.ts';
import { columnOf, suiteOrder } from './order.ts';
import { skipReason, statusMessage, testStatus } from './test-status.ts';

/** Escape for XML text and attributes, dropping characters XML 1.0 cannot carry at all. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

const secs = (ms: number) => (ms / 1000).toFixed(3);

function properties(r: ResultRecord): string {
  const props: [string, string][] = [
    ['outcome', r.outcome],
    ['device.model', r.device.model],
    ['device.ramMb', String(r.device.ramMb)],
    ['device.arch', r.device.arch],
    ['device.transport', r.device.transport],
    ['userland.longBit', String(r.facts?.longBit ?? '')],
    ['kernel.bits', String(kernelBitsOf(r.facts) ?? '')],
    ['emulated', String(r.facts?.emulated ?? r.device.transport !== 'ssh')],
    ['memory.peak', formatMb(r.memory.peakRssKb)],
    ['memory.peakRssKb', String(r.memory.peakRssKb ?? '')],
    ['expectation', r.expectation ? `${r.expectation.allowed.join('|')} (${r.expectation.verdict})` : ''],
  ];
  return `<properties>${props.map(([n, v]) => `<property name="${xmlEscape(n)}" value="${xmlEscape(v)}"/>`).join('')}</properties>`;
}

function testcase(r: ResultRecord): string {
  const status = testStatus(r);
  const head = `<testcase name="${xmlEscape(r.device.name)}" classname="${xmlEscape(r.suite)}" time="${secs(r.timing.wallMs)}">`;
  let verdict = '';
  if (status === 'failed') verdict = `<failure message="${xmlEscape(`${r.outcome}: ${r.reason}`)}" type="${r.outcome}">${xmlEscape(statusMessage(r))}</failure>`;
  if (status === 'broken') verdict = `<error message="${xmlEscape(`${r.outcome}: ${r.reason}`)}" type="${r.outcome}">${xmlEscape(statusMessage(r))}</error>`;
  if (status === 'skipped') verdict = `<skipped message="${xmlEscape(skipReason(r))}"/>`;
  const out = r.logs.stdoutTail ? `<system-out>${xmlEscape(r.logs.stdoutTail)}</system-out>` : '';
  const err = r.logs.stderrTail ? `<system-err>${xmlEscape(r.logs.stderrTail)}</system-err>` : '';
  return `    ${head}${properties(r)}${verdict}${out}${err}</testcase>`;
}

export function renderJunit(records: ResultRecord[], runId: string): string {
  const count = (rs: ResultRecord[], s: string) => rs.filter((r) => testStatus(r) === s).length;
  const suites = suiteOrder(records).map((suite) => {
    const rs = records.filter((r) => columnOf(r) === suite);
    const time = rs.reduce((sum, r) => sum + r.timing.wallMs, 0);
    const first = rs.map((r) => r.timing.startedAt).sort()[0] ?? '';
    return (
      `  <testsuite name="${xmlEscape(suite)}" tests="${rs.length}" failures="${count(rs, 'failed')}" errors="${count(rs, 'broken')}" skipped="${count(rs, 'skipped')}" time="${secs(time)}" timestamp="${xmlEscape(first.replace(/\.\d+Z$/, ''))}">\n` +
      `${rs.map(testcase).join('\n')}\n  </testsuite>`
    );
  });
  const total = records.reduce((sum, r) => sum + r.timing.wallMs, 0);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="pi-hil ${xmlEscape(runId)}" tests="${records.length}" failures="${count(records, 'failed')}" errors="${count(records, 'broken')}" skipped="${count(records, 'skipped')}" time="${secs(total)}">\n` +
    `${suites.join('\n')}\n</testsuites>\n`
  );
}
