/**
 * The article's three claims, weighed against the records. Evidence is
 * gathered from outcomes by suite and setup (a 32-bit userland on a 32-bit
 * kernel, on a 64-bit kernel, and 64-bit: cell.ts), and only from what
 * was tried: infra errors say nothing about TensorFlow, and a suite whose
 * runtime is not installed on a device (its requirement probe failed) was
 * never tried there, so it is evidence neither for nor against a claim.
 */
import type { Outcome, ResultRecord } from '../results/record.ts';
import { SETUPS, setupOf, type Setup, type SetupId } from './cell.ts';
import { formatMb, formatRam } from './format.ts';
import { ARTICLE_SUITES } from './order.ts';
import { bitness, notInstalled } from './test-status.ts';

export type ClaimStanding = 'supported' | 'contradicted' | 'mixed' | 'untested';

/** How each standing reads on the page and in Markdown. */
export const CLAIM_STANDING_TEXT: Record<ClaimStanding, string> = {
  supported: 'supported',
  contradicted: 'contradicted',
  mixed: 'mixed',
  untested: 'not tested in this run',
};

export interface ClaimAssessment {
  id: 'train32' | 'lite32' | 'recommend64';
  title: string;
  /** The article's own words. */
  quote: string;
  standing: ClaimStanding;
  summary: string;
  for: string[];
  against: string[];
}

export interface SuiteTally {
  suite: string;
  passed: number;
  /** Jobs with a product result (infra errors, never-probed jobs and jobs whose runtime is not installed left out). */
  total: number;
  /** Jobs that could not be tried: the runtime is not installed on the device. */
  notInstalled: number;
  outcomes: Partial<Record<Outcome, number>>;
  /** Smallest RAM on which the suite passed, MB. */
  minRamPassedMb: number | null;
}

export interface BitsSummary {
  /** The setup's label, e.g. "32-bit userland, 64-bit kernel". */
  bits: Setup['label'];
  setup: SetupId;
  devices: number;
  suites: SuiteTally[];
}

/** Jobs that say something about the product: not infra, the probe ran, and the runtime was there to try. */
function product(records: ResultRecord[]): ResultRecord[] {
  return records.filter((r) => r.outcome !== 'infra_error' && r.probe !== null && !notInstalled(r));
}

function tally(records: ResultRecord[], suite: string): SuiteTally {
  const jobs = product(records).filter((r) => r.suite === suite);
  const untried = records.filter((r) => r.suite === suite && notInstalled(r)).length;
  const outcomes: Partial<Record<Outcome, number>> = {};
  for (const r of jobs) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  const passedRam = jobs.filter((r) => r.outcome === 'passed').map((r) => r.device.ramMb);
  return { suite, passed: outcomes.passed ?? 0, total: jobs.length, notInstalled: untried, outcomes, minRamPassedMb: passedRam.length ? Math.min(...passedRam) : null };
}

/** One sentence per setup: the article's question, answered for this fleet. */
export function answer(summary: BitsSummary[]): string[] {
  return summary
    .filter((s) => s.devices > 0)
    .map((s) => {
      const parts = s.suites
        .filter((t) => t.total > 0 || t.notInstalled > 0)
        .map((t) => `${t.suite} ran on ${t.passed} of ${t.total}${t.notInstalled ? ` (not installed on ${t.notInstalled} more)` : ''}`);
      return `${s.bits}: ${parts.join(', ') || 'no product results'} (${s.devices} device${s.devices === 1 ? '' : 's'}).`;
    });
}

/** Per setup (32-bit on a 32-bit kernel, 32-bit on a 64-bit kernel, 64-bit; in that order), how each of the article's examples fared. */
export function bitsSummary(records: ResultRecord[]): BitsSummary[] {
  return SETUPS.map((setup) => {
    const mine = records.filter((r) => setupOf(r).id === setup.id);
    return { bits: setup.label, setup: setup.id, devices: new Set(mine.map((r) => r.device.name)).size, suites: ARTICLE_SUITES.map((s) => tally(mine, s)) };
  });
}

function where(r: ResultRecord): string {
  return `${r.device.name} (${formatRam(r.device.ramMb)}, ${setupOf(r).short})`;
}

