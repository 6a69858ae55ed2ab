import type { RequestHandler } from 'express';
import { openApiDocument } from './openapi.ts';

// GET /docs: a self-contained HTML API reference rendered from the OpenAPI document (no
// scripts, no CDN: it works offline and behind any firewall). /openapi.json stays the machine-readable one.

type Schema = Record<string, any>;
interface Doc {
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, any>>;
  components?: { schemas?: Record<string, Schema> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** A value as text: strings as they are, other values (numbers, objects from the document) as JSON. */
const text = (s: unknown): string => (s === undefined || s === null ? '' : typeof s === 'string' ? s : (JSON.stringify(s) ?? ''));

const esc = (s: unknown): string => text(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const anchor = (s: string) => s.replace(/[^\w-]+/g, '-');

/** A schema's type as one line: `string (uuid)`, `Run[]`, `"asc" | "desc"`, links for named schemas. */
function typeOf(s: Schema | undefined): string {
  if (!s || Object.keys(s).length === 0) return 'any';
  if (s.$ref) {
    const name = String(s.$ref).split('/').pop()!;
    return `<a href="#schema-${anchor(name)}">${esc(name)}</a>`;
  }
  if (s.enum) return s.enum.map((v: unknown) => `<code>${esc(JSON.stringify(v))}</code>`).join(' | ');
  if (s.const !== undefined) return `<code>${esc(JSON.stringify(s.const))}</code>`;
  const union = s.anyOf ?? s.oneOf;
  if (union) return union.map(typeOf).join(' | ');
  if (s.allOf) return s.allOf.map(typeOf).join(' &amp; ');
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  return (
    types
      .map((t) => {
        if (t === 'array') return `${typeOf(s.items)}[]`;
        if (t === 'object' && s.additionalProperties && !s.properties) return 'object';
        return esc(t) + (s.format ? ` <span class="fmt">(${esc(s.format)})</span>` : '');
      })
      .join(' | ') || 'any'
  );
}

/** An object schema's fields as a table; other schemas as their type. */
function fieldsTable(s: Schema | undefined): string {
  if (!s?.properties) return `<p class="type">${typeOf(s)}</p>`;
  const required = new Set<string>(s.required ?? []);
  const rows = Object.entries(s.properties as Record<string, Schema>).map(
    ([name, p]) =>
      `<tr><td><code>${esc(name)}</code>${required.has(name) ? ' <span class="req">required</span>' : ''}</td>` +
      `<td>${typeOf(p)}</td><td>${esc(p.description ?? '')}${
        p.default !== undefined ? ` <span class="dflt">default ${esc(JSON.stringify(p.default))}</span>` : ''
      }</td></tr>`,
  );
  return `<table><thead><tr><th>field</th><th>type</th><th>notes</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function parametersTable(params: any[] | undefined): string {
  if (!params?.length) return '';
  const rows = params.map((p) => {
    const name = `<code>${esc(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ''}`;
    return `<tr><td>${name}</td><td>${esc(p.in)}</td><td>${typeOf(p.schema)}</td><td>${esc(p.description ?? p.schema?.description ?? '')}</td></tr>`;
  });
  return `<h4>Parameters</h4><table><thead><tr><th>name</th><th>in</th><th>type</th><th>notes</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** A request body: the fields of the (referenced) object schema, so each route reads on its own. */
function bodySection(s: Schema, schemas: Record<string, Schema>): string {
  const name = s.$ref ? String(s.$ref).split('/').pop()! : null;
  const resolved = name ? schemas[name] : s;
  return `<h4>Request body${name ? ` (${typeOf(s)})` : ''}</h4>${fieldsTable(resolved)}`;
}

/** The tags in reading order: the crons and runs first (what agentcron is for), admin last, the rest by name. */
export function tagOrder(tags: string[]): string[] {
  const rank = (t: string) => (t === 'crons' ? 0 : t === 'runs' ? 1 : t === 'admin' ? 3 : 2);
  return [...tags].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** A shell-quoted JSON body for a curl line ('\'' for a quote inside). */
const shellJson = (v: unknown) => `'${JSON.stringify(v).replace(/'/g, "'\\''")}'`;

/** A curl line for an operation, path parameters as shell variables ($CRON_ID). */
export function curlLine(method: string, path: string, body: unknown): string {
  const url = `http://localhost:8000${path.replace(/\{(\w+)\}/g, (_m, name: string) => `$${name.toUpperCase()}`)}`;
  const parts = ['curl -s'];
  if (method !== 'get' && !(method === 'post' && body !== undefined)) parts.push(`-X ${method.toUpperCase()}`);
  parts.push(`"${url}"`);
  if (body !== undefined) parts.push(`-H 'content-type: application/json' -d ${shellJson(body)}`);
  return parts.join(' ');
}

const pretty = (v: unknown) => esc(JSON.stringify(v, null, 2));

function operation(path: string, method: string, op: any, schemas: Record<string, Schema>): string {
  const id = anchor(`${method}-${path}`);
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const bodyExample = op.requestBody?.content?.['application/json']?.example;
  const answerExample = op.responses?.['200']?.content?.['application/json']?.example;
  const example =
    bodyExample !== undefined || answerExample !== undefined || method === 'get' || method === 'delete'
      ? `<h4>Example</h4><pre class="curl">${esc(curlLine(method, path, bodyExample))}</pre>` +
        (bodyExample !== undefined ? `<details open><summary>Request body</summary><pre>${pretty(bodyExample)}</pre></details>` : '') +
        (answerExample !== undefined ? `<details><summary>Answer (200)</summary><pre>${pretty(answerExample)}</pre></details>` : '')
      : '';
  const responses = Object.entries((op.responses ?? {}) as Record<string, any>)
    .map(([code, r]) => {
      const schema = r.content?.['application/json']?.schema;
      return `<tr><td><code>${esc(code)}</code></td><td>${esc(r.description ?? '')}</td><td>${schema ? typeOf(schema) : ''}</td></tr>`;
    })
    .join('');
  return `<section class="op" id="${id}">
<h3><span class="m m-${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>
<p>${esc(op.summary ?? '')}</p>${op.description ? `<p class="desc">${esc(op.description)}</p>` : ''}
${parametersTable(op.parameters)}
${bodySchema ? bodySection(bodySchema, schemas) : ''}
<h4>Responses</h4><table><thead><tr><th>status</th><th>meaning</th><th>body</th></tr></thead><tbody>${responses}</tbody></table>
${example}
</section>`;
}

const CSS = `body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d1d1f;display:flex}
nav{width:300px;height:100vh;overflow:auto;position:sticky;top:0;background:#f5f5f7;padding:16px;box-sizing:border-box;font-size:13px}
nav a{display:block;color:#1d1d1f;text-decoration:none;padding:1px 0}nav h2{font-size:13px;text-transform:uppercase;color:#666;margin:16px 0 4px}
main{flex:1;padding:24px 40px;max-width:1000px}h1{margin-top:0}.op{border-top:1px solid #ddd;padding:8px 0 16px}
table{border-collapse:collapse;width:100%;font-size:14px;margin:4px 0 8px}
th,td{border:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}th{background:#fafafa}
code{font:13px ui-monospace,monospace}.m{display:inline-block;min-width:56px;text-align:center;border-radius:4px;color:#fff;font-size:12px;padding:1px 6px}
.m-get{background:#0a7d34}.m-post{background:#0b63c5}.m-patch{background:#a15c00}.m-delete{background:#b42318}.m-put{background:#6b3fa0}
.req{color:#b42318;font-size:11px}.dflt,.fmt{color:#666;font-size:12px}.desc{color:#444}h4{margin:8px 0 2px;font-size:14px}
pre{background:#f5f5f7;border-radius:6px;padding:8px 10px;font:12.5px ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;margin:4px 0}
pre.curl{background:#1d1d1f;color:#f5f5f7}h3,code{overflow-wrap:anywhere}summary{cursor:pointer;font-size:13px;color:#444}
td{word-break:break-word}main{min-width:0}
@media (max-width:760px){body{display:block}nav{width:auto;height:auto;max-height:40vh;position:static}main{padding:12px 14px}
table{display:block;overflow-x:auto}th,td{padding:3px 5px}}`;

/** The reference page for an OpenAPI document. */
export function renderDocs(doc: Doc): string {
  const byTag = new Map<string, { path: string; method: string; op: any }[]>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push({ path, method, op });
    }
  }
  const tags = tagOrder([...byTag.keys()]);
  const schemas = Object.entries(doc.components?.schemas ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const opLink = (o: { path: string; method: string }) => `<a href="#${anchor(`${o.method}-${o.path}`)}">${esc(o.method.toUpperCase())} ${esc(o.path)}</a>`;
  const schemaLink = (name: string) => `<a href="#schema-${anchor(name)}">${esc(name)}</a>`;
  const nav =
    tags.map((t) => `<h2>${esc(t)}</h2>${byTag.get(t)!.map(opLink).join('')}`).join('') + `<h2>schemas</h2>${schemas.map(([n]) => schemaLink(n)).join('')}`;
  const operations = tags
    .map(
      (t) =>
        `<h2 id="tag-${anchor(t)}">${esc(t)}</h2>${byTag
          .get(t)!
          .map((o) => operation(o.path, o.method, o.op, doc.components?.schemas ?? {}))
          .join('')}`,
    )
    .join('');
  const schemaSections = schemas
    .map(([name, s]) => {
      const description = s.description ? `<p class="desc">${esc(s.description)}</p>` : '';
      return `<section class="op" id="schema-${anchor(name)}"><h3>${esc(name)}</h3>${description}${fieldsTable(s)}</section>`;
    })
    .join('');
  const title = esc(doc.info.title);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} API reference</title><style>${CSS}</style></head>
<body><nav><strong>${title} ${esc(doc.info.version)}</strong>${nav}</nav>
<main><h1>${title} API reference</h1><p>${esc(doc.info.description ?? '')}</p>
<p>JSON bodies with snake_case keys; errors answer <code>{"detail": "..."}</code>.
With <code>AUTH_MODE=api_key</code> every route below needs a key in <code>x-api-key</code> or <code>Authorization: Bearer</code>;
each user sees only what they created (and the default assistants).
The machine-readable document is <a href="/openapi.json">/openapi.json</a>.</p>
${operations}<h2 id="schemas">Schemas</h2>${schemaSections}</main></body></html>`;
}

/** Serves the page; rendered once, on first request, when every route module has registered its paths. */
export function docsPage(): RequestHandler {
  let html: string | undefined;
  return (_req, res) => {
    html ??= renderDocs(openApiDocument() as Doc);
    res.type('html').send(html);
  };
}
