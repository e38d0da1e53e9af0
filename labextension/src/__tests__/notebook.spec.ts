import { type CellSelection, cellsUnderPointer, targetCells } from '../notebook';

/** A notebook of cells 0..count-1, `active` active and `selected` selected. */
function notebook(count: number, active: number, selected: number[] = []): CellSelection<number> {
  const widgets = Array.from({ length: count }, (_, index) => index);
  return {
    widgets,
    isSelectedOrActive: cell => cell === active || selected.includes(cell)
  };
}

describe('the cells a command acts on', () => {
  it('from the toolbar, palette or keyboard: the selection, or the active cell', () => {
    expect(targetCells(notebook(5, 2))).toEqual([2]);
    expect(targetCells(notebook(5, 3, [2, 3]))).toEqual([2, 3]);
  });

  it('from the context menu: the cell under the pointer, not the active one', () => {
    // A markdown cell (1) is active; the right-click was in the editor of cell 3.
    expect(cellsUnderPointer(notebook(5, 1), 3)).toEqual([3]);
    // A selection elsewhere is left alone too.
    expect(cellsUnderPointer(notebook(5, 1, [0, 1]), 3)).toEqual([3]);
  });

  it('from the context menu of a selected cell: the whole selection', () => {
    expect(cellsUnderPointer(notebook(5, 3, [2, 3, 4]), 2)).toEqual([2, 3, 4]);
    expect(cellsUnderPointer(notebook(5, 3), 3)).toEqual([3]);
  });

  it('from the context menu of a cell that was deleted since: nothing', () => {
    expect(cellsUnderPointer(notebook(3, 0), 7)).toEqual([]);
  });
});
