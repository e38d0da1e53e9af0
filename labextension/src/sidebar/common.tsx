/** Small pieces the sidebar's sections share. */
import * as React from 'react';

import { valueName } from '../api';

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
          {valueName(name)}
        </code>
      ))}
    </span>
  );
}
