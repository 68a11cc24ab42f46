/**
 * Allure 2 results, written by us from the result records: one test per
 * device × suite, identified by fullName `<suite>.<device>` plus the device
 * and suite parameters, so history links across nightly runs. Generating
 * the HTML report lives in allure-generate.ts.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { arch, release, type } from 'node:os';
import { join } from 'node:path';
import type { ResultRecord } from '../results/record.ts';
import type { RunMeta } from '../results/run-meta.ts';
import { formatBytes, formatMb, formatMs, formatRam } from './format.ts';
import { bootText, leftPidsText, peakView, reattachText, sessionText, truncationTexts, untrustedTimeText } from './notes.ts';
import { timelineSvg } from './svg.ts';
import { bitness, notInstalled, statusMessage, testStatus, type TestStatus } from './test-status.ts';

/** Allure drops attachments whose file name is not this (silently). */
export const SAFE_SOURCE = /^[a-zA-Z0-9._-]{1,100}$/;

interface Attachment {
  name: string;
  source: string;
  type: string;
}
interface Step {
  name: string;
  status: TestStatus;
  stage: 'finished';
  start: number;
  stop: number;
  parameters: { name: string; value: string }[];
  steps: Step[];
  attachments: Attachment[];
}
export interface AllureResult {
  uuid: string;
  testCaseId: string;
  historyId: string;
  fullName: string;
  name: string;
  status: TestStatus;
  statusDetails: { message: string; trace: string };
  stage: 'finished';
  description: string;
  start: number;
  stop: number;
  labels: { name: string; value: string }[];
  parameters: { name: string; value: string; excluded?: boolean }[];
  links: { name: string; url: string; type: string }[];
  attachments: Attachment[];
  steps: Step[];
}

/** A stable UUID-shaped id from text: rebuilding a report gives the same files. */
function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The test a record belongs to: its suite on its device; params are that test's parameters, not new tests. */
export function testKeyOf(r: Pick<ResultRecord, 'suite' | 'device'>): string {
  return `${r.suite}.${r.device.name}`;
}

/** A test's Allure test case id (from testKeyOf): the same on every night, so history and known issues find it. */
export function testCaseIdOf(testKey: string): string {
  return createHash('md5').update(testKey).digest('hex');
}

