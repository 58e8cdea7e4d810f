// A feature bundles what the app wires for one area: handlers, policy rules, lifecycle guards, HTTP routes and the
// events it consumes.
import type { Router } from 'express';
import type { HandlerClass, Mediator, RequestClass } from '../../lib/index.js';
import type { PolicyRule, TransitionGuard } from '../../middleware/index.js';

/** One area of the sample service (inventory, orders, sales, audit). */
export interface Feature {
  /** Where its routes are mounted (`/inventory`). */
  readonly path: string;
  readonly handlers: readonly HandlerClass[];
  readonly rules: readonly PolicyRule[];
  readonly guards?: readonly TransitionGuard[];
  /** Builds its Express router on top of the mediator. */
  routes(mediator: Mediator): Router;
  /**
   * Events it consumes from a queue of its own (`queue` is the short name; the service prefixes it), each handled
   * by one of `handlers` with `inbox()` deduping redeliveries.
   */
  readonly consumer?: { readonly queue: string; readonly events: readonly RequestClass[] };
}
