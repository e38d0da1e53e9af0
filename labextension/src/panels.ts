/**
 * Ties each open notebook to the models: its edits schedule analyses, its analyses paint
 * the cell badges and refresh the parameter form, and closing it drops its state.
 */
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableSet, type IDisposable } from '@lumino/disposable';

import { paintBadges } from './cells/badges';
import type { AnalysisModel } from './model';
import { snapshot, watchNotebook } from './notebook';
import type { ParameterForms } from './params';
import type { RunManager } from './runs';
import type { SweepManager } from './sweeps';
import type { MlopsSettings } from './tokens';
import type { VerifyManager } from './verify';

export interface PanelBindingOptions {
  tracker: INotebookTracker;
  analyses: AnalysisModel;
  runs: RunManager;
  sweeps: SweepManager;
  verifications: VerifyManager;
  forms: ParameterForms;
  settings: () => MlopsSettings;
}

export class PanelBinding implements IDisposable {
  constructor(options: PanelBindingOptions) {
    this._options = options;
    options.tracker.widgetAdded.connect((_, panel) => this._bind(panel), this);
    options.tracker.forEach(panel => this._bind(panel));
    options.analyses.changed.connect(this._onAnalysis, this);
  }

  get isDisposed(): boolean {
    return this._bindings.isDisposed;
  }

  /** Paint the badges of every open notebook again (the badge setting changed). */
  repaint(): void {
    this._options.tracker.forEach(panel => this._paint(panel));
  }

  dispose(): void {
    this._bindings.dispose();
  }

  private _bind(panel: NotebookPanel): void {
    const { analyses, runs, sweeps, verifications, forms, settings } = this._options;
    const key = panel.id;
    const analyzeLater = () => {
      if (settings().autoAnalyze) {
        analyses.schedule(key, () => snapshot(panel));
      }
    };
    const watch = new DisposableSet();
    this._bindings.add(watch);
    void panel.context.ready.then(() => {
      if (panel.isDisposed) {
        return;
      }
      watch.add(watchNotebook(panel.context.model, analyzeLater));
      if (settings().autoAnalyze) {
        void analyses.refresh(key, () => snapshot(panel));
      }
      void runs.resume(key, panel.context.path);
      void sweeps.load(key, panel.context.path);
    });
    // The pipeline's default name comes from the file name.
    panel.context.pathChanged.connect(analyzeLater);
    panel.disposed.connect(() => {
      panel.context.pathChanged.disconnect(analyzeLater);
      watch.dispose();
      this._bindings.remove(watch);
      analyses.forget(key);
      runs.forget(key);
      sweeps.forget(key);
      verifications.forget(key);
      forms.forget(key);
    });
  }

  private _onAnalysis(_: AnalysisModel, key: string): void {
    const panel = this._options.tracker.find(widget => widget.id === key);
    const analysis = this._options.analyses.get(key).analysis;
    if (panel && analysis) {
      this._options.forms.sync(key, analysis.parameters);
      this._paint(panel);
    }
  }

  private _paint(panel: NotebookPanel): void {
    const { analyses, settings } = this._options;
    paintBadges(panel.content, settings().showBadges ? analyses.get(panel.id) : null);
  }

  private _options: PanelBindingOptions;
  private _bindings = new DisposableSet();
}
