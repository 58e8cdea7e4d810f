// Routes declared from the requests: each maps a method and path to a request class; `routes()` serves them through
// the mediator, as a Fetch handler and as Express middleware, with the same problem+json answers as `toReply`.
import type {
  AnyRequest,
  FailureOf,
  Mediator,
  RequestClass,
  ResultOf,
  StandardSchemaV1,
} from '../../lib/core/index.js';
import { readJsonBody, type BodyRead } from './body.js';
import {
  header,
  readSendOptions,
  toReply,
  toResponse,
  validationProblem,
  type HeadersLike,
  type SendOptionsReader,
} from './reply.js';
import { problem, problemOfError, type HttpReply, type ProblemOptions } from './problem.js';

/** The methods a route can answer (HEAD is answered by GET routes, without a body). */
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * One declared route: what `get`, `post`, `put`, `patch` and `del` return.
 * @example const route: Route<typeof GetOrder> = get('/orders/:orderId', GetOrder);
 */
export interface Route<C extends RequestClass = RequestClass> {
  readonly method: Method;
  /** The path, with `:name` for each path parameter (`/orders/:orderId/pay`). */
  readonly path: string;
  readonly type: C;
  /** The path parameters, in order; each is a field of the request. */
  readonly params: readonly string[];
  /** The query parameters taken into the request. */
  readonly query: readonly string[];
  /** Whether the JSON body is taken into the request. */
  readonly body: boolean;
  /** The status of a success. */
  readonly status: number;
  /** The domain codes the request can fail with (its `FailureOf`), for the OpenAPI document. */
  readonly codes: readonly string[];
  /** The schema of the success body, for the OpenAPI document. */
  readonly response: StandardSchemaV1 | undefined;
  readonly summary: string | undefined;
  /** The `Location` of a success, from its value (accepted work: where to watch it). */
  readonly location: ((value: any) => string) | undefined;
}

/** The field names of a request class. */
export type FieldsOf<C extends RequestClass> = Extract<keyof InstanceType<C>, string>;
/** The domain codes of a request class. */
export type CodesOf<C extends RequestClass> = FailureOf<InstanceType<C>>;
/** The `:name` parameters of a path, as a union of names. */
export type PathParams<P extends string> = P extends `${string}:${infer Rest}`
  ? Rest extends `${infer Name}/${infer Tail}`
    ? Name | PathParams<Tail>
    : Rest
  : never;

/**
 * What a route may say beyond its method, path and request class.
 * @example post('/orders', PlaceOrder, { status: 201, response: OrderView, summary: 'Place an order' })
 */
export interface RouteOptions<C extends RequestClass, K extends readonly string[] = readonly string[]> {
  /** The status of a success: 201 for a create, 202 for accepted work, 204 for no body. Default 200. */
  readonly status?: number;
  /** Query parameters taken into the request (each a field of it). A repeated one arrives as an array. */
  readonly query?: readonly FieldsOf<C>[];
  /** Take the JSON body into the request. Default true for POST, PUT and PATCH, false for GET and DELETE. */
  readonly body?: boolean;
  /** Every domain code the request declares, so the OpenAPI document lists them: checked by the compiler. */
  readonly codes?: K;
  /** The schema of the success body (the result type is compile-time only), for the OpenAPI document. */
  readonly response?: StandardSchemaV1<unknown, ResultOf<InstanceType<C>>>;
  /** One line for the OpenAPI document. */
  readonly summary?: string;
  /**
   * The `Location` header of a success, from its value: where to find what was created or accepted.
   * @example
   * post('/orders/:orderId/checkout', StartCheckout, { status: 202, location: (v) => `/processes/${v.processId}` })
   */
  readonly location?: (value: ResultOf<InstanceType<C>>) => string;
}

type MissingCodes<C extends RequestClass, K extends readonly string[]> = Exclude<CodesOf<C>, K[number]>;
/** Requires `codes` to name every domain code the request declares (the compiler names the missing ones). */
type EveryCode<C extends RequestClass, K extends readonly string[]> = [MissingCodes<C, K>] extends [never]
  ? unknown
  : { readonly codes: { readonly 'list every domain code of the request; missing': MissingCodes<C, K> } };
/** The options argument: optional, unless the request declares domain codes (then `codes` must list them all). */
type OptionsArg<C extends RequestClass, K extends readonly string[]> = [CodesOf<C>] extends [never]
  ? [options?: RouteOptions<C, K>]
  : [options: RouteOptions<C, K> & EveryCode<C, K>];

/** Declares a route of one method; the path's `:params` must be fields of the request (else a compile error). */
export type RouteDeclaration = <
  P extends string,
  C extends RequestClass<AnyRequest & { readonly [N in PathParams<P>]: unknown }>,
  const K extends readonly CodesOf<C>[] = readonly [],
