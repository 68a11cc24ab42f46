#!/usr/bin/env node
// Thin launcher: pi-hil is written in TypeScript and runs through tsx, so
// there is no build step between editing a file and running `hil`. Under the
// test runner, which already loads TypeScript (and maps coverage through its
// own loader), PI_HIL_TS_LOADER=external skips tsx.
if (process.env.PI_HIL_TS_LOADER !== 'external') {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../harness/cli.ts');
