// The ProcessStore port: where a process's state and the history of its steps live, and where a waiting step meets
// the event it waits for. Memory and knex implement it; runProcessStoreContract (usecasecore/testing) proves one.

/** Where a process is. `running` covers a step in progress and a step that waits. */
export type ProcessState = 'running' | 'completed' | 'compensating' | 'compensated' | 'failed';

/** Where one step is. */
export type StepState = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'compensated';

/** Why a step or a process failed: the failure's kind, its domain code if it has one, and its message. */
export interface ProcessFailure {
  readonly kind: string;
  readonly code?: string | undefined;
  readonly message: string;
}

/** One step of a process, as the store records it. Times are ISO 8601. */
export interface StepRecord {
  /** The step's name: its command's type (`ReserveStock`), or `wait <Event>`, `sleep`. */
  readonly name: string;
  readonly state: StepState;
  /** Runs begun so far (a retry is one more; a compensation counts apart, in `compensations`). */
  readonly attempts: number;
  readonly compensations: number;
  /** The step's value once `completed` (what the next step takes, and what its compensation takes). */
  readonly result?: unknown;
  readonly failure?: ProcessFailure | undefined;
  readonly startedAt?: string | undefined;
  readonly settledAt?: string | undefined;
}

/** A process as the store records it. Times are ISO 8601. */
export interface ProcessRecord {
  readonly processId: string;
  /** The process's name (`Checkout`). */
  readonly type: string;
  readonly tenant: string;
  /** Who started it: its steps run as this actor. */
  readonly actor?: { readonly id: string; readonly roles?: readonly string[] } | undefined;
  readonly state: ProcessState;
  /** What it was started with: the first step's input. */
  readonly input: unknown;
  readonly steps: readonly StepRecord[];
  /** Why it failed, or why it was compensated. */
  readonly failure?: ProcessFailure | undefined;
  /** Past this time the process compensates. */
  readonly deadlineAt?: string | undefined;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly endedAt?: string | undefined;
}

/** What a waiting step waits for: an event type and the correlation key its payload must carry. */
export interface Correlation {
  /** The event's type (`PaymentConfirmed`, or its `static type`). */
  readonly event: string;
  readonly key: string;
}

/** A step that waits: its process and its index. */
export interface Waiter {
  readonly processId: string;
  readonly step: number;
}

/**
 * Records processes: added with the transaction that starts them, then read locked, changed and saved by the
 * transaction of each step, so a step's effect and the process's advance commit together. Every method joins the
 * ambient transaction (outside one it runs alone).
 */
export interface ProcessStore {
  /** Records a new process with the ambient transaction's commit. */
  add(process: ProcessRecord): Promise<void>;
  /** The process, held until the ambient transaction ends (two steps of one process are decided one at a time). */
  lock(processId: string): Promise<ProcessRecord | undefined>;
  /** Writes the process's state and steps (a `lock`ed one, as the step changed it) with the ambient transaction. */
  save(process: ProcessRecord): Promise<void>;
  /** The process, unlocked, or `undefined`. */
  get(processId: string): Promise<ProcessRecord | undefined>;
  /** Processes newest first, of a tenant or every tenant, in some states or all. */
  list(query?: {
    readonly tenant?: string;
    readonly states?: readonly ProcessState[];
    readonly limit?: number;
  }): Promise<ProcessRecord[]>;
  /**
   * Registers `waiter` for the event `correlation` names. Returns the event's payload when it arrived first (it is
   * then consumed: the waiter goes on at once), else `undefined` (the waiter is kept until `signal` or `unwait`).
   */
  wait(correlation: Correlation, waiter: Waiter): Promise<{ readonly payload: unknown } | undefined>;
  /**
   * An event arrived: returns who waits for it (and removes the wait), or keeps the payload for a waiter to come
   * and returns `undefined`. A second arrival of the same correlation before a waiter keeps the first.
   */
  signal(correlation: Correlation, payload: unknown): Promise<Waiter | undefined>;
  /** Forgets a wait (it timed out, or its process was cancelled); nothing if there is none. */
  unwait(correlation: Correlation): Promise<void>;
  /**
   * Maintenance (optional; `retention()` needs it for `processesMs`): deletes processes that ended `completed` or
   * `compensated` more than `olderThanMs` ago, with their steps, and returns how many. Failed and running stay.
   */
  purge?(olderThanMs: number): Promise<number>;
}
