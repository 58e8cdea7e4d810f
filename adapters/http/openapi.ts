// The OpenAPI 3.1 document of declared routes: bodies and parameters from the requests' schemas, the success
// status, and every problem+json answer that applies, domain codes included.
import { typeOf, type FailureKind, type StandardSchemaV1 } from '../../lib/core/index.js';
import { PROBLEMS, type ProblemKind, type ProblemOptions } from './problem.js';
import { needsActor, type Route, type Routes, type RoutesOptions } from './routes.js';

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1) as a plain object. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** What `openapi` asks a converter for: a JSON Schema 2020-12 of the schema's input (requests) or output (results). */
export interface JsonSchemaConfig {
  readonly target: 'draft-2020-12';
  readonly typeMode: 'input' | 'output';
  /** Checks JSON Schema cannot express (a custom check, a transform) are left out of the document, not an error. */
  readonly errorMode: 'ignore';
}

/**
 * Turns a schema into JSON Schema. `toJsonSchema` of `@valibot/to-json-schema` fits as it is; for another library
 * wrap its converter, e.g. `(schema, { typeMode }) => z.toJSONSchema(schema, { io: typeMode })`.
 */
// `any`: each library's converter takes its own schema type, so that it can be passed as it is.
export type JsonSchemaConverter = (schema: any, config: JsonSchemaConfig) => object;

/** Options of `openapi`. */
export interface OpenApiOptions extends ProblemOptions {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
  /**
   * Converts the schemas that do not offer Standard JSON Schema themselves (`schema['~standard'].jsonSchema`, which
   * is used first). valibot's do not: pass `toJsonSchema` from `@valibot/to-json-schema` (an optional peer).
   */
  readonly toJsonSchema?: JsonSchemaConverter;
  /** Which routes answer 401 without an actor (as `routes()`); taken from the routes' options when given those. */
  readonly requireActor?: RoutesOptions['requireActor'];
}

/** An OpenAPI 3.1 document (the parts `openapi` writes). */
export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { readonly title: string; readonly version: string; readonly description?: string };
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
  readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>>;
  readonly components: { readonly schemas: Readonly<Record<string, JsonSchema>> };
}

/** One operation of the document. */
export interface Operation {
  readonly operationId: string;
  readonly summary?: string;
  readonly tags?: readonly string[];
  readonly parameters: readonly Readonly<Record<string, unknown>>[];
  readonly requestBody?: Readonly<Record<string, unknown>>;
  readonly responses: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };
const PROBLEM_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details; `kind` says which failure, the other fields depend on it.',
  required: ['type', 'status', 'title', 'kind', 'detail'],
  properties: {
    type: { type: 'string' },
    status: { type: 'integer' },
    title: { type: 'string' },
    kind: { type: 'string', enum: Object.keys(PROBLEMS) },
    detail: { type: 'string' },
    code: { type: 'string', description: 'The domain code (kind domain)' },
    details: { description: 'What the handler attached to a domain failure' },
    issues: {
      type: 'array',
      description: 'What is invalid (kind validation); path is dot-separated, empty for the whole request',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: { path: { type: 'string' }, message: { type: 'string' } },
      },
    },
    from: { type: 'string', description: 'The current state (kind invalid_transition)' },
    to: { type: 'string', description: 'The state asked for (kind invalid_transition)' },
    allowed: { type: 'array', items: { type: 'string' }, description: 'The states reachable from `from`' },
  },
};

/** The failure kinds every send can answer, then those of commands (which change state under a key). */
const EVERY_SEND: readonly FailureKind[] = ['validation', 'forbidden', 'not_found', 'unavailable'];
const COMMANDS: readonly FailureKind[] = ['invalid_transition', 'conflict'];
const IDEMPOTENCY: readonly FailureKind[] = ['idempotency_mismatch', 'in_progress'];
const BODY: readonly ProblemKind[] = ['malformed_json', 'payload_too_large', 'unsupported_media_type'];

/**
 * The OpenAPI 3.1 document of declared routes: each route's path and query parameters and JSON body from its
 * request's schema (input side), its success status with the `response` schema (else any JSON), the
 * `Idempotency-Key` header and `Idempotent-Replayed` for commands, and one `application/problem+json` response per
 * status it can answer, naming the kinds, and the domain codes the route lists in `code`'s enum.
 * @example
 * import { toJsonSchema } from '@valibot/to-json-schema';
 * const doc = openapi(api, { title: 'Inventory', version: '1.0.0', toJsonSchema });
 * app.get('/openapi.json', (_req, res) => res.json(doc));
 */
