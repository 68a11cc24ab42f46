/**
 * Runs jobs in parallel under a global cap, never more than one at a time per
 * device. A failing job or a dead device never stops the others. Deadlines
 * live inside each job (an AbortSignal it must honour), never in the queue:
 * p-queue's own timeout frees the slot while the task keeps running.
 */
import PQueue from 'p-queue';

export interface SchedulableJob {
  id: string;
  device: { name: string };
}

export interface ScheduleOptions {
  /** Global cap on jobs running at once. */
  concurrency: number;
  /** Aborting starts no new job and is passed on to the running ones. */
  signal: AbortSignal;
  onStart?: (jobId: string) => void;
  /** A job's `execute` threw: a harness bug, not a device problem. The caller decides (run.ts aborts the run). */
  onCrash?: (jobId: string, error: unknown) => void;
}

export interface ScheduleOutcome<R> {
  /** In completion order. */
  finished: R[];
  /** Jobs that never started because the run was aborted. */
  notStarted: string[];
  /** Jobs whose `execute` threw instead of returning a result. */
  crashed: { jobId: string; error: unknown }[];
}

/**
 * `execute` must settle: it turns its own failures into a result (an
 * infra_error record) and returns when its cleanup is done.
 */
export async function schedule<J extends SchedulableJob, R>(
  jobs: readonly J[],
  execute: (job: J, signal: AbortSignal) => Promise<R>,
  options: ScheduleOptions,
): Promise<ScheduleOutcome<R>> {
  const global = new PQueue({ concurrency: Math.max(1, options.concurrency) });
  const perDevice = new Map<string, PQueue>();
  const finished: R[] = [];
  const notStarted: string[] = [];
  const crashed: { jobId: string; error: unknown }[] = [];

  const runs = jobs.map((job) => {
    let queue = perDevice.get(job.device.name);
    if (!queue) perDevice.set(job.device.name, (queue = new PQueue({ concurrency: 1 })));
    // Device first, then the global slot: a job waiting for a busy device holds no global slot.
    return queue.add(() =>
      global.add(async () => {
        if (options.signal.aborted) {
          notStarted.push(job.id);
          return;
        }
        options.onStart?.(job.id);
        try {
          finished.push(await execute(job, options.signal));
        } catch (error) {
          // Never let one job's crash settle the run while other jobs still hold devices.
          crashed.push({ jobId: job.id, error });
          options.onCrash?.(job.id, error);
        }
      }),
    );
  });
  await Promise.all(runs);
  return { finished, notStarted, crashed };
}
