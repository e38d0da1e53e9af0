/** Bringing a cell into view, for every "go to the cell" click of the extension. */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { NotebookPanel } from '@jupyterlab/notebook';

const HIGHLIGHT_CLASS = 'jp-mlops-highlight';
const HIGHLIGHT_MS = 2500;

/**
 * Activate the notebook, select and scroll to cell `index` (an index into the notebook's
 * current cells) and flash it so the eye finds it.
 */
export async function showCell(
  shell: JupyterFrontEnd.IShell,
  panel: NotebookPanel,
  index: number
): Promise<void> {
  const notebook = panel.content;
  const cell = notebook.widgets[index];
  if (!cell) {
    return;
  }
  shell.activateById(panel.id);
  notebook.activeCellIndex = index;
  await notebook.scrollToCell(cell, 'center');
  cell.node.classList.add(HIGHLIGHT_CLASS);
  setTimeout(() => cell.node.classList.remove(HIGHLIGHT_CLASS), HIGHLIGHT_MS);
}