>(
  path: P,
  type: C,
  ...options: OptionsArg<C, K>
) => Route<C>;

const PARAM = /^:([A-Za-z_$][\w$]*)$/;
const LITERAL = /^[\w.~!$&'()*+,;=@-]+$/;

function declare(method: Method): RouteDeclaration {
  return (path, type, ...[options = {}]) => {
    const where = `${method} ${path}`;
    if (!path.startsWith('/')) throw new TypeError(`Route ${where}: start the path with '/'`);
    const segments = path.split('/').slice(1);
    const params = segments.flatMap((segment) => PARAM.exec(segment)?.[1] ?? []);
    const bad = path === '/' ? undefined : segments.find((segment) => !PARAM.test(segment) && !LITERAL.test(segment));
    if (bad !== undefined)
      throw new TypeError(`Route ${where}: '${bad}' is neither a literal segment nor a :param (write /a/:name/b)`);
    const query: readonly string[] = options.query ?? [];
    const twice = [...params, ...query].find((name, i, all) => all.indexOf(name) !== i);
    if (twice !== undefined) throw new TypeError(`Route ${where}: '${twice}' is taken twice; name each field once`);
    const status = options.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 299)
      throw new TypeError(`Route ${where}: a success status is 200–299, not ${status}`);
    return {
      method,
      path,
      type,
      params,
      query,
      body: options.body ?? (method === 'POST' || method === 'PUT' || method === 'PATCH'),
      status,
      codes: options.codes ?? [],
      response: options.response,
      summary: options.summary,
      location: options.location,
    };
  };
}

/**
 * A GET route (a query, usually): path parameters and the listed query parameters make the request.
 * @example get('/inventory/:productId', GetInventory)
 */
export const get: RouteDeclaration = declare('GET');
/**
 * A POST route: the JSON body, the path parameters and the listed query parameters make the request.
 * @example post('/inventory/moves', MoveInventory, { codes: ['insufficient_stock'] })
 */
export const post: RouteDeclaration = declare('POST');
/**
 * A PUT route (body, path and query, as `post`).
 * @example put('/products/:productId', SaveProduct)
 */
export const put: RouteDeclaration = declare('PUT');
/**
 * A PATCH route (body, path and query, as `post`).
 * @example patch('/products/:productId', RenameProduct)
 */
export const patch: RouteDeclaration = declare('PATCH');
/**
 * A DELETE route (path and query; no body unless `{ body: true }`).
 * @example del('/orders/:orderId', CancelOrder, { status: 204 })
 */
export const del: RouteDeclaration = declare('DELETE');

/** Whether `route` answers 401 without an actor, under `requireActor` (the routes and their OpenAPI document agree). */
export function needsActor(route: Route, requireActor: RoutesOptions['requireActor'] = 'commands'): boolean {
  return requireActor === 'all' || (requireActor === 'commands' && route.type.kind === 'command');
}

/** How `routes()` reads requests and writes replies. */
export interface RoutesOptions extends SendOptionsReader, ProblemOptions {
  /**
   * Which routes answer 401 when `actor` finds no actor: `'commands'` (default: every route whose request is a
   * command), `'all'` or `'none'` (the policy middleware still decides, with 403).
   */
  readonly requireActor?: 'commands' | 'all' | 'none';
  /** The detail of that 401, telling the client how to authenticate. Default: 'Authenticate to say who is acting'. */
  readonly unauthenticated?: string;
  /**
   * The largest body read, in bytes (413 past it). Default 100 KiB. Express: used only when no body parser ran
   * before the routes (`req.body` undefined); `express.json({ limit })` and its errors apply otherwise.
   */
  readonly bodyLimit?: number;
  /** Where `fetch` reports an exception a send threw (it answers 500 problem+json). Default `console.error`. */
  readonly onError?: (error: unknown) => void;
  /**
   * Answer 405 with `Allow` for another method on a declared path (default true); false leaves it to the next
   * handler (Express `next()`, a 404 for `fetch`), as an app whose contract predates the routes may need.
   */
  readonly methodNotAllowed?: boolean;
  /**
   * Express: take `req.body` as the body parser left it — undefined for a content type it skips, which validation
   * then judges — rather than reading and judging the body here (415, 400, 413). Default false.
   */
  readonly parsedBodiesOnly?: boolean;
  /**
   * Match the literal segments of a declared path exactly (default true); false matches them regardless of case, as
   * Express does by default (`/Inventory/sku-1` is `/inventory/sku-1`). Path parameters keep the case they were sent.
   */
  readonly caseSensitive?: boolean;
}