/** "a of b" for all 32-bit devices, then per kernel where both kernels are in the run. */
function ofTotal32(k32: SuiteTally | undefined, k64: SuiteTally | undefined): string {
  const all = `${(k32?.passed ?? 0) + (k64?.passed ?? 0)} of ${(k32?.total ?? 0) + (k64?.total ?? 0)}`;
  if (!k32?.total || !k64?.total) return all;
  return `${all} (${ofTotal(k32)} on a 32-bit kernel, ${ofTotal(k64)} on a 64-bit kernel)`;
}

/**
 * memory-ladder's ceilings per setup, in a sentence: what one process could use. This is
 * where the kernel shows: about 3 GB on a 32-bit kernel, nearly 4 GB on a 64-bit one.
 */
function ladderSentence(records: ResultRecord[]): string {
  const ladders = records.filter((r) => r.suite === 'memory-ladder' && typeof r.values['usable_mb'] === 'number' && r.outcome !== 'infra_error');
  const parts = SETUPS.flatMap((setup) => {
    const mine = ladders.filter((r) => setupOf(r).id === setup.id);
    if (!mine.length) return [];
    const best = mine.reduce((a, b) => (Number(b.values['usable_mb']) > Number(a.values['usable_mb']) ? b : a));
    return [`${setup.short} up to ${Number(best.values['usable_mb'])} MB (${best.device.name}, ${best.outcome})`];
  });
  return parts.length ? ` memory-ladder, what one process could use: ${parts.join('; ')}.` : '';
}

function standingOf(forList: string[], against: string[]): ClaimStanding {
  if (forList.length && against.length) return 'mixed';
  if (forList.length) return 'supported';
  if (against.length) return 'contradicted';
  return 'untested';
}

const rate = (t: SuiteTally | undefined) => (t && t.total ? t.passed / t.total : 0);
const ofTotal = (t: SuiteTally | undefined) => (t ? `${t.passed} of ${t.total}` : '0 of 0');

