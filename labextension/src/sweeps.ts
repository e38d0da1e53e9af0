/**
 * Sweep for each open notebook: the form (the values to try for each parameter, random
 * draws, the metric), starting `jupyter-mlops sweep` on the server, following its trials,
 * stopping and resuming it, and the table of trials the sidebar shows.
 *
 * The values are typed as on the command line (`100,200,400`; with random draws also a range
 * `0.001:0.1:log`) and sent as that text: the server checks them with the command's own code
 * and refuses a bad request with a message naming the parameter. The form checks what it can
 * first (a word where a number goes, a range without random draws) so that a typo shows at the
 * field, and counts the trials a grid would run. The requests are injected (`SweepApi`), so
 * the flow runs in tests against a fake server, like Productionize's (`runs.ts`).
 */
import type { Parameter, Sweep, SweepRequest, SweepStatus, TrialStatus } from './api';
import { errorMessage } from './errors';
import { isGone, PolledStates, type PolledStatesOptions } from './polling';

export interface SweepApi {
  startSweep(request: SweepRequest): Promise<Sweep>;
  getSweep(id: string): Promise<Sweep>;
  listSweeps(path: string): Promise<Sweep[]>;
  stopSweep(id: string): Promise<Sweep>;
  resumeSweep(id: string): Promise<Sweep>;
}

/** Which way the metric is better; `auto`: as its name says (accuracy higher, loss lower). */
export type Direction = 'auto' | 'max' | 'min';

export interface SweepForm {
  /** the section is expanded */
  open: boolean;
  /** parameter -> the values to try, as typed; empty: its default in every trial */
  values: Readonly<Record<string, string>>;
  /** how many random draws; empty: every combination (a grid) */
  random: string;
  seed: string;
  /** the metric that picks the best trial; empty: the only one the notebook logs */
  metric: string;
  direction: Direction;
}

export interface SweepState {
  form: SweepForm;
  /** the sweep shown: the one started last, or the notebook's newest */
  sweep: Sweep | null;
  /** a request in flight (start, stop, resume): its button waits */
  busy: boolean;
  /** why the last request failed (the server's 400 message), shown by the form */
  error: string | null;
  /** a passing problem while following the sweep (a failed poll) */
  warning: string | null;
}

export const EMPTY_FORM: SweepForm = {
  open: false,
  values: {},
  random: '',
  seed: '',
  metric: '',
  direction: 'auto'
};

export const SWEEP_IDLE: SweepState = {
  form: EMPTY_FORM,
  sweep: null,
  busy: false,
  error: null,
  warning: null
};

const ACTIVE: ReadonlySet<SweepStatus> = new Set(['queued', 'running']);

/** Whether a sweep still runs (or waits for a slot): polled, and it can be stopped. */
export function isSweeping(sweep: Sweep | null): boolean {
  return sweep !== null && ACTIVE.has(sweep.status);
}

// --- the values typed ---------------------------------------------------------------------

/** What one field's text says: how many values (null: a range, drawn from), or what's wrong. */
export type ParsedValues = { ok: true; count: number | null } | { ok: false; error: string };

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$/i;
const RANGE = /^\s*([^:]+):([^:]+)(?::(\w+))?\s*$/;

/**
 * Read a field's text as the command reads `-p NAME TEXT`: comma-separated values of the
 * parameter's type (a string's commas escaped as `\,`), a JSON/YAML list of candidates for a
 * list or dict parameter, or (with random draws) a range `LOW:HIGH[:log]` of numbers.
 * Empty text is no values at all: the parameter keeps its default.
 */
export function parseValues(parameter: Parameter, text: string, drawn: boolean): ParsedValues {
  const trimmed = text.trim();
  if (trimmed === '') {
    return { ok: true, count: 0 };
  }
  switch (parameter.type) {
    case 'list':
    case 'dict':
    case 'any':
      return candidates(trimmed);
    case 'int':
    case 'float': {
      const range = RANGE.exec(trimmed);
      return range ? parseRange(parameter, range, drawn) : numbers(parameter, trimmed);
    }
    case 'str':
      return { ok: true, count: unique(splitEscaped(text)) };
    default:
      return { ok: true, count: unique(trimmed.split(',').map(part => part.trim())) };
  }
}

