/**
 * The one polling wait of the tests and scripts, for states that announce themselves
 * nowhere (a process gone, a port answering, a line in a child's output).
 */

/**
 * Resolve once `condition` holds, checking it every `stepMs`; reject after `timeoutMs`
 * with an error naming `what` ("timed out after 30000 ms waiting for <what>"), so a
 * failing test says what never happened. The condition is checked once more at the
 * deadline. A condition that throws ends the wait with its own error: that is how a
 * caller gives up early (e.g. when the process it waits on has died).
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
  stepMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, Math.min(stepMs, left)));
  }
}
