/**
 * The CI files, checked by real tools: the GitHub workflow by GitHub's own
 * parser (@actions/workflow-parser: schema, expressions, job graph), the
 * GitLab example by gitlab-ci-local (GitLab's JSON schema, then its own job
 * checks). Each validator is also shown a broken copy and must reject it, so
 * the checks can fail. The `hil nightly` commands in both files may use only
 * the options `hil nightly run` and `hil nightly finish` take.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT } from './helpers/hil.ts';

t.setTimeout(300_000);

const WORKFLOW = join(PROJECT, '.github', 'workflows', 'nightly.yml');
const GITLAB = join(PROJECT, 'docs', 'gitlab-ci.yml');
const workflowText = readFileSync(WORKFLOW, 'utf8');
const gitlabText = readFileSync(GITLAB, 'utf8');

/**
 * Every error GitHub's parser finds in a workflow (parse: schema and
 * expressions; convert: the job graph), and its jobs. It runs in a child
 * under tsx: the parser imports its JSON schema in a way plain Node and this
 * test's loader refuse.
 */
async function validate(t: { teardown: (fn: () => unknown) => void }, name: string, content: string): Promise<{ code: number | null; errors: string[]; jobs: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'pi-hil-workflow-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  await writeFile(file, content);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT, 'scripts', 'validate-workflow.ts'), file], { cwd: PROJECT, encoding: 'utf8', timeout: 120_000 });
  if (r.error || !r.stdout.trim()) throw new Error(`the workflow validator did not run: ${r.error?.message ?? r.stderr}`);
  const out = JSON.parse(r.stdout) as { errors: string[]; jobs: string[] };
  return { code: r.status, ...out };
}

