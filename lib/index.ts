// Public API of usecasecore's core.
export { compose, type Step } from './core/compose.js';
export { Context, type Actor, type AnyResult, type Meta, type SendOptions, type StageOptions } from './core/context.js';
export { UseCaseError, type UseCaseErrorKind } from './core/errors.js';
export { handles, handledBy, on, subscribedTo, type Handler, type HandlerClass } from './core/handler.js';
export {
  boundedCopy,
  canonicalJson,
  redact,
  sha256,
  DEFAULT_LIMITS,
  SECRET_FIELD,
  type InputLimits,
} from './core/json.js';
export { createMediator, type Mediator, type MediatorOptions } from './core/mediator.js';
export {
  withRules,
  type Middleware,
  type MiddlewareClass,
  type MiddlewareRules,
  type Next,
} from './core/middleware.js';
export type * from './core/ports.js';
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
} from './core/request.js';
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
} from './core/result.js';
export type { InferOutput, StandardSchemaV1 } from './core/schema.js';
export { TOKENS } from './core/tokens.js';
export { chainAfter, chainHash, chainParts, verifyAuditChain, GENESIS_HASH } from './audit/chain.js';
export { lifecycle, type LifecycleAction } from './core/lifecycle.js';
export { bindRelay, createRelay, type RelayOptions, type RunningRelay } from './messaging/relay.js';
export { consume, dispositionOf, subscribe, work, type ConsumerOptions } from './messaging/consume.js';
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
} from './jobs/jobs.js';
export {
  retention,
  type Retention,
  type RetentionCounts,
  type RetentionOptions,
  type RetentionPorts,
} from './ops/retention.js';
export { flow, type Chain, type FlowClass, type FlowRequest, type StepClass, type StepMismatch } from './core/flow.js';
export { auditSealer, type AuditSealer, type AuditSealerOptions } from './audit/sealer.js';
export {
  defaultLogger,
  fromPino,
  jsonLogger,
  type LogFields,
  type Logger,
  type LogLevel,
  type PinoLike,
} from './core/logger.js';
export { settled } from './testing/settled.js';
