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
import type { Diagnostic, Run, StageError, StageRun, StageStatus } from './api';

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
  return isPreparing(state) ? 'preparing' : STATUS_TEXT[state.phase];
}

/**
 * Whether the run has started but none of its stages has reported yet: the server converts
 * the notebook and starts the kernels, which takes a few seconds before the first stage runs.
 */
export function isPreparing(state: ProgressState): boolean {
  const { run } = state;
  return (
    state.phase === 'running' &&
    run !== null &&
    run.stages.every(stage => stage.status === 'queued' && stage.started === null)
  );
}

/** A stage as the check found it: the rows shown before the run lists its stages. */
export interface PlannedStage {
  name: string;
  cells: number[];
}

export interface StageProgress {
  name: string;
  status: StageStatus;
  /** what the row says of its status: `not started` for a stage cancelled before it ran */
  label: string;
  /** seconds; still counting while the stage runs; null when there is nothing to count */
  duration: number | null;
  cells: number[];
  mlflowUrl: string | null;
  cachedFrom: string | null;
  /** a line under the row: where a cached stage's outputs come from, with a short id */
  note: string | null;
  /** the note in full, the whole id, for its tooltip */
  noteTitle: string | null;
}

/**
 * Per-stage rows of a run; `now` is in seconds since the epoch, like the server's times.
 * Until the run lists its stages (it is being prepared, or not started yet), the `planned`
 * stages of the check are shown as queued.
 */
export function stageProgress(
  run: Run | null,
  now: number,
  planned: readonly PlannedStage[] = []
): StageProgress[] {
  if (!run || run.stages.length === 0) {
    return planned.map(stage => ({
      name: stage.name,
      status: 'queued',
      label: 'queued',
      duration: null,
      cells: stage.cells,
      mlflowUrl: null,
      cachedFrom: null,
      note: null,
      noteTitle: null
    }));
  }
  return run.stages.map(stage => {
    const never = neverStarted(stage);
    const cached = stage.status === 'cached' ? cachedNote(stage.cached_from) : null;
    return {
      name: stage.name,
      status: stage.status,
      label: never ? 'not started' : stage.status,
      duration: never
        ? null
        : (stage.duration ??
          (stage.status === 'running' && stage.started !== null
            ? Math.max(0, now - stage.started)
            : null)),
      cells: stage.cells,
      mlflowUrl: stage.mlflow_url,
      cachedFrom: stage.cached_from,
      note: cached?.note ?? null,
      noteTitle: cached?.title ?? null
    };
  });
}

/**
 * Whether a cancelled stage was stopped before it ran: it has no start, or the server gave
 * it its end as its start (a duration of exactly 0).
 */
export function neverStarted(stage: StageRun): boolean {
  return (
    stage.status === 'cancelled' &&
    (stage.started === null || stage.duration === 0 || stage.started === stage.finished)
  );
}

const MLFLOW_RUN_ID = /^[0-9a-f]{32}$/;

/**
 * Where a cached stage's outputs come from, short (the first 8 hex digits of an MLflow run
 * id, as `jupyter-mlops run` says it) and in full for a tooltip. `origin` is the MLflow run
 * id, or a run folder's name when MLflow was not reached.
 */
export function cachedNote(origin: string | null): { note: string; title: string } {
  if (!origin) {
    return { note: 'from an earlier run', title: 'outputs of an earlier run' };
  }
  if (MLFLOW_RUN_ID.test(origin)) {
    return {
      note: `from MLflow run ${origin.slice(0, 8)}`,
      title: `outputs of MLflow run ${origin}`
    };
  }
  return { note: `from run ${origin}`, title: `outputs of run ${origin}` };
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

/**
 * The heading a failure needs above its message: none when the message names the stage
 * that failed already (`stage \`check\` failed in cell 5…`: said once, not twice), else the
 * stage, or the run when no stage failed.
 */
export function failureHeading(failure: Failure): 'stage' | 'run' | null {
  if (failure.stage === null) {
    return 'run';
  }
  return failure.error.message.startsWith(`stage \`${failure.stage}\` `) ? null : 'stage';
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