/** `gitlab-ci-local --list` on a file, in a throwaway git repo with an origin, as a checkout would be. */
async function gitlabList(t: { teardown: (fn: () => unknown) => void }, content: string): Promise<{ code: number | null; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pi-hil-gitlab-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const git = (...args: string[]) => {
    const r = spawnSync('git', ['-c', 'user.name=pi-hil', '-c', 'user.email=pi-hil@example.com', ...args], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  git('init', '-q', '-b', 'main');
  git('remote', 'add', 'origin', 'https://gitlab.example.com/pi-hil/pi-hil.git');
  await writeFile(join(dir, '.gitlab-ci.yml'), content);
  git('add', '.gitlab-ci.yml');
  git('commit', '-q', '-m', 'ci');
  const r = spawnSync(join(PROJECT, 'node_modules', '.bin', 'gitlab-ci-local'), ['--list'], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  if (r.error) throw new Error(`gitlab-ci-local could not run: ${r.error.message}`);
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** The options of each `hil nightly run|finish` command in a file. */
function nightlyCommands(text: string): { sub: string; options: string[]; line: string }[] {
  return [...text.matchAll(/npx --no-install hil nightly (run|finish)\b([^\n]*)/g)].map((m) => ({
    sub: m[1]!,
    options: [...m[2]!.matchAll(/(?:^|\s)(--[a-z-]+)/g)].map((o) => o[1]!),
    line: m[0],
  }));
}

// The nightly command line (hil nightly run / finish), as the CI files may use it.
const NIGHTLY_OPTIONS: Record<string, string[]> = {
  run: ['--inventory', '--shard', '--out'],
  finish: ['--site', '--keep', '--allure', '--max-infra'],
};

t.test('the GitHub workflow passes GitHub’s own parser', async (t) => {
  const r = await validate(t, 'nightly.yml', workflowText);
  t.same(r.errors, []);
  t.equal(r.code, 0);
  t.same(r.jobs, ['shard', 'finish', 'deploy', 'verdict']);
});

t.test('the GitHub workflow does what the nightly needs', async (t) => {
  interface Step {
    uses?: string;
    run?: string;
    if?: string;
  }
  interface Job {
    'runs-on': string | string[];
    needs?: string | string[];
    if?: string;
    strategy?: { matrix: { shard: number[] } };
    permissions?: Record<string, string>;
    steps: Step[];
  }
  const wf = parse(workflowText) as { on: Record<string, unknown>; jobs: Record<string, Job> };
  t.ok(wf.on['schedule'] && 'workflow_dispatch' in wf.on, 'schedule and workflow_dispatch');
  const { shard, finish, deploy } = wf.jobs;
  if (!shard || !finish || !deploy) throw new Error('shard, finish and deploy jobs are required');
  t.same(shard['runs-on'], ['self-hosted', 'pi-rack'], 'shards run on the rack');
  t.same(shard.strategy?.matrix.shard, [1, 2, 3]);
  const uses = (job: Job) => job.steps.map((s) => s.uses?.split('@')[0]).filter(Boolean);
  t.ok(uses(shard).includes('actions/upload-artifact'));
  t.match(shard.steps.find((s) => s.uses?.startsWith('actions/upload-artifact'))?.if, /always\(\)/, 'results are kept whatever the exit');
  t.match(shard.steps.map((s) => s.run ?? '').join('\n'), /hil nightly run .*--shard \$\{\{ matrix\.shard \}\}\/3 --out shard-\$\{\{ matrix\.shard \}\}/);
  t.equal(finish.needs, 'shard');
  t.match(finish.if, /always\(\)/);
  t.ok(uses(finish).includes('actions/download-artifact') && uses(finish).includes('actions/upload-pages-artifact'));
  t.match(finish.steps.map((s) => s.run ?? '').join('\n'), /hil nightly finish shard-\*\/ --site site --keep 30/);
  t.match(finish.steps.map((s) => s.run ?? '').join('\n'), /git fetch --depth 1 origin gh-pages/, 'the previous site comes from gh-pages');
  t.ok(uses(deploy).includes('actions/deploy-pages'));
  t.same(deploy.permissions, { pages: 'write', 'id-token': 'write' });
});

t.test('a broken workflow is rejected by the same parser', async (t) => {
  const typo = workflowText.replace('    steps:\n      - uses: actions/checkout@v4', '    stepz:\n      - uses: actions/checkout@v4');
  t.not(typo, workflowText);
  t.match((await validate(t, 'typo.yml', typo)).errors, [/Unexpected value 'stepz'/]);
  const unclosed = workflowText.replace('${{ matrix.shard }}/3', '${{ matrix.shard /3');
  t.match((await validate(t, 'unclosed.yml', unclosed)).errors, [/expression is not closed/]);
  const cycle = workflowText.replace('    name: shard ${{ matrix.shard }}/3\n', '    name: shard ${{ matrix.shard }}/3\n    needs: verdict\n');
  t.not(cycle, workflowText);
  const c = await validate(t, 'cycle.yml', cycle);
  t.equal(c.code, 1, 'the validator exits 1');
  t.match(c.errors, [/at least one job with no dependencies/], 'a job graph without a root');
});

t.test('the GitLab example passes gitlab-ci-local --list', async (t) => {
  const { code, out } = await gitlabList(t, gitlabText);
  t.equal(code, 0, out);
  for (const job of ['nightly-shard: [1/3]', 'nightly-shard: [2/3]', 'nightly-shard: [3/3]', 'nightly-finish', 'pages']) t.match(out, job, `lists ${job}`);
  t.match(out, /json schema validated/);
});

t.test('a broken GitLab file is rejected', async (t) => {
  const noScript = gitlabText.replace('  parallel: 3', '  parallel: 3\n  scriptt: [true]').replace(/^nightly-shard:\n([\s\S]*?)  script:\n    - npm ci\n    - npx --no-install hil nightly run[^\n]*\n/m, 'nightly-shard:\n$1');
  const a = await gitlabList(t, noScript);
  t.not(a.code, 0, 'a job without a script');
  t.match(a.out, /scriptt|must have script/);
  const badNeeds = gitlabText.replace('    - job: nightly-finish', '    - job: nightly-finnish');
  const b = await gitlabList(t, badNeeds);
  t.not(b.code, 0, 'a need that names no job');
  t.match(b.out, /nightly-finnish/);
});

t.test('the CI files call hil nightly with its own options only', async (t) => {
  for (const [file, text] of [
    ['nightly.yml', workflowText],
    ['gitlab-ci.yml', gitlabText],
  ] as const) {
    const commands = nightlyCommands(text);
    t.same(
      commands.map((c) => c.sub),
      ['run', 'finish'],
      `${file}: one run and one finish`,
    );
    for (const c of commands) {
      const unknown = c.options.filter((o) => !NIGHTLY_OPTIONS[c.sub]!.includes(o));
      t.same(unknown, [], `${file}: ${c.line}`);
    }
  }
});
