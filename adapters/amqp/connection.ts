// The AMQP connections of one app, opened on demand and opened again after they are lost (amqplib does not
// reconnect by itself): one for publishing, one for consuming, so a broker that blocks publishers never stalls acks.
import { EventEmitter } from 'node:events';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../../lib/core/logger.js';

/**
 * What a connection is for. Under a memory or disk alarm RabbitMQ stops reading from every connection that
 * published, acks included; a consumer on its own connection keeps acking and draining queues meanwhile.
 */
export type AmqpRole = 'publish' | 'consume';

/** Why and since when the broker blocks the publishing connection (`connection.blocked`). */
export interface AmqpBlocked {
  /** The broker's words, e.g. `low on memory`. */
  readonly reason: string;
  readonly since: Date;
}

/**
 * The app's broker connections: `model('publish')` (the relay's bus, retries and dead letters) and
 * `model('consume')` (consumers), each opened lazily and again after it was lost, named `<name> <role>` (what the
 * management UI and `rabbitmqctl list_connections client_properties` show). Events: `'open'` (role, the
 * ChannelModel) each time one opens; `'lost'` (role) when one closes without `close()` being called; `'blocked'`
 * (reason) and `'unblocked'` for the publishing connection's flow control (also `'unblocked'` when a blocked
 * connection is lost: its successor starts unblocked); `'refused'` (role, a UseCaseError) when, reconnecting, a
 * consumer finds its queue declared with another type or other arguments (it retries until that is fixed).
 * @example
 * const conn = new AmqpConnection(process.env.AMQP_URL!);
 * conn.on('blocked', (reason) => log.warn(`RabbitMQ blocks publishing: ${reason}`));
 * const model = await conn.model('publish');
 */
export class AmqpConnection extends EventEmitter {
  readonly #models = new Map<AmqpRole, Promise<ChannelModel>>();
  #blocked: AmqpBlocked | undefined;
  #closing = false;

  constructor(
    readonly url: string,
    private readonly heartbeatSeconds = 10,
    /** Names the connections `<name> publish` and `<name> consume`, e.g. your service's name. */
    readonly name = 'usecasecore',
  ) {
    super();
    // Every batch awaiting its confirms listens for flow changes: many pipelined batches are not a leak.
    this.setMaxListeners(100);
  }

  /** The open connection for `role` (default `publish`), connecting now if there is none (rejects when unreachable). */
  model(role: AmqpRole = 'publish'): Promise<ChannelModel> {
    if (this.#closing) return Promise.reject(new Error('AMQP connection is closed'));
    const open = this.#models.get(role);
    if (open) return open;
    const url = new URL(this.url);
    // Heartbeats notice a dead peer.
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(this.heartbeatSeconds));
    const opening = connect(url.toString(), { clientProperties: { connection_name: `${this.name} ${role}` } }).then(
      (model) => {
        model.on('error', () => undefined); // 'close' follows every error; handle it there, once
        model.on('close', () => {
          if (this.#models.get(role) === opening) this.#models.delete(role);
          if (role === 'publish') this.#setBlocked(undefined);
          if (!this.#closing) this.emit('lost', role);
        });
        if (role === 'publish') {
          model.on('blocked', (reason: string) => this.#setBlocked({ reason, since: new Date() }));
          model.on('unblocked', () => this.#setBlocked(undefined));
        }
        this.emit('open', role, model);
        return model;
      },
      (error: unknown) => {
        this.#models.delete(role);
        throw error;
      },
    );
    this.#models.set(role, opening);
    return opening;
  }

  /**
   * Set while the broker blocks the publishing connection (a resource alarm). RabbitMQ only blocks a connection
   * once it publishes during the alarm, so this turns on at the first publish, not when the alarm starts.
   */
  get blocked(): AmqpBlocked | undefined {
    return this.#blocked;
  }

  /**
   * Logs each connection lost (warn) and its reconnection (info) once, with its role, and each declaration the
   * broker refused while reconnecting (error: the message says how to fix it); amqpModule() does it with the
   * container's Logger. Returns how to stop.
   * @example const stop = connection.logTo(jsonLogger());
   */
  logTo(logger: Logger): () => void {
    const lost = new Set<AmqpRole>();
    const onLost = (role: AmqpRole) => {
      lost.add(role);
      logger.warn(`amqp: the ${role} connection was lost; it reconnects on next use`, { role, name: this.name });
    };
    const onOpen = (role: AmqpRole) => {
      if (lost.delete(role)) logger.info(`amqp: the ${role} connection is open again`, { role, name: this.name });
    };
    const onRefused = (role: AmqpRole, error: Error) =>
      logger.error(`amqp: ${error.message}`, { role, name: this.name, error });
    this.on('lost', onLost).on('open', onOpen).on('refused', onRefused);
    return () => this.off('lost', onLost).off('open', onOpen).off('refused', onRefused);
  }

  /** True once `close()` was called: nothing reconnects any more. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Closes the connections for good. A blocked connection is closed at once (amqplib ends the socket without a
   * handshake), but a blocked broker does not read, so it never closes its side: the socket is destroyed, or it
   * would keep the process alive until the alarm clears.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const models = await Promise.all([...this.#models.values()].map((m) => m.catch(() => undefined)));
    this.#models.clear();
    await Promise.all(
      models.map(async (model) => {
        await model?.close().catch(() => undefined);
        socketOf(model)?.destroy();
      }),
    );
  }

  #setBlocked(blocked: AmqpBlocked | undefined): void {
    if (blocked === undefined && this.#blocked === undefined) return;
    this.#blocked = blocked;
    if (blocked) this.emit('blocked', blocked.reason);
    else this.emit('unblocked');
  }
}

/** The TCP socket under an amqplib connection (not in its types). */
function socketOf(model: ChannelModel | undefined): { destroy(): void; destroyed: boolean } | undefined {
  return (model as { connection?: { stream?: { destroy(): void; destroyed: boolean } } } | undefined)?.connection
    ?.stream;
}

/**
 * A confirm channel on `role`'s connection, opened on first use (then `setup` runs on it) and kept until it closes
 * or fails to open, when the next call opens another; `onClose` hears each close.
 * @example
 * const channel = confirmChannel(connection, 'publish', (c) => assertExchanges(c, exchanges));
 * await channel();
 */
export function confirmChannel(
  connection: AmqpConnection,
  role: AmqpRole,
  setup?: (channel: ConfirmChannel) => Promise<void> | void,
  onClose?: () => void,
): () => Promise<ConfirmChannel> {
  let current: Promise<ConfirmChannel> | undefined;
  return () => {
    if (current) return current;
    const opening: Promise<ConfirmChannel> = connection.model(role).then(async (model) => {
      const channel = await model.createConfirmChannel();
      channel.on('error', () => undefined); // 'close' follows
      channel.on('close', () => {
        if (current === opening) current = undefined;
        onClose?.();
      });
      await setup?.(channel);
      return channel;
    });
    current = opening;
    return opening.catch((error: unknown) => {
      if (current === opening) current = undefined;
      throw error;
    });
  };
}
