// Reading a JSON request body the way a careful body parser does: content type, encoding, size, UTF-8, syntax.
import { problem, type HttpReply, type Problem } from './problem.js';

// Stateless as used here (whole buffers, no stream option), so every request shares one of each.
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const ENCODER = new TextEncoder();

/** What reading a body gave: its parsed JSON (undefined for no body), or the problem to answer. */
export type BodyRead =
  { readonly ok: true; readonly body: unknown } | { readonly ok: false; readonly reply: HttpReply<Problem> };

/** The request body as the reader sees it: its headers and its bytes, from a Fetch `Request` or Node's request. */
export interface BodySource {
  readonly get: (name: string) => string | undefined;
  /** The bytes, read once; undefined when the request has no body. */
  readonly chunks: AsyncIterable<Uint8Array | string> | undefined;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/**
 * The JSON body of a request, or the problem that answers it: 415 for another content type, a charset other than
 * UTF-8 or a compressed body; 413 past `limit` bytes (read no further); 400 for bytes that are not UTF-8 JSON.
 * An empty body is no body.
 * @example const read = await readJsonBody({ get: (n) => req.headers.get(n) ?? undefined, chunks: req.body }, 32_768);
 */
export async function readJsonBody(source: BodySource, limit: number): Promise<BodyRead> {
  const length = Number(source.get('Content-Length') ?? Number.NaN);
  if (source.chunks === undefined || length === 0) return { ok: true, body: undefined };
  const refused = refusedType(source.get('Content-Type'), source.get('Content-Encoding'));
  if (refused) return { ok: false, reply: problem('unsupported_media_type', refused) };
  const tooLarge = problem('payload_too_large', `The body is larger than ${limit} bytes: send less`);
  if (length > limit) return { ok: false, reply: tooLarge };
  const bytes = await readAtMost(source.chunks, limit);
  if (bytes === undefined) return { ok: false, reply: tooLarge };
  if (bytes.length === 0) return { ok: true, body: undefined };
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return { ok: false, reply: problem('malformed_json', 'The body is not UTF-8: send it as UTF-8 JSON') };
  }
  try {
    return { ok: true, body: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reply: problem('malformed_json', `The body is not JSON: ${(error as Error).message}`) };
  }
}

/** Why a body of this type and encoding is refused, or undefined when it is UTF-8 JSON. */
function refusedType(contentType: string | undefined, encoding: string | undefined): string | undefined {
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')
    return `Content-Encoding ${encoding} is not accepted: send the body uncompressed`;
  const [type = '', ...params] = (contentType ?? '').split(';').map((part) => part.trim());
  if (!JSON_TYPE.test(type)) return `Send the body as JSON with Content-Type: application/json (not '${type}')`;
  const charset = params.find((param) => /^charset=/i.test(param))?.slice('charset='.length);
  if (charset !== undefined && !/^"?utf-8"?$/i.test(charset))
    return `Charset ${charset} is not accepted: send the body as UTF-8 (charset=utf-8, or no charset)`;
  return undefined;
}

/** Every byte of `chunks`, or undefined as soon as they pass `limit` (the rest is left unread, the stream intact). */
async function readAtMost(chunks: AsyncIterable<Uint8Array | string>, limit: number): Promise<Uint8Array | undefined> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const iterator = chunks[Symbol.asyncIterator]();
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    const part = typeof next.value === 'string' ? ENCODER.encode(next.value) : next.value;
    size += part.length;
    if (size > limit) return undefined; // no return(): breaking would destroy Node's socket before the 413 is sent
    parts.push(part);
  }
  return Buffer.concat(parts);
}