export function openapi(routes: Routes | readonly Route[], options: OpenApiOptions): OpenApiDocument {
  const list = 'list' in routes ? routes.list : routes;
  const settings = { ...('list' in routes ? routes.options : {}), ...definedOnly(options) };
  const components: Record<string, JsonSchema> = { Problem: PROBLEM_SCHEMA };
  const paths: Record<string, Record<string, Operation>> = {};
  const ids = new Set<string>();
  for (const route of list) {
    const path = route.path.replace(/:([^/]+)/g, '{$1}');
    const operation = operationOf(route, settings, components, uniqueId(typeOf(route.type), route, ids));
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation };
  }
  const info = { title: options.title, version: options.version };
  return {
    openapi: '3.1.0',
    info: options.description === undefined ? info : { ...info, description: options.description },
    ...(options.servers === undefined ? {} : { servers: options.servers }),
    paths,
    components: { schemas: components },
  };
}

type Settings = ProblemOptions & Pick<OpenApiOptions, 'toJsonSchema' | 'requireActor'>;

function operationOf(route: Route, settings: Settings, components: Record<string, JsonSchema>, id: string): Operation {
  const where = `${route.method} ${route.path} (${id})`;
  const input = jsonSchemaOf(route.type.schema, 'input', settings, components, id, where);
  const properties = (input.properties ?? {}) as Record<string, JsonSchema>;
  const required = Array.isArray(input.required) ? (input.required as string[]) : [];
  const keyed = isKeyed(route);
  const parameters = [
    ...route.params.map((name) => ({ name, in: 'path', required: true, schema: properties[name] ?? {} })),
    ...route.query.map((name) => ({
      name,
      in: 'query',
      required: required.includes(name),
      schema: properties[name] ?? {},
    })),
    ...(keyed ? [IDEMPOTENCY_KEY] : []),
  ];
  const fromUrl = new Set([...route.params, ...route.query]);
  const body = {
    ...input,
    properties: Object.fromEntries(Object.entries(properties).filter(([name]) => !fromUrl.has(name))),
    required: required.filter((name) => !fromUrl.has(name)),
  };
  const success =
    route.response === undefined
      ? {}
      : jsonSchemaOf(route.response, 'output', settings, components, `${id}.response`, `${where} response`);
  const tag = /^[^:]/.test(route.path.split('/')[1] ?? '') ? [route.path.split('/')[1] as string] : [];
  return {
    operationId: id,
    ...(route.summary === undefined ? {} : { summary: route.summary }),
    ...(tag.length ? { tags: tag } : {}),
    parameters,
    ...(route.body
      ? {
          requestBody: {
            required: body.required.length > 0,
            content: { 'application/json': { schema: 'properties' in input ? body : input } },
          },
        }
      : {}),
    responses: {
      [route.status]: successResponse(route.status, success, keyed, route.location !== undefined),
      ...problemResponses(route, settings),
    },
  };
}

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Sending the same key again replays the first result (marked Idempotent-Replayed: true)',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
};

function successResponse(status: number, schema: JsonSchema, keyed: boolean, located: boolean) {
  const headers = {
    ...(keyed
      ? {
          'Idempotent-Replayed': {
            description: 'true on a replay of an idempotent request',
            schema: { const: 'true' },
          },
        }
      : {}),
    ...(located ? { Location: { description: 'Where to follow what was accepted', schema: { type: 'string' } } } : {}),
  };
  return {
    description: 'Success',
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(status === 204 ? {} : { content: { 'application/json': { schema } } }),
  };
}

/** One problem+json response per status the route can answer, with its kinds and domain codes. */
function problemResponses(route: Route, settings: Settings): Record<string, Record<string, unknown>> {
  const isCommand = route.type.kind === 'command';
  const keyed = isKeyed(route);
  const kinds: ProblemKind[] = [
    'bad_request',
    ...(route.body ? BODY : []),
    ...(needsActor(route, settings.requireActor) ? (['unauthenticated'] as const) : []),
    ...EVERY_SEND,
    ...(isCommand ? COMMANDS : []),
    ...(keyed ? IDEMPOTENCY : []),
    'internal',
  ];
  const byStatus = new Map<number, { kinds: ProblemKind[]; codes: string[] }>();
  const entry = (status: number) => byStatus.get(status) ?? byStatus.set(status, { kinds: [], codes: [] }).get(status)!;
  for (const kind of kinds) entry(PROBLEMS[kind].status).kinds.push(kind);
  for (const code of route.codes) {
    const at = entry(settings.domainStatus?.[code] ?? PROBLEMS.domain.status);
    if (!at.kinds.includes('domain')) at.kinds.push('domain');
    at.codes.push(code);
  }
  const responses: Record<string, Record<string, unknown>> = {};
  for (const [status, { kinds: here, codes }] of [...byStatus].sort(([a], [b]) => a - b)) {
    const named = here.map((kind) => (kind === 'domain' ? `domain (${codes.join(', ')})` : kind));
    const narrowed = {
      properties: {
        status: { const: status },
        kind: { enum: here },
        ...(codes.length ? { code: { enum: codes } } : {}),
      },
    };
    responses[status] = {
      description: `Problem: ${named.join(', ')}`,
      content: { 'application/problem+json': { schema: { allOf: [PROBLEM_REF, narrowed] } } },
    };
  }
  return responses;
}

