/**
 * Names other code relies on: the plugin id (which is also the settings schema's id), the
 * command ids a browser test calls, and the user's settings.
 */
import type { ISettingRegistry } from '@jupyterlab/settingregistry';

export const PLUGIN_ID = 'jupyter-mlops:plugin';

/** The id of the sidebar widget, for `shell.activateById`. */
export const SIDEBAR_ID = 'jupyter-mlops-sidebar';

export namespace CommandIDs {
  /** args: `{name?: string}`; without a name, a dialog asks for one */
  export const setStage = 'jupyter-mlops:set-stage';
  export const toggleSetup = 'jupyter-mlops:toggle-setup';
  export const toggleSkip = 'jupyter-mlops:toggle-skip';
  export const toggleParameters = 'jupyter-mlops:toggle-parameters';
  export const toggleMetrics = 'jupyter-mlops:toggle-metrics';
  /** args: `{variable?: string}`; without a variable, a dialog asks for one */
  export const addModel = 'jupyter-mlops:add-model';
  export const clearRole = 'jupyter-mlops:clear-role';
  export const analyze = 'jupyter-mlops:analyze';
  export const productionize = 'jupyter-mlops:productionize';
  export const cancelRun = 'jupyter-mlops:cancel-run';
  export const verify = 'jupyter-mlops:verify';
  export const openSidebar = 'jupyter-mlops:open-sidebar';
  /**
   * The Runs panel of a notebook, in the main area. args: `{path?: string}`, the notebook
   * relative to the server root; without it, the current notebook
   */
  export const openRuns = 'jupyter-mlops:open-runs';
}

/** The user's defaults, from the Settings Editor (labextension/schema/plugin.json). */
export interface MlopsSettings {
  autoAnalyze: boolean;
  debounceMs: number;
  showBadges: boolean;
  defaultJobs: number;
}

export const DEFAULT_SETTINGS: MlopsSettings = {
  autoAnalyze: true,
  debounceMs: 500,
  showBadges: true,
  defaultJobs: 0
};

export function readSettings(settings: ISettingRegistry.ISettings): MlopsSettings {
  const composite = settings.composite as Partial<MlopsSettings>;
  return { ...DEFAULT_SETTINGS, ...composite };
}
