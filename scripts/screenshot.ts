/**
 * Screenshot of the comparison page for the README.
 *   npx tsx scripts/screenshot.ts [run-dir] [--baseline DIR] [--out docs/compare.png] [--full]
 * Without a run dir it uses the fixture nightly run and its baseline.
 * Needs Chromium (Debian's /usr/bin/chromium, or CHROMIUM=path).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { readResults, readRunMeta } from '../harness/results/read.ts';
import { renderCompareHtml } from '../harness/report/compare.ts';
import { diffRuns } from '../harness/report/diff.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { baseline: { type: 'string' }, out: { type: 'string', default: 'docs/compare.png' }, full: { type: 'boolean', default: false } },
});
const runDir = positionals[0] ?? join(repo, 'test/fixtures/runs/nightly-042');
const baselineDir = values.baseline ?? (positionals[0] ? undefined : join(repo, 'test/fixtures/runs/nightly-041'));

const records = readResults(runDir);
const diff = baselineDir ? diffRuns(records, readResults(baselineDir)) : null;
const html = renderCompareHtml({ meta: readRunMeta(runDir), records, diff });

const tmp = await mkdtemp(join(tmpdir(), 'pi-hil-shot-'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const file = join(tmp, 'compare.html');
  await writeFile(file, html);
  const page = await browser.newPage({ viewport: { width: 1280, height: 1500 }, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(file).href);
  const out = resolve(values.out);
  await page.screenshot({ path: out, fullPage: values.full });
  console.log(`wrote ${values.out}`);
} finally {
  await browser.close();
  await rm(tmp, { recursive: true, force: true });
}
