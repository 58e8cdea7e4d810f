// One AMQP connection, opened on demand and opened again after it is lost (amqplib does not reconnect by itself).
import { EventEmitter } from 'node:events';
import { connect, type ChannelModel } from 'amqplib';

/**
 * A lazily (re)opened connection. `'lost'` is emitted when an open connection closes without `close()` being called.
 * @example const conn = new AmqpConnection(process.env.AMQP_URL!); const model = await conn.model();
 */
export class AmqpConnection extends EventEmitter {
  #model: Promise<ChannelModel> | undefined;
  #closing = false;

  constructor(
    readonly url: string,
    private readonly heartbeatSeconds = 10,
  ) {
    super();
  }

  /** The open connection, connecting now if there is none (rejects when the broker is unreachable). */
  model(): Promise<ChannelModel> {
    if (this.#closing) return Promise.reject(new Error('AMQP connection is closed'));
    if (this.#model) return this.#model;
    const url = new URL(this.url);
    // Heartbeats notice a dead peer.
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(this.heartbeatSeconds));
    const opening = connect(url.toString()).then(
      (model) => {
        model.on('error', () => undefined); // 'close' follows every error; handle it there, once
        model.on('close', () => {
          this.#model = undefined;
          if (!this.#closing) this.emit('lost');
        });
        model.on('blocked', (reason: string) => this.emit('blocked', reason));
        model.on('unblocked', () => this.emit('unblocked'));
        return model;
      },
      (error: unknown) => {
        this.#model = undefined;
        throw error;
      },
    );
    this.#model = opening;
    return opening;
  }

  /** True once `close()` was called: nothing reconnects any more. */
  get closed(): boolean {
    return this.#closing;
  }

  /** Closes the connection for good. */
  async close(): Promise<void> {
    this.#closing = true;
    const model = await this.#model?.catch(() => undefined);
    this.#model = undefined;
    await model?.close().catch(() => undefined);
  }
}
