/**
 * The REST API's JSON, as the server accepts and sends it: generated from the pydantic
 * models in jupyter_mlops/server/schemas.py by `python -m jupyter_mlops.server.apidoc`.
 * Do not edit: change the models and run it. api.ts checks its own types against these.
 */

export interface AnalyzeRequest {
  notebook?: Record<string, unknown> | null;
  path?: string | null;
}

export interface ConvertRequest {
  path: string;
  output?: string | null;
}

export interface RunRequest {
  path: string;
  parameters?: Record<string, unknown>;
  /** stages run at once; default: the server's cores, as `jupyter-mlops run` */
  jobs?: number;
  from_stage?: string | null;
  only?: string[];
}

export interface VerifyRequest {
  path: string;
}

export interface PromoteRequest {
  /** the alias to move */
  to?: string;
  /** run the checks only: nothing is moved */
  dry_run?: boolean;
  /**
   * the notebook whose run registered the version: the store of its project is the one checked
   * (default: the server root project's)
   */
  path?: string | null;
}

/** `POST sweeps`: what `jupyter-mlops sweep` is given on its command line. */
export interface SweepRequest {
  path: string;
  /**
   * parameter -> the values to try, as text as on the command line: `100,200,400`; with `random`,
   * also a range `LOW:HIGH` or `LOW:HIGH:log`; one value fixes the parameter for every trial
   */
  values: Record<string, string>;
  /** draw this many trials at random */
  random?: number | null;
  /** the random draws' seed */
  seed?: number | null;
  /** the metric that picks the best trial (default: the only one) */
  metric?: string | null;
  /** higher is better (default: from the metric's name) */
  maximize?: boolean | null;
}

/**
 * `GET config`, and `GET config?path=NOTEBOOK`: where that notebook's runs go (its project's store
 * and run folders), by default where a notebook in the server root's go.
 */
export interface ServerConfig {
  version: string;
  tracking_uri: string;
  /** the MLflow UI showing that store; null when none is reachable */
  mlflow_ui_url: string | null;
  /** relative to the server root when inside it, else an absolute path */
  runs_dir: string;
}

/** `POST analyze`: what the tags make of the notebook. */
export interface Analysis {
  settings: PipelineSettings;
  stages: Stage[];
  edges: Edge[];
  parameters: Parameter[];
  setup_cells: number[];
  cells: CellInfo[];
  diagnostics: Diagnostic[];
  imports: string[];
  /** the global ones the notebook seeds */
  random_generators: string[];
  /** false when there are errors */
  ok: boolean;
}

/** Notebook-wide settings from the notebook's `jupyter_mlops` metadata. */
export interface PipelineSettings {
  pipeline: string;
  experiment: string;
  model_name: string;
  kernel: string | null;
  /** model variable -> its fit data expression */
  fit_data: Record<string, string>;
  /** the promotion gate's declared checks; absent when none */
  promotion?: Record<string, unknown>;
}

/** A stage of the analysed notebook, in run order. */
export interface Stage {
  name: string;
  cells: number[];
  /** variable -> the stage it comes from */
  inputs: Record<string, string>;
  outputs: string[];
  parameters: string[];
  after: string[];
  upstream: string[];
  metrics: string[];
  /** variable -> the expression its input example comes from */
  models: Record<string, string | null>;
  touched: string[];
  /** functions and classes of earlier stages used here -> the cell defining them */
  definitions: Record<string, number>;
  /** inputs those need before they are defined */
  early_inputs: string[];
  /** configuring statements of earlier stages made again */
  replay: string[];
}

export interface Edge {
  source: string;
  target: string;
  variables: string[];
  /** from an `after:` tag */
  explicit: boolean;
}

export interface Parameter {
  name: string;
  type: ParameterType;
  default: unknown;
  help: string;
  cell: number;
  line: number;
  /** None is accepted as well */
  optional: boolean;
}

export type ParameterType = 'int' | 'float' | 'str' | 'bool' | 'list' | 'dict' | 'any';

