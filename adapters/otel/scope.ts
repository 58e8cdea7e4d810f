// The instrumentation scope every span and instrument of usecasecore is recorded under.
import { SpanKind } from '@opentelemetry/api';

/** The instrumentation scope of every span and instrument. */
export const SCOPE = 'usecasecore';

/** The options of an INTERNAL span. */
export const INTERNAL = { kind: SpanKind.INTERNAL };
