// usecasecore/ops: retention of the library's records on a timer.
export {
  retention,
  type Retention,
  type RetentionCounts,
  type RetentionOptions,
  type RetentionPorts,
} from './retention.js';
