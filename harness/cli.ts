/**
 * `hil`: the pi-hil command line. Each command lives in harness/cli/<name>.ts
 * and returns its exit code; configuration and usage errors exit 2.
 */
import { ConfigError, UsageError } from './config/diagnostics.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<(argv: string[]) => Promise<number>> }> = {
  run: { summary: 'run suites on devices and store the results', load: async () => (await import('./cli/run.ts')).runCommand },
  check: { summary: 'validate the inventory and probe each device', load: async () => (await import('./cli/check.ts')).checkCommand },
  list: { summary: 'list devices and suites', load: async () => (await import('./cli/list.ts')).listCommand },
  merge: { summary: 'join the shard runs of one night into one run', load: async () => (await import('./cli/merge.ts')).mergeCommand },
  nightly: { summary: 'the CI nightly: `run` one shard, then `finish` (merge, compare, publish, verdict)', load: async () => (await import('./cli/nightly.ts')).nightlyCommand },
  report: { summary: 'rebuild the reports of a run from its stored results', load: async () => (await import('./cli/report.ts')).reportCommand },
  envelope: { summary: 'find the largest value of a suite parameter that still passes, per device', load: async () => (await import('./cli/envelope.ts')).envelopeCommand },
  publish: { summary: 'add a night to a static site of nights', load: async () => (await import('./cli/publish.ts')).publishCommand },
  image: { summary: 'build, list and prune QEMU Pi images', load: async () => (await import('./cli/image.ts')).imageCommand },
  console: { summary: "open a QEMU device's serial console", load: async () => (await import('./cli/console.ts')).consoleCommand },
  power: { summary: "switch a device's power on, off or cycle it, or read it", load: async () => (await import('./cli/power.ts')).powerCommand },
  lease: { summary: "show or break a device's lease", load: async () => (await import('./cli/lease.ts')).leaseCommand },
  quarantine: { summary: 'list quarantined devices, or release one', load: async () => (await import('./cli/quarantine.ts')).quarantineCommand },
  clean: { summary: 'remove stale pi-hil workdirs from a device', load: async () => (await import('./cli/clean.ts')).cleanCommand },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`);
  return `hil: can TensorFlow run on this Raspberry Pi setup? Measured.\n\nUsage: hil <command> [options]\n\nCommands:\n${rows.join('\n')}\n\nRun \`hil <command> --help\` for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`hil: unknown command ${JSON.stringify(name)}\n    allowed: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  try {
    return await (await command.load())(rest);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`hil ${name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
