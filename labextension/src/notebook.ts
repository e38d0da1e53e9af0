/**
 * What the extension reads from an open notebook: the snapshot sent for analysis, the
 * edits that make a new analysis worth asking for, and which cells a command acts on.
 */
import type { Cell } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import type {
  INotebookModel,
  INotebookTracker,
  Notebook,
  NotebookPanel
} from '@jupyterlab/notebook';
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

/** What the cell-picking functions read of a notebook (a `Notebook`, or a test's stand-in). */
export interface CellSelection<C> {
  readonly widgets: readonly C[];
  isSelectedOrActive(cell: C): boolean;
}

/** The cells a command acts on: the selected ones, or the active one. */
export function targetCells<C = Cell>(notebook: CellSelection<C>): C[] {
  return notebook.widgets.filter(cell => notebook.isSelectedOrActive(cell));
}

/**
 * The cells a command from the context menu of `cell` acts on: the selection when the cell
 * is part of it, else that cell alone (never cells the pointer was not on). None when the
 * cell has left the notebook.
 */
export function cellsUnderPointer<C>(notebook: CellSelection<C>, cell: C): C[] {
  if (!notebook.widgets.includes(cell)) {
    return [];
  }
  return notebook.isSelectedOrActive(cell) ? targetCells(notebook) : [cell];
}

/** The `origin` argument the cell context menu's items pass to the commands. */
export const CONTEXT_MENU = 'context-menu';

export interface CellTargets {
  panel: NotebookPanel;
  cells: Cell[];
}

/**
 * The cell under the pointer when a context menu last opened on a notebook cell.
 *
 * JupyterLab's context menu gives its commands no event, and a right-click inside a cell's
 * editor does not make that cell active; so a capture-phase listener notes the cell before
 * the menu opens, and makes it the active cell (as a right-click on a prompt does) unless
 * it is already part of the selection. Commands run from the menu (`origin: CONTEXT_MENU`)
 * then act on `cellsUnderPointer`; the toolbar, the palette and the keyboard keep acting on
 * the active and selected cells.
 */
export class ContextMenuTarget implements IDisposable {
  constructor(tracker: INotebookTracker) {
    this._tracker = tracker;
    document.addEventListener('contextmenu', this, true);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The notebook and cells the last context menu is about; null when it was not a cell's. */
  get(): CellTargets | null {
    const last = this._last;
    if (!last || last.panel.isDisposed || last.cell.isDisposed) {
      return null;
    }
    const cells = cellsUnderPointer(last.panel.content, last.cell);
    return cells.length > 0 ? { panel: last.panel, cells } : null;
  }

  handleEvent(event: Event): void {
    this._last = null;
    const mouse = event as MouseEvent;
    if (mouse.shiftKey || !(event.target instanceof Element)) {
      return; // shift + right-click is the browser's own menu
    }
    const node = event.target.closest('.jp-Notebook .jp-Cell');
    const panel = node && this._tracker.find(p => p.content.node.contains(node));
    const notebook = panel?.content;
    const index = notebook ? notebook.widgets.findIndex(cell => cell.node === node) : -1;
    if (!panel || !notebook || index < 0) {
      return;
    }
    const cell = notebook.widgets[index];
    this._last = { panel, cell };
    if (!notebook.isSelectedOrActive(cell)) {
      notebook.deselectAll();
      notebook.activeCellIndex = index;
    }
  }

  dispose(): void {
    if (!this._disposed) {
      this._disposed = true;
      this._last = null;
      document.removeEventListener('contextmenu', this, true);
    }
  }

  private _tracker: INotebookTracker;
  private _last: { panel: NotebookPanel; cell: Cell } | null = null;
  private _disposed = false;
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
