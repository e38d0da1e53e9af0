/** Productionize's progress: status, per-stage progress, and where the result or failure is. */
import * as React from 'react';

import type { Run } from '../api';
import {
  failureHeading,
  failureOf,
  formatDuration,
  isCancellable,
  metricsOf,
  type PlannedStage,
  type ProgressState,
  stageProgress,
  statusText
} from '../progress';
import { stageColor } from '../palette';
import { Breakable } from './common';
import { DiagnosticList } from './diagnostics';
import { PromoteControl } from './promote';

export interface RunActions {
  cancel: () => void;
  /**
   * Go to cell `index` of the notebook as it was saved for the check or the run (the
   * notebook was saved just before, so these are its current indexes)
   */
  showCell: (index: number) => void;
}

export function RunPanel(props: {
  progress: ProgressState;
  /** seconds since the epoch, for the running stages' durations */
  now: number;
  /** stage name -> position in run order, for the stage colours */
  positions: ReadonlyMap<string, number>;
  /** the stages of the latest analysis, listed until the run lists its own */
  planned: readonly PlannedStage[];
  actions: RunActions;
}): React.ReactElement | null {
  const { progress, now, positions, planned, actions } = props;
  if (progress.phase === 'idle') {
    return null;
  }
  const { run } = progress;
  // While the run starts and is prepared, the stages it is about to run.
  const waiting = ['starting', 'queued', 'running'].includes(progress.phase) ? planned : [];
  return (
    <section className="jp-mlops-run" data-testid="mlops-run" data-phase={progress.phase}>
      <div className="jp-mlops-run-head">
        <span className="jp-mlops-run-title">
          {run ? (
            <>
              Run{' '}
              <code className="jp-mlops-run-id" title={run.path ?? undefined}>
                <Breakable text={run.id} />
              </code>
              :{' '}
            </>
          ) : (
            'Productionize: '
          )}
          <span
            className={`jp-mlops-run-status jp-mod-${progress.phase}`}
            data-testid="mlops-run-status"
            data-status={progress.phase}
          >
            {statusText(progress)}
          </span>
        </span>
        {isCancellable(progress) && (
          <button
            type="button"
            className="jp-mod-styled jp-mod-warn jp-mlops-cancel"
            data-testid="mlops-cancel"
            onClick={actions.cancel}
          >
            Cancel
          </button>
        )}
      </div>
      {progress.message && (
        <div className="jp-mlops-run-message" data-testid="mlops-run-message">
          {progress.message}
        </div>
      )}
      {progress.phase === 'blocked' && (
        <div className="jp-mlops-blocked">
          <p>Fix these errors first; nothing was run.</p>
          <DiagnosticList diagnostics={progress.problems} onShowCell={actions.showCell} />
        </div>
      )}
      {(run || waiting.length > 0) && (
        <StageProgressList run={run} now={now} positions={positions} planned={waiting} />
      )}
      {run && progress.phase === 'failed' && <FailureView run={run} onShow={actions.showCell} />}
      {run && progress.phase === 'succeeded' && <Outcome run={run} />}
    </section>
  );
}

/** Stage names longer than this (in characters) get the row's first line to themselves. */
const LONG_NAME = 16;

