/**
 * The left sidebar: the pipeline of the active notebook, its parameters, its runs, its sweep
 * and its verification.
 *
 * It holds no state of its own: it renders the models (analysis, forms, runs, sweeps,
 * verifications)
 * for the current notebook and re-renders when any of them changes for that notebook.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { historyIcon, ReactWidget, refreshIcon } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import type { ServerConfig } from '../api';
import { showCell } from '../cells/navigation';
import { pipelineIcon } from '../icons';
import type { AnalysisModel, AnalysisState } from '../model';
import { currentIndex } from '../notebook';
import type { ParameterForms } from '../params';
import { isActive } from '../progress';
import type { RunManager } from '../runs';
import { loggedMetrics, type SweepManager } from '../sweeps';
import { CommandIDs, SIDEBAR_ID } from '../tokens';
import { isVerifying, type VerifyManager } from '../verify';
import { Breakable, Section } from './common';
import { DagView } from './dag';
import { DiagnosticList } from './diagnostics';
import { ParameterForm } from './parameters';
import { RunPanel } from './run';
import { StageList } from './stages';
import { SweepSection } from './sweep';
import { VerifyPanel } from './verify';

export interface SidebarOptions {
  tracker: INotebookTracker;
  analyses: AnalysisModel;
  runs: RunManager;
  sweeps: SweepManager;
  verifications: VerifyManager;
  forms: ParameterForms;
  commands: CommandRegistry;
  shell: JupyterFrontEnd.IShell;
  /**
   * Where a notebook's runs go (`GET config?path=`): its project's store and run folders,
   * which differ between notebooks of different repositories under one server
   */
  places: (path: string) => Promise<ServerConfig>;
}

/** What the server said about itself: its config, or that the extension is missing. */
export interface ServerState {
  config: ServerConfig | null;
  unavailable: boolean;
}

export class PipelineSidebar extends ReactWidget {
  constructor(options: SidebarOptions) {
    super();
    this._options = options;
    this.id = SIDEBAR_ID;
    this.addClass('jp-mlops-sidebar');
    this.title.icon = pipelineIcon;
    this.title.caption = 'ML pipeline';
    const { tracker, analyses, runs, sweeps, verifications, forms } = options;
    tracker.currentChanged.connect(() => {
      // Asked again each time a notebook comes to the front: a repository made since counts.
      this._places.delete(tracker.currentWidget?.context.path ?? '');
      this.update();
    }, this);
    analyses.changed.connect(this._onModelChanged, this);
    runs.changed.connect(this._onModelChanged, this);
    sweeps.changed.connect(this._onModelChanged, this);
    verifications.changed.connect(this._onModelChanged, this);
    forms.changed.connect(this._onModelChanged, this);
  }

  set server(server: ServerState) {
    this._server = server;
    this.update();
  }

  protected render(): React.ReactElement {
    const panel = this._options.tracker.currentWidget;
    if (!panel) {
      return (
        <div className="jp-mlops-body">
          <p className="jp-mlops-empty">Open a notebook to see its pipeline.</p>
        </div>
      );
    }
    return this._renderNotebook(panel);
  }

