// The jobs feature: a job's state (GET /jobs/:jobId: queued, running, succeeded…) through the library's GetJob, which
// finds only jobs of the caller's tenant.
import { GetJob, jobHandlers } from '../../lib/jobs/index.js';
import { everyone } from '../../middleware/index.js';
import type { Feature } from '../shared/feature.js';

/** Jobs: anyone reads a job's state, as anyone reads the inventory. CancelJob has no route and no rule: denied. */
export const jobStatus: Feature = {
  handlers: [...jobHandlers],
  rules: [everyone(GetJob)],
};
