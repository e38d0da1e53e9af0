/**
 * The pure logic of the Runs panel (`runsPanel.tsx`): ordering a notebook's runs, what each
 * row shows (started, duration, parameters and metrics in a compact form), which actions a
 * run allows, where its executed stage notebooks are, and the side-by-side comparison of two
 * runs. No JupyterLab import at run time, so Jest tests it in Node.
 */
import type { Run, StageRun } from './api';
import { formatDuration } from './progress';

/** Statuses of a run that the server still has to report more about. */
const LIVE: ReadonlySet<string> = new Set(['queued', 'running']);

/** Whether the run waits for a run slot or runs: the panel polls while one does. */
export function isLive(run: Pick<Run, 'status'>): boolean {
  return LIVE.has(run.status);
}

/** Newest first: by creation time, then by id (ids begin with the time they were made). */
export function newestFirst(runs: readonly Run[]): Run[] {
  return [...runs].sort(
    (a, b) => b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
  );
}

/**
 * A run's duration in seconds: from its creation to its end, or to `now` (seconds since the
 * epoch, like the server's times) while it runs; null while it is queued, and for a run that
 * ended without an end time (cancelled before it started).
 */
export function runDuration(run: Run, now: number): number | null {
  if (run.finished !== null) {
    return Math.max(0, run.finished - run.created);
  }
  if (run.status === 'running') {
    return Math.max(0, now - run.created);
  }
  return null;
}