/** Any text to a flat, safe file-name part. */
export function safeName(text: string, max = 60): string {
  return text.replace(/[^a-zA-Z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, max) || 'x';
}

export function timelineCsv(r: ResultRecord): string {
  const head = 't_ms,rss_kb,anon_kb,file_kb,hwm_kb,avail_kb,swap_used_kb,majflt_per_s,psi_some10,cgroup_kb';
  const rows = r.memory.samples.map((s) =>
    [s.t, s.rssKb, s.anonKb, s.fileKb, s.hwmKb, s.availKb, s.swapUsedKb, s.majfltPerS, s.psiSome10 ?? '', s.cgroupKb ?? ''].join(','),
  );
  return [head, ...rows].join('\n') + '\n';
}

interface PendingFile {
  source: string;
  content: string;
}

function traceOf(r: ResultRecord): string {
  const parts = [r.evidence.map((e) => `[${e.source}] ${e.detail}`).join('\n')];
  // A session that dropped or left processes behind is part of why to trust (or doubt) this result.
  const session = [reattachText(r), leftPidsText(r)].filter((t): t is string => t !== null);
  if (session.length) parts.push(`agent: ${session.join('; ')} (payload pid ${r.agent.payloadPid ?? 'none'})`);
  const cut = truncationTexts(r);
  if (cut.length) parts.push(cut.join('\n'));
  if (r.unavailable.length) parts.push(`unavailable: ${r.unavailable.map((u) => `${u.source} (${u.why})`).join('; ')}`);
  if (r.logs.kernelOomLines.length) parts.push(`kernel:\n${r.logs.kernelOomLines.join('\n')}`);
  if (r.logs.stderrTail) parts.push(`stderr tail:\n${r.logs.stderrTail}`);
  return parts.join('\n\n');
}

const PEAK_LABELS = { RSS: 'peak RSS (VmHWM)', anon: 'peak anonymous', cgroup: 'cgroup peak' } as const;

/** ", after waiting 27.1 s for the device (boot 26.0 s)": the wait is not in the wall time, but it happened. */
function waitText(r: ResultRecord): string {
  const wait = r.timing.connectMs;
  if (!wait) return '';
  const boot = bootText(r.timing.bootMs === null ? undefined : [r.timing.bootMs]);
  return `, after waiting ${formatMs(wait)} for the device${boot ? ` (${boot})` : ''}`;
}

/** One record as an Allure result, plus the attachment files it refers to. */
export function toAllure(r: ResultRecord): { result: AllureResult; files: PendingFile[] } {
  // One result per attempt: a retried job's first attempt stays, as Allure's retry of the same test.
  const uuid = uuidFrom(`${r.runId}/${r.jobId}${r.attempt.n > 1 ? `#${r.attempt.n}` : ''}`);
  const status = testStatus(r);
  const files: PendingFile[] = [];
  const attachments: Attachment[] = [];
  const attach = (name: string, suffix: string, type: string, content: string | null) => {
    if (!content) return;
    const source = `${uuid}-${safeName(suffix)}`;
    files.push({ source, content });
    attachments.push({ name, source, type });
  };
  // A cut stream says so in its name: the attachment is its tail, not all it wrote.
  const streamName = (stream: 'stdout' | 'stderr') => {
    const out = r.logs.output?.[stream];
    return out && out.written > out.kept ? `${stream} (truncated: ${formatBytes(out.written)} written, last ${formatBytes(out.kept)} kept)` : stream;
  };
  attach(streamName('stdout'), 'stdout.txt', 'text/plain', r.logs.stdoutTail);
  attach(streamName('stderr'), 'stderr.txt', 'text/plain', r.logs.stderrTail);
  attach('console excerpt', 'console.txt', 'text/plain', r.logs.console);
  attach('kernel OOM lines', 'kernel-oom.txt', 'text/plain', r.logs.kernelOomLines.join('\n'));
  if (r.memory.samples.length) {
    attach('memory timeline (CSV)', 'memory.csv', 'text/csv', timelineCsv(r));
    attach('memory timeline (chart)', 'memory.svg', 'image/svg+xml', timelineSvg(r, 'tl'));
  }
  attach('device facts', 'facts.json', 'application/json', JSON.stringify({ device: r.device, facts: r.facts, values: r.values, unavailable: r.unavailable, probe: r.probe }, null, 2));

  const start = Date.parse(r.timing.startedAt);
  const stop = Date.parse(r.timing.endedAt);
  // Phase times are relative to the payload start. wallMs runs from the device
  // answering to the end, and deploying comes first in it.
  const payloadStart = stop - r.timing.wallMs + (r.timing.deployMs ?? 0);
  const steps: Step[] = r.phases.map((p, i) => ({
    name: `${p.name}: peak ${formatMb(p.peakRssKb)}`,
    // The run ended in the last phase it reached; that is where a failure belongs.
    status: i === r.phases.length - 1 && r.outcome !== 'passed' ? (status === 'passed' ? 'passed' : status) : 'passed',
    stage: 'finished',
    start: payloadStart + p.startMs,
    stop: payloadStart + p.endMs,
    parameters: [
      { name: 'peak RSS', value: formatMb(p.peakRssKb) },
      { name: 'duration', value: `${((p.endMs - p.startMs) / 1000).toFixed(1)} s` },
    ],
    steps: [],
    attachments: [],
  }));
  const peaks = peakView(r);
  if (peaks.parts.length) {
    // All three peaks where they differ by more than 10%, labelled: VmHWM alone can read far above a small cap.
    const shown = peaks.differ ? peaks.parts : peaks.parts.filter((p) => p.label === 'RSS');
    steps.push({
      name: `peak memory: ${shown.map((p) => `${p.label} ${formatMb(p.kb)}`).join(' · ')}${peaks.differ ? ' (they differ by more than 10%)' : ''}`,
      status: 'passed',
      stage: 'finished',
      start: payloadStart,
      stop,
      parameters: peaks.parts.map((p) => ({ name: PEAK_LABELS[p.label], value: formatMb(p.kb) })),
      steps: [],
      attachments: [],
    });
  }
  steps.push({
    name: `agent session: ${sessionText(r)}`,
    // Processes outliving the clean-up are the harness's trouble, not the payload's verdict.
    status: r.agent.leftPids.length ? 'broken' : 'passed',
    stage: 'finished',
    start,
    stop,
    parameters: [
      { name: 'payload pid', value: r.agent.payloadPid === null ? 'none' : String(r.agent.payloadPid) },
      { name: 're-attached', value: String(r.agent.reattached) },
      { name: 'left pids', value: r.agent.leftPids.join(', ') || 'none' },
    ],
    steps: [],
    attachments: [],
  });

  const bits = bitness(r);
  const emulated = r.facts?.emulated ?? r.device.transport !== 'ssh';
  // Suite files fold long quotes with a trailing newline; a label wants one clean line.
  const claim = r.expectation?.claim.replace(/\s+/g, ' ').trim() ?? 'No expectation declared';
  const labels = [
    { name: 'parentSuite', value: bits },
    { name: 'suite', value: r.suite },
    { name: 'subSuite', value: r.device.name },
    { name: 'host', value: r.device.name },
    { name: 'thread', value: r.device.name },
    { name: 'epic', value: claim },
    { name: 'feature', value: r.suite },
    { name: 'tag', value: r.device.model },
    { name: 'tag', value: `RAM ${formatRam(r.device.ramMb)}` },
    { name: 'tag', value: r.facts?.dpkgArch ?? r.device.arch },
    { name: 'tag', value: emulated ? 'emulated' : 'real' },
    { name: 'tag', value: r.outcome },
    ...(notInstalled(r) ? [{ name: 'tag', value: 'not installed' }] : []),
    ...(r.agent.reattached > 0 ? [{ name: 'tag', value: 're-attached' }] : []),
    ...(r.logs.truncated ? [{ name: 'tag', value: 'output truncated' }] : []),
    ...(r.timing.trusted ? [] : [{ name: 'tag', value: 'throttled' }]),
    { name: 'severity', value: r.suite === 'memory-ladder' ? 'minor' : 'normal' },
    { name: 'framework', value: 'pi-hil' },
  ];
  const expectation = r.expectation
    ? `Expected ${r.expectation.allowed.join(' or ')}: **${r.expectation.verdict}**. Claim tested: “${r.expectation.claim}”.`
    : 'No expectation declared for this device class.';
  const description = [
    `**${r.suite}** on **${r.device.name}** (${r.device.model}, ${formatRam(r.device.ramMb)}, ${bits}, ${emulated ? 'emulated' : 'real'}).`,
    '',
    `Outcome **${r.outcome}**: ${r.reason}`,
    '',
    expectation,
    '',
    `${peaks.differ ? `Peak memory, by measure (they differ by more than 10%): ${peaks.parts.map((p) => `${PEAK_LABELS[p.label]} ${formatMb(p.kb)}`).join(', ')}` : `Peak memory ${formatMb(r.memory.peakRssKb)}`}${r.memory.peakMethod ? ` (RSS by ${r.memory.peakMethod})` : ''}; wall time ${(r.timing.wallMs / 1000).toFixed(1)} s${waitText(r)}.`,
    '',
    `Agent: ${sessionText(r)}.`,
    ...truncationTexts(r).map((t) => `\n${t.charAt(0).toUpperCase()}${t.slice(1)}.`),
    ...(untrustedTimeText(r) ? [`\n${untrustedTimeText(r)}.`] : []),
  ].join('\n');

  // One test per device × suite; its parameter sets are rows of it, each with its own history.
  const testKey = testKeyOf(r);
  const testCaseId = testCaseIdOf(testKey);
  const params = Object.keys(r.params)
    .sort()
    .map((name) => ({ name, value: String(r.params[name]) }));
  const result: AllureResult = {
    uuid,
    testCaseId,
    historyId: `${testCaseId}.${createHash('md5').update(params.map((p) => `${p.name}=${p.value}`).join(',')).digest('hex')}`,
    fullName: testKey,
    name: `${r.suite} on ${r.device.name}`,
    status,
    statusDetails: { message: statusMessage(r), trace: traceOf(r) },
    stage: 'finished',
    description,
    start,
    stop,
    labels,
    parameters: [
      { name: 'device', value: r.device.name },
      { name: 'suite', value: r.suite },
      ...params,
      ...(r.envelope ? [{ name: 'envelope step', value: String(r.envelope.step), excluded: true }] : []),
      { name: 'RAM', value: formatRam(r.device.ramMb), excluded: true },
      // Excluded: they describe this run's session, not which test this is, so history still links.
      { name: 're-attached', value: String(r.agent.reattached), excluded: true },
      { name: 'left pids', value: r.agent.leftPids.join(', ') || 'none', excluded: true },
      { name: 'payload pid', value: r.agent.payloadPid === null ? 'none' : String(r.agent.payloadPid), excluded: true },
    ],
    links: [],
    attachments,
    steps,
  };
  return { result, files };
}

/**
 * Categories sort failures by cause. Allure matches with Java's matches(),
 * i.e. against the WHOLE message, and messages start "<outcome>: ", so each
 * regex is "(?s)<outcome>: .*" ((?s) lets .* cross the evidence lines).
 */
export const CATEGORIES = [
  { name: 'OOM killed', matchedStatuses: ['failed'], messageRegex: '(?s)oom_killed: .*' },
  { name: 'Allocation failed (MemoryError)', matchedStatuses: ['failed'], messageRegex: '(?s)memory_error: .*' },
  { name: 'Unsupported runtime', matchedStatuses: ['failed'], messageRegex: '(?s)unsupported: .*' },
  { name: 'Timeout / thrashing', matchedStatuses: ['failed'], messageRegex: '(?s)timeout: .*' },
  { name: 'Crashed', matchedStatuses: ['failed'], messageRegex: '(?s)crashed: .*' },
  { name: 'Infrastructure', matchedStatuses: ['broken'], messageRegex: '(?s).*' },
] as const;

/** Java .properties: escape backslash, separators and line breaks. */
function propertiesLine(key: string, value: string): string {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\r?\n/g, '\\n').replace(/([=:#!])/g, '\\$1');
  return `${esc(key).replace(/ /g, '\\ ')}=${esc(value)}`;
}

export function environmentProperties(meta: RunMeta, records: ResultRecord[]): string {
  const rows: [string, string][] = [
    ['Run', meta.runId],
    ['Started', meta.startedAt],
    ['Ended', meta.endedAt ?? 'unfinished'],
    ['pi-hil', meta.harnessVersion],
    ['Git SHA', meta.gitSha ?? 'unknown'],
    ['Controller', `${type()} ${release()} ${arch()}`],
    ['Node.js', process.version],
    ['Devices', [...new Set(records.map((r) => r.device.name))].join(', ')],
    ['Suites', [...new Set(records.map((r) => r.suite))].join(', ')],
    ['Selection', JSON.stringify(meta.selection)],
  ];
  return rows.map(([k, v]) => propertiesLine(k, v)).join('\n') + '\n';
}

export interface Executor {
  name: string;
  type: string;
  url?: string;
  buildOrder: number;
  buildName: string;
  buildUrl?: string;
  reportName: string;
  reportUrl?: string;
}

/** Who ran this: GitHub Actions or GitLab CI from their variables, else the local machine. `localOrder` numbers local trend points. */
export function executorFor(env: NodeJS.ProcessEnv, runId: string, localOrder: number): Executor {
  const reportName = `pi-hil ${runId}`;
  if (env.GITHUB_ACTIONS === 'true' || env.GITHUB_RUN_ID) {
    const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
    const repo = env.GITHUB_REPOSITORY ?? '';
    const runNumber = Number(env.GITHUB_RUN_NUMBER ?? localOrder);
    return {
      name: 'GitHub Actions',
      type: 'github',
      url: `${server}/${repo}`,
      buildOrder: Number.isFinite(runNumber) ? runNumber : localOrder,
      buildName: `${env.GITHUB_WORKFLOW ?? 'workflow'} #${env.GITHUB_RUN_NUMBER ?? '?'}`,
      buildUrl: `${server}/${repo}/actions/runs/${env.GITHUB_RUN_ID ?? ''}`,
      reportName,
    };
  }
  if (env.GITLAB_CI || env.CI_PIPELINE_ID) {
    const iid = Number(env.CI_PIPELINE_IID ?? env.CI_PIPELINE_ID ?? localOrder);
    return {
      name: 'GitLab CI',
      type: 'gitlab',
      ...(env.CI_PROJECT_URL ? { url: env.CI_PROJECT_URL } : {}),
      buildOrder: Number.isFinite(iid) ? iid : localOrder,
      buildName: `${env.CI_JOB_NAME ?? 'pipeline'} #${env.CI_PIPELINE_IID ?? env.CI_PIPELINE_ID ?? '?'}`,
      ...(env.CI_JOB_URL || env.CI_PIPELINE_URL ? { buildUrl: env.CI_JOB_URL ?? env.CI_PIPELINE_URL } : {}),
      reportName,
    };
  }
  return { name: 'local', type: 'local', buildOrder: localOrder, buildName: runId, reportName };
}

/** Write a fresh allure-results folder; returns the number of results written. */
export async function writeAllureResults(
  dir: string,
  meta: RunMeta,
  records: ResultRecord[],
  executor: Executor,
): Promise<number> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const r of records) {
    const { result, files } = toAllure(r);
    for (const f of files) {
      // Defence in depth: a bad name would be dropped by Allure without a word.
      if (!SAFE_SOURCE.test(f.source)) throw new Error(`unsafe attachment name ${f.source}`);
      await writeFile(join(dir, f.source), f.content);
    }
    await writeFile(join(dir, `${result.uuid}-result.json`), JSON.stringify(result));
  }
  await writeFile(join(dir, 'categories.json'), JSON.stringify(CATEGORIES, null, 2));
  await writeFile(join(dir, 'environment.properties'), environmentProperties(meta, records));
  await writeFile(join(dir, 'executor.json'), JSON.stringify(executor, null, 2));
  return records.length;
}
