// The sales requests: read what a product sold.
import * as v from 'valibot';
import { Query } from '../../lib/core/index.js';
import { entityId } from '../shared/schemas.js';
import type { Sales } from './repository.js';

/** How many orders of a product were paid, and how many units they hold (public). */
export class GetSales extends Query(v.object({ productId: entityId }))<Sales> {}
