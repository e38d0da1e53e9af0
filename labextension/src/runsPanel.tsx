/**
 * The Runs panel: a notebook's past runs in JupyterLab's main area, as jupyter-scheduler
 * lists its jobs. A table of the runs (newest first); a run opened shows its stages, logs,
 * MLflow links and executed stage notebooks; a run can be re-run with its parameters or
 * cancelled; two ticked runs are compared side by side.
 *
 * The widget is thin: the state is `RunsModel`'s, what a row or the comparison shows is
 * `runHistory.ts`'s.
 */
import { PathExt } from '@jupyterlab/coreutils';
import { ReactWidget, refreshIcon } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import type { Run, RunStatus } from './api';
import { pipelineIcon } from './icons';
import { stageColor } from './palette';
import { failureOf, formatDuration, stageProgress } from './progress';
import {
  canCancel,
  canRerun,
  type Comparison,
  compareRuns,
  comparedRuns,
  type ComparisonRow,
  durationText,
  formatStarted,
  formatValue,
  isLive,
  metricPairs,
  parameterPairs,
  runDuration,
  stageNotebookFile,
  stageNotebookPath
} from './runHistory';
import type { RunAction, RunsModel, RunsState } from './runsModel';

/** The command that opens a document in JupyterLab (an executed stage notebook). */
const OPEN_DOCUMENT = 'docmanager:open';

export interface RunsPanelOptions {
  /** the notebook, relative to the server root */
  path: string;
  model: RunsModel;
  commands: CommandRegistry;
}

let panels = 0;

/** Lumino's message type, named without a dependency on @lumino/messaging. */
type Message = Parameters<ReactWidget['processMessage']>[0];

export class RunsPanel extends ReactWidget {
  constructor(options: RunsPanelOptions) {
    super();
    this.path = options.path;
    this._model = options.model;
    this._commands = options.commands;
    this.id = `jupyter-mlops-runs-${++panels}`;
    this.addClass('jp-mlops-runs-panel');
    this.node.dataset.path = this.path;
    this.title.label = `Runs: ${PathExt.basename(this.path)}`;
    this.title.caption = `Pipeline runs of ${this.path}`;
    this.title.icon = pipelineIcon;
    this.title.closable = true;
    this._model.changed.connect(this._onChanged, this);
    void this._model.open(this.path);
  }

  /** The notebook whose runs are shown. */
  readonly path: string;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._onChanged, this);
    this._model.forget(this.path);
    super.dispose();
  }

  /** Back in view (its tab chosen again): runs may have started elsewhere meanwhile. */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._model.get(this.path).loaded) {
      void this._model.refresh(this.path);
    }
  }

  protected render(): React.ReactElement {
    const { path } = this;
    const model = this._model;
    return (
      <RunsView
        path={path}
        state={model.get(path)}
        now={Date.now() / 1000}
        actions={{
          refresh: () => void model.refresh(path),
          select: id => void model.select(path, id),
          toggle: id => model.toggleChecked(path, id),
          rerun: id => void model.rerun(path, id),
          cancel: id => void model.cancel(path, id),
          dismiss: () => model.dismiss(path),
          openNotebook: notebook => void this._commands.execute(OPEN_DOCUMENT, { path: notebook })
        }}
      />
    );
  }

  private _onChanged(_: RunsModel, path: string): void {
    if (path === this.path) {
      this.update();
    }
  }

  private _model: RunsModel;
  private _commands: CommandRegistry;
}

export interface RunsActions {
  refresh: () => void;
  /** open a run, or close it when it is the open one */
  select: (id: string) => void;
  /** tick or untick a run for the comparison */
  toggle: (id: string) => void;
  rerun: (id: string) => void;
  cancel: (id: string) => void;
  dismiss: () => void;
  /** open an executed stage notebook (a path relative to the server root) */
  openNotebook: (path: string) => void;
}

