// The sample service: inventory, orders and the audit log behind one mediator, served by Express.
import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import express, { type Express } from 'express';
import { Container } from 'inversify';
import { memoryModule } from '../adapters/memory/index.js';
import { createMediator, type AnyRequest, type Mediator, type SendOptions } from '../lib/index.js';
import { audit, idempotency, inbox, policy, publish, transition, unitOfWork, validation } from '../middleware/index.js';
import { auditLog } from './audit/index.js';
import { oneIdentity } from './http/actor.js';
import { problemErrorHandler, unknownRoute } from './http/errors.js';
import { inventory } from './inventory/index.js';
import { memoryRepositories } from './memory.js';
import { orders } from './orders/index.js';
import { sales } from './sales/index.js';
import type { Feature } from './shared/feature.js';

/** The areas the service serves. */
export const FEATURES: readonly Feature[] = [inventory, orders, sales, auditLog];

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
  /** The mediator the routes use (and consumers should use): it counts its sends in `sends`. */
  readonly mediator: Mediator;
  readonly container: Container;
  /** The sends under way, so a shutdown can wait for them before it closes the database. */
  readonly sends: SendsInFlight;
}

/** Sends under way through a mediator. */
export interface SendsInFlight {
  readonly count: number;
  /** Resolves true once no send is under way, or false after `timeoutMs` with some still running. */
  settled(timeoutMs: number): Promise<boolean>;
}

/** Options of `createApp`. */
export interface SampleAppOptions {
  /** Where unexpected errors (answered 500) are reported. Default `console.error`. */
  readonly logError?: (error: unknown) => void;
  /** How long an idempotency key's stored result replays (ms). Default the library's, 24 h. */
  readonly idempotencyTtlMs?: number;
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
 * (default: everything in memory). Every request runs validation → unitOfWork → audit → idempotency → inbox (for
 * consumed messages) → policy → transition → publish → handler.
 * @example const { app, mediator, container } = createApp(); http.createServer(app).listen(3000);
 */
export function createApp(container: Container = createMemoryContainer(), options: SampleAppOptions = {}): SampleApp {
  const ttl = options.idempotencyTtlMs;
  const { mediator, sends } = countSends(
    createMediator(container, {
      handlers: FEATURES.flatMap((feature) => feature.handlers),
      // recommendedStack({ rules, guards, inbox: true }), spelled out so the idempotency TTL can be set.
      middleware: [
        validation(),
        unitOfWork(),
        audit(),
        idempotency(ttl === undefined ? {} : { ttlMs: ttl }),
        inbox(), // the sales consumer's deliveries take effect once
        policy(FEATURES.flatMap((feature) => feature.rules)),
        transition(FEATURES.flatMap((feature) => feature.guards ?? [])),
        publish(),
      ],
    }),
  );
  const app = express();
  app.disable('x-powered-by');
  app.use(oneIdentity);
  app.use(express.json({ limit: BODY_LIMIT }));
  for (const feature of FEATURES) app.use(feature.path, feature.routes(mediator));
  app.use(unknownRoute);
  app.use(problemErrorHandler(options.logError ?? console.error));
  return { app, mediator, container, sends };
}

/**
 * Wraps a mediator so that it counts its sends under way. (Not a middleware: validation must be first, and a send
 * is under way from the call on.) A send whose HTTP connection was cut still runs to its commit or rollback; the
 * count lets a shutdown wait for it before closing the pools it uses.
 */
function countSends(inner: Mediator): { mediator: Mediator; sends: SendsInFlight } {
  let count = 0;
  let waiters: Array<() => void> = [];
  const mediator: Mediator = {
    async send<C extends AnyRequest>(request: C, options?: SendOptions) {
      count++;
      try {
        return await inner.send(request, options);
      } finally {
        if (--count === 0) for (const wake of waiters.splice(0)) wake();
      }
    },
    stream: (request, options) => inner.stream(request, options),
    subscriptions: () => inner.subscriptions(),
    describe: (type) => inner.describe(type),
    get ports() {
      return inner.ports;
    },
  };
  const sends: SendsInFlight = {
    get count() {
      return count;
    },
    settled(timeoutMs) {
      if (count === 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          waiters = waiters.filter((waiter) => waiter !== wake); // a timed-out wait leaves nothing behind
          resolve(false);
        }, timeoutMs);
        waiters.push(wake);
      });
    },
  };
  return { mediator, sends };
}
