// Programmer mistakes throw one error class whose `kind` says what went wrong and whose message says the fix.

const BRAND = Symbol.for('usecasecore.UseCaseError');

/** What kind of mistake a UseCaseError reports. */
export type UseCaseErrorKind =
  'no_handler' | 'duplicate_handler' | 'bad_handler' | 'bad_stack' | 'missing_port' | 'misuse' | 'failed';

/**
 * Thrown for programmer mistakes (never for business outcomes, which are `Result` failures).
 * `UseCaseError.is(e)` works across duplicate copies of the package.
 * @example if (UseCaseError.is(e) && e.kind === 'no_handler') { ... }
 */
export class UseCaseError extends Error {
  readonly [BRAND] = true;
  override readonly name = 'UseCaseError';
  constructor(
    readonly kind: UseCaseErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  static is(value: unknown): value is UseCaseError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}
