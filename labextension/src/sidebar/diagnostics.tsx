/** Errors and warnings of the analysis (or of the check that stopped a run), errors first. */
import * as React from 'react';

import type { Diagnostic } from '../api';

export function DiagnosticList(props: {
  diagnostics: readonly Diagnostic[];
  onShowCell: (index: number) => void;
}): React.ReactElement {
  const sorted = [...props.diagnostics].sort(
    (a, b) => Number(a.severity !== 'error') - Number(b.severity !== 'error')
  );
  return (
    <ul className="jp-mlops-diagnostics">
      {sorted.map((diagnostic, i) => {
        const { cell } = diagnostic;
        const where =
          cell === null
            ? ''
            : `cell ${cell}${diagnostic.line === null ? '' : `, line ${diagnostic.line}`}`;
        return (
          <li
            key={i}
            className={`jp-mlops-diagnostic jp-mod-${diagnostic.severity}`}
            data-code={diagnostic.code}
            data-severity={diagnostic.severity}
          >
            <button
              type="button"
              disabled={cell === null}
              title={cell === null ? undefined : `Go to cell ${cell}`}
              onClick={() => cell !== null && props.onShowCell(cell)}
            >
              <span className="jp-mlops-severity">{diagnostic.severity}</span>
              <span className="jp-mlops-message">{diagnostic.message}</span>
              {where && <span className="jp-mlops-where">{where}</span>}
            </button>
          </li>
        );
      })}
    </ul>
  );
}
