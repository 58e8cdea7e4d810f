// HTTP routes of the inventory: receipts, moves and a product's bins.
import express, { type Router } from 'express';
import type { Mediator } from '../../lib/index.js';
import { requireActor } from '../http/actor.js';
import { mediate } from '../http/reply.js';
import { GetInventory, MoveInventory, ReceiveStock } from './requests.js';

/** `POST /receipts`, `POST /moves`, `GET /:productId`. */
export function inventoryRoutes(mediator: Mediator): Router {
  const router = express.Router();
  router.post(
    '/receipts',
    requireActor,
    mediate(mediator, (req) => ReceiveStock.from(req.body)),
  );
  router.post(
    '/moves',
    requireActor,
    mediate(mediator, (req) => MoveInventory.from(req.body)),
  );
  router.get(
    '/:productId',
    mediate(mediator, (req) => GetInventory.from({ productId: req.params.productId })),
  );
  return router;
}
