/**
 * The Sweep section: a form of the values to try for each parameter, then the live table of
 * the sweep's trials (the best one starred), with its MLflow links and Stop / Resume.
 */
import * as React from 'react';

import type { Parameter, Sweep } from '../api';
import {
  defaultText,
  type Direction,
  isSweeping,
  planSweep,
  type SweepForm,
  type SweepState,
  sweepSummary,
  type TrialRow,
  trialTable
} from '../sweeps';
import { Breakable } from './common';

export interface SweepActions {
  edit: (change: Partial<SweepForm>) => void;
  editValue: (name: string, text: string) => void;
  start: () => void;
  stop: () => void;
  resume: () => void;
}

export interface SweepSectionProps {
  /** the notebook, relative to the server root */
  path: string;
  parameters: readonly Parameter[];
  /** the metrics the notebook logs */
  metrics: readonly string[];
  state: SweepState;
  /** the server is missing, or a notebook problem stops any run */
  disabled: boolean;
  actions: SweepActions;
}

export function SweepSection(props: SweepSectionProps): React.ReactElement {
  const { state, actions } = props;
  const { form, sweep } = state;
  return (
    <details
      className="jp-mlops-section jp-mlops-sweep"
      data-testid="mlops-sweep"
      open={form.open}
      onToggle={event => {
        const open = (event.currentTarget as HTMLDetailsElement).open;
        if (open !== form.open) {
          actions.edit({ open });
        }
      }}
    >
      <summary className="jp-mlops-section-title">Sweep</summary>
      {form.open && <SweepFormView {...props} />}
      {form.open && sweep && (
        <SweepResult sweep={sweep} busy={state.busy} warning={state.warning} actions={actions} />
      )}
    </details>
  );
}

function SweepFormView(props: SweepSectionProps): React.ReactElement {
  const { path, parameters, metrics, state, disabled, actions } = props;
  const { form } = state;
  if (parameters.length === 0) {
    return (
      <p className="jp-mlops-empty">
        A sweep tries several values of the notebook’s parameters: tag a cell “parameters” first.
      </p>
    );
  }
  const plan = planSweep(path, parameters, form, metrics);
  const running = isSweeping(state.sweep);
  return (
    <form
      className="jp-mlops-params jp-mlops-sweep-form"
      onSubmit={event => {
        event.preventDefault();
        actions.start();
      }}
    >
      <p className="jp-mlops-sweep-hint">
        Values to try, comma-separated (<code>100,200,400</code>); empty keeps the default.
      </p>
      {parameters.map(parameter => (
        <ValuesField
          key={parameter.name}
          parameter={parameter}
          text={form.values[parameter.name] ?? ''}
          error={plan.errors[parameter.name]}
          onEdit={text => actions.editValue(parameter.name, text)}
        />
      ))}
      <div className="jp-mlops-param" data-param="(random)">
        <label htmlFor="jp-mlops-sweep-random">random draws</label>
        <input
          id="jp-mlops-sweep-random"
          className="jp-mod-styled"
          data-testid="mlops-sweep-random"
          type="number"
          min={1}
          step={1}
          placeholder="none: a grid"
          title="Empty: every combination of the values (a grid). A number: that many trials drawn at random, from the values or from ranges LOW:HIGH[:log]"
          value={form.random}
          onChange={event => actions.edit({ random: event.target.value })}
        />
      </div>
      {form.random.trim() !== '' && (
        <div className="jp-mlops-param" data-param="(seed)">
          <label htmlFor="jp-mlops-sweep-seed">seed</label>
          <input
            id="jp-mlops-sweep-seed"
            className="jp-mod-styled"
            data-testid="mlops-sweep-seed"
            type="number"
            step={1}
            placeholder="a new one"
            value={form.seed}
            onChange={event => actions.edit({ seed: event.target.value })}
          />
        </div>
      )}
      <div className="jp-mlops-param" data-param="(metric)">
        <label htmlFor="jp-mlops-sweep-metric">best by</label>
        <select
          id="jp-mlops-sweep-metric"
          className="jp-mod-styled"
          data-testid="mlops-sweep-metric"
          value={form.metric}
          onChange={event => actions.edit({ metric: event.target.value })}
        >
          {metrics.length !== 1 && <option value="">(choose a metric)</option>}
          {metrics.map(metric => (
            <option key={metric} value={metrics.length === 1 ? '' : metric}>
              {metric}
            </option>
          ))}
        </select>
      </div>
      <div className="jp-mlops-param" data-param="(direction)">
        <label htmlFor="jp-mlops-sweep-direction">better is</label>
        <select
          id="jp-mlops-sweep-direction"
          className="jp-mod-styled"
          data-testid="mlops-sweep-direction"
          title="auto: from the metric's name (accuracy, auc, score: higher; loss, error, rmse: lower)"
          value={form.direction}
          onChange={event => actions.edit({ direction: event.target.value as Direction })}
        >
          <option value="auto">auto</option>
          <option value="max">higher</option>
          <option value="min">lower</option>
        </select>
      </div>
      {plan.problem && Object.keys(plan.errors).length === 0 && (
        <div className="jp-mlops-sweep-note">{plan.problem}</div>
      )}
      {state.error && (
        <div
          className="jp-mlops-param-error jp-mlops-sweep-error"
          role="alert"
          data-testid="mlops-sweep-error"
        >
          {state.error}
        </div>
      )}
      <div className="jp-mlops-sweep-start">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          data-testid="mlops-sweep-start"
          disabled={disabled || state.busy || running || plan.request === null}
          title="Save, then run the pipeline once per parameter set and register the best"
        >
          Start sweep
        </button>
        {plan.trials !== null && (
          <span className="jp-mlops-where" data-testid="mlops-sweep-count">
            {plan.trials} {plan.trials === 1 ? 'trial' : 'trials'}
          </span>
        )}
      </div>
    </form>
  );
}

