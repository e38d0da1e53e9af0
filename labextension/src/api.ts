/**
 * Typed access to the jupyter-mlops server extension (docs/REST-API.md).
 *
 * The interfaces mirror the JSON of that document field for field; keep them in step with
 * it. Requests go through `ServerConnection.makeRequest`, which adds the token and the
 * XSRF header that the server checks on POST and DELETE.
 */
import { URLExt } from '@jupyterlab/coreutils';
import type * as nbformat from '@jupyterlab/nbformat';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError } from './errors';

/** The URL namespace of the server extension, under the server's base URL. */
export const API_NAMESPACE = 'jupyter-mlops';

// --- GET config -------------------------------------------------------------------------

export interface ServerConfig {
  version: string;
  tracking_uri: string;
  mlflow_ui_url: string | null;
  runs_dir: string;
}

// --- POST analyze -----------------------------------------------------------------------

export interface AnalyzeRequest {
  notebook?: nbformat.INotebookContent;
  path?: string;
}

export interface PipelineSettings {
  pipeline: string;
  experiment: string;
  model_name: string;
  kernel: string | null;
  fit_data: Record<string, string>;
}

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
  models: Record<string, string>;
  touched: string[];
  /** functions and classes of earlier stages defined again here -> the cell defining them */
  definitions: Record<string, number>;
  /** configuring statements of earlier stages made again at the start */
  replay: string[];
}

/** The value the seeded random generators' state travels as (jupyter_mlops.state). */
export const RANDOM_STATE = '__mlops_random_state__';

/** A handed-over value as the user knows it. */
export function valueName(variable: string): string {
  return variable === RANDOM_STATE ? '(random state)' : variable;
}

export interface Edge {
  source: string;
  target: string;
  variables: string[];
  explicit: boolean;
}

export type ParameterType = 'int' | 'float' | 'str' | 'bool' | 'list' | 'dict' | 'any';

export interface Parameter {
  name: string;
  type: ParameterType;
  default: unknown;
  help: string | null;
  cell: number;
  line: number;
  optional: boolean;
}

export type CellRole =
  'stage' | 'setup' | 'skip' | 'parameters' | 'unassigned' | 'markdown' | 'raw';

export interface CellInfo {
  index: number;
  cell_type: 'code' | 'markdown' | 'raw';
  role: CellRole;
  stage: string | null;
  tags: string[];
  metrics: boolean;
  models: string[];
  after: string[];
  reads: string[];
  touches: string[];
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  code: string;
  message: string;
  cell: number | null;
  related_cell: number | null;
  line: number | null;
}

export interface Analysis {
  ok: boolean;
  settings: PipelineSettings;
  stages: Stage[];
  edges: Edge[];
  parameters: Parameter[];
  setup_cells: number[];
  cells: CellInfo[];
  diagnostics: Diagnostic[];
  imports: string[];
}

// --- POST convert -----------------------------------------------------------------------

export interface ConvertRequest {
  path: string;
  output?: string;
}

export interface ConvertResponse {
  output: string;
  files: string[];
  analysis: Analysis;
}

// --- runs -------------------------------------------------------------------------------

export interface StartRunRequest {
  path: string;
  parameters?: Record<string, unknown>;
  jobs?: number;
  from_stage?: string | null;
  only?: string[];
}

/** `queued`: waiting for one of the server's run slots (MlopsExtension.max_concurrent_runs). */
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export type StageStatus =
  'queued' | 'running' | 'done' | 'failed' | 'cached' | 'skipped' | 'cancelled';

export interface StageError {
  message: string;
  cell: number | null;
  line: number | null;
  exception: string;
  traceback: string;
}

export interface StageRun {
  name: string;
  status: StageStatus;
  started: number | null;
  finished: number | null;
  duration: number | null;
  cells: number[];
  mlflow_run_id: string | null;
  mlflow_url: string | null;
  cached_from: string | null;
  error: StageError | null;
  /** what the stage's `metrics` cell logged (numeric scalars only) */
  metrics: Record<string, number>;
  /** absent in `GET runs` listings */
  log_tail?: string;
}

export interface MlflowRun {
  tracking_uri: string;
  experiment_id: string | null;
  run_id: string | null;
  url: string | null;
}

