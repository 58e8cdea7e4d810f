// A feature bundles what the app wires for one area: handlers, policy rules, lifecycle guards and HTTP routes.
import type { Router } from 'express';
import type { HandlerClass, Mediator } from '../../lib/index.js';
import type { PolicyRule, TransitionGuard } from '../../middleware/index.js';

/** One area of the sample service (inventory, orders, audit). */
export interface Feature {
  /** Where its routes are mounted (`/inventory`). */
  readonly path: string;
  readonly handlers: readonly HandlerClass[];
  readonly rules: readonly PolicyRule[];
  readonly guards?: readonly TransitionGuard[];
  /** Builds its Express router on top of the mediator. */
  routes(mediator: Mediator): Router;
}