/** A duration for a table cell: '' when there is none. */
export function durationText(seconds: number | null): string {
  return seconds === null ? '' : formatDuration(seconds);
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

/** Seconds since the epoch as the browser's local time: `2026-11-27 10:15:00`. */
export function formatStarted(seconds: number): string {
  const date = new Date(seconds * 1000);
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Longest text a value gets in a table cell before it is cut with an ellipsis. */
export const MAX_VALUE_CHARS = 40;

function cut(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/**
 * A parameter's or metric's value, compact: numbers to 4 significant digits (integers whole),
 * text as it is, anything else as JSON; cut at `MAX_VALUE_CHARS`. `exact` keeps every digit
 * and the whole text: the comparison shows why two values differ.
 */
export function formatValue(value: unknown, exact = false): string {
  let text: string;
  if (typeof value === 'number') {
    text = exact || Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  } else if (typeof value === 'string') {
    text = value;
  } else if (value === undefined) {
    text = '';
  } else {
    text = JSON.stringify(value) ?? String(value);
  }
  return exact ? text : cut(text, MAX_VALUE_CHARS);
}

/** `name=value` pairs, in the run's order. */
export function parameterPairs(run: Pick<Run, 'parameters'>): string[] {
  return Object.entries(run.parameters).map(([name, value]) => `${name}=${formatValue(value)}`);
}

/** One metric a stage of a run logged. */
export interface MetricEntry {
  /** identifies the metric across runs: the stage and the name */
  key: string;
  stage: string;
  name: string;
  value: number;
  /** the name, or `stage/name` when two stages of the run log the same name */
  label: string;
}

/** Every stage's metrics, in stage order. */
export function runMetrics(run: Pick<Run, 'stages'>): MetricEntry[] {
  const entries = run.stages.flatMap(stage =>
    Object.entries(stage.metrics).map(([name, value]) => ({
      key: JSON.stringify([stage.name, name]),
      stage: stage.name,
      name,
      value,
      label: name
    }))
  );
  const counts = new Map<string, number>();
  for (const entry of entries) {
    counts.set(entry.name, (counts.get(entry.name) ?? 0) + 1);
  }
  return entries.map(entry =>
    (counts.get(entry.name) ?? 0) > 1 ? { ...entry, label: `${entry.stage}/${entry.name}` } : entry
  );
}

/** `name=value` pairs of every stage's metrics, in stage order. */
export function metricPairs(run: Pick<Run, 'stages'>): string[] {
  return runMetrics(run).map(metric => `${metric.label}=${formatValue(metric.value)}`);
}

// --- actions --------------------------------------------------------------------------------

/**
 * Whether the run can be started again with its parameters: its notebook is known and its
 * runner has written its state (which lists its stages and resolved parameters; before that
 * the server knows neither).
 */
export function canRerun(run: Run): boolean {
  return run.path !== null && run.stages.length > 0;
}

/** Whether the run can be cancelled (it waits in the queue or runs). */
export function canCancel(run: Run): boolean {
  return isLive(run);
}

/**
 * The executed stage notebook as a path JupyterLab opens (relative to the server root), or
 * null when the stage has not started or the run folder is outside the server root.
 */
export function stageNotebookPath(run: Pick<Run, 'folder'>, stage: StageRun): string | null {
  if (!run.folder || !executed(stage)) {
    return null;
  }
  return `${run.folder.replace(/\/+$/, '')}/${stage.notebook}`;
}

/**
 * The executed stage notebook's absolute path on the server's machine when its run folder
 * is outside the server root (a project whose top level is above it), which JupyterLab
 * can't open: shown as text instead; null otherwise.
 */
export function stageNotebookFile(
  run: Pick<Run, 'folder' | 'run_dir'>,
  stage: StageRun
): string | null {
  if (run.folder || !run.run_dir || !executed(stage)) {
    return null;
  }
  return `${run.run_dir.replace(/\/+$/, '')}/${stage.notebook}`;
}

function executed(stage: StageRun): boolean {
  return !!stage.notebook && stage.status !== 'queued' && stage.status !== 'skipped';
}

/**
 * Tick or untick a run for the comparison: at most `limit` stay ticked, the earliest ticked
 * one making room for a new one.
 */
export function toggleChecked(checked: readonly string[], id: string, limit = 2): string[] {
  if (checked.includes(id)) {
    return checked.filter(other => other !== id);
  }
  return [...checked, id].slice(-limit);
}

// --- the comparison -------------------------------------------------------------------------

/** Whether two JSON values are equal (objects whatever the order of their keys). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return Number.isNaN(a) && Number.isNaN(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((item, index) => sameValue(item, b[index]))
    );
  }
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null) {
    const left = a as Record<string, unknown>;
    const right = b as Record<string, unknown>;
    const keys = Object.keys(left);
    return (
      keys.length === Object.keys(right).length &&
      keys.every(key => Object.prototype.hasOwnProperty.call(right, key)) &&
      keys.every(key => sameValue(left[key], right[key]))
    );
  }
  return false;
}

/** One row of the comparison: a parameter or a metric, in both runs. */
export interface ComparisonRow {
  key: string;
  /** the parameter's or metric's name */
  name: string;
  /** the stage that logged a metric; null for a parameter */
  stage: string | null;
  /** the values as shown; null where the run has none */
  left: string | null;
  right: string | null;
  differs: boolean;
}

export interface Comparison {
  /** the older run, in the left column */
  left: Run;
  right: Run;
  parameters: ComparisonRow[];
  metrics: ComparisonRow[];
}

interface Valued {
  key: string;
  name: string;
  stage: string | null;
  value: unknown;
}

function rows(left: Valued[], right: Valued[]): ComparisonRow[] {
  const byKey = new Map(right.map(item => [item.key, item]));
  const result: ComparisonRow[] = left.map(item => {
    const other = byKey.get(item.key);
    byKey.delete(item.key);
    return {
      key: item.key,
      name: item.name,
      stage: item.stage,
      left: formatValue(item.value, true),
      right: other ? formatValue(other.value, true) : null,
      differs: !other || !sameValue(item.value, other.value)
    };
  });
  for (const item of byKey.values()) {
    result.push({
      key: item.key,
      name: item.name,
      stage: item.stage,
      left: null,
      right: formatValue(item.value, true),
      differs: true
    });
  }
  return result;
}

function parameterValues(run: Run): Valued[] {
  return Object.entries(run.parameters).map(([name, value]) => ({
    key: name,
    name,
    stage: null,
    value
  }));
}

function metricValues(run: Run): Valued[] {
  return runMetrics(run).map(metric => ({
    key: metric.key,
    name: metric.name,
    stage: metric.stage,
    value: metric.value
  }));
}

/**
 * Two runs side by side, the older on the left: every parameter and every stage's metric
 * of either run, in the left run's order then the ones only the right run has, each marked
 * when the values differ (or one run has none).
 */
export function compareRuns(a: Run, b: Run): Comparison {
  const [left, right] = newestFirst([a, b]).reverse();
  return {
    left,
    right,
    parameters: rows(parameterValues(left), parameterValues(right)),
    metrics: rows(metricValues(left), metricValues(right))
  };
}

/** The ticked runs to compare, once exactly two of the listed runs are ticked. */
export function comparedRuns(runs: readonly Run[], checked: readonly string[]): [Run, Run] | null {
  const ticked = runs.filter(run => checked.includes(run.id));
  return ticked.length === 2 ? [ticked[0], ticked[1]] : null;
}
