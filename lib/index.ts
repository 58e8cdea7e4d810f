// Public API of usecasecore's core.
export { compose, type Step } from './compose.js';
export { Context, type Actor, type AnyResult, type Meta, type SendOptions, type StageOptions } from './context.js';
export { UseCaseError, type UseCaseErrorKind } from './errors.js';
export { handles, handledBy, on, subscribedTo, type Handler, type HandlerClass } from './handler.js';
export { boundedCopy, canonicalJson, redact, sha256, DEFAULT_LIMITS, SECRET_FIELD, type InputLimits } from './json.js';
export { createMediator, type Mediator, type MediatorOptions } from './mediator.js';
export { withRules, type Middleware, type MiddlewareClass, type MiddlewareRules, type Next } from './middleware.js';
export type * from './ports.js';
export {
  Command,
  Event,
  Query,
  Request,
  payloadOf,
  rawInput,
  typeOf,
  type AnyRequest,
  type FailureOf,
  type RequestClass,
  type RequestKind,
  type ResultOf,
  type TypedRequestClass,
} from './request.js';
export {
  andThen,
  fail,
  failure,
  map,
  mapFailure,
  match,
  notFound,
  ok,
  unwrap,
  type Fail,
  type Failure,
  type FailureKind,
  type Issue,
  type Ok,
  type Result,
} from './result.js';
export type { InferOutput, StandardSchemaV1 } from './schema.js';
export { TOKENS } from './tokens.js';
export { chainAfter, chainHash, chainParts, verifyAuditChain, GENESIS_HASH } from './audit-chain.js';
export { lifecycle, type LifecycleAction } from './lifecycle.js';
export { bindRelay, createRelay, type RelayOptions, type RunningRelay } from './relay.js';
export { consume, dispositionOf, subscribe, work, type ConsumerOptions } from './consumer.js';
export {
  CancelJob,
  GetJob,
  backoff,
  jobHandlers,
  type EnqueueOptions,
  type JobFailure,
  type JobHandle,
  type JobOutcome,
  type JobRecord,
  type JobSettled,
  type JobState,
  type JobStore,
  type RetryPolicy,
} from './jobs.js';
export {
  retention,
  type Retention,
  type RetentionCounts,
  type RetentionOptions,
  type RetentionPorts,
} from './retention.js';
export { flow, type Chain, type FlowClass, type FlowRequest, type StepClass, type StepMismatch } from './flow.js';
export { auditSealer, type AuditSealer, type AuditSealerOptions } from './sealer.js';
export {
  defaultLogger,
  fromPino,
  jsonLogger,
  type LogFields,
  type Logger,
  type LogLevel,
  type PinoLike,
} from './logger.js';
export { settled } from './testing.js';