export function RunsView(props: {
  path: string;
  state: RunsState;
  /** seconds since the epoch, for the durations of what runs */
  now: number;
  actions: RunsActions;
}): React.ReactElement {
  const { path, state, now, actions } = props;
  const compared = comparedRuns(state.runs, state.checked);
  const live = state.runs.some(isLive);
  return (
    <div className="jp-mlops-runs-body">
      <header className="jp-mlops-runs-header">
        <h2 className="jp-mlops-runs-title">
          Runs of <code title={path}>{PathExt.basename(path)}</code>
        </h2>
        {live && (
          <span className="jp-mlops-runs-live" data-testid="mlops-runs-live">
            updating while a run is on its way
          </span>
        )}
        <button
          type="button"
          className="jp-mlops-icon-button"
          data-testid="mlops-runs-refresh"
          title="List the runs again"
          onClick={actions.refresh}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      {state.error && (
        <div className="jp-mlops-banner jp-mod-error" data-testid="mlops-runs-error">
          {state.unavailable
            ? 'The jupyter-mlops server extension is not available, so no run can be listed. ' +
              'Check that `jupyter server extension list` shows jupyter_mlops enabled, then ' +
              'restart Jupyter.'
            : state.error}
        </div>
      )}
      {state.notice && (
        <div
          className="jp-mlops-banner jp-mod-error jp-mlops-runs-notice"
          data-testid="mlops-runs-notice"
        >
          <span>{state.notice}</span>
          <button
            type="button"
            className="jp-mlops-icon-button"
            title="Dismiss"
            onClick={actions.dismiss}
          >
            ×
          </button>
        </div>
      )}
      {!state.loaded && <p className="jp-mlops-empty">Loading the runs…</p>}
      {state.loaded && state.runs.length === 0 && !state.error && (
        <div className="jp-mlops-runs-empty" data-testid="mlops-runs-empty">
          <p>No runs of this notebook yet.</p>
          <p className="jp-mlops-empty">
            Productionize it from the ML pipeline sidebar: every run is listed here.
          </p>
        </div>
      )}
      {state.runs.length > 0 && <RunTable state={state} now={now} actions={actions} />}
      {state.checked.length === 1 && state.runs.length > 1 && (
        <p className="jp-mlops-empty" data-testid="mlops-runs-compare-hint">
          Tick a second run to compare the two.
        </p>
      )}
      {compared && <ComparisonView comparison={compareRuns(...compared)} />}
      {state.openId && (
        <RunDetail
          id={state.openId}
          run={state.detail}
          error={state.detailError}
          now={now}
          actions={actions}
        />
      )}
    </div>
  );
}

// --- the table ------------------------------------------------------------------------------

function RunTable(props: {
  state: RunsState;
  now: number;
  actions: RunsActions;
}): React.ReactElement {
  const { state, now, actions } = props;
  return (
    <table className="jp-mlops-runs-table" data-testid="mlops-runs-table">
      <thead>
        <tr>
          <th title="Tick two runs to compare them">Compare</th>
          <th>Status</th>
          <th>Started</th>
          <th>Duration</th>
          <th>Parameters</th>
          <th>Metrics</th>
          <th>Run</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {state.runs.map(run => (
          <RunRow
            key={run.id}
            run={run}
            now={now}
            open={run.id === state.openId}
            checked={state.checked.includes(run.id)}
            pending={state.pending[run.id]}
            actions={actions}
          />
        ))}
      </tbody>
    </table>
  );
}

function RunRow(props: {
  run: Run;
  now: number;
  open: boolean;
  checked: boolean;
  pending: RunAction | undefined;
  actions: RunsActions;
}): React.ReactElement {
  const { run, now, open, checked, pending, actions } = props;
  const stop = (event: React.SyntheticEvent) => event.stopPropagation();
  return (
    <tr
      className={`jp-mlops-runs-row${open ? ' jp-mod-open' : ''}${checked ? ' jp-mod-checked' : ''}`}
      data-testid="mlops-runs-row"
      data-run={run.id}
      data-status={run.status}
      tabIndex={0}
      aria-selected={open}
      title={open ? 'Close this run' : 'Open this run: its stages, logs and notebooks'}
      onClick={() => actions.select(run.id)}
      onKeyDown={event => {
        if (event.target === event.currentTarget && (event.key === 'Enter' || event.key === ' ')) {
          event.preventDefault();
          actions.select(run.id);
        }
      }}
    >
      <td className="jp-mlops-runs-check" onClick={stop}>
        <input
          type="checkbox"
          data-testid="mlops-runs-check"
          aria-label={`Compare run ${run.id}`}
          checked={checked}
          onChange={() => actions.toggle(run.id)}
        />
      </td>
      <td>
        <StatusBadge status={run.status} pending={pending} />
      </td>
      <td className="jp-mlops-runs-started">{formatStarted(run.created)}</td>
      <td className="jp-mlops-runs-duration">{durationText(runDuration(run, now))}</td>
      <td>
        <Pairs pairs={parameterPairs(run)} testid="mlops-runs-params" />
      </td>
      <td>
        <Pairs pairs={metricPairs(run)} testid="mlops-runs-metrics" />
      </td>
      <td>
        <code className="jp-mlops-runs-id">{run.id}</code>
      </td>
      <td className="jp-mlops-runs-actions" onClick={stop}>
        <RunButtons run={run} pending={pending} actions={actions} />
      </td>
    </tr>
  );
}