function StageProgressList(props: {
  run: Run | null;
  now: number;
  positions: ReadonlyMap<string, number>;
  planned: readonly PlannedStage[];
}): React.ReactElement {
  const rows = stageProgress(props.run, props.now, props.planned);
  return (
    <ol className="jp-mlops-progress">
      {rows.map((row, index) => {
        const style = {
          '--jp-mlops-stage-color': stageColor(props.positions.get(row.name) ?? index)
        } as React.CSSProperties;
        return (
          <li
            key={row.name}
            className={`jp-mlops-progress-row jp-mod-${row.status}${row.name.length > LONG_NAME ? ' jp-mod-long' : ''}`}
            data-testid="mlops-stage-progress"
            data-stage={row.name}
            data-status={row.status}
            style={style}
          >
            <span className="jp-mlops-swatch" />
            <span className="jp-mlops-stage-name">
              {row.mlflowUrl ? (
                <a href={row.mlflowUrl} target="_blank" rel="noopener noreferrer">
                  <Breakable text={row.name} />
                </a>
              ) : (
                <Breakable text={row.name} />
              )}
            </span>
            <span className="jp-mlops-progress-status" title={row.noteTitle ?? undefined}>
              {row.label}
            </span>
            <span className="jp-mlops-progress-duration">
              {row.duration === null ? '' : formatDuration(row.duration)}
            </span>
            {row.note && (
              <span
                className="jp-mlops-progress-note"
                data-testid="mlops-stage-note"
                title={row.noteTitle ?? undefined}
              >
                {row.note}
              </span>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function FailureView(props: {
  run: Run;
  onShow: (index: number) => void;
}): React.ReactElement | null {
  const failure = failureOf(props.run);
  if (!failure) {
    return null;
  }
  const { cell } = failure.error;
  const heading = failureHeading(failure);
  return (
    <div className="jp-mlops-failure" data-testid="mlops-failure">
      {heading === 'stage' && (
        <p>
          Stage <strong>{failure.stage}</strong> failed:
        </p>
      )}
      {heading === 'run' && <p>The run failed:</p>}
      <pre className="jp-mlops-error-message">{failure.error.message}</pre>
      {cell !== null && (
        <button
          type="button"
          className="jp-mod-styled jp-mlops-secondary"
          data-testid="mlops-show-cell"
          onClick={() => props.onShow(cell)}
        >
          Show cell
        </button>
      )}
    </div>
  );
}

function Outcome(props: { run: Run }): React.ReactElement {
  const { mlflow, models } = props.run;
  const metrics = metricsOf(props.run);
  return (
    <div className="jp-mlops-outcome" data-testid="mlops-outcome">
      {metrics.length > 0 && (
        <div className="jp-mlops-metrics" data-testid="mlops-metrics">
          {metrics.map(metric => (
            <span key={metric}>
              <Breakable text={metric} />
            </span>
          ))}
        </div>
      )}
      {mlflow?.url ? (
        <a
          href={mlflow.url}
          target="_blank"
          rel="noopener noreferrer"
          data-testid="mlops-mlflow-link"
        >
          Open the MLflow run
        </a>
      ) : (
        mlflow && (
          <span data-testid="mlops-mlflow-run">
            Logged to MLflow run <code>{mlflow.run_id}</code> at{' '}
            <code>
              <Breakable text={mlflow.tracking_uri ?? ''} />
            </code>
          </span>
        )
      )}
      {models.length > 0 && (
        <ul className="jp-mlops-models">
          {models.map(model => (
            <li
              key={`${model.name}/${model.version}`}
              data-testid="mlops-model"
              data-model={model.name}
              data-version={model.version}
            >
              {model.url ? (
                <a href={model.url} target="_blank" rel="noopener noreferrer">
                  <Breakable text={model.name} /> version {model.version}
                </a>
              ) : (
                <span>
                  <Breakable text={model.name} /> version {model.version}
                </span>
              )}{' '}
              <code className="jp-mlops-model-uri">
                <Breakable text={model.uri} />
              </code>{' '}
              <span className="jp-mlops-model-note">
                {model.new === false
                  ? 'unchanged: trained by an earlier run'
                  : `now @${model.alias_uri.split('@').pop()}`}
              </span>{' '}
              <span className="jp-mlops-model-flavor">
                ({model.flavor}, from <code>{model.variable}</code>)
              </span>
              {props.run.status === 'succeeded' && (
                <PromoteControl
                  key={`${props.run.id}/${model.name}/${model.version}`}
                  model={model}
                  path={props.run.path}
                />
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
