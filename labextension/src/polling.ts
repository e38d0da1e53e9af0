/**
 * Per-notebook state that follows something running on the server by polling it: the
 * common ground of Productionize (`runs.ts`) and Verify (`verify.ts`).
 *
 * Both keep one state per open notebook, tell the UI which notebook changed, and poll the
 * server until what they follow ends; only the requests and how an answer changes the state
 * differ, so those are all a manager has to say.
 */
import type { IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import { ApiError } from './errors';

/**
 * Whether a failed poll means the server does not know the thing followed (404): it will not
 * come back, so following it ends; any other failure may pass, so polling goes on.
 */
export function isGone(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

export interface PolledStatesOptions<Api> {
  /** the server's requests, injected so that the flows run in tests against a fake server */
  api: Api;
  /** milliseconds between the end of one poll and the next one */
  pollInterval?: number;
}

export abstract class PolledStates<State, Api> implements IDisposable {
  /**
   * @param idle - the state of a notebook nothing has happened to (or that was forgotten)
   */
  constructor(idle: State, options: PolledStatesOptions<Api>) {
    this._idle = idle;
    this._api = options.api;
    this._pollInterval = options.pollInterval ?? 1000;
  }

  /** Emits the key of the notebook whose state changed. */
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get(key: string): State {
    return this._states.get(key) ?? this._idle;
  }

  /** Stop following a notebook (its panel closed); what runs on the server goes on. */
  forget(key: string): void {
    this._stopPolling(key);
    this._states.delete(key);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    for (const key of [...this._timers.keys()]) {
      this._stopPolling(key);
    }
    this._states.clear();
    Signal.clearData(this);
  }

  /**
   * The id of what `state` follows while it still needs polling, or null when there is
   * nothing (more) to ask the server about.
   */
  protected abstract _polledId(state: State): string | null;

  /**
   * Ask the server once about `id` and apply the answer to the notebook's state; a failed
   * request must be caught here too, since nobody awaits the poll. The next poll is planned
   * afterwards, only while the state still follows that same `id`: an answer about a
   * forgotten or replaced one must not start polling again.
   */
  protected abstract _pollOnce(key: string, id: string): Promise<void>;

  /** Poll the notebook's state after the interval, if it follows something; once at a time. */
  protected _schedulePoll(key: string): void {
    this._stopPolling(key);
    const id = this._polledId(this.get(key));
    if (this._disposed || id === null) {
      return;
    }
    this._timers.set(
      key,
      setTimeout(() => {
        this._timers.delete(key);
        void this._poll(key, id);
      }, this._pollInterval)
    );
  }

  /** Replace the notebook's state and say so; a disposed manager no longer changes. */
  protected _set(key: string, state: State): void {
    if (this._disposed) {
      return;
    }
    this._states.set(key, state);
    this._changed.emit(key);
  }

  private async _poll(key: string, id: string): Promise<void> {
    await this._pollOnce(key, id);
    if (this._polledId(this.get(key)) === id) {
      this._schedulePoll(key);
    }
  }

  private _stopPolling(key: string): void {
    const timer = this._timers.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      this._timers.delete(key);
    }
  }

  protected readonly _api: Api;
  private _idle: State;
  private _pollInterval: number;
  private _disposed = false;
  private _states = new Map<string, State>();
  private _timers = new Map<string, ReturnType<typeof setTimeout>>();
  private _changed = new Signal<this, string>(this);
}