function RunButtons(props: {
  run: Run;
  pending: RunAction | undefined;
  actions: RunsActions;
}): React.ReactElement {
  const { run, pending, actions } = props;
  return (
    <>
      {canCancel(run) && (
        <button
          type="button"
          className="jp-mod-styled jp-mod-warn"
          data-testid="mlops-runs-cancel"
          disabled={pending !== undefined}
          title="Stop this run: its kernels are shut down and its MLflow runs marked failed"
          onClick={() => actions.cancel(run.id)}
        >
          {pending === 'cancel' ? 'Cancelling…' : 'Cancel'}
        </button>
      )}
      <button
        type="button"
        className="jp-mod-styled jp-mlops-secondary"
        data-testid="mlops-runs-rerun"
        disabled={!canRerun(run) || pending !== undefined}
        title={
          canRerun(run)
            ? 'Run the notebook again with these parameters'
            : 'Its parameters are known once it has started'
        }
        onClick={() => actions.rerun(run.id)}
      >
        {pending === 'rerun' ? 'Starting…' : 'Re-run'}
      </button>
    </>
  );
}

function StatusBadge(props: {
  status: RunStatus;
  pending?: RunAction | undefined;
}): React.ReactElement {
  const { status, pending } = props;
  return (
    <span
      className={`jp-mlops-run-status jp-mod-${status}`}
      data-testid="mlops-runs-status"
      data-status={status}
    >
      {pending === 'cancel' && isLive({ status }) ? 'cancelling' : status}
    </span>
  );
}

function Pairs(props: { pairs: string[]; testid: string }): React.ReactElement {
  return (
    <span className="jp-mlops-runs-pairs" data-testid={props.testid}>
      {props.pairs.map(pair => (
        <code key={pair}>{pair}</code>
      ))}
    </span>
  );
}

// --- the comparison -------------------------------------------------------------------------

function ComparisonView(props: { comparison: Comparison }): React.ReactElement {
  const { left, right, parameters, metrics } = props.comparison;
  const differing = [...parameters, ...metrics].filter(row => row.differs).length;
  return (
    <section
      className="jp-mlops-runs-section"
      data-testid="mlops-runs-compare"
      data-left={left.id}
      data-right={right.id}
    >
      <h3 className="jp-mlops-section-title">
        Comparison: {differing === 0 ? 'no difference' : `${differing} differing`}
      </h3>
      <table className="jp-mlops-runs-compare">
        <thead>
          <tr>
            <th />
            <th>
              <RunHeading run={left} />
            </th>
            <th>
              <RunHeading run={right} />
            </th>
          </tr>
        </thead>
        <tbody>
          <CompareGroup title="Parameters" kind="parameter" rows={parameters} />
          <CompareGroup title="Metrics" kind="metric" rows={metrics} />
        </tbody>
      </table>
    </section>
  );
}

function RunHeading(props: { run: Run }): React.ReactElement {
  const { run } = props;
  return (
    <span className="jp-mlops-runs-heading">
      <code>{run.id}</code> <StatusBadge status={run.status} />
      <span className="jp-mlops-runs-muted">{formatStarted(run.created)}</span>
    </span>
  );
}

