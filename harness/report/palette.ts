/** Outcome colours shared by the SVG charts and the page's badges: one meaning, one colour. */
import type { Outcome } from '../results/record.ts';

/** `ink` is the strong colour (bars, lines, badge text); `tint` the calm background of a badge. */
export const OUTCOME_COLORS: Record<Outcome, { ink: string; tint: string }> = {
  passed: { ink: '#1f6f43', tint: '#e3f3e8' },
  failed: { ink: '#a1261d', tint: '#fbe6e4' },
  oom_killed: { ink: '#9a3412', tint: '#fdeadb' },
  memory_error: { ink: '#8a5a00', tint: '#fbf0d2' },
  timeout: { ink: '#6b4fa0', tint: '#eee8f8' },
  crashed: { ink: '#8f1d4a', tint: '#f9e3ec' },
  unsupported: { ink: '#4b5768', tint: '#e9edf2' },
  infra_error: { ink: '#57534e', tint: '#efedea' },
};

export const CHART = {
  axis: '#8a94a3',
  grid: '#e6e9ee',
  text: '#3b4452',
  ram: '#1d4e89',
  anon: '#c9d8ea',
} as const;