/**
 * The JSON Schema of a schema: its own Standard JSON Schema when it offers one, else the converter's; its `$defs`
 * move to the components (see `hoist`).
 */
function jsonSchemaOf(
  schema: StandardSchemaV1,
  typeMode: 'input' | 'output',
  settings: Settings,
  components: Record<string, JsonSchema>,
  prefix: string,
  where: string,
): JsonSchema {
  const own = (schema['~standard'] as { jsonSchema?: Record<string, (o: object) => object> }).jsonSchema?.[typeMode];
  if (typeof own !== 'function' && !settings.toJsonSchema)
    throw new TypeError(
      `${where}: the ${schema['~standard'].vendor} schema offers no JSON Schema — pass a converter, e.g. ` +
        `openapi(routes, { title, version, toJsonSchema }) with toJsonSchema from '@valibot/to-json-schema'`,
    );
  let converted: object;
  try {
    converted =
      typeof own === 'function'
        ? own({ target: 'draft-2020-12' })
        : settings.toJsonSchema!(schema, { target: 'draft-2020-12', typeMode, errorMode: 'ignore' });
  } catch (error) {
    throw new TypeError(`${where}: its schema does not convert to JSON Schema: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return hoist(converted as Record<string, unknown>, prefix, components);
}

const LOCAL_REF = /^#\/(?:\$defs|definitions)\/(.+)$/;

/**
 * A converted schema without its dialect, its `$defs` (those it uses) moved to the components under their own names,
 * or prefixed with the operation when another schema took a name for something else, its `$ref`s pointing there.
 */
function hoist(converted: Record<string, unknown>, prefix: string, components: Record<string, JsonSchema>): JsonSchema {
  const { $schema: _dialect, $defs, definitions, ...root } = converted;
  const defs = { ...(definitions as object | undefined), ...($defs as object | undefined) } as Record<string, unknown>;
  const used = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    for (const [key, inner] of Object.entries(value)) {
      const name = key === '$ref' && typeof inner === 'string' ? LOCAL_REF.exec(inner)?.[1] : undefined;
      if (name === undefined) visit(inner);
      else if (!used.has(decodeURIComponent(name))) {
        used.add(decodeURIComponent(name));
        visit(defs[decodeURIComponent(name)]);
      }
    }
  };
  visit(root);
  const moved = (nameOf: (name: string) => string) => {
    const relink = (value: unknown): unknown => {
      if (typeof value !== 'object' || value === null) return value;
      if (Array.isArray(value)) return value.map(relink);
      return Object.fromEntries(
        Object.entries(value).map(([key, inner]) => {
          const name = key === '$ref' && typeof inner === 'string' ? LOCAL_REF.exec(inner)?.[1] : undefined;
          return [key, name === undefined ? relink(inner) : `#/components/schemas/${nameOf(decodeURIComponent(name))}`];
        }),
      );
    };
    return {
      root: relink(root) as JsonSchema,
      defs: [...used].map((name) => [nameOf(name), relink(defs[name])] as const),
    };
  };
  const safe = (name: string) => name.replace(/[^\w.-]/g, '_');
  const own = moved(safe);
  const taken = own.defs.some(
    ([name, def]) => name in components && JSON.stringify(components[name]) !== JSON.stringify(def),
  );
  const chosen = taken ? moved((name) => safe(`${prefix}.${name}`)) : own;
  for (const [name, def] of chosen.defs) components[name] = def as JsonSchema;
  return chosen.root;
}

/** Whether the route's request goes through idempotency (commands, unless they skip it). */
function isKeyed(route: Route): boolean {
  return route.type.kind === 'command' && !(route.type.skip ?? []).includes('idempotency');
}

function uniqueId(name: string, route: Route, taken: Set<string>): string {
  let id = taken.has(name) ? `${name}_${route.method.toLowerCase()}` : name;
  for (let n = 2; taken.has(id); n++) id = `${name}_${n}`;
  taken.add(id);
  return id;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, inner]) => inner !== undefined)) as Partial<T>;
}
