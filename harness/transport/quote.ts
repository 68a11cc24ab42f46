/**
 * POSIX shell quoting for remote command lines. Every value that reaches a
 * remote shell (device names, paths, arguments) goes through here, so none
 * of them can inject shell syntax.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (word === '') return "''";
  if (SAFE.test(word)) return word;
  // Close the quote, emit an escaped quote, reopen: 'it'\''s'.
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Join argv into one command line, each word quoted. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
