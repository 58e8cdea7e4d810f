// The names of the built-in middleware: rules and request opt-outs name middleware with these, never loose strings.

/**
 * The names of the built-in middleware, for rules and request opt-outs (`static skip`), so a typo is a compile error.
 * @example withRules(async function rateLimit(ctx, next) { ... }, { after: [MIDDLEWARE.policy] })
 */
export const MIDDLEWARE = {
  tracing: 'tracing',
  validation: 'validation',
  unitOfWork: 'unitOfWork',
  audit: 'audit',
  idempotency: 'idempotency',
  inbox: 'inbox',
  policy: 'policy',
  transition: 'transition',
  publish: 'publish',
} as const;

/** The name of a built-in middleware. */
export type MiddlewareName = (typeof MIDDLEWARE)[keyof typeof MIDDLEWARE];