function numbers(parameter: Parameter, text: string): ParsedValues {
  const parts = text.split(',').map(part => part.trim());
  const pattern = parameter.type === 'int' ? INT : FLOAT;
  for (const part of parts) {
    const none = part === 'None' || part === 'null';
    if (!pattern.test(part) && !(none && parameter.optional)) {
      const kind = parameter.type === 'int' ? 'a whole number' : 'a number';
      const shown = part === '' ? 'an empty value' : `“${part}”`;
      return { ok: false, error: `${shown} is not ${kind}: list values like 100,200,400` };
    }
  }
  const values = parts.map(part => (/^(None|null)$/.test(part) ? 'None' : String(Number(part))));
  return { ok: true, count: unique(values) }; // 1 and 1.0 are one value
}

function parseRange(parameter: Parameter, range: RegExpExecArray, drawn: boolean): ParsedValues {
  if (!drawn) {
    return { ok: false, error: 'a range is drawn from: set “random draws” (or list values)' };
  }
  const [, low, high, kind] = range;
  if (kind !== undefined && kind !== 'log') {
    return { ok: false, error: 'a range is LOW:HIGH or LOW:HIGH:log' };
  }
  const pattern = parameter.type === 'int' ? INT : FLOAT;
  if (!pattern.test(low.trim()) || !pattern.test(high.trim())) {
    return { ok: false, error: `a range of ${parameter.type} values is LOW:HIGH, like 1:10` };
  }
  if (Number(low) >= Number(high)) {
    return { ok: false, error: 'a range needs LOW below HIGH' };
  }
  if (kind === 'log' && Number(low) <= 0) {
    return { ok: false, error: 'a log range needs LOW above 0' };
  }
  return { ok: true, count: null };
}

/** A list or dict parameter's candidates: one list, `[[64, 32], [128]]`. */
function candidates(text: string): ParsedValues {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: true, count: 1 }; // YAML, which the server reads: it says what's wrong
  }
  if (!Array.isArray(value) || value.length === 0) {
    return { ok: false, error: 'the candidates go in one list, like [[64, 32], [128]]' };
  }
  return { ok: true, count: unique(value.map(item => JSON.stringify(item))) };
}

/** `a\,b,c` as `a,b` and `c`, as the command splits a string parameter's values. */
export function splitEscaped(text: string): string[] {
  return text.split(/(?<!\\),/).map(part => part.replace(/\\,/g, ','));
}

function unique(values: readonly string[]): number {
  return new Set(values).size;
}

/** The request a form makes, or why it can't be sent yet. */
export interface SweepPlan {
  /** parameter -> what is wrong with its field */
  errors: Record<string, string>;
  /** what else stops the sweep: nothing swept, a bad number of draws */
  problem: string | null;
  /** how many trials: a grid's combinations, or the random draws; null when unknown */
  trials: number | null;
  /** the body of `POST sweeps`, when nothing is wrong */
  request: SweepRequest | null;
}

/**
 * What the form asks for: the request, or why it can't be sent. `metrics`: those the notebook
 * logs (the form offers them), when known.
 */
