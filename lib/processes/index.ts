// usecasecore/processes: business processes that outlive a transaction — declared steps, each sent in a transaction
// of its own and undone in reverse when a later one fails, durable waits, and the requests that read, cancel and
// retry them.
export {
  process,
  sleep,
  step,
  waitFor,
  type ProcessChain,
  type ProcessClass,
  type ProcessOptions,
  type ProcessRequest,
  type ProcessStarted,
  type ProcessStepDef,
  type SendStep,
  type SleepStep,
  type StepCommand,
  type StepMismatch,
  type WaitStep,
} from './declare.js';
export { processes, type ProcessRuntime } from './runner.js';
export { CancelProcess, GetProcess, RetryProcess, type ProcessMoved } from './requests.js';
export { ProcessStep, ProcessStepGaveUp } from './commands.js';
export { stepKey } from './advance.js';
export { engineStepKey, sendAsStep, type EngineStep } from './engine.js';
export type {
  Correlation,
  ProcessFailure,
  ProcessRecord,
  ProcessState,
  ProcessStore,
  StepRecord,
  StepState,
  Waiter,
} from '../core/ports.js';
