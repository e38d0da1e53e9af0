/**
 * The commands: tagging the selected cells, analysis, Productionize and the sidebar.
 * Every command that asks for a value in a dialog also takes it as an argument, so that
 * tests and other extensions can run it without the dialog.
 *
 * The tagging commands act on the active and selected cells; run from a cell's context menu
 * (which passes `origin: "context-menu"`), on the cell under the pointer, or on the
 * selection when that cell is part of it.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { showErrorMessage } from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { showCell } from './cells/navigation';
import { askModelVariable, askStageName, editTags } from './cells/tagging';
import { pipelineIcon } from './icons';
import type { AnalysisModel } from './model';
import {
  CONTEXT_MENU,
  ContextMenuTarget,
  type CellTargets,
  snapshot,
  targetCells
} from './notebook';
import { collectValues, type ParameterForms } from './params';
import { isActive, isCancellable } from './progress';
import type { RunManager } from './runs';
import { isVerifying, type VerifyManager } from './verify';
import {
  addModel,
  clearAllRoles,
  clearRole,
  hasMetrics,
  hasRole,
  isIdentifier,
  isValidStageName,
  type PlainRole,
  readTags,
  setMetrics,
  setRole,
  setStage,
  stageOf,
  suggestStageName
} from './tags';
import { CommandIDs, type MlopsSettings, SIDEBAR_ID } from './tokens';

export interface CommandContext {
  app: JupyterFrontEnd;
  tracker: INotebookTracker;
  analyses: AnalysisModel;
  runs: RunManager;
  verifications: VerifyManager;
  forms: ParameterForms;
  settings: () => MlopsSettings;
}

/** The commands listed in the command palette, in this order. */
export const PALETTE_COMMANDS = [
  CommandIDs.productionize,
  CommandIDs.cancelRun,
  CommandIDs.verify,
  CommandIDs.analyze,
  CommandIDs.openSidebar,
  CommandIDs.setStage,
  CommandIDs.addModel,
  CommandIDs.clearRole
];

function cellTags(cell: Cell | null | undefined): string[] {
  return readTags(cell?.model.getMetadata('tags'));
}

function stringArg(args: ReadonlyPartialJSONObject, name: string): string | null {
  const value = args[name];
  return typeof value === 'string' ? value.trim() : null;
}

/** The notebook and cells a tagging command acts on, given its arguments. */
type Targets = (args: ReadonlyPartialJSONObject) => CellTargets | null;

export function registerCommands(context: CommandContext): void {
  const { app, tracker, analyses, runs, verifications } = context;
  const { commands } = app;
  const current = (): NotebookPanel | null => tracker.currentWidget;
  const hasNotebook = () => current() !== null;
  const pointer = new ContextMenuTarget(tracker);
  const targets: Targets = args => {
    if (args.origin === CONTEXT_MENU) {
      return pointer.get();
    }
    const panel = current();
    return panel ? { panel, cells: targetCells(panel.content) } : null;
  };

  addNamingCommand(app, targets, CommandIDs.setStage, {
    label: 'Set Pipeline Stage…',
    caption: 'Make the selected cells start (or continue) a pipeline stage',
    argument: 'name',
    ask: (panel, cells) => {
      const state = analyses.get(panel.id);
      const stages = state.analysis?.stages.map(stage => stage.name) ?? [];
      const active = panel.content.activeCell;
      const first = active && cells.includes(active) ? active : cells[0];
      // An untagged cell continues the stage above it: offer that one.
      const inferred = state.analysis?.cells[state.cellIds.indexOf(first?.model.id ?? '')];
      return askStageName(stages, stageOf(cellTags(first)) ?? inferred?.stage ?? '');
    },
    invalid: name =>
      isValidStageName(name)
        ? null
        : `\`${name}\` is not a valid stage name; try \`${suggestStageName(name)}\``,
    apply: setStage
  });

  const roles: Array<[string, PlainRole, string, string]> = [
    [CommandIDs.toggleSetup, 'setup', 'Setup Cell', 'Runs at the start of every stage'],
    [CommandIDs.toggleSkip, 'skip', 'Skip Cell', 'Never part of the pipeline'],
    [CommandIDs.toggleParameters, 'parameters', 'Parameters Cell', 'The pipeline parameters']
  ];
  for (const [id, role, label, caption] of roles) {
    addToggle(app, targets, id, label, caption, {
      has: tags => hasRole(tags, role),
      set: tags => setRole(tags, role),
      clear: tags => clearRole(tags, role)
    });
  }
  addToggle(app, targets, CommandIDs.toggleMetrics, 'Metrics Cell', 'Log its numbers to MLflow', {
    has: hasMetrics,
    set: tags => setMetrics(tags, true),
    clear: tags => setMetrics(tags, false)
  });

  addNamingCommand(app, targets, CommandIDs.addModel, {
    label: 'Log Variable as Model…',
    caption: 'Log and register a variable as an MLflow model after this stage',
    argument: 'variable',
    ask: (panel, cells) => askModelVariable(touchedBy(context, panel, cells)),
    invalid: variable =>
      isIdentifier(variable) ? null : `\`${variable}\` is not a Python variable name`,
    apply: addModel
  });

  commands.addCommand(CommandIDs.clearRole, {
    label: 'Clear Pipeline Role',
    caption: 'Remove the stage, setup, skip or parameters tag of the selected cells',
    isEnabled: args => targets(args) !== null,
    execute: args => {
      const target = targets(args);
      if (target) {
        editTags(target.panel.content, target.cells, clearAllRoles);
      }
    }
  });

  commands.addCommand(CommandIDs.analyze, {
    label: 'Analyze Pipeline Now',
    isEnabled: hasNotebook,
    execute: async () => {
      const panel = current();
      if (panel) {
        await analyses.refresh(panel.id, () => snapshot(panel));
      }
    }
  });

  commands.addCommand(CommandIDs.productionize, {
    label: 'Productionize',
    caption: 'Save, check, run every stage and log to MLflow',
    icon: pipelineIcon,
    isEnabled: () => {
      const panel = current();
      return panel !== null && !isActive(runs.get(panel.id));
    },
    execute: () => productionize(context)
  });

  commands.addCommand(CommandIDs.cancelRun, {
    label: 'Cancel Pipeline Run',
    isEnabled: () => {
      const panel = current();
      return panel !== null && isCancellable(runs.get(panel.id));
    },
    execute: async () => {
      const panel = current();
      if (panel) {
        await runs.cancel(panel.id);
      }
    }
  });

  commands.addCommand(CommandIDs.verify, {
    label: 'Verify Pipeline Against Notebook',
    caption:
      'Save, run the notebook top to bottom and as a pipeline, and compare every value a stage hands on',
    isEnabled: () => {
      const panel = current();
      return panel !== null && !isVerifying(verifications.get(panel.id));
    },
    execute: async () => {
      const panel = current();
      if (panel) {
        app.shell.activateById(SIDEBAR_ID);
        await verifications.verify(panel.id, {
          path: panel.context.path,
          save: () => panel.context.save()
        });
      }
    }
  });

  commands.addCommand(CommandIDs.openSidebar, {
    label: 'Show Pipeline Sidebar',
    icon: pipelineIcon,
    execute: () => app.shell.activateById(SIDEBAR_ID)
  });
}