export function planSweep(
  path: string,
  parameters: readonly Parameter[],
  form: SweepForm,
  metrics?: readonly string[]
): SweepPlan {
  const errors: Record<string, string> = {};
  const values: Record<string, string> = {};
  let draws: number | null = null;
  let problem: string | null = null;
  if (form.random.trim() !== '') {
    draws = Number(form.random);
    if (!INT.test(form.random.trim()) || draws < 1) {
      problem = 'random draws: a whole number of trials, 1 or more';
    }
  }
  let grid = 1;
  let swept = false;
  for (const parameter of parameters) {
    const text = form.values[parameter.name] ?? '';
    const parsed = parseValues(parameter, text, draws !== null);
    if (!parsed.ok) {
      errors[parameter.name] = parsed.error;
    } else if (parsed.count !== 0) {
      values[parameter.name] = parameter.type === 'str' ? text : text.trim();
      swept = swept || parsed.count === null || parsed.count > 1;
      grid *= parsed.count ?? 1;
    }
  }
  if (problem === null && !swept && Object.keys(errors).length === 0) {
    problem =
      'nothing to sweep: give a parameter several values, like 100,200,400' +
      (draws !== null ? ', or a range, like 0.001:0.1:log' : '');
  }
  if (problem === null && metrics !== undefined && !form.metric) {
    if (metrics.length === 0) {
      problem = 'no stage logs a metric to pick the best trial by: tag a cell “metrics”';
    } else if (metrics.length > 1) {
      problem = 'choose the metric that picks the best trial';
    }
  }
  const seed = form.seed.trim();
  if (problem === null && seed !== '' && !INT.test(seed)) {
    problem = 'seed: a whole number';
  }
  const ok = problem === null && Object.keys(errors).length === 0;
  const request: SweepRequest = { path, values };
  if (draws !== null) {
    request.random = draws;
    if (seed !== '') {
      request.seed = Number(seed);
    }
  }
  if (form.metric) {
    request.metric = form.metric;
  }
  if (form.direction !== 'auto') {
    request.maximize = form.direction === 'max';
  }
  return { errors, problem, trials: draws ?? (swept ? grid : null), request: ok ? request : null };
}