function CompareGroup(props: {
  title: string;
  kind: 'parameter' | 'metric';
  rows: ComparisonRow[];
}): React.ReactElement {
  const { title, kind, rows } = props;
  return (
    <>
      <tr className="jp-mlops-runs-group">
        <th colSpan={3}>{rows.length === 0 ? `${title}: none` : title}</th>
      </tr>
      {rows.map(row => (
        <tr
          key={row.key}
          className={`jp-mlops-runs-compare-row${row.differs ? ' jp-mod-differs' : ''}`}
          data-testid="mlops-compare-row"
          data-kind={kind}
          data-name={row.name}
          data-stage={row.stage ?? undefined}
          data-differs={row.differs ? 'true' : 'false'}
        >
          <th scope="row">
            <span className="jp-mlops-runs-marker" title={row.differs ? 'differs' : 'same'}>
              {row.differs ? '≠' : ''}
            </span>
            <code>{row.name}</code>
            {row.stage && <span className="jp-mlops-runs-muted"> {row.stage}</span>}
          </th>
          <CompareValue value={row.left} />
          <CompareValue value={row.right} />
        </tr>
      ))}
    </>
  );
}

function CompareValue(props: { value: string | null }): React.ReactElement {
  return props.value === null ? (
    <td className="jp-mlops-runs-missing" data-testid="mlops-compare-value">
      —
    </td>
  ) : (
    <td data-testid="mlops-compare-value">
      <code>{props.value}</code>
    </td>
  );
}

// --- one run --------------------------------------------------------------------------------

function RunDetail(props: {
  id: string;
  run: Run | null;
  error: string | null;
  now: number;
  actions: RunsActions;
}): React.ReactElement {
  const { id, run, error, now, actions } = props;
  return (
    <section
      className="jp-mlops-runs-section jp-mlops-runs-detail"
      data-testid="mlops-runs-detail"
      data-run={id}
    >
      <header className="jp-mlops-runs-detail-head">
        <h3 className="jp-mlops-runs-detail-title">
          Run <code>{id}</code>
          {run && (
            <>
              : <StatusBadge status={run.status} />
            </>
          )}
        </h3>
        {run?.mlflow?.url && (
          <a
            href={run.mlflow.url}
            target="_blank"
            rel="noopener noreferrer"
            data-testid="mlops-runs-mlflow-link"
          >
            Open the MLflow run
          </a>
        )}
        <button
          type="button"
          className="jp-mlops-icon-button"
          title="Close this run"
          onClick={() => actions.select(id)}
        >
          ×
        </button>
      </header>
      {error && <div className="jp-mlops-banner jp-mod-error">{error}</div>}
      {!run && !error && <p className="jp-mlops-empty">Loading the run…</p>}
      {run && <RunBody run={run} now={now} actions={actions} />}
    </section>
  );
}

function RunBody(props: { run: Run; now: number; actions: RunsActions }): React.ReactElement {
  const { run, now, actions } = props;
  const failure = run.status === 'failed' ? failureOf(run) : null;
  const duration = runDuration(run, now);
  return (
    <>
      <p className="jp-mlops-runs-facts">
        Started {formatStarted(run.created)}
        {duration !== null && `, ${formatDuration(duration)}`}
        {run.parameters && Object.keys(run.parameters).length > 0 && (
          <>
            {' '}
            with{' '}
            <Pairs
              pairs={Object.entries(run.parameters).map(
                ([name, value]) => `${name}=${formatValue(value, true)}`
              )}
              testid="mlops-runs-detail-params"
            />
          </>
        )}
      </p>
      {failure && (
        <pre className="jp-mlops-error-message" data-testid="mlops-runs-failure">
          {failure.stage ? `Stage ${failure.stage}: ` : ''}
          {failure.error.message}
        </pre>
      )}
      {run.stages.length > 0 && <StageTable run={run} now={now} actions={actions} />}
      {!run.folder && run.stages.some(stage => stage.notebook) && (
        <p className="jp-mlops-empty" data-testid="mlops-runs-outside">
          The run folder is outside the server’s root, so its notebooks can’t be opened here
          {run.run_dir ? (
            <>
              : it is <code>{run.run_dir}</code> on the server’s machine.
            </>
          ) : (
            '.'
          )}
        </p>
      )}
      {run.models.length > 0 && (
        <ul className="jp-mlops-models">
          {run.models.map(model => (
            <li key={`${model.name}/${model.version}`} data-testid="mlops-runs-model">
              {model.url ? (
                <a href={model.url} target="_blank" rel="noopener noreferrer">
                  {model.name} version {model.version}
                </a>
              ) : (
                `${model.name} version ${model.version}`
              )}{' '}
              <code>{model.uri}</code>
            </li>
          ))}
        </ul>
      )}
      {run.warnings.length > 0 && (
        <ul className="jp-mlops-runs-warnings">
          {run.warnings.map(warning => (
            <li key={warning}>{warning}</li>
          ))}
        </ul>
      )}
      <h4 className="jp-mlops-section-title">Runner log</h4>
      <LogTail text={run.log_tail} testid="mlops-runs-log" />
      {run.stages.some(stage => stage.log_tail) && (
        <>
          <h4 className="jp-mlops-section-title">Stage logs</h4>
          {run.stages
            .filter(stage => stage.log_tail)
            .map(stage => (
              <details
                key={stage.name}
                className="jp-mlops-runs-stage-log"
                data-testid="mlops-runs-stage-log"
                data-stage={stage.name}
                open={stage.status === 'failed'}
              >
                <summary>{stage.name}</summary>
                <LogTail text={stage.log_tail} />
              </details>
            ))}
        </>
      )}
    </>
  );
}

