/**
 * The TensorFlow virtualenv for tests that run real TensorFlow. Building it
 * (scripts/tf-venv.sh) takes about half a minute the first time; a failure
 * fails the test with pip's own words rather than skipping it.
 */
import { spawnSync } from 'node:child_process';

let cached: string | null = null;

export function tfPython(): string {
  if (cached) return cached;
  const r = spawnSync('bash', ['scripts/tf-venv.sh'], { encoding: 'utf8', timeout: 900_000 });
  const python = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !python) {
    throw new Error(`scripts/tf-venv.sh could not provide TensorFlow (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  }
  cached = python;
  return python;
}

/** Debian's interpreter, which has python3-pyarmnn and NumPy from apt. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
