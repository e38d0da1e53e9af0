/** Productionize's progress: status, per-stage progress, and where the result or failure is. */
import * as React from 'react';

import type { Run } from '../api';
import {
  failureOf,
  formatDuration,
  isCancellable,
  metricsOf,
  type ProgressState,
  stageProgress,
  statusText
} from '../progress';
import { stageColor } from '../palette';
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
  actions: RunActions;
}): React.ReactElement | null {
  const { progress, now, positions, actions } = props;
  if (progress.phase === 'idle') {
    return null;
  }
  const { run } = progress;
  return (
    <section className="jp-mlops-run" data-testid="mlops-run" data-phase={progress.phase}>
      <div className="jp-mlops-run-head">
        <span>
          {run ? (
            <>
              Run <code title={run.path ?? undefined}>{run.id}</code>:{' '}
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
      {run && <StageProgressList run={run} now={now} positions={positions} />}
      {run && progress.phase === 'failed' && <FailureView run={run} onShow={actions.showCell} />}
      {run && progress.phase === 'succeeded' && <Outcome run={run} />}
    </section>
  );
}

function StageProgressList(props: {
  run: Run;
  now: number;
  positions: ReadonlyMap<string, number>;
}): React.ReactElement {
  const rows = stageProgress(props.run, props.now);
  return (
    <ol className="jp-mlops-progress">
      {rows.map((row, index) => {
        const style = {
          '--jp-mlops-stage-color': stageColor(props.positions.get(row.name) ?? index)
        } as React.CSSProperties;
        return (
          <li
            key={row.name}
            className={`jp-mlops-progress-row jp-mod-${row.status}`}
            data-testid="mlops-stage-progress"
            data-stage={row.name}
            data-status={row.status}
            style={style}
          >
            <span className="jp-mlops-swatch" />
            <span className="jp-mlops-stage-name">
              {row.mlflowUrl ? (
                <a href={row.mlflowUrl} target="_blank" rel="noopener noreferrer">
                  {row.name}
                </a>
              ) : (
                row.name
              )}
            </span>
            <span
              className="jp-mlops-progress-status"
              title={row.cachedFrom ? `outputs of run ${row.cachedFrom}` : undefined}
            >
              {row.status}
            </span>
            <span className="jp-mlops-progress-duration">
              {row.duration === null ? '' : formatDuration(row.duration)}
            </span>
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
  return (
    <div className="jp-mlops-failure" data-testid="mlops-failure">
      <p>
        {failure.stage ? (
          <>
            Stage <strong>{failure.stage}</strong> failed:
          </>
        ) : (
          'The run failed:'
        )}
      </p>
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
            <span key={metric}>{metric}</span>
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
            Logged to MLflow run <code>{mlflow.run_id}</code> at <code>{mlflow.tracking_uri}</code>
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
                  {model.name} version {model.version}
                </a>
              ) : (
                <span>
                  {model.name} version {model.version}
                </span>
              )}{' '}
              <code className="jp-mlops-model-uri">{model.uri}</code>{' '}
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
                />
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
