/** Small pieces the sidebar's sections share. */
import * as React from 'react';

import { valueName } from '../api';
import { breakPoints } from '../cells/labels';

/**
 * A long name (a stage, a run id, a model URI) that may wrap at its underscores, dashes,
 * slashes and before `@`, rather than anywhere in a word; the text is unchanged.
 */
export function Breakable(props: { text: string }): React.ReactElement {
  const pieces = breakPoints(props.text);
  return (
    <>
      {pieces.map((piece, index) => (
        <React.Fragment key={index}>
          {index > 0 && <wbr />}
          {piece}
        </React.Fragment>
      ))}
    </>
  );
}

export function Section(props: {
  title: string;
  testid: string;
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <section className="jp-mlops-section" data-testid={props.testid}>
      <h3 className="jp-mlops-section-title">{props.title}</h3>
      {props.children}
    </section>
  );
}

/** Buttons that jump to cells, labelled with the cells' indexes (0-based, as nbformat). */
export function CellLinks(props: {
  cells: readonly number[];
  onShow: (index: number) => void;
}): React.ReactElement {
  return (
    <span className="jp-mlops-cell-links">
      {props.cells.map(index => (
        <button
          key={index}
          type="button"
          className="jp-mlops-cell-link"
          data-cell={index}
          title={`Go to cell ${index}`}
          onClick={() => props.onShow(index)}
        >
          {index}
        </button>
      ))}
    </span>
  );
}

/** Variable names in code style, with an optional tooltip each. */
export function Names(props: {
  names: readonly string[];
  title?: (name: string) => string;
}): React.ReactElement {
  return (
    <span className="jp-mlops-names">
      {props.names.map(name => (
        <code key={name} title={props.title?.(name)}>
          <Breakable text={valueName(name)} />
        </code>
      ))}
    </span>
  );
}
