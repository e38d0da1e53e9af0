/**
 * The latest analysis of each open notebook.
 *
 * Edits schedule an analysis after a quiet delay (debounce), so typing costs one request
 * per pause, not one per key. Responses can come back out of order; only the answer to
 * the latest request of a notebook is kept. A failed request keeps the last good analysis
 * on screen and adds the error, so a notebook that is briefly broken doesn't blank the
 * sidebar.
 */
import type { IDisposable } from '@lumino/disposable';
import { type ISignal, Signal } from '@lumino/signaling';

import type { Analysis, AnalyzeRequest } from './api';
import { errorMessage, isUnavailable } from './errors';

/** What is sent for one analysis, and the ids of the cells it was taken from. */
export interface Snapshot {
  request: AnalyzeRequest;
  /**
   * The id of each cell of the request's notebook, by index: the analysis speaks of cell
   * indexes, which the ids map back to cells after the user moved or added some.
   */
  cellIds: string[];
}

export interface AnalysisState {
  analysis: Analysis | null;
  /** the cell ids of the snapshot `analysis` came from */
  cellIds: string[];
  pending: boolean;
  error: string | null;
  /** the server extension is missing: no analysis can succeed */
  unavailable: boolean;
}

export const EMPTY: AnalysisState = {
  analysis: null,
  cellIds: [],
  pending: false,
  error: null,
  unavailable: false
};

export interface AnalysisModelOptions {
  analyze: (request: AnalyzeRequest) => Promise<Analysis>;
  /** quiet time in milliseconds between the last edit and the request */
  delay: number;
}

interface Entry {
  state: AnalysisState;
  /** number of the latest request; answers to older ones are stale */
  latest: number;
  timer: ReturnType<typeof setTimeout> | null;
}

export class AnalysisModel implements IDisposable {
  constructor(options: AnalysisModelOptions) {
    this._analyze = options.analyze;
    this.delay = options.delay;
  }

  /** quiet time in milliseconds before a scheduled analysis is sent */
  delay: number;

  /** Emits the key of the notebook whose state changed. */
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get(key: string): AnalysisState {
    return this._entries.get(key)?.state ?? EMPTY;
  }

  /**
   * Analyze the notebook once it has been quiet for `delay` ms. `take` is called when the
   * time comes, so the request carries the notebook as it is then.
   */
  schedule(key: string, take: () => Snapshot): void {
    if (this._disposed) {
      return;
    }
    const entry = this._entry(key);
    this._clearTimer(entry);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this._run(key, take());
    }, this.delay);
  }

  /** Analyze now (dropping a scheduled analysis) and resolve with the resulting state. */
  async refresh(key: string, take: () => Snapshot): Promise<AnalysisState> {
    if (this._disposed) {
      return EMPTY;
    }
    this._clearTimer(this._entry(key));
    await this._run(key, take());
    return this.get(key);
  }

  /** Drop a notebook (it was closed): pending answers for it are ignored. */
  forget(key: string): void {
    const entry = this._entries.get(key);
    if (entry) {
      this._clearTimer(entry);
      this._entries.delete(key);
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    for (const key of [...this._entries.keys()]) {
      this.forget(key);
    }
    Signal.clearData(this);
  }

  private async _run(key: string, snapshot: Snapshot): Promise<void> {
    const entry = this._entry(key);
    const number = ++entry.latest;
    this._update(key, entry, { pending: true });
    let next: Partial<AnalysisState>;
    try {
      const analysis = await this._analyze(snapshot.request);
      next = { analysis, cellIds: snapshot.cellIds, error: null, unavailable: false };
    } catch (error) {
      next = { error: errorMessage(error), unavailable: isUnavailable(error) };
    }
    if (this._entries.get(key) === entry && entry.latest === number) {
      this._update(key, entry, { ...next, pending: false });
    }
  }

  private _entry(key: string): Entry {
    let entry = this._entries.get(key);
    if (!entry) {
      entry = { state: EMPTY, latest: 0, timer: null };
      this._entries.set(key, entry);
    }
    return entry;
  }

  private _update(key: string, entry: Entry, change: Partial<AnalysisState>): void {
    entry.state = { ...entry.state, ...change };
    this._changed.emit(key);
  }

  private _clearTimer(entry: Entry): void {
    if (entry.timer !== null) {
      clearTimeout(entry.timer);
      entry.timer = null;
    }
  }

  private _analyze: (request: AnalyzeRequest) => Promise<Analysis>;
  private _disposed = false;
  private _entries = new Map<string, Entry>();
  private _changed = new Signal<this, string>(this);
}