/** The slice of Express's (or Node's) request the middleware reads. */
export interface ExpressLikeRequest extends AsyncIterable<Uint8Array | string> {
  readonly method: string;
  /** The URL relative to where the middleware is mounted, with the query. */
  readonly url: string;
  readonly headers: HeadersLike;
  /** What a body parser (`express.json()`) put there; when undefined, the routes read the body themselves. */
  readonly body?: unknown;
}

/** The slice of Express's response the middleware writes. */
export interface ExpressLikeResponse {
  status(code: number): this;
  set(headers: Record<string, string>): this;
  send(body: string): this;
  end(): this;
}

/**
 * The served routes: a Fetch handler, Express middleware (both plain functions, safe to pass around unbound), and
 * what they were built from (for `openapi`).
 */
export interface Routes {
  /**
   * Answers a Fetch API request: the route's reply, 404 for a path no route has, 405 for a method it lacks.
   * Exceptions from a send are reported to `onError` and answered 500.
   */
  readonly fetch: (request: Request) => Promise<Response>;
  /**
   * Express middleware: answers the routes, 405 for a method a declared path lacks, and calls `next()` for a path
   * no route has (so hand-written routes mix in) and `next(error)` for an exception (the app's error handler).
   */
  readonly express: (
    req: ExpressLikeRequest,
    res: ExpressLikeResponse,
    next: (error?: unknown) => void,
  ) => Promise<void>;
  readonly list: readonly Route[];
  readonly options: RoutesOptions;
}

const DEFAULT_BODY_LIMIT = 100 * 1024;

/** A request as both forms see it. */
interface Incoming {
  readonly method: string;
  readonly url: URL;
  readonly headers: HeadersLike;
  /** The JSON body: parsed already (Express with a body parser) or read now, at most `limit` bytes. */
  readonly body: (limit: number) => Promise<BodyRead>;
}

/**
 * Serves declared routes through the mediator. A request is made of the path parameters, the listed query
 * parameters and (for POST, PUT, PATCH) the JSON body, merged into one object: a field given both in the URL and
 * in the body with another value is answered 400, never silently chosen. `Idempotency-Key`, the actor and the
 * tenant come from `readSendOptions`; the result is answered by `toReply` (problem+json, `Idempotent-Replayed`).
 * @example
 * const api = routes(mediator, [
 *   post('/inventory/moves', MoveInventory, { codes: ['insufficient_stock'] }),
 *   get('/inventory/:productId', GetInventory),
 * ], {
 *   actor: (get) => (get('X-Actor') ? { id: get('X-Actor')! } : undefined),
 *   domainStatus: { insufficient_stock: 409 },
 * });
 * app.use(express.json(), api.express);          // Express; or: export default { fetch: api.fetch } (Hono, Bun, Deno)
 */
export function routes(mediator: Mediator, list: readonly Route[], options: RoutesOptions = {}): Routes {
  const seen = new Set<string>();
  for (const route of list) {
    const key = `${route.method} ${route.path.replace(/:[^/]+/g, ':')}`;
    if (seen.has(key)) throw new TypeError(`Route ${route.method} ${route.path} is declared twice; keep one`);
    seen.add(key);
  }
  const limit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const caseSensitive = options.caseSensitive !== false;
  // Each route's path split once, here, not on every request (lower-cased too when matching ignores case).
  const compiled = list.map((route) => {
    const pattern = route.path.split('/').slice(1);
    return { route, pattern, match: caseSensitive ? pattern : pattern.map((part) => part.toLowerCase()) };
  });

  /** The reply to a request, or undefined when no route has its path. */
  async function answer(incoming: Incoming): Promise<HttpReply | undefined> {
    const segments = incoming.url.pathname
      .replace(/(.)\/$/, '$1')
      .split('/')
      .slice(1);
    const method = incoming.method === 'HEAD' ? 'GET' : incoming.method;
    const compared = caseSensitive ? segments : segments.map((segment) => segment.toLowerCase());
    const onPath = compiled.filter((candidate) => matches(candidate.match, compared));
    if (onPath.length === 0) return undefined;
    const found = onPath.find((candidate) => candidate.route.method === method);
    if (!found) {
      if (options.methodNotAllowed === false) return undefined;
      const allow = [...new Set(onPath.map((candidate) => candidate.route.method))].join(', ');
      const reply = problem('method_not_allowed', `${incoming.method} is not served here; use ${allow}`);
      return { ...reply, headers: { ...reply.headers, Allow: allow } };
    }
    const { route, pattern } = found;
    const get = (name: string) => header(incoming.headers, name);
    const read = readSendOptions(incoming.headers, options);
    const actor = read.ok ? read.options.actor : options.actor?.(get);
    if (!actor && needsActor(route, options.requireActor))
      return problem('unauthenticated', options.unauthenticated ?? 'Authenticate to say who is acting');
    if (!read.ok) return read.reply;
    const fromUrl = urlFields(route, pattern, segments, incoming.url.searchParams);
    if (!fromUrl.ok) return fromUrl.reply;
    const body = route.body ? await incoming.body(limit) : { ok: true as const, body: undefined };
    if (!body.ok) return body.reply;
    const input = merge(route, fromUrl.fields, body.body);
    if (!input.ok) return input.reply;
    const result = await mediator.send(route.type.from(input.value) as AnyRequest, read.options);
    const reply = toReply(result, { ...options, successStatus: route.status });
    if (!result.ok) return reply;
    if (route.status === 204) return { ...reply, body: undefined };
    return route.location ? { ...reply, headers: { ...reply.headers, Location: route.location(result.value) } } : reply;
  }

  return {
    list,
    options,
    async fetch(request) {
      try {
        const reply = (await answer(fromFetch(request))) ?? notFound(request.method, new URL(request.url).pathname);
        return toResponse(request.method === 'HEAD' ? { ...reply, body: undefined } : reply);
      } catch (error) {
        (options.onError ?? console.error)(error);
        return toResponse(problem('internal', 'Something went wrong; nothing was committed'));
      }
    },
    async express(req, res, next) {
      try {
        const reply = await answer(fromExpress(req, options.parsedBodiesOnly === true));
        if (!reply) return next();
        res.status(reply.status).set({ ...reply.headers });
        if (reply.body === undefined) res.end();
        else res.send(JSON.stringify(reply.body));
      } catch (error) {
        next(error);
      }
    },
  };
}

