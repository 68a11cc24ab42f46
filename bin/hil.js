#!/usr/bin/env node
// Thin launcher: pi-hil is written in TypeScript and runs through tsx, so
// there is no build step between editing a file and running `hil`.
import { register } from 'tsx/esm/api';

register();
await import('../harness/cli.ts');
