/**
 * The state of each open Runs panel, by notebook path: the notebook's runs, the run opened
 * (with its logs), the runs ticked for the comparison, and the actions under way.
 *
 * The list is polled while one of its runs is queued or running (or the opened one is), so
 * that statuses, durations and a re-run's progress show up by themselves. The requests are
 * injected (`RunsApi`), so the flows run in tests against a fake server.
 */
import type { Run, StartRunRequest } from './api';
import { errorMessage, isUnavailable } from './errors';
import { isGone, PolledStates, type PolledStatesOptions } from './polling';
import { canCancel, canRerun, isLive, newestFirst, toggleChecked } from './runHistory';

export interface RunsApi {
  listRuns(path: string): Promise<Run[]>;
  getRun(id: string): Promise<Run>;
  startRun(request: StartRunRequest): Promise<Run>;
  cancelRun(id: string): Promise<Run>;
}

/** What is being done to a run at the user's request. */
export type RunAction = 'rerun' | 'cancel';

export interface RunsState {
  /** the first listing has answered (until then the panel says it is loading) */
  loaded: boolean;
  /** the notebook's runs, newest first */
  runs: Run[];
  /** why the latest listing failed; the runs listed before stay shown */
  error: string | null;
  /** the server extension is missing: no request can succeed */
  unavailable: boolean;
  /** why the latest re-run or cancel failed, until dismissed */
  notice: string | null;
  /** the run opened (its row clicked) */
  openId: string | null;
  /** the opened run with its logs, once it has been fetched */
  detail: Run | null;
  detailError: string | null;
  /** the runs ticked for the comparison, in the order they were ticked (at most two) */
  checked: string[];
  /** the actions under way, by run id */
  pending: Record<string, RunAction>;
}

export const EMPTY: RunsState = {
  loaded: false,
  runs: [],
  error: null,
  unavailable: false,
  notice: null,
  openId: null,
  detail: null,
  detailError: null,
  checked: [],
  pending: {}
};

export interface RunsModelOptions extends PolledStatesOptions<RunsApi> {
  /** `jobs` of a re-run (the user's setting); undefined: the server decides */
  jobs?: () => number | undefined;
}

/** Each open Runs panel's state, keyed by the notebook's path. */
export class RunsModel extends PolledStates<RunsState, RunsApi> {
  constructor(options: RunsModelOptions) {
    super(EMPTY, { pollInterval: 2000, ...options });
    this._jobs = options.jobs ?? (() => undefined);
  }

  /** Start showing a notebook's runs (a panel opened): list them now. */
  async open(path: string): Promise<void> {
    this._followed.add(path);
    await this.refresh(path);
  }

  /** A panel closed: its notebook's runs are no longer listed or polled. */
  forget(path: string): void {
    this._followed.delete(path);
    this._sequence.delete(path);
    super.forget(path);
  }

  /** Whether a panel shows the notebook's runs. */
  follows(path: string): boolean {
    return this._followed.has(path);
  }

  /** List the runs again (and the opened run, with its logs). */
  async refresh(path: string): Promise<void> {
    await this._load(path);
    this._schedulePoll(path);
  }

  /**
   * A run of the notebook was seen elsewhere (the sidebar's Productionize): list again when
   * it is one the panel does not show yet, or shows with another status.
   */
  notice(run: Run): void {
    const path = run.path;
    if (path === null || !this.follows(path)) {
      return;
    }
    const shown = this.get(path).runs.find(other => other.id === run.id);
    if (!shown || shown.status !== run.status) {
      void this.refresh(path);
    }
  }

  /** Open a run (or close it when it is the one open), and fetch it with its logs. */
  async select(path: string, id: string | null): Promise<void> {
    const state = this.get(path);
    const openId = id === state.openId ? null : id;
    this._update(path, { openId, detail: null, detailError: null });
    if (openId !== null) {
      await this._loadDetail(path, openId);
      this._schedulePoll(path);
    }
  }

  /** Tick or untick a run for the comparison (two at most: the earliest ticked makes room). */
  toggleChecked(path: string, id: string): void {
    this._update(path, { checked: toggleChecked(this.get(path).checked, id) });
  }

