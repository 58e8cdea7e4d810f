// usecasecore/jobs: job workers, GetJob / CancelJob, retry backoff, and the JobStore port that records each job.
export { work, backoff } from './work.js';
export { CancelJob, GetJob, jobHandlers } from './requests.js';
export type { JobSettled } from './run.js';
export type { JobFailure, JobOutcome, JobRecord, JobState, JobStore } from '../core/ports.js';
