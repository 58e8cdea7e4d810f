// The one timer the background work shares (audit sealing, retention): unref'd, never overlapping a run.

/**
 * Calls `tick` every `everyMs` unless `busy()` (a run still under way is never overlapped); a failing tick goes to
 * `onError` and the next one tries again. The timer is unref'd: it never keeps the process alive. Returns its stop.
 * @example const stop = every(200, () => store.seal(), () => running !== undefined, logError);
 */
export function every(
  everyMs: number,
  tick: () => Promise<unknown>,
  busy: () => boolean,
  onError: (error: unknown) => void,
): () => void {
  const timer = setInterval(() => {
    if (!busy()) tick().catch(onError);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
