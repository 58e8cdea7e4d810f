// A feature bundles what the app wires for one area: handlers, policy rules, lifecycle guards, the events it
// consumes and the jobs it runs. Its HTTP routes are declared with the others in samples/routes.ts.
import type { HandlerClass, RequestClass } from '../../lib/core/index.js';
import type { PolicyRule, TransitionGuard } from '../../middleware/index.js';

/** One area of the sample service (inventory, orders, sales, audit). */
export interface Feature {
  readonly handlers: readonly HandlerClass[];
  readonly rules: readonly PolicyRule[];
  readonly guards?: readonly TransitionGuard[];
  /**
   * Events it consumes from a queue of its own (`queue` is the short name; the service prefixes it), each handled
   * by one of `handlers` with `inbox()` deduping redeliveries.
   */
  readonly consumer?: { readonly queue: string; readonly events: readonly RequestClass[] };
  /**
   * The job types it runs (commands its handlers `ctx.enqueue`, and their `onSuccess`/`onFailure` callbacks), each
   * handled by one of `handlers`: the service runs workers for them (`work()`), the inbox deduping redeliveries.
   */
  readonly jobs?: readonly RequestClass[];
  /** Its handlers include event subscribers (@on): the service runs `subscribe()` for them. */
  readonly subscribes?: boolean;
}
