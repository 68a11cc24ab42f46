/**
 * What a QEMU profile implies about the device it emulates (model, RAM,
 * arch), so an inventory entry can say just `profile: pi4b-2g-armhf`.
 */
import type { Arch } from '../results/record.ts';

export interface ProfileFacts {
  model: string;
  ramMb: number;
  arch: Arch;
}

const KNOWN: Record<string, ProfileFacts> = {};

export function profileDefaults(name: string): ProfileFacts | null {
  return KNOWN[name] ?? null;
}
profileDefaults.names = (): string[] => Object.keys(KNOWN);
