// A request type's middleware stack: resolved and checked against each middleware's rules, then composed once at
// start-up.
import type { Container } from 'inversify';
import { compose, type Step } from './compose.js';
import type { Context } from './context.js';
import { UseCaseError } from './errors.js';
import type { Middleware, MiddlewareClass } from './middleware.js';
import { MIDDLEWARE } from './names.js';
import type { Ports } from './ports.js';
import type { AnyResult } from './result.js';

/** A middleware function, or a class resolved once from the container; timed by the Telemetry port if it asks. */
export function resolveMiddleware(container: Container, entry: Middleware | MiddlewareClass, ports: Ports): Middleware {
  const m = isClass(entry) ? instanceOf(container, entry) : entry;
  const around = m.rules?.observer ? undefined : ports.telemetry?.middleware?.(m.name);
  if (!around) return m;
  const observed = (ctx: Context, next: () => Promise<AnyResult>) => around(() => m(ctx, next));
  Object.defineProperty(observed, 'name', { value: m.name });
  return Object.assign(observed, m.rules ? { rules: m.rules } : {});
}

function isClass(entry: Middleware | MiddlewareClass): entry is MiddlewareClass {
  return 'prototype' in entry && typeof entry.prototype?.handle === 'function';
}

function instanceOf(container: Container, Class: MiddlewareClass): Middleware {
  if (!container.isBound(Class)) container.bind(Class).toSelf().inSingletonScope();
  const instance = container.get(Class);
  const fn = (ctx: Context, next: () => Promise<AnyResult>) => instance.handle(ctx, next);
  Object.defineProperty(fn, 'name', { value: Class.name });
  return Object.assign(fn, Class.rules ? { rules: Class.rules } : {});
}

/** The middleware a streamed query's opening runs through: those that take part in streams (`rules.stream`). */
export function streamStack(stack: readonly Middleware[]): Middleware[] {
  return stack.filter((m) => m.rules?.stream !== false);
}

/** Composes one type's stack; a reentrant middleware gets a `next` that runs the inner stack afresh per call. */
export function build(stack: readonly Middleware[]): (ctx: Context) => Promise<AnyResult> {
  let run = handle;
  let segment: Array<Step<Context, AnyResult>> = [];
  for (let i = stack.length - 1; i >= 0; i--) {
    const m = stack[i]!;
    if (!m.rules?.reentrant) {
      segment.unshift(m);
      continue;
    }
    const inner = compose(segment),
      innerRun = run;
    run = (ctx) => m(ctx, () => inner(ctx, innerRun));
    segment = [];
  }
  if (segment.length === 0) return run;
  const outer = compose(segment),
    outerRun = run;
  return (ctx) => outer(ctx, outerRun);
}

async function handle(ctx: Context): Promise<AnyResult> {
  if (ctx.handler.load) await ctx.load();
  return ctx.handler.handle(ctx.request, ctx);
}

/**
 * Checks that every name a rule or a request's `skip` gives is a middleware's: a built-in one or one in the stack.
 * A typo (`after: ['polcy']`) would otherwise make a rule that never applies.
 */
export function checkNames(stack: readonly Middleware[], skips: ReadonlyArray<readonly [string, readonly string[]]>) {
  const known = new Set<string>([...Object.values(MIDDLEWARE), ...stack.map((m) => m.name)]);
  const listed = () => [...known].join(', ');
  for (const m of stack) {
    const { after = [], before = [], requires = [], inside = [] } = m.rules ?? {};
    const unknown = [...after, ...before, ...requires, ...inside].find((name) => !known.has(name));
    if (unknown !== undefined)
      throw new UseCaseError(
        'bad_stack',
        `${m.name}'s rules name "${unknown}", which is no middleware — use one of: ${listed()} (MIDDLEWARE.<name>)`,
      );
  }
  for (const [type, skip] of skips) {
    const unknown = skip.find((name) => !known.has(name));
    if (unknown !== undefined)
      throw new UseCaseError(
        'bad_stack',
        `${type} skips "${unknown}", which is no middleware — use one of: ${listed()} (MIDDLEWARE.<name>)`,
      );
  }
}

/** Checks one type's effective stack against every middleware's rules and bound ports. */
export function checkStack(type: string, stack: readonly Middleware[], ports: Ports): void {
  const names = stack.map((m) => m.name);
  const front = stack.findIndex((m) => !m.rules?.observer); // observers (tracing) may wrap even the first
  const bad = (message: string) => new UseCaseError('bad_stack', `Middleware stack of ${type}: ${message}`);
  stack.forEach((m, i) => {
    const rules = m.rules ?? {};
    if (!m.name)
      throw bad(`middleware #${i} has no name — return a named function (async function timing(ctx, next) {...})`);
    if (names.indexOf(m.name) !== i) throw bad(`${m.name} appears twice — keep one`);
    if (rules.first && i !== front)
      throw bad(`${m.name} must be first (it runs before anything reads or writes) — move it to the front`);
    if (rules.observer && i > 0 && !stack[i - 1]!.rules?.observer)
      throw bad(`${m.name} observes the whole send — move it to the front of the stack`);
    for (const other of rules.requires ?? [])
      if (!names.includes(other)) throw bad(`${m.name} needs ${other}() in the stack — add it`);
    for (const outer of rules.inside ?? []) {
      const at = names.indexOf(outer);
      if (at < 0) throw bad(`${m.name} must run inside ${outer}() — add ${outer}() before ${m.name}()`);
      if (at > i) throw bad(`${m.name} must run inside ${outer}() — move ${outer}() before ${m.name}()`);
    }
    for (const other of rules.after ?? [])
      if (names.indexOf(other) > i)
        throw bad(`${m.name} must come after ${other} — move ${other}() before ${m.name}()`);
    for (const other of rules.before ?? []) {
      const at = names.indexOf(other);
      if (at >= 0 && at < i) throw bad(`${m.name} must come before ${other} — move ${m.name}() before ${other}()`);
    }
    for (const port of rules.ports ?? []) {
      if (!ports[port]) {
        throw new UseCaseError(
          'missing_port',
          `${m.name}() in the stack of ${type} needs a ${port} port — load an adapter module ` +
            '(memoryModule(), knexModule(...)) or bind TOKENS for it',
        );
      }
    }
  });
}
