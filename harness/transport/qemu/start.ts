/**
 * Start a VM the fastest way that works: restore the warm state (making it on first use),
 * else boot cold. Shared by the qemu transport and `hil console`.
 */
import { rm } from 'node:fs/promises';
import { TransportError } from '../transport.ts';
import type { VmConfig } from './config.ts';
import { QemuVm } from './vm.ts';
import { ensureWarmState, type WarmState } from './warm.ts';

export interface BootInfo {
  mode: 'warm' | 'cold';
  /** Launch until the SSH banner answered (warm: includes setting the guest clock). */
  readyMs: number;
  /** Why a warm start was not used although it was wanted. */
  warmSkipped: string | null;
}

export interface StartOptions {
  /** Epoch ms by which SSH must answer. */
  deadline: number;
  warm: boolean;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export async function startVm(cfg: VmConfig, opts: StartOptions): Promise<{ vm: QemuVm; boot: BootInfo }> {
  const { deadline, signal, onProgress } = opts;
  const left = (from = Date.now()): number => Math.max(1000, deadline - from);
  let warmSkipped: string | null = null;
  if (opts.warm && cfg.hostKeyFingerprint) {
    let ws: WarmState | null = null;
    try {
      ws = await ensureWarmState(cfg, { bootTimeoutMs: left(), ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) });
    } catch (e) {
      signal?.throwIfAborted();
      // A guest that cannot even boot cold is a boot failure, not a warm-state problem.
      if (e instanceof TransportError) throw e;
      warmSkipped = `warm state unavailable: ${(e as Error).message}`;
    }
    if (ws) {
      const vm = await QemuVm.launch(cfg, { overlayBacking: { file: ws.disk, format: 'qcow2' }, incomingState: ws.state });
      try {
        await vm.resumeAfterIncoming(deadline, signal);
        await vm.waitReady({ timeoutMs: left(vm.launchedAt), ...(signal ? { signal } : {}) });
        await vm.afterRestore(deadline, signal);
        return { vm, boot: { mode: 'warm', readyMs: Date.now() - vm.launchedAt, warmSkipped: null } };
      } catch (e) {
        await vm.stop();
        signal?.throwIfAborted();
        // A state that no longer restores (QEMU upgraded in place, file damaged) is dropped
        // and made again next time; this start boots cold.
        warmSkipped = `restore failed, state dropped: ${(e as Error).message.split('\n')[0]}`;
        onProgress?.(`${cfg.name}: ${warmSkipped}`);
        await rm(ws.dir, { recursive: true, force: true });
      }
    }
  } else if (opts.warm) {
    warmSkipped = 'the guest host key is not known in advance (own image)';
  }
  const vm = await QemuVm.launch(cfg, {});
  try {
    await vm.waitReady({ timeoutMs: left(vm.launchedAt), ...(signal ? { signal } : {}) });
  } catch (e) {
    await vm.stop();
    throw e;
  }
  return { vm, boot: { mode: 'cold', readyMs: Date.now() - vm.launchedAt, warmSkipped } };
}
