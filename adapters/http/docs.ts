// A self-contained HTML page that renders an OpenAPI document: no CDN, nothing fetched but the document itself.

/** Options of `docsPage`. */
export interface DocsPageOptions {
  /** The page's title until the document is loaded. Default 'API'. */
  readonly title?: string;
}

const STYLE = `
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 2rem;color:#1d232b}
h1{margin-bottom:0}h2{margin-top:2rem;border-bottom:1px solid #ccd}code,pre{font:13px ui-monospace,monospace}
details{border:1px solid #ccd;border-radius:6px;margin:.5rem 0;padding:.25rem .75rem}summary{cursor:pointer}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#05c}.put,.patch{color:#a60}.delete{color:#c22}
table{border-collapse:collapse;margin:.25rem 0}td,th{border:1px solid #dde;padding:.2rem .5rem;text-align:left}
pre{background:#f4f5f8;padding:.5rem;overflow:auto;max-height:24rem}.muted{color:#667}.err{color:#c22}`;

// Runs in the browser (plain JavaScript, kept as text). Builds the page with textContent only, so nothing in the
// document is ever read as HTML. SPEC_URL is defined before it.
const RENDER = `
const el = (tag, text, cls) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls !== undefined) node.className = cls;
  return node;
};
const json = (value) => el('pre', JSON.stringify(value, null, 2));
const root = document.getElementById('api');
const operation = (path, method, op) => {
  const box = el('details');
  const head = el('summary');
  const title = ' ' + (op.summary ?? op.operationId ?? '');
  head.append(el('span', method, 'm ' + method), el('code', path), el('span', title, 'muted'));
  const tags = op.tags ? ' · ' + op.tags.join(', ') : '';
  box.append(head, el('p', 'operationId: ' + (op.operationId ?? '') + tags, 'muted'));
  if (op.parameters?.length) {
    const table = el('table');
    const top = el('tr');
    top.append(el('th', 'parameter'), el('th', 'in'), el('th', 'schema'));
    table.append(top);
    for (const p of op.parameters) {
      const row = el('tr');
      const schema = el('td');
      schema.append(el('code', JSON.stringify(p.schema ?? {})));
      row.append(el('td', p.name + (p.required ? ' *' : '')), el('td', p.in), schema);
      table.append(row);
    }
    box.append(el('h4', 'Parameters'), table);
  }
  const body = op.requestBody?.content?.['application/json']?.schema;
  if (body) box.append(el('h4', 'Request body (application/json)'), json(body));
  box.append(el('h4', 'Responses'));
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    const item = el('details');
    item.append(el('summary', status + ' ' + (response.description ?? '')));
    for (const [type, content] of Object.entries(response.content ?? {}))
      item.append(el('p', type, 'muted'), json(content.schema));
    box.append(item);
  }
  return box;
};
fetch(SPEC_URL)
  .then((response) => {
    if (!response.ok) throw new Error(SPEC_URL + ' answered ' + response.status);
    return response.json();
  })
  .then((doc) => {
    document.title = doc.info.title;
    root.replaceChildren(el('h1', doc.info.title + ' ' + doc.info.version), el('p', 'OpenAPI ' + doc.openapi, 'muted'));
    if (doc.info.description) root.append(el('p', doc.info.description));
    const link = el('a', SPEC_URL);
    link.href = SPEC_URL;
    const source = el('p', 'The document: ');
    source.append(link);
    root.append(source, el('h2', 'Operations'));
    for (const [path, operations] of Object.entries(doc.paths ?? {}))
      for (const [method, op] of Object.entries(operations)) root.append(operation(path, method, op));
    root.append(el('h2', 'Schemas'));
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      const box = el('details');
      box.append(el('summary', name), json(schema));
      root.append(box);
    }
  })
  .catch((error) => root.replaceChildren(el('p', 'Could not load the document: ' + error.message, 'err')));
`;

/**
 * A static HTML page that fetches the OpenAPI document at `specUrl` (same origin: its Content-Security-Policy
 * allows nothing else) and renders its operations, parameters, bodies, responses and schemas. Nothing comes from a
 * CDN: the page is its own script and style.
 * @example app.get('/docs', (_req, res) => res.type('html').send(docsPage('/openapi.json')));
 */
export function docsPage(specUrl: string, options: DocsPageOptions = {}): string {
  const csp = "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";
  const url = JSON.stringify(specUrl).replace(/</g, '\\u003c'); // a string literal: no </script> can end it early
  const script = `const SPEC_URL = ${url};${RENDER}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${escapeHtml(options.title ?? 'API')}</title>
<style>${STYLE}</style>
</head>
<body>
<main id="api"><noscript>This page renders the OpenAPI document with JavaScript.</noscript></main>
<script>${script}</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
