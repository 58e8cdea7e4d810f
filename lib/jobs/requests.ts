// GetJob and CancelJob: a job read and stopped through the mediator, like any request, scoped to the sender's tenant.
import { injectable } from 'inversify';
import * as v from 'valibot';
import type { Context, Handler } from '../core/context.js';
import { handles } from '../core/handler.js';
import type { JobRecord } from '../core/ports.js';
import { Command, Query } from '../core/request.js';
import { fail, notFound, ok, type Result } from '../core/result.js';
import { isoTime } from '../core/time.js';

/**
 * Reads a job of the sender's tenant (`not_found` for another tenant's).
 * @example const job = await mediator.send(new GetJob({ jobId }), { actor, tenant }); // job.value.state
 */
export class GetJob extends Query(v.object({ jobId: v.pipe(v.string(), v.maxLength(100)) }))<JobRecord> {}

/**
 * Cancels a queued job of the sender's tenant (one cancelled already: ok again); `not_found`, or the domain failure
 * `already_started` once a worker took it (its `details.state` says where it is).
 * @example await mediator.send(new CancelJob({ jobId }), { actor });
 */
export class CancelJob extends Command(v.object({ jobId: v.pipe(v.string(), v.maxLength(100)) }))<
  { readonly jobId: string; readonly state: 'cancelled' },
  'already_started'
> {}

async function jobOf(ctx: Context, jobId: string): Promise<JobRecord | undefined> {
  const job = await ctx.ports.jobs!.status(jobId);
  return job?.tenant === ctx.meta.tenant ? job : undefined;
}

const noJob = (jobId: string) => notFound(`No job ${jobId} — check the id ctx.enqueue returned (and the tenant)`);

@handles(GetJob)
@injectable()
class GetJobHandler implements Handler<GetJob> {
  async handle(query: GetJob, ctx: Context<GetJob>): Promise<Result<JobRecord>> {
    const job = await jobOf(ctx, query.jobId);
    return job ? ok(job) : noJob(query.jobId);
  }
}

@handles(CancelJob)
@injectable()
class CancelJobHandler implements Handler<CancelJob> {
  async handle(command: CancelJob, ctx: Context<CancelJob>) {
    const job = await jobOf(ctx, command.jobId);
    if (!job) return noJob(command.jobId);
    const cancelled = { jobId: job.jobId, state: 'cancelled' as const };
    let { state } = job;
    if (state === 'queued') {
      if (await ctx.ports.jobs!.cancel(job.jobId, isoTime(ctx.ports.clock.now()))) return ok(cancelled);
      state = (await ctx.ports.jobs!.status(job.jobId))?.state ?? state; // taken (or cancelled) since the read
    }
    if (state === 'cancelled') return ok(cancelled); // cancelling twice is cancelling
    return fail('already_started', { state }, `Job ${job.jobId} is ${state}: only a queued job can be cancelled`);
  }
}

/**
 * The handlers of `GetJob` and `CancelJob`: add them to `createMediator(container, { handlers })` (and allow the
 * two types in your policy rules).
 * @example createMediator(container, { handlers: [...myHandlers, ...jobHandlers], middleware })
 */
export const jobHandlers = [GetJobHandler, CancelJobHandler] as const;
