// OPTIONS as Express's routers answered it before the sample's routes were declared: its HTTP contract is public.
import type { RequestHandler } from 'express';
import type { Route } from '../../adapters/http/index.js';

/**
 * Express middleware, after `routes().express`: answers OPTIONS on a declared path as Express's routers did before
 * the routes were declared (200, `Allow` and a text body listing the methods, sorted, HEAD with GET), so the public
 * contract stays as it was. Other requests pass.
 * @example app.use(api.express, optionsAsExpress(SAMPLE_ROUTES));
 */
export function optionsAsExpress(list: readonly Route[]): RequestHandler {
  const patterns = list.map((route) => ({ method: route.method, parts: route.path.split('/').slice(1) }));
  return (req, res, next) => {
    if (req.method !== 'OPTIONS') return next();
    const path = req.path.length > 1 && req.path.endsWith('/') ? req.path.slice(0, -1) : req.path;
    const segments = path.split('/').slice(1);
    const methods = new Set<string>();
    for (const { method, parts } of patterns) {
      const same =
        parts.length === segments.length &&
        parts.every((part, i) =>
          part.startsWith(':') ? segments[i] !== '' : part.toLowerCase() === segments[i]!.toLowerCase(),
        );
      if (!same) continue;
      methods.add(method);
      if (method === 'GET') methods.add('HEAD');
    }
    if (methods.size === 0) return next();
    // What Express's router sends (router's sendOptionsResponse), byte for byte.
    const allow = [...methods].sort().join(', ');
    res.statusCode = 200;
    res.setHeader('Allow', allow);
    res.setHeader('Content-Length', Buffer.byteLength(allow));
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.end(allow);
  };
}