export interface RegisteredModel {
  name: string;
  version: string;
  variable: string;
  stage: string;
  uri: string;
  alias_uri: string;
  flavor: string;
  url: string | null;
}

export interface Run {
  id: string;
  pipeline: string;
  path: string;
  status: RunStatus;
  created: number;
  finished: number | null;
  parameters: Record<string, unknown>;
  stages: StageRun[];
  error: StageError | null;
  mlflow: MlflowRun | null;
  models: RegisteredModel[];
  warnings: string[];
  /** absent in `GET runs` listings */
  log_tail?: string;
}

export interface RunList {
  runs: Run[];
}

// --- verifications ----------------------------------------------------------------------

export interface VerifyRequest {
  path: string;
}

export interface VerificationStarted {
  id: string;
}

export type VerificationStatus = 'running' | 'identical' | 'divergent' | 'failed';

/** A value a stage hands on that is not what the notebook computed. */
export interface VerifyDifference {
  stage: string;
  /** the handed-over name (`np.random` style names are a random generator's state) */
  variable: string;
  /** how to name it to a person: the variable, or "the state of X's random generator" */
  label: string;
  /** the stages that read it */
  readers: string[];
  /** the stage's last cell that sets it: where to look */
  cell: number | null;
  detail: string;
  /** randomness the notebook itself doesn't reproduce: a note, not a divergence */
  unseeded: boolean;
}

/** What `jupyter-mlops verify --json` prints. */
export interface VerifyReport {
  notebook: string;
  /** the runs kept to look into (relative to the server root when inside it); '' if identical */
  folder: string;
  stages: number;
  /** handed-over values compared */
  values: number;
  plain_seconds: number;
  pipeline_seconds: number;
  identical: boolean;
  differences: VerifyDifference[];
}

export interface Verification {
  id: string;
  path: string | null;
  status: VerificationStatus;
  /** set once the command has reported (identical or divergent) */
  report: VerifyReport | null;
  /** the command's one-paragraph error, when failed */
  error: string | null;
}

// --- requests ---------------------------------------------------------------------------

/**
 * Call an endpoint of the server extension and return its JSON.
 *
 * Rejects with an `ApiError` carrying the server's own `message` when there is one. A 404
 * without a JSON message comes from Jupyter itself, not from our handlers: the route is
 * missing, which the UI shows as "server extension not available".
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(0, `The Jupyter server could not be reached: ${String(error)}`);
  }
  const text = await response.text();
  const data = parseJSON(text);
  if (!response.ok) {
    const message = serverMessage(data);
    throw new ApiError(
      response.status,
      message ?? `${response.status} ${response.statusText}`.trim(),
      response.status === 404 && message === undefined
    );
  }
  return data as T;
}

function parseJSON(text: string): unknown {
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function serverMessage(data: unknown): string | undefined {
  if (typeof data === 'object' && data !== null && 'message' in data) {
    const message = (data as { message: unknown }).message;
    if (typeof message === 'string' && message) {
      return message;
    }
  }
  return undefined;
}

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

export function getConfig(): Promise<ServerConfig> {
  return requestAPI<ServerConfig>('config');
}

export function analyze(body: AnalyzeRequest): Promise<Analysis> {
  return requestAPI<Analysis>('analyze', post(body));
}

export function startRun(body: StartRunRequest): Promise<Run> {
  return requestAPI<Run>('runs', post(body));
}

export function getRun(id: string): Promise<Run> {
  return requestAPI<Run>(`runs/${encodeURIComponent(id)}`);
}

export async function listRuns(path: string): Promise<Run[]> {
  const query = URLExt.objectToQueryString({ path });
  const list = await requestAPI<RunList>(`runs${query}`);
  return list.runs;
}

export function cancelRun(id: string): Promise<Run> {
  return requestAPI<Run>(`runs/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function startVerification(body: VerifyRequest): Promise<VerificationStarted> {
  return requestAPI<VerificationStarted>('verifications', post(body));
}

export function getVerification(id: string): Promise<Verification> {
  return requestAPI<Verification>(`verifications/${encodeURIComponent(id)}`);
}