function StageTable(props: { run: Run; now: number; actions: RunsActions }): React.ReactElement {
  const { run, now, actions } = props;
  const rows = stageProgress(run, now);
  return (
    <table className="jp-mlops-runs-stages">
      <thead>
        <tr>
          <th>Stage</th>
          <th>Status</th>
          <th>Duration</th>
          <th>Metrics</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {run.stages.map((stage, index) => {
          const row = rows[index];
          const notebook = stageNotebookPath(run, stage);
          const file = stageNotebookFile(run, stage);
          const style = { '--jp-mlops-stage-color': stageColor(index) } as React.CSSProperties;
          return (
            <tr
              key={stage.name}
              className={`jp-mlops-runs-stage-row jp-mod-${stage.status}`}
              data-testid="mlops-runs-stage"
              data-stage={stage.name}
              data-status={stage.status}
              style={style}
            >
              <td>
                <span className="jp-mlops-swatch" /> <strong>{stage.name}</strong>
              </td>
              <td>
                <span
                  className="jp-mlops-runs-stage-status"
                  title={stage.cached_from ? `outputs of run ${stage.cached_from}` : undefined}
                >
                  {stage.status}
                </span>
              </td>
              <td className="jp-mlops-runs-duration">{durationText(row.duration)}</td>
              <td>
                <Pairs
                  pairs={Object.entries(stage.metrics).map(
                    ([name, value]) => `${name}=${formatValue(value)}`
                  )}
                  testid="mlops-runs-stage-metrics"
                />
              </td>
              <td className="jp-mlops-runs-actions">
                {notebook && (
                  <button
                    type="button"
                    className="jp-mod-styled jp-mlops-secondary"
                    data-testid="mlops-runs-open-notebook"
                    data-path={notebook}
                    title={`Open ${notebook}: the executed stage notebook, outputs and traceback included`}
                    onClick={() => actions.openNotebook(notebook)}
                  >
                    Open notebook
                  </button>
                )}
                {file && (
                  <code
                    className="jp-mlops-runs-notebook-file"
                    data-testid="mlops-runs-notebook-file"
                    title="The executed stage notebook, outside the server’s root: open it from there"
                  >
                    {file}
                  </code>
                )}
                {stage.mlflow_url && (
                  <a
                    href={stage.mlflow_url}
                    target="_blank"
                    rel="noopener noreferrer"
                    data-testid="mlops-runs-stage-mlflow"
                  >
                    MLflow
                  </a>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function LogTail(props: { text: string | undefined; testid?: string }): React.ReactElement {
  return props.text ? (
    <pre className="jp-mlops-runs-log" data-testid={props.testid}>
      {props.text}
    </pre>
  ) : (
    <p className="jp-mlops-empty" data-testid={props.testid}>
      (empty)
    </p>
  );
}
