/**
 * What a QEMU profile implies about the device it emulates (model, RAM,
 * arch), so an inventory entry can say just `profile: pi4b-2g-armhf`.
 */
import type { Arch } from '../results/record.ts';
import { findProfile, profileNames } from '../pi/profiles.ts';

export interface ProfileFacts {
  model: string;
  ramMb: number;
  arch: Arch;
}

export function profileDefaults(name: string): ProfileFacts | null {
  const profile = findProfile(name);
  return profile ? { model: profile.model, ramMb: profile.ramMb, arch: profile.arch } : null;
}
profileDefaults.names = profileNames;
