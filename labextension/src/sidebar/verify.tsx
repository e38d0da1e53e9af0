/** Verify's result: identical, each divergent value with its cell, or why it failed. */
import * as React from 'react';

import { stageColor } from '../palette';
import { Breakable } from './common';
import {
  type DifferenceRow,
  verifyOutcome,
  type VerifyState,
  verifyStatusText,
  verifyTimings
} from '../verify';

export function VerifyPanel(props: {
  state: VerifyState;
  /** stage name -> position in run order, for the stage colours */
  positions: ReadonlyMap<string, number>;
  /**
   * Go to cell `index` of the notebook as it was saved for the verification (the notebook
   * was saved just before, so these are its current indexes)
   */
  showCell: (index: number) => void;
}): React.ReactElement | null {
  const { state, positions, showCell } = props;
  if (state.phase === 'idle') {
    return null;
  }
  const outcome = state.report ? verifyOutcome(state.report) : null;
  return (
    <section
      className="jp-mlops-run jp-mlops-verify"
      data-testid="mlops-verify-result"
      data-phase={state.phase}
    >
      <div className="jp-mlops-run-head">
        <span title={state.id ? `verification ${state.id}` : undefined}>
          Verify:{' '}
          <span
            className={`jp-mlops-run-status jp-mod-${state.phase}`}
            data-testid="mlops-verify-status"
            data-status={state.phase}
          >
            {verifyStatusText(state)}
          </span>
        </span>
      </div>
      {state.phase === 'verifying' && (
        <p className="jp-mlops-verify-hint">
          Running the notebook top to bottom, then as a pipeline, to compare every value a stage
          hands on.
        </p>
      )}
      {state.message && state.phase === 'verifying' && (
        <div className="jp-mlops-run-message">{state.message}</div>
      )}
      {state.message && state.phase === 'failed' && (
        <pre className="jp-mlops-error-message" data-testid="mlops-verify-error">
          {state.message}
        </pre>
      )}
      {state.report && outcome && (
        <div className="jp-mlops-outcome">
          <p className="jp-mlops-verify-summary" data-testid="mlops-verify-summary">
            {outcome.summary}
          </p>
          {outcome.differences.length > 0 && (
            <ul className="jp-mlops-verify-differences">
              {outcome.differences.map((row, index) => (
                <DifferenceItem
                  key={row.key}
                  row={row}
                  color={stageColor(positions.get(row.stage) ?? index)}
                  showCell={showCell}
                />
              ))}
            </ul>
          )}
          {outcome.notes.length > 0 && (
            <div className="jp-mlops-verify-notes" data-testid="mlops-verify-notes">
              <p>
                Note: the notebook itself computes{' '}
                {outcome.notes.length === 1 ? 'this value' : 'these values'} differently from run to
                run (unseeded randomness), so {outcome.notes.length === 1 ? 'it was' : 'they were'}{' '}
                not held against the pipeline:
              </p>
              <ul>
                {outcome.notes.map(row => (
                  <li key={row.key} data-stage={row.stage}>
                    <code>{row.label}</code> from stage{' '}
                    <strong>
                      <Breakable text={row.stage} />
                    </strong>
                    : {row.detail}
                  </li>
                ))}
              </ul>
            </div>
          )}
          <p className="jp-mlops-where">
            {verifyTimings(state.report)}
            {state.report.folder && (
              <>
                ; the runs are kept in <code>{state.report.folder}</code>
              </>
            )}
          </p>
        </div>
      )}
    </section>
  );
}

function DifferenceItem(props: {
  row: DifferenceRow;
  color: string;
  showCell: (index: number) => void;
}): React.ReactElement {
  const { row, color, showCell } = props;
  const style = { '--jp-mlops-stage-color': color } as React.CSSProperties;
  return (
    <li
      className="jp-mlops-verify-difference"
      data-testid="mlops-verify-difference"
      data-stage={row.stage}
      data-label={row.label}
      style={style}
    >
      <div className="jp-mlops-verify-what">
        <span className="jp-mlops-swatch" />
        <span>
          stage{' '}
          <strong>
            <Breakable text={row.stage} />
          </strong>{' '}
          hands on <code>{row.label}</code>
          {row.readers.length > 0 && (
            <span className="jp-mlops-where"> (to {row.readers.join(', ')})</span>
          )}
        </span>
      </div>
      <p className="jp-mlops-verify-detail">{row.detail}</p>
      {row.cell !== null && (
        <button
          type="button"
          className="jp-mod-styled jp-mlops-secondary"
          data-testid="mlops-verify-show-cell"
          data-cell={row.cell}
          title={`Go to cell ${row.cell}, where stage ${row.stage} last sets it`}
          onClick={() => row.cell !== null && showCell(row.cell)}
        >
          Show cell
        </button>
      )}
    </li>
  );
}
