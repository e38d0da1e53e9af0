/**
 * What the extension reads from an open notebook: the snapshot sent for analysis, the
 * edits that make a new analysis worth asking for, and which cells a command acts on.
 */
import type { Cell } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import type { INotebookModel, Notebook, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate, type IDisposable } from '@lumino/disposable';

import type { Snapshot } from './model';

/**
 * The notebook as the browser holds it, unsaved edits included. Outputs are left out:
 * the analysis reads code and tags only, and outputs (images above all) would make every
 * request as big as the notebook file.
 */
export function snapshot(panel: NotebookPanel): Snapshot {
  const model = panel.context.model;
  const notebook = model.toJSON() as nbformat.INotebookContent;
  const cells = notebook.cells.map(cell =>
    cell.cell_type === 'code' ? { ...cell, outputs: [], execution_count: null } : cell
  );
  return {
    request: { notebook: { ...notebook, cells }, path: panel.context.path },
    cellIds: Array.from(model.cells, cell => cell.id)
  };
}

/**
 * Call `onChange` when something the analysis reads changes: cells added, removed or
 * moved, a cell's source or metadata (its tags), the notebook's metadata. Running cells
 * (outputs, execution counts) does not count.
 */
export function watchNotebook(model: INotebookModel, onChange: () => void): IDisposable {
  const shared = model.sharedModel;
  type SharedCell = (typeof shared.cells)[number];
  const onCell = (_: SharedCell, change: { sourceChange?: unknown; metadataChange?: unknown }) => {
    if (change.sourceChange || change.metadataChange) {
      onChange();
    }
  };
  const connectCells = () => {
    // Connecting twice is a no-op in Lumino, and removed cells drop their connections
    // when they are disposed, so connecting every cell after each change is enough.
    for (const cell of shared.cells) {
      cell.changed.connect(onCell);
    }
  };
  // The notebook's own signal also reports state such as "dirty", which is no edit.
  const onNotebook = (_: unknown, change: { cellsChange?: unknown; metadataChange?: unknown }) => {
    if (change.cellsChange) {
      connectCells();
    }
    if (change.cellsChange || change.metadataChange) {
      onChange();
    }
  };
  connectCells();
  shared.changed.connect(onNotebook);
  return new DisposableDelegate(() => {
    shared.changed.disconnect(onNotebook);
    for (const cell of shared.cells) {
      cell.changed.disconnect(onCell);
    }
  });
}

/** The cells a command acts on: the selected ones, or the active one. */
export function targetCells(notebook: Notebook): Cell[] {
  return notebook.widgets.filter(cell => notebook.isSelectedOrActive(cell));
}

/**
 * Where the cell that was at `index` in an analysed snapshot is now. Cells may have been
 * added or moved since the snapshot; the cell ids say where it went. -1 when it is gone.
 */
export function currentIndex(
  notebook: Notebook,
  cellIds: readonly string[],
  index: number
): number {
  const id = cellIds[index];
  if (id === undefined) {
    return index < notebook.widgets.length ? index : -1;
  }
  return notebook.widgets.findIndex(cell => cell.model.id === id);
}
