// Starting a process: its record and its first step's job, written with the transaction of the send that starts it.
import { randomUUID } from 'node:crypto';
import { injectable } from 'inversify';
import type { Context, HandlerClass } from '../core/context.js';
import { handles } from '../core/handler.js';
import type { ProcessRecord } from '../core/ports.js';
import { payloadOf, type AnyRequest, type RequestClass } from '../core/request.js';
import { ok } from '../core/result.js';
import { isoTime } from '../core/time.js';
import { deadlineOf, stageRun, stageStep, storeOf, tell } from './commands.js';

/** What starting needs of a declared process. */
interface Startable extends RequestClass {
  readonly type: string;
  readonly steps: ReadonlyArray<{
    readonly name: string;
    readonly kind: string;
    readonly deadlineMs?: number | undefined;
  }>;
  readonly options: { readonly deadlineMs?: number | undefined };
}

/** The handler that starts `definition`: `process()` makes one per declared process. */
export function starter(definition: Startable): HandlerClass {
  class Start {
    async handle(request: AnyRequest, ctx: Context) {
      const store = storeOf(ctx);
      const now = ctx.ports.clock.now();
      const span = ctx.ports.telemetry?.processSpan?.(definition.type);
      const deadlineAt = definition.options.deadlineMs && isoTime(now + definition.options.deadlineMs);
      const record: ProcessRecord = {
        processId: randomUUID(),
        type: definition.type,
        tenant: ctx.meta.tenant,
        ...(ctx.meta.actor ? { actor: ctx.meta.actor } : {}),
        state: 'running',
        input: payloadOf(request),
        steps: definition.steps.map((s) => ({ name: s.name, state: 'pending', attempts: 0, compensations: 0 })),
        ...(deadlineAt ? { deadlineAt } : {}),
        startedAt: isoTime(now),
        updatedAt: isoTime(now),
        ...(span ? { trace: span } : {}),
      };
      await store.add(record);
      tell(ctx, { kind: 'started', type: definition.type });
      stageRun(ctx, record, 0, deadlineOf(definition.steps[0]));
      if (deadlineAt) stageStep(ctx, record, -1, 'deadline', deadlineAt);
      return ok({ processId: record.processId, state: 'running' as const });
    }
  }
  Object.defineProperty(Start, 'name', { value: `${definition.type}Starter` });
  injectable()(Start);
  handles(definition as never)(Start as never);
  return Start;
}