/** What the field's placeholder shows: the default every trial keeps when it is empty. */
export function defaultText(parameter: Parameter): string {
  const value = parameter.default;
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The metrics the notebook's `metrics` cells log, in stage order: what can pick the best. */
export function loggedMetrics(stages: ReadonlyArray<{ metrics: readonly string[] }>): string[] {
  return [...new Set(stages.flatMap(stage => stage.metrics))];
}

// --- the table of trials ------------------------------------------------------------------

export interface TrialRow {
  number: number;
  /** each swept parameter's value, in the sweep's column order */
  values: string[];
  /** the sweep's metric, once the trial succeeded; '' before */
  metric: string;
  status: TrialStatus;
  best: boolean;
  error: string | null;
  /** its MLflow run */
  url: string | null;
  /** stages whose outputs an earlier trial made */
  shared: string[];
}

export interface SweepTable {
  /** the swept parameters */
  columns: string[];
  metric: string;
  rows: TrialRow[];
}

/** A value as the command's table shows it: `0.001`, `None`, `[64, 32]`. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  return typeof value === 'string' ? value : pythonJSON(value);
}

/** JSON as Python's `json.dumps` writes it: `[64, 32]`, `{"a": 1}`. */
function pythonJSON(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(pythonJSON).join(', ')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pythonJSON(v)}`);
    return `{${items.join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function trialTable(sweep: Sweep): SweepTable {
  const columns = Object.keys(sweep.space);
  const rows = sweep.trials.map(trial => ({
    number: trial.number,
    values: columns.map(name => valueText(trial.parameters[name])),
    metric: trial.metric === null ? '' : metricText(trial.metric),
    status: trial.status,
    best: trial.number === sweep.best,
    error: trial.error,
    url: trial.mlflow_url,
    shared: trial.shared
  }));
  return { columns, metric: sweep.metric, rows };
}

function metricText(value: number | string): string {
  return typeof value === 'number' ? String(Number(value.toPrecision(4))) : value;
}

/** One line under the sweep's status: "2 of 3 trials done, 1 failed · best: trial 1". */
export function sweepSummary(sweep: Sweep): string {
  const count = (status: TrialStatus) => sweep.trials.filter(t => t.status === status).length;
  const done = count('succeeded') + count('failed');
  const parts = [`${done} of ${sweep.trials.length} trials done`];
  if (count('failed') > 0) {
    parts.push(`${count('failed')} failed`);
  }
  let line = parts.join(', ');
  const way = sweep.maximize ? 'highest' : 'lowest';
  if (sweep.best !== null) {
    line += ` · best: trial ${sweep.best}, ${way} ${sweep.metric}`;
  } else {
    line += ` · best by ${way} ${sweep.metric}`;
  }
  return line;
}

// --- the flow -----------------------------------------------------------------------------

export interface StartOptions {
  /** the notebook's path relative to the server root */
  path: string;
  parameters: readonly Parameter[];
  /** the metrics the notebook logs */
  metrics: readonly string[];
  /** saves the notebook, so that the sweep runs what the user sees */
  save: () => Promise<void>;
}

export type SweepManagerOptions = PolledStatesOptions<SweepApi>;

/** Each notebook's sweep form and sweep; a running sweep is polled until it ends. */
export class SweepManager extends PolledStates<SweepState, SweepApi> {
  constructor(options: SweepManagerOptions) {
    super(SWEEP_IDLE, options);
  }

  /** Change the form (a field typed in, the section opened); a shown error stays. */
  edit(key: string, change: Partial<SweepForm>): void {
    const state = this.get(key);
    this._set(key, { ...state, form: { ...state.form, ...change } });
  }

  editValue(key: string, name: string, text: string): void {
    const form = this.get(key).form;
    this.edit(key, { values: { ...form.values, [name]: text } });
  }

  /**
   * Save the notebook and start the sweep the form describes. Resolves once the server
   * answered (the sweep started, or the refusal is shown by the form).
   */
  async start(key: string, options: StartOptions): Promise<SweepState> {
    const state = this.get(key);
    const plan = planSweep(options.path, options.parameters, state.form, options.metrics);
    if (state.busy || isSweeping(state.sweep) || plan.request === null) {
      return state;
    }
    this._change(key, { busy: true, error: null, warning: null });
    try {
      await options.save();
    } catch (error) {
      this._change(key, {
        busy: false,
        error: `Saving the notebook failed: ${errorMessage(error)}`
      });
      return this.get(key);
    }
    await this._request(key, () => this._api.startSweep(plan.request as SweepRequest));
    return this.get(key);
  }

  /** Ask the server to stop the sweep shown; the polls report when it has stopped. */
  async stop(key: string): Promise<void> {
    const sweep = this.get(key).sweep;
    if (sweep && isSweeping(sweep) && !this.get(key).busy) {
      this._change(key, { busy: true, error: null });
      await this._request(key, () => this._api.stopSweep(sweep.id));
    }
  }

  /** Run the trials the stopped sweep shown had not finished. */
  async resume(key: string): Promise<void> {
    const sweep = this.get(key).sweep;
    if (sweep && sweep.status === 'stopped' && !this.get(key).busy) {
      this._change(key, { busy: true, error: null });
      await this._request(key, () => this._api.resumeSweep(sweep.id));
    }
  }

  /**
   * Show the notebook's newest sweep when none is shown yet (after a page reload, say), and
   * follow it if it still runs. A server without sweeps just leaves the table out.
   */
  async load(key: string, path: string): Promise<void> {
    if (this.get(key).sweep !== null) {
      return;
    }
    let sweeps: Sweep[];
    try {
      sweeps = await this._api.listSweeps(path);
    } catch {
      return;
    }
    if (sweeps.length > 0 && this.get(key).sweep === null && !this.isDisposed) {
      this._change(key, { sweep: sweeps[0] });
      this._schedulePoll(key);
    }
  }

  protected _polledId(state: SweepState): string | null {
    return isSweeping(state.sweep) ? (state.sweep as Sweep).id : null;
  }

  protected async _pollOnce(key: string, id: string): Promise<void> {
    try {
      const sweep = await this._api.getSweep(id);
      if (this.get(key).sweep?.id === id) {
        this._change(key, { sweep, warning: null });
      }
    } catch (error) {
      const message = `Could not get the sweep's progress: ${errorMessage(error)}`;
      const shown = this.get(key).sweep;
      if (isGone(error) && shown?.id === id) {
        // A sweep the server does not know will not come back: following it ends.
        this._change(key, { sweep: null, error: message });
      } else {
        this._change(key, { warning: message });
      }
    }
  }

  /** A request that answers with the sweep: shown and followed, or its error shown. */
  private async _request(key: string, request: () => Promise<Sweep>): Promise<void> {
    try {
      const sweep = await request();
      this._change(key, { sweep, busy: false, error: null });
      this._schedulePoll(key);
    } catch (error) {
      this._change(key, { busy: false, error: errorMessage(error) });
    }
  }

  private _change(key: string, change: Partial<SweepState>): void {
    this._set(key, { ...this.get(key), ...change });
  }
}
