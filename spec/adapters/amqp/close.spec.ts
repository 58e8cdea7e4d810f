// AmqpConnection.close() while the broker blocks publishing: the sockets go away at once, so a process can exit.
import { once } from 'node:events';
import 'reflect-metadata';
import { Container } from 'inversify';
import { AmqpBus, AmqpConnection, amqpModule } from '../../../adapters/amqp/index.js';
import { memoryModule } from '../../../adapters/memory/index.js';
import { TOKENS, createMediator } from '../../../lib/core/index.js';
import { deleteTopology, isolatedTopology, queueType, rabbit } from '../../support/broker.js';
import { expect } from '../../support/helpers.js';
import { closeConnectionsNamed, currentWatermark, rabbitmqctl } from '../../support/rabbitmqctl.js';

describe('AmqpConnection: close() under a memory alarm, and its logs', function () {
  this.timeout(30_000);
  let url: string;
  before(async function () {
    const found = await rabbit();
    if (!found) return this.skip();
    url = found;
  });

  it('should destroy the blocked socket, leaving no handle open', async () => {
    const topology = isolatedTopology();
    const connection = new AmqpConnection(url, 10, topology.prefix);
    const bus = new AmqpBus(connection, {
      exchanges: topology.exchanges,
      mandatoryEvents: false,
      confirmTimeoutMs: 500,
      queueType: queueType(),
    });
    const watermark = currentWatermark();
    try {
      const model = await connection.model('publish');
      const blocked = once(connection, 'blocked');
      rabbitmqctl('set_vm_memory_high_watermark', '0.000001');
      // RabbitMQ says 'blocked' at the first publish during the alarm.
      const publishing = bus
        .publish([
          {
            id: 'm-1',
            kind: 'event',
            type: 'spec.closed',
            payload: {},
            occurredAt: new Date().toISOString(),
            headers: {},
          },
        ])
        .catch(() => undefined);
      await blocked;
      const socket = (model as unknown as { connection: { stream: { destroyed: boolean } } }).connection.stream;
      await connection.close();
      expect(socket.destroyed, 'the socket is gone, not waiting for the broker to read').to.equal(true);
      await publishing;
    } finally {
      rabbitmqctl('set_vm_memory_high_watermark', ...watermark);
      await deleteTopology(url, topology.exchanges, []).catch(() => undefined);
    }
  });

  it('should log a lost connection once and its reopening once, through the container Logger (amqpModule)', async () => {
    const topology = isolatedTopology();
    const lines: Array<{ level: string; message: string; fields: unknown }> = [];
    const at = (level: string) => (message: string, fields?: unknown) => void lines.push({ level, message, fields });
    const container = new Container();
    container.load(
      memoryModule({ bus: false }),
      amqpModule({ url, exchanges: topology.exchanges, connectionName: topology.prefix, queueType: queueType() }),
    );
    container
      .bind(TOKENS.Logger)
      .toConstantValue({ debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') });
    createMediator(container, { handlers: [] }); // resolves the relay, which wires the connection's logs
    const connection = container.get(AmqpConnection);
    try {
      await connection.model('publish');
      const lost = once(connection, 'lost');
      expect(closeConnectionsNamed(topology.prefix)).to.equal(1);
      await lost;
      await connection.model('publish'); // opened again on next use
      expect(lines.map((l) => `${l.level}: ${l.message}`)).to.deep.equal([
        'warn: amqp: the publish connection was lost; it reconnects on next use',
        'info: amqp: the publish connection is open again',
      ]);
    } finally {
      await connection.close();
      await deleteTopology(url, topology.exchanges, []).catch(() => undefined);
    }
  });
});
