// HTTP routes of the orders: place, pay, ship, cancel and read. The :id travels in the command, so it is validated.
import express, { type Router } from 'express';
import type { Mediator } from '../../lib/index.js';
import { requireActor } from '../http/actor.js';
import { mediate } from '../http/reply.js';
import { CancelOrder, GetOrder, PayOrder, PlaceOrder, ShipOrder } from './requests.js';

/** `POST /`, `POST /:id/pay`, `POST /:id/ship`, `POST /:id/cancel`, `GET /:id`. */
export function orderRoutes(mediator: Mediator): Router {
  const router = express.Router();
  router.post(
    '/',
    requireActor,
    mediate(mediator, (req) => PlaceOrder.from(req.body), 201),
  );
  router.post(
    '/:id/pay',
    requireActor,
    mediate(mediator, (req) => PayOrder.from({ orderId: req.params.id })),
  );
  router.post(
    '/:id/ship',
    requireActor,
    mediate(mediator, (req) => ShipOrder.from({ orderId: req.params.id })),
  );
  router.post(
    '/:id/cancel',
    requireActor,
    mediate(mediator, (req) => CancelOrder.from({ orderId: req.params.id })),
  );
  router.get(
    '/:id',
    mediate(mediator, (req) => GetOrder.from({ orderId: req.params.id })),
  );
  return router;
}
