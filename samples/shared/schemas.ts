// Field schemas the sample requests share, so every id and quantity is checked the same way.
import * as v from 'valibot';

/** A product or bin id: 1–64 letters, digits, `.`, `_` or `-`, starting with a letter or digit. */
export const entityId = v.pipe(
  v.string(),
  v.regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'Must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit',
  ),
);

/** An order id (orders get a random UUID when placed). */
export const orderId = v.pipe(v.string(), v.uuid('Must be an order id (a UUID)'));

/** A quantity of stock: a whole number from 1 to 1,000,000. */
export const quantity = v.pipe(
  v.number(),
  v.integer('Must be a whole number'),
  v.minValue(1, 'Must be at least 1'),
  v.maxValue(1_000_000, 'Must be at most 1,000,000'),
);

/**
 * How many records a list returns: the query-string text (`?limit=20`), a whole number from 1 to 500. Optional: each
 * list has its own default.
 */
export const listLimit = v.optional(
  v.pipe(
    v.string(),
    v.digits('Must be a whole number'),
    v.transform(Number),
    v.minValue(1, 'Must be at least 1'),
    v.maxValue(500, 'Must be at most 500'),
  ),
);