/** Names longer than this (in characters) go on a line of their own, above the input. */
const STACK_AFTER = 12;

function ValuesField(props: {
  parameter: Parameter;
  text: string;
  error: string | undefined;
  onEdit: (text: string) => void;
}): React.ReactElement {
  const { parameter, text, error, onEdit } = props;
  const id = `jp-mlops-sweep-${parameter.name}`;
  const classes = [
    'jp-mlops-param',
    error ? 'jp-mod-invalid' : '',
    parameter.name.length > STACK_AFTER ? 'jp-mod-stacked' : ''
  ];
  return (
    <div className={classes.filter(Boolean).join(' ')} data-param={parameter.name}>
      <label htmlFor={id}>
        <span className="jp-mlops-param-name">
          <Breakable text={parameter.name} />
        </span>{' '}
        <span className="jp-mlops-param-type">{parameter.type}</span>
      </label>
      <input
        id={id}
        className="jp-mod-styled"
        data-testid="mlops-sweep-values"
        type="text"
        spellCheck={false}
        placeholder={defaultText(parameter)}
        value={text}
        onChange={event => onEdit(event.target.value)}
      />
      {error && (
        <div className="jp-mlops-param-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

function SweepResult(props: {
  sweep: Sweep;
  busy: boolean;
  warning: string | null;
  actions: SweepActions;
}): React.ReactElement {
  const { sweep, busy, warning, actions } = props;
  const table = trialTable(sweep);
  // Stop while it runs (or waits), Resume once stopped.
  const control = isSweeping(sweep)
    ? {
        label: 'Stop',
        className: 'jp-mod-warn',
        testid: 'mlops-sweep-stop',
        title: 'Stop after cancelling the trial that runs; it can resume later',
        onClick: actions.stop
      }
    : sweep.status === 'stopped'
      ? {
          label: 'Resume',
          className: 'jp-mlops-secondary',
          testid: 'mlops-sweep-resume',
          title: 'Run the trials it had not finished',
          onClick: actions.resume
        }
      : null;
  return (
    <section
      className="jp-mlops-run jp-mlops-sweep-result"
      data-testid="mlops-sweep-result"
      data-sweep={sweep.id}
      data-status={sweep.status}
    >
      <div className="jp-mlops-run-head">
        <span className="jp-mlops-run-title">
          Sweep{' '}
          <code className="jp-mlops-run-id">
            <Breakable text={sweep.id} />
          </code>
          :{' '}
          <span
            className={`jp-mlops-run-status jp-mod-${sweep.status}`}
            data-testid="mlops-sweep-status"
            data-status={sweep.status}
          >
            {sweep.status}
          </span>
        </span>
        {control && (
          <button
            type="button"
            className={`jp-mod-styled ${control.className}`}
            data-testid={control.testid}
            disabled={busy}
            title={control.title}
            onClick={control.onClick}
          >
            {control.label}
          </button>
        )}
      </div>
      <p className="jp-mlops-where" data-testid="mlops-sweep-summary">
        {sweepSummary(sweep)}
      </p>
      {warning && <div className="jp-mlops-run-message">{warning}</div>}
      {sweep.error && <pre className="jp-mlops-error-message">{sweep.error}</pre>}
      <table className="jp-mlops-sweep-table" data-testid="mlops-sweep-table">
        <colgroup>
          <col className="jp-mlops-sweep-col-number" />
          {table.columns.map(name => (
            <col key={name} />
          ))}
          <col className="jp-mlops-sweep-col-metric" />
          <col className="jp-mlops-sweep-col-status" />
        </colgroup>
        <thead>
          <tr>
            <th>#</th>
            {table.columns.map(name => (
              <th key={name}>
                <Breakable text={name} />
              </th>
            ))}
            <th>
              <Breakable text={table.metric} />
            </th>
            <th>status</th>
          </tr>
        </thead>
        <tbody>
          {table.rows.map(row => (
            <TrialRowView key={row.number} row={row} columns={table.columns.length} />
          ))}
        </tbody>
      </table>
      <ul className="jp-mlops-sweep-links">
        {sweep.mlflow?.url && (
          <li>
            <a
              href={sweep.mlflow.url}
              target="_blank"
              rel="noopener noreferrer"
              data-testid="mlops-sweep-mlflow"
            >
              The sweep in MLflow
            </a>
          </li>
        )}
        {sweep.models.map(model => (
          <li key={`${model.name}/${model.version}`} data-testid="mlops-sweep-model">
            Registered{' '}
            {model.url ? (
              <a href={model.url} target="_blank" rel="noopener noreferrer">
                <code>
                  <Breakable text={`${model.name} v${model.version}`} />
                </code>
              </a>
            ) : (
              <code>
                <Breakable text={`${model.name} v${model.version}`} />
              </code>
            )}{' '}
            @candidate
          </li>
        ))}
      </ul>
    </section>
  );
}

function TrialRowView(props: { row: TrialRow; columns: number }): React.ReactElement {
  const { row, columns } = props;
  const [expanded, setExpanded] = React.useState(false);
  const classes = [`jp-mod-${row.status}`, row.best ? 'jp-mod-best' : ''].filter(Boolean);
  const number = row.url ? (
    <a href={row.url} target="_blank" rel="noopener noreferrer" title="Its run in MLflow">
      {row.number}
    </a>
  ) : (
    row.number
  );
  return (
    <>
      <tr
        className={classes.join(' ')}
        data-testid="mlops-sweep-trial"
        data-trial={row.number}
        data-status={row.status}
        data-best={row.best ? 'true' : undefined}
        title={row.shared.length > 0 ? `shared stages: ${row.shared.join(', ')}` : undefined}
      >
        <td className="jp-mlops-sweep-number">
          {row.best && (
            <span className="jp-mlops-sweep-star" title="the best trial">
              ★{' '}
            </span>
          )}
          {number}
        </td>
        {row.values.map((value, index) => (
          <td key={index}>
            <Breakable text={value} />
          </td>
        ))}
        <td className="jp-mlops-sweep-metric">{row.metric}</td>
        <td className="jp-mlops-sweep-status" title={row.error ?? undefined}>
          {row.error ? (
            <button
              type="button"
              className="jp-mlops-link-button"
              data-testid="mlops-sweep-trial-error"
              aria-expanded={expanded}
              onClick={() => setExpanded(!expanded)}
            >
              {row.status}
            </button>
          ) : (
            row.status
          )}
        </td>
      </tr>
      {expanded && row.error && (
        <tr className="jp-mlops-sweep-error-row">
          <td colSpan={columns + 3}>
            <pre className="jp-mlops-error-message">{row.error}</pre>
          </td>
        </tr>
      )}
    </>
  );
}
