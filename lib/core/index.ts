// usecasecore: the mediator, requests and results, handlers, the middleware contract and the ports a send writes
// through. Messaging, jobs, audit and operations have entry points of their own (usecasecore/messaging, …).
export { createMediator, type Mediator, type MediatorOptions } from './mediator.js';
export { Command, Event, Query, typeOf } from './request.js';
export type { AnyRequest, FailureOf, Request, RequestClass, RequestKind, ResultOf, RetryPolicy } from './request.js';
export { andThen, fail, failure, map, mapFailure, match, notFound, ok, unwrap } from './result.js';
export type { AnyResult, Fail, Failure, FailureKind, Issue, Ok, Result } from './result.js';
export { FAILURES, type FailureRule } from './failures.js';
export { handles, on } from './handler.js';
export type { Actor, Context, Handler, HandlerClass, Meta, ProcessStepRef, SendOptions } from './context.js';
export type { EnqueueOptions, JobHandle } from './staging.js';
export { withRules, type Middleware, type MiddlewareClass, type MiddlewareRules, type Next } from './middleware.js';
export { MIDDLEWARE } from './names.js';
export { UseCaseError } from './errors.js';
export { TOKENS } from './tokens.js';
export { lifecycle, type LifecycleAction } from './lifecycle.js';
export { flow, type FlowClass } from './flow.js';
export { fromPino, jsonLogger, type LogFields, type Logger } from './logger.js';
export type { Decision, Policy } from './policy.js';
export type { Claim, Clock, IdempotencyKey, IdempotencyStore, Ports, StateMachine, UnitOfWork } from './ports.js';
export type { InferOutput, StandardSchemaV1 } from './schema.js';
