// The sample's OpenAPI 3.1 document: the declared routes (from their requests' schemas), plus what app.ts serves by
// hand — the NDJSON export and the probes — so that /docs shows every route the service answers.
import { toJsonSchema } from '@valibot/to-json-schema';
import { get, openapi, type OpenApiDocument, type Operation, type Routes } from '../adapters/http/index.js';
import { ExportAudit } from './audit/index.js';

/** The title of the document and of the /docs page. */
export const API_TITLE = 'usecasecore sample';

/** GET /audit/export as a declaration, for the document only (app.ts serves it with `ndjson()`). */
const EXPORT_ROUTE = get('/audit/export', ExportAudit, {
  summary: 'Every sealed audit record, in commit order, one JSON object per line (managers)',
});

/** One line of the export. */
const AUDIT_LINE = {
  type: 'object',
  required: ['id', 'at', 'actor', 'type', 'outcome'],
  properties: {
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    actor: { type: ['string', 'null'] },
    type: { type: 'string', description: 'The request type, e.g. MoveInventory' },
    outcome: { type: 'string', description: 'ok, a failure kind, or error' },
    code: { type: 'string', description: 'The domain code of a domain failure' },
  },
};

const PROBLEM = { $ref: '#/components/schemas/Problem' };

/** The probes, which answer without the mediator. */
const PROBES: Record<string, { get: Operation }> = {
  '/health': {
    get: {
      operationId: 'health',
      summary: 'The process is up',
      tags: ['probes'],
      parameters: [],
      responses: {
        200: {
          description: 'Up',
          content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } } } } },
        },
      },
    },
  },
  '/ready': {
    get: {
      operationId: 'ready',
      summary: 'The database answers and, with RabbitMQ, the broker connection is open and not blocked',
      tags: ['probes'],
      parameters: [],
      responses: {
        200: {
          description: 'Ready',
          content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ready' } } } } },
        },
        503: {
          description: 'Problem: unavailable (the detail names what is down: database, broker)',
          content: { 'application/problem+json': { schema: PROBLEM } },
        },
      },
    },
  },
};

/**
 * The document of `api` with the export and the probes, titled `API_TITLE`, at `version`.
 * @example app.get('/openapi.json', (_req, res) => res.json(sampleOpenApi(api, '0.2.0')));
 */
export function sampleOpenApi(api: Routes, version: string): OpenApiDocument {
  const doc = openapi({ ...api, list: [...api.list, EXPORT_ROUTE] }, { title: API_TITLE, version, toJsonSchema });
  const exporting = doc.paths['/audit/export']!.get!;
  const lines = {
    description: 'Success: one JSON object per line, in commit order (the end of the body is the end of the log)',
    content: { 'application/x-ndjson': { schema: AUDIT_LINE } },
  };
  return {
    ...doc,
    paths: {
      ...doc.paths,
      '/audit/export': { get: { ...exporting, responses: { ...exporting.responses, 200: lines } } },
      ...PROBES,
    },
  };
}
