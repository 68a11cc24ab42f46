/**
 * Progress for people. On a terminal: one live line per device with its
 * state, current job and elapsed time, under a line for the whole run (jobs
 * done of total, elapsed, a rough time left). Off a terminal (CI logs): one
 * plain line per event, so a log reads top to bottom.
 */
import type { WriteStream } from 'node:tty';
import type { DeviceState, RunEvent } from '../run/events.ts';

interface Line {
  state: DeviceState;
  job: string | null;
  phase: string | null;
  /** When the current job (or idle spell) began: the elapsed time shown. */
  since: number;
}

export interface Progress {
  observe(event: RunEvent): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Jobs planned: with it, the live block leads with the run's overall progress. */
  totalJobs?: number;
  /** The clock, for tests (default Date.now). */
  now?: () => number;
}

export function createProgress(devices: readonly string[], out: NodeJS.WriteStream = process.stderr, options: ProgressOptions = {}): Progress {
  return out.isTTY ? new LiveProgress(devices, out as WriteStream, options) : new PlainProgress(out);
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * The run's overall line: "jobs 3/12 · 1m20s elapsed · ~3m40s left". The
 * time left is the run's pace so far (elapsed per finished job, parallel
 * devices included) times the jobs to go: rough, and said to be.
 */
export function overallLine(done: number, total: number, elapsedMs: number): string {
  const left = done === 0 ? 'time left unknown' : done >= total ? 'done' : `~${clock((elapsedMs / done) * (total - done))} left`;
  return `jobs ${done}/${total} · ${clock(elapsedMs)} elapsed · ${left}`;
}

function describe(event: RunEvent): string {
  switch (event.kind) {
    case 'device':
      return `${event.state}${event.detail ? ` (${event.detail})` : ''}`;
    case 'job-start':
      return `start ${event.jobId}`;
    case 'notice':
      return event.message;
    case 'phase':
      return `${event.jobId}: phase ${event.phase}`;
    case 'job-end': {
      const peak = event.peakRssKb === null ? '' : `, peak ${(event.peakRssKb / 1024).toFixed(0)} MB`;
      return `${event.jobId}: ${event.outcome} in ${(event.wallMs / 1000).toFixed(1)} s${peak} (${event.reason})`;
    }
  }
}

class PlainProgress implements Progress {
  constructor(private readonly out: NodeJS.WriteStream) {}
  observe(event: RunEvent): void {
    this.out.write(`${new Date().toISOString()} ${event.device} ${describe(event)}\n`);
  }
  stop(): void {}
}

class LiveProgress implements Progress {
  private readonly lines = new Map<string, Line>();
  private readonly timer: NodeJS.Timeout;
  private drawn = 0;
  /** Jobs with a record (a retried job counts once). */
  private readonly done = new Set<string>();
  private readonly started: number;
  private readonly now: () => number;

  constructor(
    devices: readonly string[],
    private readonly out: WriteStream,
    private readonly options: ProgressOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.started = this.now();
    for (const d of devices) this.lines.set(d, { state: 'waiting', job: null, phase: null, since: Date.now() });
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  observe(event: RunEvent): void {
    if (event.kind === 'notice') {
      this.clear();
      this.out.write(`${event.device.padEnd(this.width())}  ${event.message}\n`);
      this.draw();
      return;
    }
    const line = this.lines.get(event.device);
    if (!line) return;
    if (event.kind === 'device') line.state = event.state;
    if (event.kind === 'phase') line.phase = event.phase;
    if (event.kind === 'job-start') Object.assign(line, { job: event.jobId, phase: null, state: 'connecting', since: Date.now() });
    if (event.kind === 'job-end') {
      this.done.add(event.jobId);
      // Finished jobs scroll above the live block, so the history stays readable.
      this.clear();
      this.out.write(`${event.device.padEnd(this.width())}  ${describe(event)}\n`);
      Object.assign(line, { job: null, phase: null, state: 'idle', since: Date.now() });
    }
    this.draw();
  }

  stop(): void {
    clearInterval(this.timer);
    this.draw();
  }

  private width(): number {
    return Math.max(...[...this.lines.keys()].map((k) => k.length));
  }

  private clear(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private draw(): void {
    this.clear();
    const cols = this.out.columns || 100;
    const total = this.options.totalJobs;
    if (total !== undefined) this.out.write(`${overallLine(this.done.size, total, this.now() - this.started).slice(0, cols - 1)}\n`);
    for (const [device, line] of this.lines) {
      const elapsed = ((Date.now() - line.since) / 1000).toFixed(0).padStart(4);
      const text = `${device.padEnd(this.width())}  ${line.state.padEnd(10)} ${elapsed}s  ${line.job ?? ''}${line.phase ? ` · ${line.phase}` : ''}`;
      this.out.write(`${text.slice(0, cols - 1)}\n`);
    }
    this.drawn = this.lines.size + (total !== undefined ? 1 : 0);
  }
}