interface NamingCommand {
  label: string;
  caption: string;
  /** the command argument that gives the value without a dialog */
  argument: string;
  /** the dialog: the value, or null when the user cancelled */
  ask: (panel: NotebookPanel, cells: readonly Cell[]) => Promise<string | null>;
  /** why a value given as the argument is refused, or null when it is fine */
  invalid: (value: string) => string | null;
  apply: (tags: readonly string[], value: string) => readonly string[];
}

/** A command that tags the selected cells with a value: asked for, or given as an argument. */
function addNamingCommand(
  app: JupyterFrontEnd,
  targets: Targets,
  id: string,
  spec: NamingCommand
): void {
  app.commands.addCommand(id, {
    label: spec.label,
    caption: spec.caption,
    isEnabled: args => targets(args) !== null,
    execute: async args => {
      const target = targets(args);
      if (!target) {
        return;
      }
      const { panel, cells } = target;
      const given = stringArg(args, spec.argument);
      const problem = given === null ? null : spec.invalid(given);
      if (problem) {
        throw new Error(problem);
      }
      const value = given ?? (await spec.ask(panel, cells));
      if (value) {
        editTags(panel.content, cells, tags => spec.apply(tags, value));
      }
    }
  });
}

interface ToggleEdits {
  has: (tags: readonly string[]) => boolean;
  set: (tags: readonly string[]) => readonly string[];
  clear: (tags: readonly string[]) => readonly string[];
}

/**
 * A toggle over the selected cells: when all of them have the flag it is removed from
 * all, otherwise every cell gets it (as JupyterLab's own toggles over a selection do).
 * It shows checked when all of them have it.
 */
function addToggle(
  app: JupyterFrontEnd,
  targets: Targets,
  id: string,
  label: string,
  caption: string,
  edits: ToggleEdits
): void {
  const allHave = (cells: readonly Cell[]) =>
    cells.length > 0 && cells.every(cell => edits.has(cellTags(cell)));
  app.commands.addCommand(id, {
    label,
    caption,
    isEnabled: args => targets(args) !== null,
    isToggled: args => allHave(targets(args)?.cells ?? []),
    execute: args => {
      const target = targets(args);
      if (target) {
        const { cells } = target;
        editTags(target.panel.content, cells, allHave(cells) ? edits.clear : edits.set);
      }
    }
  });
}

/** The names the cells assign or mutate, per the latest analysis, for the model dialog. */
function touchedBy(
  context: CommandContext,
  panel: NotebookPanel,
  cells: readonly Cell[]
): string[] {
  const state = context.analyses.get(panel.id);
  const names = new Set<string>();
  for (const cell of cells) {
    const index = state.cellIds.indexOf(cell.model.id);
    for (const name of state.analysis?.cells[index]?.touches ?? []) {
      names.add(name);
    }
  }
  return [...names];
}

/**
 * Productionize the current notebook with the sidebar's parameter values. A check that
 * finds errors brings the first error's cell into view.
 */
async function productionize(context: CommandContext): Promise<void> {
  const { app, tracker, analyses, runs, forms, settings } = context;
  const panel = tracker.currentWidget;
  if (!panel) {
    return;
  }
  app.shell.activateById(SIDEBAR_ID);
  const key = panel.id;
  const parameters = analyses.get(key).analysis?.parameters ?? [];
  const { values, errors } = collectValues(forms.get(key), parameters);
  const invalid = Object.entries(errors);
  if (invalid.length > 0) {
    await showErrorMessage(
      'Check the parameters',
      invalid.map(([name, error]) => `${name}: ${error}`).join('\n')
    );
    return;
  }
  const state = await runs.productionize(key, {
    path: panel.context.path,
    save: () => panel.context.save(),
    parameters: values,
    // 0, the default: no `jobs`, so the server decides (its cores, as `jupyter-mlops run`)
    jobs: settings().defaultJobs || undefined
  });
  const firstError = state.problems.find(problem => problem.cell !== null);
  if (state.phase === 'blocked' && firstError?.cell != null) {
    await showCell(app.shell, panel, firstError.cell);
  }
}
