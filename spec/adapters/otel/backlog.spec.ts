// observeOutboxBacklog(): the outbox backlog gauge, unsent and parked, read from a real knex outbox.
import { randomUUID } from 'node:crypto';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { KnexOutbox, KnexUnitOfWork, tables } from '../../../adapters/knex/index.js';
import { observeOutboxBacklog } from '../../../adapters/otel/index.js';
import type { OutboxMessage } from '../../../lib/messaging/index.js';
import { dropSchema, freshSchema, sharedPglite } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

const message = (): OutboxMessage => ({
  id: randomUUID(),
  kind: 'event',
  type: 'spec.backlog',
  payload: {},
  occurredAt: new Date().toISOString(),
  headers: {},
});

describe('observeOutboxBacklog() on a knex outbox (PGlite)', () => {
  it('should report unsent and parked rows under usecasecore.outbox.state', async () => {
    const db = await sharedPglite();
    const schema = await freshSchema(db);
    const uow = new KnexUnitOfWork(db);
    const outbox = new KnexOutbox(uow, tables(schema).outbox);
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3_600_000,
    });
    const meters = new MeterProvider({ readers: [reader] });
    const stop = observeOutboxBacklog(outbox, { meterProvider: meters });
    try {
      await uow.transaction(
        () => outbox.add([message(), message()]).then(() => true),
        () => true,
      );
      const [poison] = await outbox.claim(1);
      await outbox.markFailed(poison!.id, 'unroutable', true);
      const { resourceMetrics } = await reader.collect();
      const points = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .filter((m) => m.descriptor.name === 'usecasecore.outbox.backlog')
        .flatMap((m) => m.dataPoints.map((p) => [p.attributes['usecasecore.outbox.state'], p.value]));
      expect(Object.fromEntries(points)).to.deep.equal({ unsent: 1, parked: 1 });
    } finally {
      stop();
      await meters.shutdown();
      await dropSchema(db, schema.schema);
    }
  });
});