/** One per notebook cell, markdown included. */
export interface CellInfo {
  index: number;
  cell_type: string;
  role: CellRole;
  stage: string | null;
  /** the skip cell an untagged cell follows (it joins the stage before) */
  after_skip: number | null;
  tags: string[];
  metrics: boolean;
  models: string[];
  after: string[];
  reads: string[];
  touches: string[];
}

export type CellRole =
  'stage' | 'setup' | 'skip' | 'parameters' | 'unassigned' | 'markdown' | 'raw';

export interface Diagnostic {
  severity: Severity;
  /** a stable identifier, e.g. `undefined-name` */
  code: string;
  message: string;
  cell: number | null;
  related_cell: number | null;
  line: number | null;
}

export type Severity = 'error' | 'warning';

/** `POST convert`. */
export interface ConvertResponse {
  output: string;
  files: string[];
  analysis: Analysis;
}

/** A run: `GET runs/{id}`, and the answer to `POST runs` and `DELETE runs/{id}`. */
export interface Run {
  id: string;
  pipeline: string;
  status: RunStatus;
  /** seconds since the epoch */
  created: number;
  finished: number | null;
  parameters: Record<string, unknown>;
  stages: StageRun[];
  /** the failing stage's error, when failed */
  error: StageError | null;
  models: RegisteredModel[];
  warnings: string[];
  /** the notebook, relative to the server root */
  path: string | null;
  /**
   * the run folder, relative to the server root (its stages' `notebook` and `log` are relative to
   * it); null when it is outside the root
   */
  folder: string | null;
  /**
   * the run folder's absolute path on the server's machine: where to find it when `folder` is null
   * (a project whose top level is above the server root)
   */
  run_dir: string;
  mlflow: MlflowRun;
  /** absent in `GET runs` listings */
  log_tail?: string;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface StageRun {
  name: string;
  status: StageStatus;
  /** seconds since the epoch */
  started: number | null;
  finished: number | null;
  /** the executed notebook, in the run folder */
  notebook: string | null;
  /** its log, in the run folder */
  log: string | null;
  mlflow_run_id: string | null;
  cached_from: string | null;
  /** the stage cache's key its outputs depend on */
  key?: string;
  error: StageError | null;
  /** what its `metrics` cell logged */
  metrics: Record<string, number>;
  /** seconds by part, the columns of `jupyter-mlops run --timings`; empty when not recorded */
  timings?: Record<string, number>;
  duration: number | null;
  cells: number[];
  mlflow_url: string | null;
  /** absent in `GET runs` listings */
  log_tail?: string;
}

export type StageStatus =
  'queued' | 'running' | 'done' | 'failed' | 'cached' | 'skipped' | 'cancelled';

export interface StageError {
  message: string;
  /** 0-based index into the notebook's cells */
  cell: number | null;
  line: number | null;
  /** e.g. "ValueError: boom" */
  exception: string | null;
  traceback: string | null;
}

export interface RegisteredModel {
  name: string;
  version: string;
  variable: string;
  stage: string;
  uri: string;
  alias_uri: string;
  flavor: string;
  /** the logged model (m-...) */
  model_id?: string | null;
  /** the stage run that logged it */
  run_id?: string | null;
  /** false: the version an earlier run registered, linked to because this run reused its model */
  new?: boolean;
  url: string | null;
}

export interface MlflowRun {
  tracking_uri: string | null;
  experiment_id: string | null;
  run_id: string | null;
  url: string | null;
}

/** `GET runs`: newest first. */
export interface RunList {
  runs: Run[];
}

/**
 * A sweep: `GET sweeps/{id}`, and the answer to `POST sweeps`, `DELETE sweeps/{id}` and `POST
 * sweeps/{id}/resume`. Its record, `sweep.json`, with links into MLflow.
 */
export interface Sweep {
  id: string;
  pipeline: string;
  /** the notebook, relative to the server root */
  path: string | null;
  /** `stopped`: stopped, or its process ended before it did; it can resume */
  status: SweepStatus;
  metric: string;
  maximize: boolean;
  /** each swept parameter's values, as given */
  space: Record<string, string>;
  /** the values every trial shares */
  fixed: Record<string, unknown>;
  /** a random sweep's */
  seed: number | null;
  /** seconds since the epoch */
  created: number;
  finished: number | null;
  trials: SweepTrial[];
  /** the best trial's number */
  best: number | null;
  /** the best trial's, registered */
  models: RegisteredModel[];
  /** the sweep's folder, relative to the server root */
  folder: string | null;
  /** why it failed or stopped, when its record can't say */
  error: string | null;
  /** the sweep's own run, the trials' parent */
  mlflow: MlflowRun;
}

export type SweepStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'stopped';

/** One parameter set of a sweep: an ordinary pipeline run nested under the sweep's. */
export interface SweepTrial {
  /** from 1, in the order the trials run */
  number: number;
  /** the swept parameters' values */
  parameters: Record<string, unknown>;
  status: TrialStatus;
  /** its pipeline run (`GET runs/{id}`) */
  run_id: string | null;
  mlflow_run_id: string | null;
  /** the sweep's metric, once it succeeded */
  metric: number | null;
  metrics: Record<string, number>;
  /** stages whose outputs an earlier trial made */
  shared: string[];
  error: string | null;
  duration: number | null;
  mlflow_url: string | null;
}

export type TrialStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** `GET sweeps`: newest first. */
export interface SweepList {
  sweeps: Sweep[];
}

/** `POST verifications`. */
export interface VerificationStarted {
  id: string;
}

/** `GET verifications/{id}`. */
export interface Verification {
  id: string;
  path: string | null;
  status: VerificationStatus;
  /** once the command has reported */
  report: VerifyReport | null;
  /** the command's one-paragraph error, when failed */
  error: string | null;
  [field: string]: unknown;
}

export type VerificationStatus = 'running' | 'identical' | 'divergent' | 'failed';

/** What `jupyter-mlops verify --json` prints. */
export interface VerifyReport {
  notebook: string;
  /** the runs kept to look into; '' when identical */
  folder: string;
  stages: number;
  /** handed-over values compared */
  values: number;
  plain_seconds: number;
  pipeline_seconds: number;
  identical: boolean;
  differences: VerifyDifference[];
  [field: string]: unknown;
}

/** A value a stage hands on that is not what the notebook computed. */
export interface VerifyDifference {
  stage: string;
  /** the handed-over name */
  variable: string;
  /** how to name it to a person */
  label: string;
  /** the stages that read it */
  readers: string[];
  /** the stage's last cell that sets it */
  cell: number | null;
  detail: string;
  /** randomness the notebook itself doesn't reproduce */
  unseeded: boolean;
  [field: string]: unknown;
}

/**
 * `POST models/{name}/versions/{version}/promote`: the checks and what was done. A check that fails
 * is an answer (`passed` false), not an error.
 */
export interface Promotion {
  name: string;
  version: string;
  /** the alias */
  to: string;
  /** every check passed */
  passed: boolean;
  /** the alias now points at this version (never on a dry run) */
  moved: boolean;
  checks: PromotionCheck[];
  /** the version the alias named before, if any */
  champion_before: string | null;
  dry_run: boolean;
}

/** One check of the promotion gate. */
export interface PromotionCheck {
  /** e.g. "min accuracy", "beats champion", "smoke test" */
  name: string;
  passed: boolean;
  /** one sentence with the figures */
  detail: string;
}

/** Every error our handlers answer, with its HTTP status. */
export interface ErrorBody {
  /** one sentence the UI can show */
  message: string;
  error: ErrorData;
}

/**
 * The error as data (`MlopsError.data()`): its kind and message, and its own fields (a bad
 * request's `problems`: each field and what is wrong with it, say).
 */
export interface ErrorData {
  /** the error's class, e.g. `NotFound`, `TooLarge` */
  kind: string;
  message: string;
  [field: string]: unknown;
}
