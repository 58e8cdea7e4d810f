// AmqpConnection.close() while the broker blocks publishing: the sockets go away at once, so a process can exit.
import { once } from 'node:events';
import { AmqpBus, AmqpConnection } from '../../adapters/amqp/index.js';
import { deleteTopology, isolatedTopology, rabbit } from '../broker.js';
import { expect } from '../helpers.js';
import { currentWatermark, rabbitmqctl } from './rabbitmqctl.js';

describe('AmqpConnection.close() under a memory alarm', function () {
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
});