export function assessClaims(records: ResultRecord[]): ClaimAssessment[] {
  const jobs = product(records);
  const is32 = (r: ResultRecord) => bitness(r) === '32-bit';
  const summary = bitsSummary(records);
  const [sK32, sK64, s64] = summary;
  const find = (s: BitsSummary | undefined, suite: string) => s?.suites.find((t) => t.suite === suite);

  // 1. Training on 32-bit with ~1 GB fails.
  const train32 = jobs.filter((r) => r.suite === 'keras-train' && is32(r));
  const t1for = train32.filter((r) => r.outcome !== 'passed').map((r) => `keras-train ended ${r.outcome} on ${where(r)}: ${r.reason}`);
  const t1against = train32.filter((r) => r.outcome === 'passed').map((r) => `keras-train passed on ${where(r)}, peak ${formatMb(r.memory.peakRssKb)}`);

  // 2. TFLite is more viable on 32-bit than full TensorFlow.
  const lite32 = jobs.filter((r) => r.suite === 'tflite-inference' && is32(r));
  const keras32 = new Map(train32.map((r) => [r.device.name, r]));
  const t2for: string[] = [];
  const t2against: string[] = [];
  for (const r of lite32) {
    const k = keras32.get(r.device.name);
    if (r.outcome === 'passed') {
      t2for.push(`tflite-inference passed on ${where(r)} at ${formatMb(r.memory.peakRssKb)}${k && k.outcome !== 'passed' ? `, where keras-train ended ${k.outcome}` : ''}`);
    } else {
      t2against.push(`tflite-inference ended ${r.outcome} on ${where(r)}: ${r.reason}`);
    }
  }

  // 3. 64-bit is strongly recommended: compare pass rates suite by suite, 64-bit against
  // each 32-bit setup on its own (the kernel changes what a 32-bit process can use), and list 64-bit failures.
  const t3for: string[] = [];
  const t3against: string[] = [];
  for (const suite of ARTICLE_SUITES) {
    const b = find(s64, suite);
    for (const s32 of [sK32, sK64]) {
      const a = find(s32, suite);
      if (!a?.total || !b?.total) continue;
      const label = SETUPS.find((x) => x.id === s32?.setup)?.short ?? '32-bit';
      const line = `${suite} passed on ${ofTotal(b)} 64-bit devices and ${ofTotal(a)} devices with ${label}`;
      if (rate(b) > rate(a)) t3for.push(line);
      else if (rate(a) > rate(b)) t3against.push(line);
    }
  }
  // Only memory and runtime outcomes speak to the claim; a broken model file says nothing about word size.
  const resourceOutcomes: Outcome[] = ['oom_killed', 'memory_error', 'timeout', 'unsupported'];
  for (const r of jobs) {
    if (!is32(r) && resourceOutcomes.includes(r.outcome) && (ARTICLE_SUITES as readonly string[]).includes(r.suite)) {
      t3against.push(`64-bit alone was not enough: ${r.suite} ended ${r.outcome} on ${where(r)}`);
    }
  }

  const infra = records.filter((r) => r.outcome === 'infra_error' || r.probe === null).length;
  const untried = records.filter(notInstalled).length;
  const plural = (n: number) => `${n} job${n === 1 ? '' : 's'}`;
  const note =
    (infra ? ` ${plural(infra)} without a product result (infrastructure or never probed) are not counted.` : '') +
    (untried ? ` ${plural(untried)} could not be tried because the runtime is not installed; they count neither for nor against a claim.` : '');
  return [
    {
      id: 'train32',
      title: 'Training on 32-bit Raspbian with about 1 GB fails',
      quote: 'Even this, however, will likely fail on a 32-bit Raspbian system due to the memory limitations.',
      standing: standingOf(t1for, t1against),
      summary: `keras-train passed on ${ofTotal32(find(sK32, 'keras-train'), find(sK64, 'keras-train'))} 32-bit devices.${note}`,
      for: t1for,
      against: t1against,
    },
    {
      id: 'lite32',
      title: 'TensorFlow Lite is more viable on 32-bit',
      quote: 'TensorFlow Lite presents a more viable option for 32-bit platforms.',
      standing: standingOf(t2for, t2against),
      summary: `On 32-bit, tflite-inference passed on ${ofTotal32(find(sK32, 'tflite-inference'), find(sK64, 'tflite-inference'))} devices; keras-train on ${ofTotal32(find(sK32, 'keras-train'), find(sK64, 'keras-train'))}.${note}`,
      for: t2for,
      against: t2against,
    },
    {
      id: 'recommend64',
      title: 'A 64-bit system is strongly recommended',
      quote: 'A 64-bit system is strongly recommended for any serious TensorFlow development and deployment.',
      standing: standingOf(t3for, t3against),
      summary:
        `Passed on 64-bit: ${ARTICLE_SUITES.map((s) => `${s} ${ofTotal(find(s64, s))}`).join(', ')}. ` +
        `On 32-bit: ${ARTICLE_SUITES.map((s) => `${s} ${ofTotal32(find(sK32, s), find(sK64, s))}`).join(', ')}.${ladderSentence(records)}${note}`,
      for: t3for,
      against: t3against,
    },
  ];
}

export interface ExpectationTally {
  claim: string;
  met: number;
  unmet: number;
  infra: number;
  /** Jobs whose runtime is not installed: an expectation that allows `unsupported` is met by them, but nothing was tried. */
  notInstalled: number;
  jobs: string[];
}

/** The suites' own expectations, grouped by the claim each one tests. */
export function expectationTallies(records: ResultRecord[]): ExpectationTally[] {
  const byClaim = new Map<string, ExpectationTally>();
  for (const r of records) {
    if (!r.expectation) continue;
    const claim = r.expectation.claim.replace(/\s+/g, ' ').trim();
    const t = byClaim.get(claim) ?? { claim, met: 0, unmet: 0, infra: 0, notInstalled: 0, jobs: [] };
    // Met by a missing runtime would read as support for the claim; count it apart.
    if (notInstalled(r) && r.expectation.verdict === 'met') t.notInstalled += 1;
    else t[r.expectation.verdict] += 1;
    if (r.expectation.verdict === 'unmet') t.jobs.push(r.jobId);
    byClaim.set(claim, t);
  }
  return [...byClaim.values()];
}
