/**
 * The Debian mirror the host already uses, read from its apt sources (one-line
 * `sources.list` and deb822 `*.sources`), so a guest is built from, and later
 * updates from, a mirror that is known to be reachable from here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface Mirrors {
  main: string;
  security: string;
}

const DEFAULT: Mirrors = { main: 'http://deb.debian.org/debian', security: 'http://deb.debian.org/debian-security' };

interface Source {
  uri: string;
  suites: string[];
}

/** Parse both apt source formats; other lines are ignored. */
export function parseSources(text: string): Source[] {
  const out: Source[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (m?.[1] && m[2]) out.push({ uri: m[1], suites: [m[2]] });
  }
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string | undefined =>
      new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
    const types = field('Types');
    const uris = field('URIs');
    const suites = field('Suites');
    if (!types?.split(/\s+/).includes('deb') || !uris || !suites) continue;
    for (const uri of uris.split(/\s+/)) out.push({ uri, suites: suites.split(/\s+/) });
  }
  return out;
}

export function pickMirrors(sources: Source[]): Mirrors {
  const debian = sources.filter((s) => /debian/.test(s.uri));
  const security = debian.find((s) => s.suites.some((x) => x.endsWith('-security')));
  const main = debian.find((s) => !s.suites.some((x) => x.endsWith('-security')));
  return {
    main: main ? main.uri.replace(/\/$/, '') : DEFAULT.main,
    security: security ? security.uri.replace(/\/$/, '') : DEFAULT.security,
  };
}

export function hostMirrors(aptDir = '/etc/apt'): Mirrors {
  const texts: string[] = [];
  const read = (file: string): void => {
    try {
      texts.push(readFileSync(file, 'utf8'));
    } catch {
      /* absent: fine */
    }
  };
  read(path.join(aptDir, 'sources.list'));
  try {
    for (const f of readdirSync(path.join(aptDir, 'sources.list.d'))) {
      if (f.endsWith('.list') || f.endsWith('.sources')) read(path.join(aptDir, 'sources.list.d', f));
    }
  } catch {
    /* no folder */
  }
  return pickMirrors(texts.flatMap(parseSources));
}