  /** Start the run again with its parameters; the new run is listed at the top. */
  async rerun(path: string, id: string): Promise<Run | null> {
    const run = this.get(path).runs.find(other => other.id === id);
    if (!run || !canRerun(run) || this.get(path).pending[id]) {
      return null;
    }
    this._pending(path, id, 'rerun');
    try {
      const started = await this._api.startRun({
        path: run.path ?? path,
        parameters: run.parameters,
        jobs: this._jobs()
      });
      this._bump(path); // a listing asked for before the start would not have it
      this._pending(path, id, null);
      const state = this.get(path);
      this._update(path, {
        runs: newestFirst([started, ...state.runs.filter(other => other.id !== started.id)]),
        notice: null
      });
      this._schedulePoll(path);
      return started;
    } catch (error) {
      this._pending(path, id, null);
      this._update(path, { notice: `Could not re-run ${id}: ${errorMessage(error)}` });
      return null;
    }
  }

  /** Ask the server to cancel a queued or running run; polls report when it has stopped. */
  async cancel(path: string, id: string): Promise<void> {
    const run = this.get(path).runs.find(other => other.id === id);
    if (!run || !canCancel(run) || this.get(path).pending[id]) {
      return;
    }
    this._pending(path, id, 'cancel');
    try {
      const answer = await this._api.cancelRun(id);
      this._bump(path);
      this._pending(path, id, null);
      this._replace(path, answer);
      this._schedulePoll(path);
    } catch (error) {
      this._pending(path, id, null);
      this._update(path, { notice: `Could not cancel ${id}: ${errorMessage(error)}` });
      await this.refresh(path); // it may have ended meanwhile: show how
    }
  }

  /** Hide the latest action's failure. */
  dismiss(path: string): void {
    this._update(path, { notice: null });
  }

  // --- polling ------------------------------------------------------------------------------

  protected _polledId(state: RunsState): string | null {
    const live = state.runs.some(isLive) || (state.detail !== null && isLive(state.detail));
    return live ? 'live' : null;
  }

  protected async _pollOnce(key: string): Promise<void> {
    await this._load(key);
  }

  // --- requests -----------------------------------------------------------------------------

  /**
   * List the runs, and fetch the opened one again when it may have changed. An answer to a
   * request made before a newer one (or before a re-run or cancel changed the list) is
   * dropped: it could undo what the newer one showed.
   */
  private async _load(path: string): Promise<void> {
    if (!this.follows(path)) {
      return;
    }
    const sequence = this._bump(path);
    let runs: Run[];
    try {
      runs = newestFirst(await this._api.listRuns(path));
    } catch (error) {
      if (this._sequence.get(path) === sequence) {
        this._update(path, {
          loaded: true,
          error: `Could not list the runs: ${errorMessage(error)}`,
          unavailable: isUnavailable(error)
        });
      }
      return;
    }
    if (this._sequence.get(path) !== sequence) {
      return;
    }
    const state = this.get(path);
    const ids = new Set(runs.map(run => run.id));
    this._update(path, {
      loaded: true,
      runs,
      error: null,
      unavailable: false,
      checked: state.checked.filter(id => ids.has(id))
    });
    const { openId, detail } = this.get(path);
    if (openId === null) {
      return;
    }
    const listed = runs.find(run => run.id === openId);
    if (detail === null || isLive(detail) || (listed && listed.status !== detail.status)) {
      await this._loadDetail(path, openId);
    }
  }

  private async _loadDetail(path: string, id: string): Promise<void> {
    try {
      const run = await this._api.getRun(id);
      if (this.get(path).openId === id) {
        this._update(path, { detail: run, detailError: null });
      }
    } catch (error) {
      if (this.get(path).openId === id) {
        const message = isGone(error)
          ? `The server no longer knows run ${id}.`
          : `Could not get run ${id}: ${errorMessage(error)}`;
        this._update(path, { detailError: message });
      }
    }
  }

  // --- state --------------------------------------------------------------------------------

  private _bump(path: string): number {
    const next = (this._sequence.get(path) ?? 0) + 1;
    this._sequence.set(path, next);
    return next;
  }

  /** A run's new snapshot, in the list and (when it is the opened one) as the detail. */
  private _replace(path: string, run: Run): void {
    const state = this.get(path);
    this._update(path, {
      runs: state.runs.map(other => (other.id === run.id ? run : other)),
      detail: state.detail?.id === run.id ? run : state.detail
    });
  }

  private _pending(path: string, id: string, action: RunAction | null): void {
    const pending = { ...this.get(path).pending };
    if (action === null) {
      delete pending[id];
    } else {
      pending[id] = action;
    }
    this._update(path, { pending });
  }

  /** Change a followed notebook's state; a closed panel's state is not kept. */
  private _update(path: string, change: Partial<RunsState>): void {
    if (this.follows(path)) {
      this._set(path, { ...this.get(path), ...change });
    }
  }

  private _jobs: () => number | undefined;
  private _followed = new Set<string>();
  private _sequence = new Map<string, number>();
}