  private _renderNotebook(panel: NotebookPanel): React.ReactElement {
    const { analyses, runs, sweeps, verifications, forms, commands } = this._options;
    const key = panel.id;
    const state = analyses.get(key);
    const progress = runs.get(key);
    const verification = verifications.get(key);
    const analysis = state.analysis;
    const unavailable = this._server.unavailable || state.unavailable;
    const positions = new Map(analysis?.stages.map((stage, i) => [stage.name, i]) ?? []);
    const showAnalysisCell = (index: number) => this._showAnalysisCell(panel, state, index);
    const places = this._placesOf(panel.context.path);
    return (
      <div className="jp-mlops-body">
        <header className="jp-mlops-header">
          <div className="jp-mlops-title" title={panel.context.path}>
            <span className="jp-mlops-pipeline">
              <Breakable text={analysis?.settings.pipeline ?? panel.context.localPath} />
            </span>
            {state.pending && <span className="jp-mlops-pending">analyzing…</span>}
          </div>
          <div className="jp-mlops-actions">
            <button
              type="button"
              className="jp-mod-styled jp-mod-accept"
              data-testid="mlops-productionize"
              disabled={unavailable || isActive(progress)}
              title="Save, check, run every stage and log to MLflow"
              onClick={() => void commands.execute(CommandIDs.productionize)}
            >
              Productionize
            </button>
            <button
              type="button"
              className="jp-mod-styled jp-mlops-secondary"
              data-testid="mlops-verify"
              disabled={unavailable || isVerifying(verification)}
              title="Save, run the notebook top to bottom and as a pipeline, and compare every value a stage hands on"
              onClick={() => void commands.execute(CommandIDs.verify)}
            >
              Verify
            </button>
            <button
              type="button"
              className="jp-mlops-icon-button"
              data-testid="mlops-runs"
              title="Past runs of this notebook: open, compare, re-run, cancel"
              onClick={() =>
                void commands.execute(CommandIDs.openRuns, { path: panel.context.path })
              }
            >
              <historyIcon.react tag="span" />
            </button>
            <button
              type="button"
              className="jp-mlops-icon-button"
              data-testid="mlops-refresh"
              title="Analyze the notebook now"
              onClick={() => void commands.execute(CommandIDs.analyze)}
            >
              <refreshIcon.react tag="span" />
            </button>
          </div>
        </header>
        {unavailable && (
          <div className="jp-mlops-banner jp-mod-error" data-testid="mlops-unavailable">
            The jupyter-mlops server extension is not available, so the pipeline can’t be analyzed
            or run. Check that <code>jupyter server extension list</code> shows{' '}
            <code>jupyter_mlops</code> enabled, then restart Jupyter.
          </div>
        )}
        {!unavailable && state.error && (
          <div className="jp-mlops-banner jp-mod-error" data-testid="mlops-analysis-error">
            {state.error}
          </div>
        )}
        <RunPanel
          progress={progress}
          now={Date.now() / 1000}
          positions={positions}
          planned={analysis?.stages ?? []}
          actions={{
            cancel: () => void commands.execute(CommandIDs.cancelRun),
            showCell: index => void showCell(this._options.shell, panel, index)
          }}
        />
        <VerifyPanel
          state={verification}
          positions={positions}
          showCell={index => void showCell(this._options.shell, panel, index)}
        />
        {analysis && analysis.diagnostics.length > 0 && (
          <Section title={`Problems (${analysis.diagnostics.length})`} testid="mlops-problems">
            <DiagnosticList diagnostics={analysis.diagnostics} onShowCell={showAnalysisCell} />
          </Section>
        )}
        {analysis && (
          <>
            <Section title="Stages" testid="mlops-stages">
              <StageList analysis={analysis} onShowCell={showAnalysisCell} />
            </Section>
            {analysis.stages.length > 0 && (
              <Section title="Data flow" testid="mlops-graph">
                <DagView analysis={analysis} onShowCell={showAnalysisCell} />
              </Section>
            )}
            <Section title="Parameters" testid="mlops-parameters">
              <ParameterForm
                parameters={analysis.parameters}
                form={forms.get(key)}
                onEdit={(name, raw) => forms.edit(key, name, raw)}
                onReset={() => forms.reset(key, analysis.parameters)}
              />
            </Section>
            <SweepSection
              path={panel.context.path}
              parameters={analysis.parameters}
              metrics={loggedMetrics(analysis.stages)}
              state={sweeps.get(key)}
              disabled={unavailable || !analysis.ok}
              actions={{
                edit: change => sweeps.edit(key, change),
                editValue: (name, text) => sweeps.editValue(key, name, text),
                start: () =>
                  void sweeps.start(key, {
                    path: panel.context.path,
                    parameters: analysis.parameters,
                    metrics: loggedMetrics(analysis.stages),
                    save: () => panel.context.save()
                  }),
                stop: () => void sweeps.stop(key),
                resume: () => void sweeps.resume(key)
              }}
            />
          </>
        )}
        {!analysis && !unavailable && !state.error && (
          <p className="jp-mlops-empty">
            {state.pending ? 'Analyzing the notebook…' : 'Not analyzed yet.'}
          </p>
        )}
        {places && <Footer config={places} />}
      </div>
    );
  }

  /** Go to a cell named by an analysis: it may have moved since the snapshot. */
  private _showAnalysisCell(panel: NotebookPanel, state: AnalysisState, index: number): void {
    const now = currentIndex(panel.content, state.cellIds, index);
    if (now >= 0) {
      void showCell(this._options.shell, panel, now);
    }
  }

  /**
   * Where the notebook's runs go, once the server has said (asked here the first time);
   * the server's own answer if it couldn't say.
   */
  private _placesOf(path: string): ServerConfig | null {
    const known = this._places.get(path);
    if (known !== undefined) {
      return known;
    }
    if (!this._server.config) {
      return null; // the server extension hasn't answered (or is missing): nothing to ask
    }
    if (!this._asking.has(path)) {
      this._asking.add(path);
      const fallback = this._server.config;
      this._options
        .places(path)
        .catch(() => fallback)
        .then(config => {
          this._asking.delete(path);
          this._places.set(path, config);
          this.update();
        });
    }
    return null;
  }

  private _onModelChanged(_: unknown, key: string): void {
    if (key === this._options.tracker.currentWidget?.id) {
      this.update();
    }
  }

  private _options: SidebarOptions;
  private _server: ServerState = { config: null, unavailable: false };
  private _places = new Map<string, ServerConfig>(); // by notebook path
  private _asking = new Set<string>();
}

function Footer(props: { config: ServerConfig }): React.ReactElement {
  const { config } = props;
  return (
    <footer className="jp-mlops-footer">
      MLflow:{' '}
      {config.mlflow_ui_url ? (
        <a href={config.mlflow_ui_url} target="_blank" rel="noopener noreferrer">
          <Breakable text={config.tracking_uri} />
        </a>
      ) : (
        <code>
          <Breakable text={config.tracking_uri} />
        </code>
      )}
      <br />
      Run folders:{' '}
      <code data-testid="mlops-runs-dir">
        <Breakable text={config.runs_dir} />
      </code>
    </footer>
  );
}
