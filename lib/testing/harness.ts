// What the contract suites need from a test runner, and the per-case fixture and assertion helpers they share.
import assert from 'node:assert/strict';

/**
 * The two functions of a test runner the contract suites call. Mocha's globals and `node:test`'s `describe`/`it`
 * both fit, and so does any runner whose `it` accepts an async function of no arguments.
 * @example runInboxContract({ describe, it }, 'memory', makeInbox); // mocha globals or `from 'node:test'`
 */
export interface TestApi {
  /** Groups cases under `name`; `fn` registers them synchronously. */
  describe(name: string, fn: () => void): unknown;
  /** One case; the contract suites pass functions that take no argument (so neither `done` nor `this` is used). */
  it(name: string, fn: () => Promise<void> | void): unknown;
}

/** Anything a contract case builds before it runs and tears down after. */
export interface Closable {
  close(): Promise<void>;
}

/**
 * Makes a fixture, runs `use` with it, and closes it whether `use` resolved or threw (a failure of `use` wins over
 * a failure of `close`).
 * @example t.it('should …', () => withFixture(make, async ({ inbox }) => { ... }));
 */
export async function withFixture<F extends Closable, T>(
  make: () => Promise<F>,
  use: (fixture: F) => Promise<T>,
): Promise<T> {
  const fixture = await make();
  let result: T;
  try {
    result = await use(fixture);
  } catch (error) {
    await fixture.close().catch(() => undefined);
    throw error;
  }
  await fixture.close();
  return result;
}

/**
 * Asserts that `actual` has every property of `expected` with a deep-equal value (other properties are ignored).
 * @example assertIncludes(record, { seq: 1, prevHash: GENESIS_HASH });
 */
export function assertIncludes(actual: object, expected: Readonly<Record<string, unknown>>, message?: string): void {
  const record = actual as Record<string, unknown>;
  const picked = Object.fromEntries(Object.keys(expected).map((key) => [key, record[key]]));
  assert.deepStrictEqual(picked, { ...expected }, message);
}

/**
 * Polls `condition` every few milliseconds until it holds; rejects with `what` after `timeoutMs`.
 * @example await eventually(() => handled.length === 2, 'both deliveries to arrive');
 */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await new Promise((resolve) => setTimeout(resolve, 5))) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}
