/** What a run tells its observers (the progress display), as it happens. */
import type { Outcome } from '../results/record.ts';

export type DeviceState = 'waiting' | 'connecting' | 'deploying' | 'running' | 'idle' | 'closing' | 'done';

export type RunEvent =
  | { kind: 'device'; device: string; state: DeviceState; detail?: string }
  | { kind: 'job-start'; device: string; jobId: string }
  | { kind: 'phase'; device: string; jobId: string; phase: string }
  /** Something a person should know that is not a job's progress (a lease taken over, a device refused). */
  | { kind: 'notice'; device: string; message: string }
  | { kind: 'job-end'; device: string; jobId: string; outcome: Outcome; reason: string; wallMs: number; peakRssKb: number | null };

export type RunObserver = (event: RunEvent) => void;
