// The built-in middleware, one factory each.
import type { Middleware } from '../lib/core/middleware.js';
import { audit } from './audit.js';
import { idempotency } from './idempotency.js';
import { inbox } from './inbox.js';
import { jobs } from './jobs.js';
import { policy, type PolicyRule } from './policy.js';
import { publish } from './publish.js';
import { transition, type TransitionGuard } from './transition.js';
import { unitOfWork } from './unit-of-work.js';
import { validation } from './validation.js';

export { audit, type AuditOptions } from './audit.js';
export { idempotency, type IdempotencyOptions } from './idempotency.js';
export { inbox } from './inbox.js';
export { jobs } from './jobs.js';
export { everyone, policy, rule, type PolicyRule } from './policy.js';
export { publish } from './publish.js';
export { guard, transition, type TransitionGuard } from './transition.js';
export { unitOfWork, type UnitOfWorkOptions } from './unit-of-work.js';
export { validation, type ValidationOptions } from './validation.js';

/**
 * The seven middleware in the recommended order (see README for why this order), plus `inbox()` and `jobs()` when
 * the mediator also serves consumers and workers (`{ inbox: true }`; `jobs: false` for one that runs no jobs: `work()`
 * refuses a stack without jobs() while a JobStore is bound).
 * @example createMediator(container, { handlers, middleware: recommendedStack({ rules, guards }) })
 */
export function recommendedStack(options: {
  rules: readonly PolicyRule[];
  guards?: readonly TransitionGuard[];
  inbox?: boolean;
  jobs?: boolean;
}): Middleware[] {
  return [
    validation(),
    ...((options.jobs ?? options.inbox) ? [jobs()] : []),
    unitOfWork(),
    audit(),
    idempotency(),
    ...(options.inbox ? [inbox()] : []),
    policy(options.rules),
    transition(options.guards ?? []),
    publish(),
  ];
}
