// The sample service: inventory, orders, sales, the audit log and job states behind one mediator, served by Express.
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import express, { type Express } from 'express';
import { Container } from 'inversify';
import { docsPage, type OpenApiDocument } from '../adapters/http/index.js';
import { memoryModule } from '../adapters/memory/index.js';
import { otelModule, tracing } from '../adapters/otel/index.js';
import { createMediator, TOKENS, type AnyRequest, type Mediator, type SendOptions } from '../lib/core/index.js';
import { audit, idempotency, inbox, policy, publish, transition, unitOfWork, validation } from '../middleware/index.js';
import { auditLog, ExportAudit } from './audit/index.js';
import { oneIdentity } from './http/actor.js';
import { problemErrorHandler, unknownRoute } from './http/errors.js';
import { probes } from './http/health.js';
import { ndjson } from './http/ndjson.js';
import { optionsAsExpress } from './http/paths.js';
import { inRequestContext } from './http/trace.js';
import {
  CHARGE_STORE,
  checkout,
  MemoryChargeStore,
  PSP_CLIENT,
  PspClient,
  pspRouter,
  type ChargeStore,
} from './checkout/index.js';
import { pspWebhook, WEBHOOK_SECRET } from './checkout/webhook.js';
import { inventory } from './inventory/index.js';
import { jobStatus } from './jobs/index.js';
import { memoryRepositories } from './memory.js';
import { orders } from './orders/index.js';
import { API_TITLE, sampleOpenApi } from './openapi.js';
import { SAMPLE_ROUTES, sampleRoutes } from './routes.js';
import { sales } from './sales/index.js';
import type { Feature } from './shared/feature.js';

/** The areas the service serves. */
export const FEATURES: readonly Feature[] = [inventory, orders, checkout, sales, auditLog, jobStatus];

/** The version of the OpenAPI document: the package's. */
const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

/** The largest JSON body accepted, in bytes; a bigger one is answered 413. */
export const BODY_LIMIT = 32 * 1024;

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
  /**
   * The OpenAPI 3.1 document of the declared routes, the export and the probes, served at `GET /openapi.json` (and
   * rendered at `/docs`).
   */
  readonly openapi: OpenApiDocument;
  /** Tells the app the base URL it is served at (`http://127.0.0.1:3000`): the stand-in provider is under it. */
  listening(url: string): void;
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
  /**
   * The payment provider's base URL (`PSP_URL`). Default: this service's own stand-in, `<its URL>/psp` (known once
   * it listens: see `SampleApp.listening`).
   */
  readonly pspUrl?: string;
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
 * (default: everything in memory); it loads `otelModule()` into it unless Telemetry is bound already. Every request
 * runs tracing → validation → unitOfWork → audit → idempotency → inbox (for consumed messages and jobs, whose
 * states the job runner of work() records) → policy → transition → publish → handler. HTTP: the probes, then the
 * declared routes (samples/routes.ts) in the request's trace context, `GET /audit/export` (NDJSON),
 * `GET /openapi.json` and `GET /docs`; anything else is a 404 problem. It starts no consumer or worker: see
 * `startConsumers` (samples/consumers.ts).
 * @example const { app, mediator, container } = createApp(); http.createServer(app).listen(3000);
 */
export function createApp(container: Container = createMemoryContainer(), options: SampleAppOptions = {}): SampleApp {
  const ttl = options.idempotencyTtlMs;
  // The trace context active at ctx.publish goes into the outbox row (before createMediator: it resolves the ports).
  if (!container.isBound(TOKENS.Telemetry)) container.load(otelModule());
  const { mediator, sends } = countSends(
    createMediator(container, {
      handlers: FEATURES.flatMap((feature) => feature.handlers),
      // tracing() + recommendedStack({ rules, guards, inbox: true }), spelled out so the idempotency TTL can be set.
      middleware: [
        tracing(), // a span per send (when an SDK is registered); first, so it sees the whole send
        validation(),
        unitOfWork(),
        audit(),
        idempotency(ttl === undefined ? {} : { ttlMs: ttl }),
        inbox(), // the sales consumer's deliveries and the jobs take effect once
        policy(FEATURES.flatMap((feature) => feature.rules)),
        transition(FEATURES.flatMap((feature) => feature.guards ?? [])),
        publish(),
      ],
    }),
  );
  const logError = options.logError ?? console.error;
  let self: string | undefined;
  const pspUrl = () => options.pspUrl ?? `${self ?? 'http://127.0.0.1:3000'}/psp`;
  if (!container.isBound(PSP_CLIENT)) container.bind(PSP_CLIENT).toConstantValue(new PspClient(pspUrl));
  const api = sampleRoutes(mediator, BODY_LIMIT);
  const document = sampleOpenApi(api, VERSION);
  const docs = docsPage('/openapi.json', { title: API_TITLE });
  const app = express();
  app.disable('x-powered-by');
  app.use(probes(container)); // GET /health, GET /ready: before anything that could refuse a request
  app.use(oneIdentity);
  // application/json only, as before the declared routes: a body of another type is left unread (absent).
  app.use(express.json({ limit: BODY_LIMIT }));
  app.get('/openapi.json', (_req, res) => void res.json(document));
  app.get('/docs', (_req, res) => void res.type('html').send(docs));
  app.get('/audit/export', inRequestContext(ndjson(mediator, () => ExportAudit.from({}), logError)));
  // The stand-in provider keeps its charges where the backend says; a container without them (a spec's): memory.
  const charges = container.isBound(CHARGE_STORE) ? container.get<ChargeStore>(CHARGE_STORE) : new MemoryChargeStore();
  app.use('/psp', pspRouter(charges, { secret: WEBHOOK_SECRET }));
  app.post('/webhooks/psp', inRequestContext(pspWebhook(mediator, WEBHOOK_SECRET, logError)));
  app.use(inRequestContext(api.express)); // the declared routes; other paths fall through
  app.use(optionsAsExpress(SAMPLE_ROUTES)); // OPTIONS on a declared path: 200 with Allow, as Express's routers did
  app.use(unknownRoute);
  app.use(problemErrorHandler(logError));
  return {
    app,
    mediator,
    container,
    sends,
    openapi: document,
    listening: (url) => {
      self = url;
    },
  };
}

/**
 * Wraps a mediator so that it counts its sends under way. (Not a middleware: a send is under way from the call on,
 * before its first middleware.) A send whose HTTP connection was cut still runs to its commit or rollback; the
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
