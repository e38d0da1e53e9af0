/**
 * Productionize for each open notebook: save, check, start a run, follow it to its end.
 *
 * The requests are injected (`RunApi`), so the flow runs in tests against a fake server;
 * all state changes go through the `progress.ts` reducer.
 */
import type { Analysis, AnalyzeRequest, Run, StartRunRequest } from './api';
import { errorMessage } from './errors';
import { isGone, PolledStates, type PolledStatesOptions } from './polling';
import {
  IDLE,
  isActive,
  isCancellable,
  isPolling,
  type ProgressAction,
  type ProgressState,
  reduce
} from './progress';

export interface RunApi {
  analyze(request: AnalyzeRequest): Promise<Analysis>;
  startRun(request: StartRunRequest): Promise<Run>;
  getRun(id: string): Promise<Run>;
  cancelRun(id: string): Promise<Run>;
  listRuns(path: string): Promise<Run[]>;
}

export interface ProductionizeOptions {
  /** the notebook's path relative to the server root */
  path: string;
  /** saves the notebook, so that the run sees what the user sees */
  save: () => Promise<void>;
  parameters: Record<string, unknown>;
  jobs?: number;
}

export type RunManagerOptions = PolledStatesOptions<RunApi>;

/** Each notebook's Productionize progress; a started run is polled until it ends. */
export class RunManager extends PolledStates<ProgressState, RunApi> {
  constructor(options: RunManagerOptions) {
    super(IDLE, options);
  }

  /**
   * Save, check, start and follow a run. Resolves once the run has started (or the flow
   * stopped before that) with the state then; polling goes on in the background.
   */
  async productionize(key: string, options: ProductionizeOptions): Promise<ProgressState> {
    if (isActive(this.get(key))) {
      return this.get(key);
    }
    const { path } = options;
    this._dispatch(key, { type: 'save' });
    const saved = await this._step(
      key,
      () => options.save().then(() => true),
      'Saving the notebook failed'
    );
    if (!saved) {
      return this.get(key);
    }
    this._dispatch(key, { type: 'check' });
    const analysis = await this._step(key, () => this._api.analyze({ path }), 'The check failed');
    if (!analysis) {
      return this.get(key);
    }
    const problems = analysis.diagnostics.filter(d => d.severity === 'error');
    if (!analysis.ok || problems.length > 0) {
      this._dispatch(key, { type: 'blocked', problems });
      return this.get(key);
    }
    this._dispatch(key, { type: 'start' });
    const run = await this._step(
      key,
      () => this._api.startRun({ path, parameters: options.parameters, jobs: options.jobs }),
      'The run could not start'
    );
    if (run) {
      this._follow(key, { type: 'run', run });
    }
    return this.get(key);
  }

  /** Ask the server to cancel the followed run; the polls report when it has stopped. */
  async cancel(key: string): Promise<void> {
    const run = this.get(key).run;
    if (!run || !isCancellable(this.get(key))) {
      return;
    }
    this._dispatch(key, { type: 'cancel' });
    try {
      this._dispatch(key, { type: 'run', run: await this._api.cancelRun(run.id) });
    } catch (error) {
      this._dispatch(key, { type: 'cancel-failed', message: errorMessage(error) });
    }
  }

  /**
   * Show the notebook's latest run when nothing is shown yet (after a page reload, say),
   * and follow it if it is still running. A server without runs or without the extension
   * just leaves the panel empty.
   */
  async resume(key: string, path: string): Promise<void> {
    if (this.get(key).phase !== 'idle') {
      return;
    }
    let runs: Run[];
    try {
      runs = await this._api.listRuns(path);
    } catch {
      return;
    }
    if (runs.length > 0 && !this.isDisposed) {
      this._follow(key, { type: 'resume', run: runs[0] });
    }
  }

  /** Run one step of the flow; a failure ends the flow with `message: reason`. */
  private async _step<T>(key: string, step: () => Promise<T>, message: string): Promise<T | null> {
    try {
      return await step();
    } catch (error) {
      this._dispatch(key, { type: 'fail', message: `${message}: ${errorMessage(error)}` });
      return null;
    }
  }

  private _follow(key: string, action: ProgressAction): void {
    this._dispatch(key, action);
    this._schedulePoll(key);
  }

  protected _polledId(state: ProgressState): string | null {
    return isPolling(state) && state.run ? state.run.id : null;
  }

  protected async _pollOnce(key: string, id: string): Promise<void> {
    try {
      this._dispatch(key, { type: 'run', run: await this._api.getRun(id) });
    } catch (error) {
      // A run the server does not know will not come back: following it ends.
      this._dispatch(key, {
        type: isGone(error) ? 'fail' : 'warning',
        message: `Could not get the run's progress: ${errorMessage(error)}`
      });
    }
  }

  /** Every change goes through the reducer; one that changes nothing is not announced. */
  private _dispatch(key: string, action: ProgressAction): void {
    const state = this.get(key);
    const next = reduce(state, action);
    if (next !== state) {
      this._set(key, next);
    }
  }
}
