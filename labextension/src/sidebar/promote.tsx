/**
 * Promote for one registered version of a succeeded run: the promotion gate's checks first
 * (a dry run, each check ✓ or ✗ with its figures), then "Promote to champion" once they all
 * passed, and what it did.
 */
import * as React from 'react';

import { type Promotion, promoteModel, type RegisteredModel } from '../api';
import {
  canConfirm,
  CHAMPION,
  checkPromotion,
  checkRows,
  checksSummary,
  confirmPromotion,
  outcomeText,
  type PromoteApi,
  PROMOTE_IDLE,
  reducePromote,
  versionLabel
} from '../promote';

const API: PromoteApi = { promoteModel };

export function PromoteControl(props: {
  model: RegisteredModel;
  /** the notebook of the run that registered it: its project's store is checked */
  path: string | null;
}): React.ReactElement {
  const { name, version } = props.model;
  const target = { name, version, path: props.path };
  const [state, dispatch] = React.useReducer(reducePromote, PROMOTE_IDLE);
  const check = (): void => void checkPromotion(API, target, dispatch);
  const confirm = (): void => void confirmPromotion(API, target, state, dispatch);
  const close = (): void => dispatch({ type: 'close' });
  const { result } = state;
  const label = versionLabel(version);
  return (
    <div className="jp-mlops-promote" data-testid="mlops-promote" data-phase={state.phase}>
      {state.phase === 'idle' && (
        <button
          type="button"
          className="jp-mod-styled jp-mlops-secondary"
          data-testid="mlops-promote-check"
          title={`Check whether ${label} may become ${CHAMPION}: nothing moves yet`}
          onClick={check}
        >
          Promote
        </button>
      )}
      {state.phase === 'checking' && (
        <p className="jp-mlops-promote-status">
          Checking {label} for {CHAMPION} (the smoke test loads the model)…
        </p>
      )}
      {result && state.phase !== 'checking' && (
        <div className="jp-mlops-promote-checks">
          <p className="jp-mlops-promote-summary" data-testid="mlops-promote-summary">
            Checks for {label} → {result.to}: {checksSummary(result)}
          </p>
          <ul className="jp-mlops-promote-list">
            {checkRows(result).map(row => (
              <li
                key={row.key}
                className={`jp-mlops-promote-check ${row.passed ? 'jp-mod-passed' : 'jp-mod-failed'}`}
                data-testid="mlops-promote-check-row"
                data-check={row.name}
                data-passed={row.passed ? 'true' : 'false'}
              >
                <span className="jp-mlops-promote-symbol">{row.symbol}</span>
                <span>
                  <strong>{row.name}</strong>: {row.detail}
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {state.phase === 'checked' && <Confirm result={result} confirm={confirm} close={close} />}
      {state.phase === 'promoting' && <p className="jp-mlops-promote-status">Promoting {label}…</p>}
      {result && (state.phase === 'promoted' || state.phase === 'refused') && (
        <p
          className={`jp-mlops-promote-outcome jp-mod-${state.phase}`}
          data-testid="mlops-promote-outcome"
          data-outcome={state.phase}
        >
          {state.phase === 'promoted' ? '✓ ' : '✗ '}
          {outcomeText(result)}
        </p>
      )}
      {state.phase === 'error' && (
        <pre className="jp-mlops-error-message" data-testid="mlops-promote-error">
          {state.message}
        </pre>
      )}
      {(state.phase === 'refused' || state.phase === 'error') && (
        <button
          type="button"
          className="jp-mod-styled jp-mlops-secondary"
          data-testid="mlops-promote-check"
          onClick={check}
        >
          Check again
        </button>
      )}
    </div>
  );
}

function Confirm(props: {
  result: Promotion | null;
  confirm: () => void;
  close: () => void;
}): React.ReactElement {
  const { allowed, reason } = canConfirm(props.result);
  return (
    <div className="jp-mlops-promote-actions">
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        data-testid="mlops-promote-confirm"
        disabled={!allowed}
        title={reason ?? `Move the ${CHAMPION} alias to this version, and record the decision`}
        onClick={props.confirm}
      >
        Promote to {CHAMPION}
      </button>
      <button
        type="button"
        className="jp-mod-styled jp-mlops-secondary"
        data-testid="mlops-promote-close"
        onClick={props.close}
      >
        Close
      </button>
      {reason && (
        <span className="jp-mlops-promote-reason" data-testid="mlops-promote-reason">
          {reason}
        </span>
      )}
    </div>
  );
}
