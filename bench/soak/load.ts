// The soak's load: an open-loop generator of mixed HTTP traffic against the sample services (inventory moves,
// orders placed, paid, shipped and cancelled, reads), every write with an Idempotency-Key and retried with it the
// way a careful client would. It records every attempt (for latency and errors per minute) and the final outcome
// of every operation (for the end-of-run checks).
import { randomUUID } from 'node:crypto';

/** Where to send a request: the base URLs of the services up right now. */
export type Targets = () => readonly string[];

/** What an HTTP attempt came to: a status, or -1 (connection refused/reset/closed) or -2 (timed out). */
export const CUT = -1;
export const TIMED_OUT = -2;

/** Every attempt, as parallel arrays (start time, latency, status): 180,000+ attempts in a 20-minute run. */
export interface Attempts {
  readonly at: number[];
  readonly ms: number[];
  readonly status: number[];
  /** What the failed attempts said (the first 2,000): when, the status, and the body or the network error. */
  readonly errors: Array<{ at: number; end: number; status: number; what: string }>;
}

/** A write the services took, with how it finally ended. */
interface Operation {
  readonly kind: 'move' | 'place' | 'pay' | 'ship' | 'cancel' | 'read';
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: Record<string, unknown>;
  readonly actor: string;
  readonly roles?: string;
  readonly key?: string;
}

interface Order {
  readonly orderId: string;
  readonly owner: string;
  readonly productId: string;
  readonly binId: string;
  readonly qty: number;
}

/** Final outcomes, for the end-of-run checks. */
export interface Ledger {
  /** Per operation kind: how many ended ok, with a business failure (409/422), or unknown (gave up retrying). */
  readonly outcomes: Record<string, { ok: number; refused: number; unknown: number }>;
  /** Stock changes the operations that succeeded made, per product and bin (moves and shipments). */
  readonly stockDelta: Map<string, Map<string, number>>;
  /** Problems no retry explains (a 4xx other than a business outcome, a 500), with their body. */
  readonly unexpected: string[];
}

export interface LoadOptions {
  readonly rate: number;
  readonly targets: Targets;
  readonly products: readonly string[];
  readonly bins: readonly string[];
  /** How long a write keeps being retried with its key before its outcome is counted unknown. */
  readonly retryForMs?: number;
  /** At most this many operations in flight; beyond it, operations are shed (counted, not sent). */
  readonly maxInFlight?: number;
}

const BUYERS = 50;
const RETRYABLE_KINDS = new Set(['in_progress', 'unavailable', 'conflict']);

/** The open-loop load. `start()`, then `stop()` waits for the operations still being retried. */
export class Load {
  readonly attempts: Attempts = { at: [], ms: [], status: [], errors: [] };
  readonly ledger: Ledger = { outcomes: {}, stockDelta: new Map(), unexpected: [] };
  shed = 0;
  issued = 0;
  #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #placed: Order[] = [];
  #paid: Order[] = [];
  #next = 0;
  #serial = 0;

  constructor(private readonly options: LoadOptions) {}

