// OutboxMessage ⇄ AMQP message: the body is the JSON payload; id, type, kind and headers travel as properties.
import type { ConsumeMessage, Options } from 'amqplib';
import type { OutboxMessage } from '../../lib/core/ports.js';

const KIND = 'x-usecasecore-kind';
const AGGREGATE = 'x-usecasecore-aggregate';
const OCCURRED = 'x-usecasecore-occurred-at';
/** Header counting deliveries through the retry queue (1 on the first). */
export const ATTEMPT = 'x-usecasecore-attempt';

/** The body and properties to publish an outbox message with (persistent, stable message id). */
export function encode(
  message: OutboxMessage,
  extra: Record<string, unknown> = {},
): { content: Buffer; options: Options.Publish } {
  const headers: Record<string, unknown> = {
    ...message.headers,
    [KIND]: message.kind,
    [OCCURRED]: message.occurredAt,
    ...extra,
  };
  if (message.aggregateId !== undefined) headers[AGGREGATE] = message.aggregateId;
  return {
    content: Buffer.from(JSON.stringify(message.payload ?? null)),
    options: {
      persistent: true,
      messageId: message.id,
      type: message.type,
      contentType: 'application/json',
      timestamp: Math.floor(Date.parse(message.occurredAt) / 1000),
      headers,
    },
  };
}

/** The outbox message a delivery carries, and which attempt this is; throws on a body that is not JSON. */
export function decode(delivery: ConsumeMessage): { message: OutboxMessage; attempt: number } {
  if (typeof delivery.properties.messageId !== 'string' || delivery.properties.messageId === '') {
    throw new TypeError('message has no messageId: the inbox could not tell it from other messages');
  }
  const {
    [KIND]: kind,
    [AGGREGATE]: aggregateId,
    [OCCURRED]: occurredAt,
    [ATTEMPT]: attempt,
    ...rest
  } = (delivery.properties.headers ?? {}) as Record<string, unknown>;
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(rest))
    if (typeof value === 'string' && !key.startsWith('x-')) headers[key] = value;
  return {
    message: {
      id: String(delivery.properties.messageId),
      kind: kind === 'job' ? 'job' : 'event',
      type: String(delivery.properties.type),
      payload: JSON.parse(delivery.content.toString('utf8')),
      occurredAt: typeof occurredAt === 'string' ? occurredAt : new Date().toISOString(),
      aggregateId: typeof aggregateId === 'string' ? aggregateId : undefined,
      headers,
    },
    attempt: typeof attempt === 'number' ? attempt : 1,
  };
}
