// The built-in middleware, one factory each.
import type { Middleware } from '../lib/core/middleware.js';
import { audit } from './audit.js';
import { idempotency } from './idempotency.js';
import { inbox } from './inbox.js';
import { policy, type PolicyRule } from './policy.js';
import { publish } from './publish.js';
import { transition, type TransitionGuard } from './transition.js';
import { unitOfWork } from './unit-of-work.js';
import { validation } from './validation.js';

export { audit, type AuditOptions } from './audit.js';
export { idempotency, type IdempotencyOptions } from './idempotency.js';
export { inbox } from './inbox.js';
export { everyone, policy, rule, type PolicyRule } from './policy.js';
export { publish } from './publish.js';
export { guard, transition, type TransitionGuard } from './transition.js';
export { unitOfWork, type UnitOfWorkOptions } from './unit-of-work.js';
export { validation, type ValidationOptions } from './validation.js';
export { DEFAULT_LIMITS, type InputLimits } from '../lib/core/json.js';

/**
 * The seven middleware in the recommended order (docs/middleware.md says why this order), plus `inbox()` when the
 * mediator also serves consumers, subscribers or job workers (`inbox: true`, or `jobs: true`): `consume()`,
 * `subscribe()` and `work()` refuse a stack without it.
 * @example createMediator(container, { handlers, middleware: recommendedStack({ rules, guards, inbox: true }) })
 */
export function recommendedStack(options: {
  rules: readonly PolicyRule[];
  guards?: readonly TransitionGuard[];
  /** Add inbox(): the mediator serves deliveries (consume, subscribe, work). */
  inbox?: boolean;
  /** The same as `inbox: true`: a job worker needs the inbox (a duplicate delivery must not run a job twice). */
  jobs?: boolean;
}): Middleware[] {
  return [
    validation(),
    unitOfWork(),
    audit(),
    idempotency(),
    ...(options.inbox || options.jobs ? [inbox()] : []),
    policy(options.rules),
    transition(options.guards ?? []),
    publish(),
  ];
}
