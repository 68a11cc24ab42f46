/**
 * `hil publish <run-dir> --site <dir>`: add a night to a static site of
 * nights (harness/publish/site.ts). Exit 0 published, 1 when the night could
 * not be published (the site is left as it was), 2 on usage errors or a run
 * dir or site file that cannot be read.
 */
import { UsageError } from '../config/diagnostics.ts';
import { SiteFormatError } from '../publish/nights.ts';
import { publishNight } from '../publish/site.ts';
import { NoReadableRecordsError, ResultsFormatError } from '../results/read.ts';
import { allureVersion, helpText, parseCommand, positiveInt, type CommandSpec } from './args.ts';

const SPEC: CommandSpec = {
  name: 'publish',
  summary: 'Add a night to a static site of nights (GitHub Pages, GitLab Pages, any web server).',
  usage: 'hil publish <run-dir> --site <dir> [--keep N] [--allure 2|3]',
  positionals: { min: 1, max: 1, names: 'one run dir, e.g. reports/runs/<run-id>' },
  options: {
    site: { type: 'string', arg: 'dir', help: 'the site folder: index.html, nights.json, nights/<night-id>/, latest/' },
    keep: { type: 'string', arg: 'N', help: 'keep the newest N nights, removing older ones (default: all)' },
    allure: { type: 'string', arg: '2|3', help: 'Allure 2 (default; Java) or Allure 3 (Node) for the night\'s report' },
  },
};

export async function publishCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals, help } = parseCommand(SPEC, argv);
    if (help) {
      process.stdout.write(helpText(SPEC));
      return 0;
    }
    if (typeof values.site !== 'string' || values.site === '') throw new UsageError('--site', String(values.site ?? ''), 'the folder of the site to publish into', 'required');
    const keep = values.keep === undefined ? undefined : positiveInt('--keep', values.keep, 0);
    const { nightDir, indexPath } = await publishNight(positionals[0]!, { site: values.site, allure: allureVersion(values.allure), ...(keep ? { keep } : {}) });
    process.stderr.write(`hil publish: published ${nightDir}\n`);
    process.stdout.write(`${indexPath}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof SiteFormatError || err instanceof ResultsFormatError || err instanceof NoReadableRecordsError) {
      process.stderr.write(`hil publish: ${err.message}\n`);
      return 2;
    }
    if (err instanceof Error) {
      process.stderr.write(`hil publish: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
