// Express matches paths case-insensitively (`/Inventory/sku-1` is `/inventory/sku-1`); `routes()` matches the
// literal segments of a declared path exactly. The sample's URLs were served case-insensitively before its routes
// were declared, so this keeps them working: a request whose path matches a route of its method except for the case
// of the literal segments is rewritten to the declared spelling (path parameters are left as they are).
import type { RequestHandler } from 'express';
import type { Route } from '../../adapters/http/index.js';

/**
 * Express middleware, before `routes().express`: spells the literal segments of the request's path as the first
 * route of the same method whose path matches regardless of case declares them. Anything else passes unchanged.
 * @example app.use(declaredCase(SAMPLE_ROUTES), api.express);
 */
export function declaredCase(list: readonly Route[]): RequestHandler {
  const patterns = list.map((route) => ({ method: route.method, parts: route.path.split('/').slice(1) }));
  return (req, _res, next) => {
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const at = req.url.indexOf('?');
    const path = at === -1 ? req.url : req.url.slice(0, at);
    const trailing = path.length > 1 && path.endsWith('/') ? '/' : '';
    const segments = (trailing ? path.slice(0, -1) : path).split('/').slice(1);
    for (const { parts } of patterns.filter((pattern) => pattern.method === method)) {
      if (parts.length !== segments.length) continue;
      const same = parts.every((part, i) =>
        part.startsWith(':') ? segments[i] !== '' : part.toLowerCase() === segments[i]!.toLowerCase(),
      );
      if (!same) continue;
      const spelled = segments.map((segment, i) => (parts[i]!.startsWith(':') ? segment : parts[i]!));
      req.url = `/${spelled.join('/')}${trailing}${at === -1 ? '' : req.url.slice(at)}`;
      break;
    }
    next();
  };
}

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
