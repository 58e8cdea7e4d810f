// A queue of the soak's own, bound to every event the services publish: it counts message ids (a relay duplicate is
// an id delivered again without the broker's `redelivered` flag) and business keys (an effect done twice would
// publish two ids for one key). It reconnects after the broker restart.
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';

/** The business key of an event: what makes two events "the same effect". */
export function eventKey(type: string, payload: Record<string, unknown>): string {
  if (type === 'inventory.moved') return String(payload.reason);
  if (type === 'stock.received') return `${String(payload.productId)}/${String(payload.binId)}`;
  return String(payload.orderId); // order.placed, .paid, .shipped, .cancelled
}

export class Tap {
  /** Deliveries per message id. */
  readonly ids = new Map<string, number>();
  /** Per event type, the message ids seen for each business key. */
  readonly keys = new Map<string, Map<string, Set<string>>>();
  /** An id seen before, delivered again without `redelivered`: published twice. */
  relayDuplicates = 0;
  /** When each relay duplicate arrived (to tell which fault caused it). */
  readonly duplicatesAt: number[] = [];
  /** An id seen before, delivered again with `redelivered` (an unacked delivery the broker handed out again). */
  redeliveries = 0;
  deliveries = 0;
  lastDeliveryAt = 0;
  reconnects = 0;
  #model: ChannelModel | undefined;
  #stopped = false;
  /** Called when the connection is lost, and when the tap consumes again. */
  onLost: () => void = () => undefined;
  onBack: () => void = () => undefined;

  constructor(
    private readonly url: string,
    private readonly queue: string,
    private readonly exchange: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Declares the queue (bound to every routing key) and consumes it until `stop()`, reconnecting as needed. */
  async start(): Promise<void> {
    const model = await connect(this.url);
    this.#model = model;
    model.on('error', () => undefined); // 'close' follows
    model.on('close', () => {
      if (this.#stopped) return;
      this.reconnects++;
      this.log('tap: connection lost, reconnecting');
      this.onLost();
      void this.#reconnect();
    });
    const channel = await model.createChannel();
    await channel.assertExchange(this.exchange, 'topic', { durable: true }); // as the library declares it
    await channel.assertQueue(this.queue, { durable: true });
    await channel.bindQueue(this.queue, this.exchange, '#');
    await channel.prefetch(500);
    await channel.consume(this.queue, (message) => {
      if (!message) return;
      this.#count(message);
      channel.ack(message);
    });
  }

  async #reconnect(): Promise<void> {
    for (let delay = 500; !this.#stopped; delay = Math.min(delay * 2, 5_000)) {
      try {
        await this.start();
        this.log('tap: reconnected');
        this.onBack();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  #count(message: ConsumeMessage): void {
    this.deliveries++;
    this.lastDeliveryAt = Date.now();
    const id = String(message.properties.messageId);
    const seen = this.ids.get(id) ?? 0;
    this.ids.set(id, seen + 1);
    if (seen > 0) {
      if (message.fields.redelivered) this.redeliveries++;
      else {
        this.relayDuplicates++;
        this.duplicatesAt.push(Date.now());
      }
      return;
    }
    const type = String(message.properties.type);
    const key = eventKey(type, JSON.parse(message.content.toString('utf8')) as Record<string, unknown>);
    const byKey = this.keys.get(type) ?? new Map<string, Set<string>>();
    this.keys.set(type, byKey);
    byKey.set(key, (byKey.get(key) ?? new Set()).add(id));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#model?.close().catch(() => undefined);
  }
}
