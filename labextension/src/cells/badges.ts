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
import { fontMeasure, type Measure, wrapText } from './labels';

const BADGE_CLASS = 'jp-mlops-badge';
const TALL_CLASS = 'jp-mlops-tall-badge';
const CELL_CLASSES = [
  'jp-mlops-stage-cell',
  'jp-mlops-role-cell',
  'jp-mlops-skip-cell',
  TALL_CLASS
];
const COLOR_VARIABLE = '--jp-mlops-stage-color';
/** How many lines the cell's badge has: the cell keeps room for more than one below its prompt. */
const LINES_VARIABLE = '--jp-mlops-badge-lines';

/** The roles that get a neutral badge with their name. */
const ROLE_BADGES: Partial<Record<CellInfo['role'], string>> = {
  setup: 'setup',
  parameters: 'params',
  skip: 'skip'
};

/** Paint every cell from `state`; `null` removes all badges. */
export function paintBadges(notebook: Notebook, state: AnalysisState | null): void {
  const analysis = state?.analysis;
  const fit = new BadgeFit();
  if (!state || !analysis) {
    notebook.widgets.forEach(cell => paintCell(cell, null, -1, fit));
    return;
  }
  const snapshotIndex = new Map(state.cellIds.map((id, index) => [id, index]));
  const positions = new Map(analysis.stages.map((stage, index) => [stage.name, index]));
  for (const cell of notebook.widgets) {
    const index = snapshotIndex.get(cell.model.id);
    const info = index === undefined ? null : (analysis.cells[index] ?? null);
    paintCell(cell, info, info?.stage ? (positions.get(info.stage) ?? -1) : -1, fit);
  }
}

/**
 * Lines for badge labels: a badge is as narrow as the prompt column, so a long stage name
 * wraps (at its underscores where it can) instead of being cut. The font and width are
 * read from the first badge, once per painting.
 */
class BadgeFit {
  lines(badge: HTMLElement, label: string): string[] {
    if (!this._measure) {
      const style = getComputedStyle(badge);
      const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
      // A pixel to spare: the canvas and the page may round a text's width differently.
      this._width = (parseFloat(style.maxWidth) || 60) - (padding || 0) - 1;
      this._measure = fontMeasure(`${style.fontWeight} ${style.fontSize} ${style.fontFamily}`);
    }
    return wrapText(label, this._width, this._measure);
  }

  private _measure: Measure | null = null;
  private _width = 0;
}

function paintCell(cell: Cell, info: CellInfo | null, position: number, fit: BadgeFit): void {
  const node = cell.node;
  node.classList.remove(...CELL_CLASSES);
  node.style.removeProperty(COLOR_VARIABLE);
  node.style.removeProperty(LINES_VARIABLE);
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
  if (badge.dataset.label !== label) {
    // The lines as one text with a break opportunity (<wbr>) where each ends: the badge
    // wraps there, and its text stays the name.
    const lines = fit.lines(badge, label);
    badge.replaceChildren(
      ...lines.flatMap((line, index) =>
        index > 0 ? [document.createElement('wbr'), line] : [line]
      )
    );
    badge.dataset.label = label;
    badge.dataset.lines = String(lines.length);
  }
  const lines = badge.dataset.lines ?? '1';
  node.style.setProperty(LINES_VARIABLE, lines);
  node.classList.toggle(TALL_CLASS, lines !== '1');
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