function fromFetch(request: Request): Incoming {
  const get = (name: string) => request.headers.get(name) ?? undefined;
  return {
    method: request.method,
    url: new URL(request.url),
    headers: request.headers,
    body: (limit) => readJsonBody({ get, chunks: request.body ?? undefined }, limit),
  };
}

function fromExpress(req: ExpressLikeRequest, parsedOnly: boolean): Incoming {
  const get = (name: string) => header(req.headers, name);
  const hasBody = get('Transfer-Encoding') !== undefined || (get('Content-Length') ?? '0') !== '0';
  return {
    method: req.method,
    url: new URL(`http://localhost${req.url.startsWith('/') ? '' : '/'}${req.url}`), // '//x' stays a path
    headers: req.headers,
    body: async (limit) =>
      req.body === undefined && !parsedOnly
        ? readJsonBody({ get, chunks: hasBody ? req : undefined }, limit)
        : { ok: true, body: req.body },
  };
}

function notFound(method: string, path: string): HttpReply {
  return problem('route_not_found', `No route for ${method} ${path}`);
}

/** Whether a route's path segments match the request's (a `:param` matches one non-empty segment). */
function matches(pattern: readonly string[], segments: readonly string[]): boolean {
  return (
    pattern.length === segments.length &&
    pattern.every((part, i) => (part.startsWith(':') ? segments[i] !== '' : part === segments[i]))
  );
}

type Fields = Readonly<Record<string, string | readonly string[]>>;

/** The path parameters (decoded) and the route's query parameters present in the URL. */
function urlFields(
  route: Route,
  pattern: readonly string[],
  segments: readonly string[],
  search: URLSearchParams,
): { readonly ok: true; readonly fields: Fields } | { readonly ok: false; readonly reply: HttpReply } {
  const fields: Record<string, string | readonly string[]> = {};
  try {
    pattern.forEach((part, i) => {
      if (part.startsWith(':')) fields[part.slice(1)] = decodeURIComponent(segments[i] ?? '');
    });
  } catch (error) {
    return { ok: false, reply: problemOfError(error) }; // a URIError: malformed percent-encoding
  }
  for (const name of route.query) {
    const values = search.getAll(name);
    if (values.length > 0) fields[name] = values.length === 1 ? (values[0] as string) : values;
  }
  return { ok: true, fields };
}

/** The request's input: the body with the URL's fields; a field in both with different values is a 400. */
function merge(
  route: Route,
  fromUrl: Fields,
  body: unknown,
): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reply: HttpReply } {
  const names = Object.keys(fromUrl);
  if (!route.body) return { ok: true, value: fromUrl };
  if (names.length === 0) return { ok: true, value: body };
  if (body === undefined) return { ok: true, value: fromUrl };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    const issues = [{ path: '', message: 'Must be a JSON object' }];
    return { ok: false, reply: validationProblem(issues) };
  }
  const clash = names.find((name) => Object.hasOwn(body, name) && (body as Fields)[name] !== fromUrl[name]);
  if (clash !== undefined)
    return {
      ok: false,
      reply: problem('bad_request', `'${clash}' is in the URL and in the body with another value: send it once`),
    };
  return { ok: true, value: { ...body, ...fromUrl } };
}