  start(): void {
    const started = Date.now();
    this.#timer = setInterval(() => {
      const due = Math.floor(((Date.now() - started) / 1000) * this.options.rate) - this.issued;
      for (let i = 0; i < due; i++) {
        this.issued++;
        if (this.#inFlight.size >= (this.options.maxInFlight ?? 2_000)) {
          this.shed++;
          continue;
        }
        const running: Promise<void> = this.#operate().finally(() => this.#inFlight.delete(running));
        this.#inFlight.add(running);
      }
    }, 10);
  }

  /** Stops issuing operations (those under way go on). */
  halt(): void {
    clearInterval(this.#timer);
  }

  /** Stops issuing and waits for the operations under way (each bounded by its retry budget). */
  async stop(): Promise<void> {
    this.halt();
    await Promise.all(this.#inFlight);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async #operate(): Promise<void> {
    const n = ++this.#serial;
    const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
    const roll = Math.random();
    const { products, bins } = this.options;
    if (roll < 0.1) {
      await this.#run({ kind: 'read', method: 'GET', path: `/inventory/${pick(products)}`, actor: 'reader' });
    } else if (roll < 0.6) {
      const from = pick(bins);
      const to = pick(bins.filter((b) => b !== from));
      const productId = pick(products);
      const qty = 1 + (n % 5);
      const body = { productId, fromBinId: from, toBinId: to, qty, reason: `soak-${n}` };
      const ok = await this.#run({ ...this.#write('move', '/inventory/moves', body), actor: 'clerk', roles: 'clerk' });
      if (ok) {
        this.#stock(productId, from, -qty);
        this.#stock(productId, to, qty);
      }
    } else if (roll < 0.77 || this.#placed.length === 0) {
      const owner = `buyer-${n % BUYERS}`;
      const order = { productId: pick(products), binId: pick(bins), qty: 1 + (n % 3) };
      const answer = await this.#run({ ...this.#write('place', '/orders', order), actor: owner });
      if (answer) this.#placed.push({ ...order, owner, orderId: (answer as { orderId: string }).orderId });
    } else if (roll < 0.9) {
      const order = this.#placed.shift()!;
      const ok = await this.#run({ ...this.#write('pay', `/orders/${order.orderId}/pay`), actor: order.owner });
      if (ok) this.#paid.push(order);
    } else if (roll < 0.97 && this.#paid.length > 0) {
      const order = this.#paid.shift()!;
      const path = `/orders/${order.orderId}/ship`;
      const ok = await this.#run({ ...this.#write('ship', path), actor: 'clerk', roles: 'clerk' });
      if (ok) this.#stock(order.productId, order.binId, -order.qty);
    } else {
      const order = this.#placed.shift()!;
      await this.#run({ ...this.#write('cancel', `/orders/${order.orderId}/cancel`), actor: order.owner });
    }
  }

  #write(kind: Operation['kind'], path: string, body?: Record<string, unknown>) {
    return { kind, method: 'POST' as const, path, key: `soak-${kind}-${randomUUID()}`, ...(body ? { body } : {}) };
  }

  #stock(productId: string, binId: string, delta: number): void {
    const product = this.ledger.stockDelta.get(productId) ?? new Map<string, number>();
    product.set(binId, (product.get(binId) ?? 0) + delta);
    this.ledger.stockDelta.set(productId, product);
  }

  #outcome(kind: string, what: 'ok' | 'refused' | 'unknown'): void {
    const counts = (this.ledger.outcomes[kind] ??= { ok: 0, refused: 0, unknown: 0 });
    counts[what]++;
  }

  /**
   * Sends the operation, retrying a write with its key after a cut connection, a timeout, a 5xx or a transient
   * 409/503 (another service when there is one), up to `retryForMs`. Resolves with the success's body, or undefined.
   */
  async #run(op: Operation): Promise<unknown> {
    const deadline = Date.now() + (this.options.retryForMs ?? 60_000);
    for (let delay = 200; ; delay = Math.min(delay * 2, 4_000)) {
      const targets = this.options.targets();
      const base = targets.length > 0 ? targets[this.#next++ % targets.length] : undefined;
      const { status, body } = base ? await this.#attempt(base, op) : { status: CUT, body: '' };
      if (status >= 200 && status < 300) {
        this.#outcome(op.kind, 'ok');
        return JSON.parse(body) as unknown;
      }
      const kind = status >= 400 ? problemKind(body) : undefined;
      const transient = status < 0 || status >= 500 || (kind !== undefined && RETRYABLE_KINDS.has(kind));
      if (status === 500) this.ledger.unexpected.push(`${op.kind} ${op.path}: 500 ${body.slice(0, 200)}`);
      if (!transient) {
        // A business outcome (insufficient stock, an order in another state): final, and stored for the key.
        if (status !== 409 && status !== 422)
          this.ledger.unexpected.push(`${op.kind}: ${status} ${body.slice(0, 200)}`);
        this.#outcome(op.kind, 'refused');
        return undefined;
      }
      if (op.method === 'GET' || Date.now() + delay > deadline) {
        this.#outcome(op.kind, 'unknown');
        return undefined;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  async #attempt(base: string, op: Operation): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { 'X-Actor': op.actor };
    if (op.roles) headers['X-Roles'] = op.roles;
    if (op.key) headers['Idempotency-Key'] = op.key;
    if (op.body) headers['Content-Type'] = 'application/json';
    const started = Date.now();
    const t0 = performance.now();
    let status: number, body: string;
    try {
      const response = await fetch(`${base}${op.path}`, {
        method: op.method,
        headers,
        ...(op.body ? { body: JSON.stringify(op.body) } : {}),
        signal: AbortSignal.timeout(20_000),
      });
      body = await response.text();
      status = response.status;
    } catch (error) {
      status = (error as Error).name === 'TimeoutError' ? TIMED_OUT : CUT;
      body = String((error as Error).cause ?? error);
    }
    const ms = performance.now() - t0;
    this.attempts.at.push(started);
    this.attempts.ms.push(ms);
    this.attempts.status.push(status);
    if ((status < 0 || status >= 500) && this.attempts.errors.length < 2_000)
      this.attempts.errors.push({ at: started, end: started + ms, status, what: `${op.kind}: ${body.slice(0, 160)}` });
    return { status, body };
  }
}

function problemKind(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { kind?: string }).kind;
  } catch {
    return undefined;
  }
}
