/**
 * The state of one notebook's Productionize, as a pure reducer.
 *
 * Productionize goes idle -> saving -> checking -> (blocked | starting -> [queued ->]
 * running -> succeeded | failed | cancelled); `cancelling` sits between running and cancelled, and
 * `error` ends it when a request fails before the run exists. Server snapshots of the run
 * arrive from polls and from the cancel request in any order, so the reducer ignores
 * snapshots of a run it no longer follows and never lets a late `running` snapshot undo
 * an ending it has already seen.
 */
import type { Diagnostic, Run, StageError, StageStatus } from './api';

export type Phase =
  | 'idle'
  | 'saving'
  | 'checking'
  | 'blocked'
  | 'starting'
  | 'queued'
  | 'running'
  | 'cancelling'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'error';

export interface ProgressState {
  phase: Phase;
  /** the latest snapshot of the run being followed */
  run: Run | null;
  /** the errors that stopped the check, when blocked */
  problems: Diagnostic[];
  /** why it stopped (error), or a passing problem such as a failed poll */
  message: string | null;
}

export type ProgressAction =
  | { type: 'save' }
  | { type: 'check' }
  | { type: 'blocked'; problems: Diagnostic[] }
  | { type: 'start' }
  | { type: 'run'; run: Run }
  | { type: 'resume'; run: Run }
  | { type: 'cancel' }
  | { type: 'cancel-failed'; message: string }
  | { type: 'warning'; message: string }
  | { type: 'fail'; message: string };

export const IDLE: ProgressState = { phase: 'idle', run: null, problems: [], message: null };

const ACTIVE: ReadonlySet<Phase> = new Set([
  'saving',
  'checking',
  'starting',
  'queued',
  'running',
  'cancelling'
]);

/** Whether Productionize is under way (a second one must wait). */
export function isActive(state: ProgressState): boolean {
  return ACTIVE.has(state.phase);
}

const FOLLOWED: ReadonlySet<Phase> = new Set(['queued', 'running', 'cancelling']);

/** Whether the server still has to report more about the followed run. */
export function isPolling(state: ProgressState): boolean {
  return state.run !== null && FOLLOWED.has(state.phase);
}

/** Whether the followed run can be cancelled (it waits in the queue or runs). */
export function isCancellable(state: ProgressState): boolean {
  return state.run !== null && (state.phase === 'queued' || state.phase === 'running');
}

export function reduce(state: ProgressState, action: ProgressAction): ProgressState {
  switch (action.type) {
    case 'save':
      return isActive(state) ? state : { ...IDLE, phase: 'saving' };
    case 'check':
      return state.phase === 'saving' ? { ...state, phase: 'checking' } : state;
    case 'blocked':
      return state.phase === 'checking'
        ? { ...state, phase: 'blocked', problems: action.problems }
        : state;
    case 'start':
      return state.phase === 'checking' ? { ...state, phase: 'starting' } : state;
    case 'run':
      return applyRun(state, action.run);
    case 'resume':
      return state.phase === 'idle'
        ? { ...IDLE, phase: action.run.status, run: action.run }
        : state;
    case 'cancel':
      return isCancellable(state) ? { ...state, phase: 'cancelling', message: null } : state;
    case 'cancel-failed':
      return state.phase === 'cancelling'
        ? {
            ...state,
            phase: state.run?.status === 'queued' ? 'queued' : 'running',
            message: action.message
          }
        : state;
    case 'warning':
      return isActive(state) ? { ...state, message: action.message } : state;
    case 'fail':
      return isActive(state) ? { ...state, phase: 'error', message: action.message } : state;
  }
}

function applyRun(state: ProgressState, run: Run): ProgressState {
  if (state.phase === 'starting') {
    return { ...state, phase: run.status, run, message: null };
  }
  if (!isPolling(state) || state.run?.id !== run.id) {
    return state;
  }
  if (run.status === 'running' || run.status === 'queued') {
    // A cancel being made stays so; a late `queued` snapshot doesn't undo `running`.
    const phase =
      state.phase === 'cancelling' || (state.phase === 'running' && run.status === 'queued')
        ? state.phase
        : run.status;
    return { ...state, phase, run, message: null };
  }
  return { ...state, phase: run.status, run, message: null };
}

// --- what the UI shows ------------------------------------------------------------------

const STATUS_TEXT: Record<Phase, string> = {
  idle: '',
  saving: 'saving the notebook',
  checking: 'checking the pipeline',
  blocked: 'blocked by errors',
  starting: 'starting',
  queued: 'queued: waiting for a free run slot',
  running: 'running',
  cancelling: 'cancelling',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  error: 'error'
};

export function statusText(state: ProgressState): string {
  return STATUS_TEXT[state.phase];
}

export interface StageProgress {
  name: string;
  status: StageStatus;
  /** seconds; still counting while the stage runs */
  duration: number | null;
  cells: number[];
  mlflowUrl: string | null;
  cachedFrom: string | null;
}

/** Per-stage rows of a run; `now` is in seconds since the epoch, like the server's times. */
export function stageProgress(run: Run, now: number): StageProgress[] {
  return run.stages.map(stage => ({
    name: stage.name,
    status: stage.status,
    duration:
      stage.duration ??
      (stage.status === 'running' && stage.started !== null
        ? Math.max(0, now - stage.started)
        : null),
    cells: stage.cells,
    mlflowUrl: stage.mlflow_url,
    cachedFrom: stage.cached_from
  }));
}

export interface Failure {
  stage: string | null;
  error: StageError;
}

/** What failed in a failed run: the failing stage and its error. */
export function failureOf(run: Run): Failure | null {
  const failed = run.stages.find(stage => stage.status === 'failed');
  const error = run.error ?? failed?.error ?? null;
  return error ? { stage: failed?.name ?? null, error } : null;
}

/** The metrics a run logged, in stage order, to 4 significant digits: `accuracy 0.9778`. */
export function metricsOf(run: Run): string[] {
  return run.stages.flatMap(stage =>
    Object.entries(stage.metrics).map(([name, value]) => `${name} ${Number(value.toPrecision(4))}`)
  );
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  const rest = Math.floor(seconds % 60);
  return `${minutes} min ${String(rest).padStart(2, '0')} s`;
}
