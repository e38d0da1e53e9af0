/**
 * The stage badge on each pipeline cell, and the dimmed look of skip cells, painted from
 * the latest analysis. A badge carries the stage's colour (by its position in run order,
 * as in the sidebar) and its name.
 */
import type { Cell } from '@jupyterlab/cells';
import type { Notebook } from '@jupyterlab/notebook';

import type { CellInfo } from '../api';
import type { AnalysisState } from '../model';
import { stageColor } from '../palette';

const BADGE_CLASS = 'jp-mlops-badge';
const CELL_CLASSES = ['jp-mlops-stage-cell', 'jp-mlops-role-cell', 'jp-mlops-skip-cell'];
const COLOR_VARIABLE = '--jp-mlops-stage-color';

/** The roles that get a neutral badge with their name. */
const ROLE_BADGES: Partial<Record<CellInfo['role'], string>> = {
  setup: 'setup',
  parameters: 'params',
  skip: 'skip'
};

/** Paint every cell from `state`; `null` removes all badges. */
export function paintBadges(notebook: Notebook, state: AnalysisState | null): void {
  const analysis = state?.analysis;
  if (!state || !analysis) {
    notebook.widgets.forEach(cell => paintCell(cell, null, -1));
    return;
  }
  const snapshotIndex = new Map(state.cellIds.map((id, index) => [id, index]));
  const positions = new Map(analysis.stages.map((stage, index) => [stage.name, index]));
  for (const cell of notebook.widgets) {
    const index = snapshotIndex.get(cell.model.id);
    const info = index === undefined ? null : (analysis.cells[index] ?? null);
    paintCell(cell, info, info?.stage ? (positions.get(info.stage) ?? -1) : -1);
  }
}

function paintCell(cell: Cell, info: CellInfo | null, position: number): void {
  const node = cell.node;
  node.classList.remove(...CELL_CLASSES);
  node.style.removeProperty(COLOR_VARIABLE);
  let badge = node.querySelector<HTMLElement>(`:scope > .${BADGE_CLASS}`);
  const label = badgeLabel(info, position);
  if (!info || !label) {
    badge?.remove();
    return;
  }
  if (!badge) {
    badge = document.createElement('div');
    badge.className = BADGE_CLASS;
    node.appendChild(badge);
  }
  badge.textContent = label;
  badge.dataset.role = info.role;
  if (info.role === 'stage' && info.stage) {
    node.classList.add('jp-mlops-stage-cell');
    node.style.setProperty(COLOR_VARIABLE, stageColor(position));
    badge.dataset.stage = info.stage;
    badge.title = `Pipeline stage “${info.stage}” (${position + 1} in run order)`;
  } else {
    node.classList.add(info.role === 'skip' ? 'jp-mlops-skip-cell' : 'jp-mlops-role-cell');
    delete badge.dataset.stage;
    badge.title = roleTitle(info.role);
  }
}

function badgeLabel(info: CellInfo | null, position: number): string | null {
  if (info?.role === 'stage' && info.stage && position >= 0) {
    return info.stage;
  }
  return info ? (ROLE_BADGES[info.role] ?? null) : null;
}

function roleTitle(role: CellInfo['role']): string {
  switch (role) {
    case 'setup':
      return 'Setup: runs at the start of every stage';
    case 'parameters':
      return 'The pipeline’s parameters';
    default:
      return 'Skipped: not part of the pipeline';
  }
}
