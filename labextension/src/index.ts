/**
 * The JupyterLab plugin of jupyter-mlops: it creates the models, the sidebar, the Runs panel
 * and the commands, and wires them to the notebooks and the user's settings.
 */
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import * as api from './api';
import { PALETTE_COMMANDS, registerCommands } from './commands';
import { errorMessage, isUnavailable } from './errors';
import { AnalysisModel } from './model';
import { PanelBinding } from './panels';
import { ParameterForms } from './params';
import { RunManager } from './runs';
import { registerRunsPanel } from './runsCommand';
import { RunsModel } from './runsModel';
import { PipelineSidebar } from './sidebar/widget';
import { SweepManager } from './sweeps';
import { VerifyManager } from './verify';
import { CommandIDs, DEFAULT_SETTINGS, PLUGIN_ID, readSettings, SIDEBAR_ID } from './tokens';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Pipeline sidebar, cell tagging, Productionize, Sweep, Verify and the Runs panel for jupyter-mlops',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    let settings = DEFAULT_SETTINGS;
    const readCurrent = () => settings;
    const analyses = new AnalysisModel({ analyze: api.analyze, delay: settings.debounceMs });
    const runs = new RunManager({ api });
    const verifications = new VerifyManager({ api });
    const sweeps = new SweepManager({ api });
    const forms = new ParameterForms();
    registerCommands({
      app,
      tracker,
      analyses,
      runs,
      verifications,
      forms,
      settings: readCurrent
    });
    for (const command of PALETTE_COMMANDS) {
      palette?.addItem({ command, category: 'ML Pipeline' });
    }

    // The Runs panel (main area): a notebook's past runs. A run Productionize starts or
    // ends shows up in an open panel at once.
    const history = new RunsModel({ api, jobs: () => settings.defaultJobs || undefined });
    registerRunsPanel({ app, tracker, model: history, palette, restorer });
    runs.changed.connect((_, key) => {
      const run = runs.get(key).run;
      if (run) {
        history.notice(run);
      }
    });

    // The toolbar button's enabled state follows the notebook's run.
    const refreshRunCommands = () => {
      app.commands.notifyCommandChanged(CommandIDs.productionize);
      app.commands.notifyCommandChanged(CommandIDs.cancelRun);
      app.commands.notifyCommandChanged(CommandIDs.verify);
    };
    runs.changed.connect(refreshRunCommands);
    verifications.changed.connect(() => app.commands.notifyCommandChanged(CommandIDs.verify));
    tracker.currentChanged.connect(refreshRunCommands);

    const sidebar = new PipelineSidebar({
      tracker,
      analyses,
      runs,
      sweeps,
      verifications,
      forms,
      commands: app.commands,
      shell: app.shell,
      places: path => api.getConfig(path)
    });
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, SIDEBAR_ID);

    // Notebooks are analyzed only once the server extension has answered: without it
    // every edit would end in a failed request.
    let binding: PanelBinding | null = null;
    const bindNotebooks = () => {
      binding = new PanelBinding({
        tracker,
        analyses,
        runs,
        sweeps,
        verifications,
        forms,
        settings: readCurrent
      });
    };
    api
      .getConfig()
      .then(config => {
        sidebar.server = { config, unavailable: false };
        bindNotebooks();
      })
      .catch(error => {
        sidebar.server = { config: null, unavailable: isUnavailable(error) };
        if (isUnavailable(error)) {
          console.warn(
            `jupyter-mlops: the server extension is not available (${errorMessage(error)})`
          );
        } else {
          bindNotebooks();
        }
      });

    settingRegistry
      ?.load(PLUGIN_ID)
      .then(loaded => {
        const apply = () => {
          settings = readSettings(loaded);
          analyses.delay = settings.debounceMs;
          binding?.repaint();
        };
        apply();
        loaded.changed.connect(apply);
      })
      .catch(error => console.error(`jupyter-mlops: could not load the settings: ${error}`));
  }
};

export default plugin;
