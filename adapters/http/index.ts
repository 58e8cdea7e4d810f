// Framework-free HTTP helpers: failures as problem+json, the success reply, send options from request headers,
// routes declared from the requests (Fetch and Express) and their OpenAPI document.
export {
  problem,
  problemOfError,
  toProblem,
  type HttpErrorKind,
  type HttpReply,
  type Problem,
  type ProblemExtra,
  type ProblemKind,
  type ProblemOptions,
} from './problem.js';
export {
  header,
  readSendOptions,
  toReply,
  toResponse,
  type HeadersLike,
  type ReplyOptions,
  type SendOptionsReader,
} from './reply.js';
export {
  del,
  get,
  patch,
  post,
  put,
  routes,
  type CodesOf,
  type ExpressLikeRequest,
  type ExpressLikeResponse,
  type FieldsOf,
  type Method,
  type PathParams,
  type Route,
  type RouteDeclaration,
  type RouteOptions,
  type Routes,
  type RoutesOptions,
} from './routes.js';
export {
  openapi,
  type JsonSchema,
  type JsonSchemaConfig,
  type JsonSchemaConverter,
  type OpenApiDocument,
  type OpenApiOptions,
  type Operation,
} from './openapi.js';
export { docsPage, type DocsPageOptions } from './docs.js';
