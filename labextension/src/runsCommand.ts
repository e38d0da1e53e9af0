/**
 * The `jupyter-mlops:open-runs` command ("Pipeline Runs"): opens the Runs panel of a notebook
 * in the main area, or brings forward the one already open; open panels come back after a
 * page reload.
 */
import type { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { type ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';

import { pipelineIcon } from './icons';
import { RunsPanel } from './runsPanel';
import type { RunsModel } from './runsModel';
import { CommandIDs } from './tokens';

export interface RunsCommandOptions {
  app: JupyterFrontEnd;
  tracker: INotebookTracker;
  model: RunsModel;
  palette: ICommandPalette | null;
  restorer: ILayoutRestorer | null;
}

export function registerRunsPanel(options: RunsCommandOptions): WidgetTracker<RunsPanel> {
  const { app, tracker, model, palette, restorer } = options;
  const panels = new WidgetTracker<RunsPanel>({ namespace: 'jupyter-mlops-runs' });
  const pathOf = (args: Record<string, unknown>): string | null =>
    typeof args.path === 'string' && args.path
      ? args.path
      : (tracker.currentWidget?.context.path ?? null);

  app.commands.addCommand(CommandIDs.openRuns, {
    label: 'Pipeline Runs',
    caption: "The notebook's past runs: open, re-run, cancel and compare them",
    icon: pipelineIcon,
    isEnabled: args => pathOf(args) !== null,
    execute: async args => {
      const path = pathOf(args);
      if (path === null) {
        return;
      }
      let panel = panels.find(open => open.path === path);
      if (!panel) {
        panel = new RunsPanel({ path, model, commands: app.commands });
        app.shell.add(panel, 'main');
        await panels.add(panel);
      }
      app.shell.activateById(panel.id);
    }
  });
  palette?.addItem({ command: CommandIDs.openRuns, category: 'ML Pipeline' });
  void restorer?.restore(panels, {
    command: CommandIDs.openRuns,
    args: panel => ({ path: panel.path }),
    name: panel => panel.path
  });
  return panels;
}
