// The sample service: inventory, orders and the audit log behind one mediator, served by Express.
import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import express, { type Express } from 'express';
import { Container } from 'inversify';
import { memoryModule } from '../adapters/memory/index.js';
import { createMediator, type Mediator } from '../lib/index.js';
import { recommendedStack } from '../middleware/index.js';
import { auditLog } from './audit/index.js';
import { oneIdentity } from './http/actor.js';
import { problemErrorHandler, unknownRoute } from './http/errors.js';
import { inventory } from './inventory/index.js';
import { memoryRepositories } from './memory.js';
import { orders } from './orders/index.js';
import type { Feature } from './shared/feature.js';

/** The areas the service serves. */
export const FEATURES: readonly Feature[] = [inventory, orders, auditLog];

/** The largest JSON body accepted; a bigger one is answered 413. */
export const BODY_LIMIT = '32kb';

/**
 * The HTTP server's limits, chosen on purpose: a client gets 10 s to send its headers and 30 s for the whole
 * request (a slow sender cannot hold a connection for ever), idle keep-alive connections close after 5 s, and at
 * most 1,000 connections are open at once.
 */
export const SERVER_LIMITS = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  maxConnections: 1_000,
} as const;

/**
 * An HTTP server for `app` with `SERVER_LIMITS`.
 * @example createHttpServer(createApp().app).listen(3000);
 */
export function createHttpServer(app: Express): Server {
  return Object.assign(createServer(app), SERVER_LIMITS);
}

/** What `createApp` returns. */
export interface SampleApp {
  readonly app: Express;
  readonly mediator: Mediator;
  readonly container: Container;
}

/** Options of `createApp`. */
export interface SampleAppOptions {
  /** Where unexpected errors (answered 500) are reported. Default `console.error`. */
  readonly logError?: (error: unknown) => void;
}

/**
 * A container with every port and repository in memory.
 * @example const { app } = createApp(createMemoryContainer());
 */
export function createMemoryContainer(): Container {
  const container = new Container();
  container.load(memoryModule(), memoryRepositories());
  return container;
}

/**
 * Builds the service on `container`, which must bind the usecasecore ports and the sample's repository tokens
 * (default: everything in memory). Every request runs validation → audit → idempotency → unitOfWork → policy →
 * transition → publish → handler.
 * @example const { app, mediator, container } = createApp(); http.createServer(app).listen(3000);
 */
export function createApp(container: Container = createMemoryContainer(), options: SampleAppOptions = {}): SampleApp {
  const mediator = createMediator(container, {
    handlers: FEATURES.flatMap((feature) => feature.handlers),
    middleware: recommendedStack({
      rules: FEATURES.flatMap((feature) => feature.rules),
      guards: FEATURES.flatMap((feature) => feature.guards ?? []),
    }),
  });
  const app = express();
  app.disable('x-powered-by');
  app.use(oneIdentity);
  app.use(express.json({ limit: BODY_LIMIT }));
  for (const feature of FEATURES) app.use(feature.path, feature.routes(mediator));
  app.use(unknownRoute);
  app.use(problemErrorHandler(options.logError ?? console.error));
  return { app, mediator, container };
}
